"""Finalise aligned triplets (LLM4SGG step 4): fine-grained predicates, dedupe, one graph per image."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from agentlab.triplets.text import Triplet, as_dicts, unique


def predicate_counts(triplet_lists: Iterable[Iterable[Triplet]]) -> Counter:
    """How often each predicate occurs over all (aligned) triplets of the run."""
    return Counter(p for ts in triplet_lists for _, p, _ in ts)


def fine_grained(triplets: Iterable[Triplet], counts: Counter) -> list[Triplet]:
    """Per (subject, object) pair keep only the globally least frequent predicate ("parked on" over "on").

    Ties keep the first seen; pairs keep the order in which they first appear.
    """
    best: dict[tuple[str, str], Triplet] = {}
    for t in triplets:
        pair = (t[0], t[2])
        if pair not in best or counts[t[1]] < counts[best[pair][1]]:
            best[pair] = t
    return list(best.values())


def finalise(triplets: Iterable[Triplet], counts: Counter | None = None) -> list[Triplet]:
    """Dedupe; with `counts`, also keep one fine-grained predicate per pair."""
    out = unique(triplets)
    return fine_grained(out, counts) if counts is not None else out


def image_graphs(keys: list[Any], ids: list[Any], aligned: list[list[Triplet]],
                 counts: Counter | None = None) -> list[dict[str, Any]]:
    """One scene graph per image key: the union of its captions' triplets, finalised.

    Args:
        keys: the image key of each row (the `group_by` column, or the row id).
        ids: the row ids (to say which captions made each graph).
        aligned: each row's aligned triplets (before fine-grained selection).
        counts: global predicate counts for fine-grained selection, or None to skip it.

    Returns:
        `{image, captions, objects, triplets}` per image, in first-seen order.
    """
    groups: dict[Any, dict[str, list]] = {}
    for key, rid, ts in zip(keys, ids, aligned):
        g = groups.setdefault(key, {"captions": [], "triplets": []})
        g["captions"].append(rid)
        g["triplets"].extend(ts)
    out = []
    for key, g in groups.items():
        final = finalise(g["triplets"], counts)
        objects = unique(x for s, _, o in final for x in (s, o))
        out.append({"image": key, "captions": g["captions"], "objects": objects, "triplets": as_dicts(final)})
    return out
