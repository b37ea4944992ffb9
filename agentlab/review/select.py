"""Which rows of a label run are most worth a person's time, and why.

A row ranks higher the more of these hold: the label model disagrees with the labelers' majority, the
labelers disagree with each other, no labeler voted at all; ties go to the lower confidence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# columns the label task and the runner add to a source row; everything else is the row as it was read
TASK_COLUMNS = {"label", "label_probs", "confidence", "votes", "vote_confidence", "labeler_raw", "gold", "_raw", "_error"}


@dataclass
class Candidate:
    """A row picked for review: its index in data.jsonl, its key, and the reasons."""

    index: int
    key: str
    confidence: float
    majority: str | None
    reasons: list[str] = field(default_factory=list)


def row_key(row: dict[str, Any], index: int) -> str:
    """The stable key of a row: its `id` (every loaded row has one), else its position."""
    return str(row["id"]) if row.get("id") is not None else str(index)


def majority_vote(votes: dict[str, Any] | None) -> str | None:
    """The labelers' most common vote, or None when nobody voted or the top votes tie."""
    counts = Counter(v for v in (votes or {}).values() if v is not None).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def reasons(row: dict[str, Any]) -> tuple[list[str], str | None]:
    """Why a person should look at this row (possibly nothing), and the labelers' majority."""
    voted = [v for v in (row.get("votes") or {}).values() if v is not None]
    maj = majority_vote(row.get("votes"))
    out = []
    if row.get("label") is not None and maj is not None and row["label"] != maj:
        out.append("label model differs from the labelers' majority")
    if len(set(voted)) > 1:
        out.append("labelers disagree")
    if not voted:
        out.append("no labeler voted")
    return out, maj


def pick_rows(rows: list[dict[str, Any]], n: int, skip: set[str] | frozenset[str] = frozenset()) -> list[Candidate]:
    """The `n` rows most worth reviewing, leaving out the keys in `skip` (already pushed or reviewed)."""
    cands = []
    for i, row in enumerate(rows):
        key = row_key(row, i)
        if key in skip:
            continue
        why, maj = reasons(row)
        conf = float(row.get("confidence") or 0.0)
        cands.append(Candidate(i, key, conf, maj, why))
    cands.sort(key=lambda c: (-len(c.reasons), c.confidence, c.index))
    return cands[:n]


def source_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The row as the source had it (the task's and runner's columns removed)."""
    return {k: v for k, v in row.items() if k not in TASK_COLUMNS}
