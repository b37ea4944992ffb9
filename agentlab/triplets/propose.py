"""Rule proposals for the hybrid path: candidate triplets grouped in slots, each with its alternatives.

A caption is cut at predicate phrases (prepositions, relation verbs, "-ing" verbs, "-ed" participles and
"-s" verbs before an article); the chunks between them are noun phrases. Every relation between two
chunks, every attribute of a chunk's head and every count ("two cups" -> `(cup, is, 2)`) is a *slot*:

- ``options``: the triplets it could be, the rule's pick first when the rules make one (the head of a
  chunk is its last content word; alternatives use other nouns of the chunk, or the caption's first
  head as the subject of a later relation);
- ``default``: True when the rules alone emit the first option; False for a slot only a model may keep
  (a modifier the rules cannot tell from part of a compound: "leather couch" vs "tennis racket").

:func:`rule_pass` (the defaults) is the rules-alone extractor; :mod:`~agentlab.triplets.verify` lets a
model choose among the options by log-likelihood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentlab.triplets.baseline import ADJECTIVES, PREDICATES
from agentlab.triplets.text import Triplet, unique

#: "five boats" -> (boat, is, 5), as FACTUAL annotates counts
NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
           "nine": "9", "ten": "10", "couple": "2", "pair": "2"}
#: "a bunch of birds" is about the birds: "<quantity> of" is skipped
QUANTITIES = frozenset(["bunch", "bunches", "group", "groups", "lot", "lots", "pile", "piles", "stack", "stacks", "bits",
                        "bit", "pieces", "herd", "flock", "row", "rows", "set", "sets", "couple", "pair", "pairs",
                        "line", "number", "plenty", "slices", "cluster", "clump", "bundle", "crowd"])
MORE_ADJECTIVES = frozenset(["beige", "dirty", "clean", "bare", "leafless", "shiny", "dead", "dry", "blond", "blonde",
                             "elderly", "older", "adult", "baby", "distant", "decorative", "various", "shallow",
                             "plaid", "paisley", "checkered", "leather", "wire", "paper", "dirt", "asphalt", "straw"])
COLOUR_SHADES = frozenset(["dark", "light", "bright", "pale", "deep"])
PREPOSITIONS = frozenset(["on", "in", "at", "over", "under", "from", "to", "with", "near", "by", "into", "onto", "across",
                          "through", "against", "behind", "beside", "down", "up", "along", "around", "inside", "off"])
DETERMINERS = frozenset(["a", "an", "the", "his", "her", "their", "its", "some", "two", "three", "several", "many"])
SKIP = frozenset(["a", "an", "the", "this", "that", "these", "those", "some", "several", "many", "his", "her", "its",
                  "their", "is", "are", "was", "were", "be", "being", "been", "and", "or", "who", "which", "there",
                  "here", "it", "they", "another", "other", "each", "very", "partly", "of", "has", "have", "while"])
NOT_VERBS = frozenset(["this", "is", "has", "was", "glass", "grass", "dress", "bus", "tennis", "pants", "jeans",
                       "shorts", "glasses", "boots", "skis", "scissors", "clothes", "is", "its", "his", "has", "does",
                       "as", "gas", "lens", "news", "across"])
ING_NOUNS = frozenset(["string", "ring", "ceiling", "building", "painting", "writing", "clothing", "railing", "parking",
                       "awning", "awing", "topping", "icing", "frosting", "wing", "thing", "evening", "morning", "opening",
                       "lighting", "siding", "bedding", "pudding", "stuffing", "filling", "landing", "sibling", "chopping",
                       "dressing", "wedding", "crossing", "king", "spring", "swing"])
_WORD = re.compile(r"[a-z][a-z'-]*|\d+")
MAX_OPTIONS = 4


@dataclass
class Slot:
    """One candidate fact of a caption: its alternatives (the rule's pick first) and whether the rules emit it."""

    options: list[Triplet]
    default: bool = True
    kind: str = "relation"  # relation | attribute | count


def _is_adjective(w: str) -> bool:
    return w in ADJECTIVES or w in MORE_ADJECTIVES


def _heads(chunk: list[str]) -> list[str]:
    """Candidate head nouns of a chunk: the last content word first, then earlier non-adjective content words."""
    words = [w for w in chunk if w not in SKIP and not w.isdigit() and w not in NUMBERS]
    if not words:
        return []
    out = [words[-1]]
    if len(words) >= 2 and not _is_adjective(words[-2]):
        out.append(f"{words[-2]} {words[-1]}")  # a compound: "bed spread", "night stand"
    out += [w for w in reversed(words[:-1]) if not _is_adjective(w) and w not in COLOUR_SHADES]
    return unique(out)[:3]


def _predicate_at(words: list[str], i: int, lexicon: tuple[tuple[str, ...], ...]) -> tuple[str, ...] | None:
    hit = next((p for p in lexicon if tuple(words[i:i + len(p)]) == p), None)
    if hit:
        return hit
    w, nxt = words[i], (words[i + 1] if i + 1 < len(words) else None)
    after_modifier = words[i - 1] in DETERMINERS or _is_adjective(words[i - 1])  # "the writing", "white string"
    if w.endswith("ing") and len(w) > 4 and not _is_adjective(w) and w not in ING_NOUNS and not after_modifier:
        return (w, nxt) if nxt in PREPOSITIONS else (w,)
    if w.endswith("ed") and len(w) > 3 and nxt in PREPOSITIONS and not _is_adjective(w):
        return (w, nxt)  # "tied to", "parked by", "covered with"
    if i > 0 and w.endswith("s") and len(w) > 3 and w not in NOT_VERBS and nxt in DETERMINERS and words[i - 1] not in SKIP:
        return (w,)  # "man holds a knife", "plate contains a lemon"
    return None


def _spans(words: list[str]) -> list[tuple[str, int, int]]:
    lexicon = tuple(sorted((tuple(p.split()) for p in PREDICATES if p != "of"), key=len, reverse=True))
    spans, i = [], 0
    while i < len(words):
        hit = _predicate_at(words, i, lexicon) if i > 0 else None
        if hit:
            spans.append((" ".join(hit), i, i + len(hit)))
            i += len(hit)
        else:
            i += 1
    return spans


def _drop_quantities(words: list[str]) -> list[str]:
    """"a bunch of birds" -> "birds": a quantity noun and its "of" are skipped."""
    out, i = [], 0
    while i < len(words):
        if words[i] in QUANTITIES and i + 1 < len(words) and words[i + 1] == "of":
            i += 2
            continue
        out.append(words[i])
        i += 1
    return out


def _of_parts(chunk: list[str]) -> tuple[list[str], list[str]] | None:
    """"seat of the toilet" -> (["seat"], ["the", "toilet"]): the part and the whole, else None."""
    if "of" not in chunk:
        return None
    k = chunk.index("of")
    return chunk[:k], chunk[k + 1:]


def propose(caption: str) -> list[Slot]:
    """Candidate slots of one caption (see the module docstring)."""
    words = _drop_quantities(_WORD.findall(str(caption or "").lower()))
    spans = _spans(words)
    bounds = [0, *[x for _, s, e in spans for x in (s, e)], len(words)]
    chunks = [words[bounds[k]:bounds[k + 1]] for k in range(0, len(bounds), 2)]
    slots: list[Slot] = []
    # "X of Y" inside a chunk: Y has X; the chunk's head for relations is X
    parts, heads = [], []
    for chunk in chunks:
        chunk, slots_after = _predicative(chunk)
        slots += slots_after
        split = _of_parts(chunk)
        if split:
            part, whole = _heads(split[0]), _heads(split[1])
            if part and whole:
                slots.append(Slot([(whole[0], "have", part[0])]))
            parts.append(split[0] or split[1])
            heads.append(unique([*part[:2], *whole[:1]]) if part else whole)  # the whole is the other candidate
            slots += _modifiers(split[1])
        else:
            parts.append(chunk)
            heads.append(_heads(chunk))
    first = next((h[0] for h in heads if h), None)
    for k, (pred, _, _) in enumerate(spans):
        subj = heads[k] or next((h for h in reversed(heads[:k]) if h), [])
        obj = heads[k + 1]
        if not subj or not obj:
            continue
        subjects = unique([*subj, *([first] if first and k > 0 else [])])
        options = [(s, pred, o) for s in subjects for o in obj[:2]]
        slots.append(Slot(unique(options)[:MAX_OPTIONS]))
    for chunk in parts:
        slots += _modifiers(chunk)
    return _dedupe(slots)


def _predicative(chunk: list[str]) -> tuple[list[str], list[Slot]]:
    """"the top is blue": the noun part of the chunk and its `(top, is, blue)` slot."""
    for k, w in enumerate(chunk):
        tail = chunk[k + 1:]
        if w in ("is", "are") and tail and all(_is_adjective(t) or t in COLOUR_SHADES for t in tail):
            heads = _heads(chunk[:k])
            return chunk[:k], ([Slot([(heads[0], "is", " ".join(tail))], kind="attribute")] if heads else [])
    return chunk, []


def _modifiers(chunk: list[str]) -> list[Slot]:
    """Attribute and count slots of one noun chunk."""
    heads = _heads(chunk)
    if not heads:
        return []
    head, out = heads[0], []
    content = [w for w in chunk if w not in SKIP]
    for j, w in enumerate(content[:-1]):
        if w in NUMBERS or w.isdigit():
            out.append(Slot([(head, "is", NUMBERS.get(w, w))], kind="count"))
        elif w in COLOUR_SHADES and j + 1 < len(content) - 1 and _is_adjective(content[j + 1]):
            continue  # "dark green leaves": the shade goes with the next word
        elif _is_adjective(w):
            shade = content[j - 1] if j > 0 and content[j - 1] in COLOUR_SHADES else None
            out.append(Slot([(head, "is", f"{shade} {w}" if shade else w)], kind="attribute"))
        elif w != head and w not in head.split():
            out.append(Slot([(head, "is", w)], default=False, kind="attribute"))
    return out


def _dedupe(slots: list[Slot]) -> list[Slot]:
    seen: set[tuple[Triplet, ...]] = set()
    out = []
    for s in slots:
        key = tuple(s.options)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def rule_pass(caption: str) -> list[Triplet]:
    """The rules alone: the first option of every default slot."""
    return unique(s.options[0] for s in propose(caption) if s.default)
