"""Cleaning a generated query: first line, known prefixes off, repetitions cut."""

from __future__ import annotations

import re

_PREFIX = re.compile(r"^\s*(?:\d+[.)]\s*)?(?:relevant\s+)?(?:query|question)\s*\d*\s*:\s*", re.IGNORECASE)
MAX_WORDS = 40


def clean_query(text: str | None, ngram: int = 3) -> str:
    """The first non-empty line, without a `Query:` prefix or quotes, cut where a word n-gram repeats.

    Returns "" when nothing usable is left (the caller retries once).
    """
    if not text:
        return ""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line).strip().strip("\"'`").strip()
    if line.lower().startswith(("document:", "example")):  # the model continued the prompt, not a query
        return ""
    words = line.split()
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - ngram + 1):
        gram = tuple(w.lower().strip(".,;:!?") for w in words[i : i + ngram])
        if gram in seen:
            words = words[:i]
            break
        seen.add(gram)
    return " ".join(words[:MAX_WORDS]).strip(" ,;:")
