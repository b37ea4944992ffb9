"""Term normalisation, a small rule lemmatiser, and gold scene graphs in FACTUAL's string format.

No NLP dependency on purpose: the lemmatiser is a few suffix rules plus an irregular table. It is
used *symmetrically* (predictions, gold and vocabulary all go through :func:`term_key`), so where
it over-stems ("building" -> "build") both sides over-stem the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

Triplet = tuple[str, str, str]

DETERMINERS = frozenset({"a", "an", "the"})
#: leading auxiliaries stripped from predicates ("is sitting on" -> "sitting on"), longest first
AUXILIARIES = ("can be", "about to", "has been", "have been", "is being", "are being", "will be",
               "is", "are", "was", "were", "am", "be", "being", "been")

_IRREGULAR = {
    # nouns
    "men": "man", "women": "woman", "children": "child", "feet": "foot", "teeth": "tooth", "mice": "mouse",
    "geese": "goose", "knives": "knife", "wives": "wife", "lives": "life", "buses": "bus", "glasses": "glass",
    "leaves": "leaf", "shelves": "shelf", "halves": "half", "wolves": "wolf", "loaves": "loaf", "scarves": "scarf",
    # verbs
    "is": "be", "are": "be", "was": "be", "were": "be", "am": "be", "been": "be", "being": "be",
    "has": "have", "had": "have", "having": "have", "does": "do", "did": "do", "done": "do",
    "sat": "sit", "wore": "wear", "worn": "wear", "ate": "eat", "eaten": "eat", "held": "hold", "hung": "hang",
    "stood": "stand", "rode": "ride", "ridden": "ride", "flew": "fly", "flown": "fly", "made": "make",
    "grew": "grow", "grown": "grow", "ran": "run", "built": "build", "drove": "drive", "driven": "drive",
    "lying": "lie", "lies": "lie", "says": "say", "said": "say", "sits": "sit", "saw": "see", "seen": "see",
    "took": "take", "taken": "take", "gave": "give", "given": "give", "caught": "catch", "threw": "throw",
    "thrown": "throw", "swam": "swim", "led": "lead", "bit": "bite", "lit": "light", "hid": "hide",
}
_NO_S_STRIP = ("ss", "us", "ous", "ics")
_KEEP = frozenset({"this", "tennis", "axis", "lens", "news", "series", "species", "always", "yes"})
_PUNCT = re.compile(r"[^\w\s'-]+")
_SPACES = re.compile(r"\s+")


def lemma(word: str) -> str:
    """Best-effort dictionary form of one lower-case word (rules; irregular table first)."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) <= 3 or not w.isalpha() or w in _KEEP:
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "xes", "zes", "sses")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(_NO_S_STRIP):
        return w[:-1]
    if w.endswith("ing") and len(w) > 5:
        return _undouble(w[:-3])
    if w.endswith("ied"):
        return w[:-3] + "y" if len(w) > 4 else w[:-1]
    if w.endswith("ed") and not w.endswith("eed"):
        return _undouble(w[:-2])
    return w


def _undouble(stem: str) -> str:
    """sitt -> sit, runn -> run; but fall, dress and buzz keep their doubled letter."""
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz" and stem[-1] not in "aeiou":
        return stem[:-1]
    return stem


def normalise(term: Any) -> str:
    """Lower-case, punctuation out, whitespace collapsed, a leading article dropped."""
    text = _SPACES.sub(" ", _PUNCT.sub(" ", str(term or "").lower())).strip(" -'")
    words = text.split()
    while len(words) > 1 and words[0] in DETERMINERS:
        words = words[1:]
    return " ".join(words)


def strip_auxiliaries(predicate: str) -> str:
    """Drop leading auxiliaries ("is", "are being", "about to") while something is left."""
    p = normalise(predicate)
    changed = True
    while changed:
        changed = False
        for aux in AUXILIARIES:
            if p.startswith(aux + " ") and len(p) > len(aux) + 1:
                p, changed = p[len(aux) + 1:], True
                break
    return p


def term_key(term: Any) -> str:
    """The comparison key of a term: normalised, each word lemmatised, a final silent 'e' dropped.

    ("riding" and "ride" both become "rid"; "growing on" and "grow on" both "grow on".)
    """
    return " ".join(_stem(lemma(w)) for w in normalise(term).split())


def _stem(w: str) -> str:
    return w[:-1] if len(w) >= 3 and w.endswith("e") and not w.endswith("ee") else w


def triplet_key(t: Triplet) -> Triplet:
    """`term_key` of each part, for exact-after-lemmatising comparison."""
    return (term_key(t[0]), term_key(t[1]), term_key(t[2]))


def clean_triplet(subject: Any, predicate: Any, obj: Any) -> Triplet | None:
    """A normalised triplet, or None when a part is empty (a failed item is dropped, not guessed)."""
    s, p, o = normalise(subject), normalise(predicate), normalise(obj)
    if not (s and p and o):
        return None
    return (s, p, o)


def unique(items: Iterable[Any]) -> list[Any]:
    """Items in first-seen order without repeats."""
    return list(dict.fromkeys(items))


# -- gold: FACTUAL strings -----------------------------------------------------------------
_GROUP = re.compile(r"\(([^()]*)\)")


def parse_factual(text: Any) -> tuple[list[Triplet], list[str]]:
    """Parse `( s , p , o ) , ( e ) , ...` into (triplets, lone entities). Malformed groups are skipped."""
    triplets: list[Triplet] = []
    entities: list[str] = []
    for group in _GROUP.findall(str(text or "")):
        parts = [p.strip() for p in (group.split(" , ") if " , " in group else group.split(","))]
        parts = [p for p in parts if p]
        if len(parts) == 3:
            triplets.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 1:
            entities.append(parts[0])
        elif len(parts) > 3:  # a comma inside a term: keep the ends, join the middle
            triplets.append((parts[0], ", ".join(parts[1:-1]), parts[-1]))
    return triplets, entities


def format_factual(triplets: Iterable[Triplet]) -> str:
    """The inverse of :func:`parse_factual` for triplets."""
    return " , ".join(f"( {s} , {p} , {o} )" for s, p, o in triplets)


def parse_gold(value: Any, fmt: str | None = None) -> list[Triplet]:
    """Gold triplets from a FACTUAL string, a JSON string, or a list of [s, p, o] / {subject, predicate, object}.

    Args:
        value: the gold cell of one row.
        fmt: ``factual``, ``json`` or None (decide from the value).
    """
    if value is None:
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if fmt == "json" or (fmt is None and stripped.startswith(("[", "{"))):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                return []
        else:
            return parse_factual(stripped)[0]
    return [t for t in (_as_triplet(v) for v in (value if isinstance(value, list) else [value])) if t]


def _as_triplet(v: Any) -> Triplet | None:
    if isinstance(v, dict):
        v = [v.get("subject"), v.get("predicate"), v.get("object")]
    if isinstance(v, (list, tuple)) and len(v) == 3 and all(isinstance(x, str) and x.strip() for x in v):
        return (v[0].strip(), v[1].strip(), v[2].strip())
    return None


def as_dicts(triplets: Iterable[Triplet]) -> list[dict[str, str]]:
    """Triplets as `{subject, predicate, object}` dicts (the row format)."""
    return [{"subject": s, "predicate": p, "object": o} for s, p, o in triplets]


def from_dicts(items: Iterable[dict[str, str]]) -> list[Triplet]:
    """The inverse of :func:`as_dicts`."""
    return [(d["subject"], d["predicate"], d["object"]) for d in items]
