"""Cloze questions: a document sentence with its answer phrase blanked out ("Which phrase fills the blank: ...").

What the embedded SmolLM2 path asks instead of letting the model write questions: a 135M model's written
questions are mostly copies of the few-shot pattern that no phrase of the document answers, while a sentence
with one phrase blanked is answered by that phrase by construction. The model still chooses which phrase is
the answer (by log-probability), and the document-seeing check still has to pick it among the choices.
"""

from __future__ import annotations

import re

from agentlab.autobench.text import content_words

BLANK = "____"
#: a sentence shorter than this (in words) says too little to pin down its blank; longer ones are cut
MIN_WORDS, MAX_WORDS = 6, 45


def sentences(document: str) -> list[str]:
    """The document's complete sentences and lines (a title is its own line; a trailing fragment, from a document cut
    short, is left out)."""
    parts = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", document.strip()) if s.strip()]
    if parts and not re.search(r"[.!?][\"')\]]?$", parts[-1]) and not document.endswith("\n"):
        parts = parts[:-1]
    return [s for s in parts if "•" not in s]  # bullet lists and headings are not sentences


def _pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])")


def cloze(document: str, phrase: str) -> str | None:
    """The first sentence holding `phrase` (as whole words) with every occurrence blanked, as a question; None when
    no sentence of a fitting length holds it or too little of the sentence is left around the blank."""
    pat = _pattern(phrase)
    for s in sentences(document):
        if not pat.search(s):
            continue
        n = len(s.split())
        if not MIN_WORDS <= n <= MAX_WORDS:
            continue
        blanked = pat.sub(BLANK, s)
        if len(content_words(blanked)) < 3:
            return None
        return f'Which phrase fills the blank: "{blanked}"'
    return None


def fits(document: str, phrase: str) -> bool:
    """Whether `cloze` can make a question of this phrase."""
    return cloze(document, phrase) is not None
