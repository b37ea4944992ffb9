"""A rule-based triplet extractor: the no-LLM baseline (in the spirit of rule-based scene-graph parsers).

The caption is cut at predicate phrases (a lexicon of prepositions and relation verbs, plus any
"-ing" verb with an optional preposition after it); the subject is the head (last content word)
of the chunk before a predicate, the object the head of the chunk after it. Colour/size/material
words before a head become `(head, is, adjective)`. No parsing, no model: a floor to beat.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agentlab.triplets.text import Triplet, unique

PREDICATES = (
    "in front of", "on top of", "on side of", "next to", "attached to", "hanging from", "belonging to", "made of",
    "covered in", "filled with", "on", "in", "with", "near", "under", "behind", "above", "over", "at", "by",
    "beside", "inside", "between", "against", "along", "across", "around", "below", "beneath", "underneath",
    "of", "has", "have", "holding", "wearing", "wears", "carrying", "riding", "eating", "watching", "using",
    "says", "for", "from", "to",
)
ADJECTIVES = frozenset(
    ["white", "black", "red", "blue", "green", "yellow", "brown", "gray", "grey", "orange", "pink", "purple", "silver", "gold", "golden", "tan", "dark", "light", "large", "small", "big", "little", "tall", "short", "long", "huge", "tiny", "wide", "thin", "thick", "round", "square", "wooden", "metal", "plastic", "glass", "stone", "brick", "concrete", "fluffy", "cloudy", "clear", "old", "young", "new", "empty", "open", "closed", "striped", "colorful", "bright", "wet", "dry", "leafy", "grassy", "paved", "snowy", "sandy"])
_SKIP = frozenset(["a", "an", "the", "this", "that", "these", "those", "some", "two", "three", "four", "five", "six", "several", "many", "his", "her", "its", "their", "is", "are", "was", "were", "be", "being", "been", "and", "or", "who", "which", "there", "here", "it", "they"])
_WORD = re.compile(r"[a-z][a-z'-]*|\d+")


def _head(chunk: list[str]) -> str | None:
    words = [w for w in chunk if w not in _SKIP and not w.isdigit()]
    return words[-1] if words else None


def _split(words: list[str], lexicon: tuple[tuple[str, ...], ...]) -> list[tuple[str, int, int]]:
    """(predicate, start, end) spans, longest lexicon match first, scanning left to right."""
    spans, i = [], 0
    while i < len(words):
        hit = next((p for p in lexicon if tuple(words[i:i + len(p)]) == p), None)
        if hit is None and words[i].endswith("ing") and len(words[i]) > 4 and words[i] not in ADJECTIVES:
            nxt = words[i + 1] if i + 1 < len(words) else None
            hit = (words[i], nxt) if nxt in ("on", "in", "at", "over", "under", "from", "to", "with", "near", "by") else (words[i],)
        if hit:
            spans.append((" ".join(hit), i, i + len(hit)))
            i += len(hit)
        else:
            i += 1
    return spans


def rule_triplets(caption: str, predicates: Iterable[str] = PREDICATES) -> list[Triplet]:
    """Triplets from one caption by pattern (relations between chunk heads, adjectives as `is`)."""
    words = _WORD.findall(str(caption or "").lower())
    lexicon = tuple(sorted((tuple(p.split()) for p in predicates), key=len, reverse=True))
    spans = _split(words, lexicon)
    bounds = [0, *[x for _, s, e in spans for x in (s, e)], len(words)]
    chunks = [words[bounds[k]:bounds[k + 1]] for k in range(0, len(bounds), 2)]
    out: list[Triplet] = []
    for k, (pred, _, _) in enumerate(spans):
        subj = _head(chunks[k]) or _last_subject(chunks[:k])
        obj = _head(chunks[k + 1])
        if subj and obj:
            out.append((subj, pred, obj))
    for chunk in chunks:
        head = _head(chunk)
        for w in chunk:
            if w in ADJECTIVES and w != head:
                out.append((head, "is", w))
    return unique(out)


def _last_subject(chunks: list[list[str]]) -> str | None:
    """For "a man riding a horse" the subject of "riding" is the head of an earlier chunk."""
    for chunk in reversed(chunks):
        h = _head(chunk)
        if h:
            return h
    return None
