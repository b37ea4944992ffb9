"""Labeler (LF) analysis: coverage, overlap, conflict and accuracy per labeler (Snorkel's
definitions), plus a markdown table for the run report.

- coverage: fraction of rows where the labeler votes;
- overlap: fraction of rows where it votes and at least one other labeler votes too;
- conflict: fraction of rows where it votes and another labeler votes a *different* class;
- est_accuracy: the label model's estimate (no gold needed);
- emp_accuracy / n_gold_votes: accuracy of its votes on rows with a gold label (gold -1 = unknown).

Values that cannot be computed are ``None`` (so the rows serialise to JSON as-is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from agentlab.labeling.matrix import check_cardinality, check_matrix, vote_counts


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def lf_summary(L: Any, k: int, names: Sequence[str] | None = None, gold: Any = None,
               est_accuracy: Any = None, class_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One dict per labeler: name, polarity, coverage, overlap, conflict, est_accuracy and,
    when `gold` is given, emp_accuracy and n_gold_votes.

    Args:
        L: label matrix (n, m), -1 = abstain.
        k: number of classes.
        names: labeler names (default ``lf_0``, ``lf_1``, ...).
        gold: optional (n,) int array of gold classes, -1 where unknown.
        est_accuracy: optional (m,) accuracies estimated by a label model (NaN = unknown).
        class_names: optional names used for the polarity (default: class indices).
    """
    k = check_cardinality(k)
    L = check_matrix(L, k)
    m = L.shape[1]
    names = list(names) if names is not None else [f"lf_{j}" for j in range(m)]
    if len(names) != m:
        raise ValueError(f"got {len(names)} labeler names for {m} labelers")
    voted = L >= 0
    per_row = np.count_nonzero(voted, axis=1)
    counts = vote_counts(L, k)
    same = np.take_along_axis(counts, np.where(voted, L, 0).astype(np.int64), axis=1)
    overlap = (voted & (per_row[:, None] > 1)).mean(axis=0)
    conflict = (voted & (per_row[:, None] - same > 0)).mean(axis=0)
    est = None if est_accuracy is None else np.asarray(est_accuracy, dtype=float).ravel()
    if est is not None and est.shape != (m,):
        raise ValueError(f"est_accuracy must have one value per labeler ({m}); got {est.shape[0]}")
    emp = _gold_stats(L, gold) if gold is not None else None
    rows = []
    for j, name in enumerate(names):
        classes = np.unique(L[voted[:, j], j]).tolist()
        row = {
            "name": name,
            "polarity": [class_names[c] for c in classes] if class_names is not None else classes,
            "coverage": float(voted[:, j].mean()),
            "overlap": float(overlap[j]),
            "conflict": float(conflict[j]),
            "est_accuracy": None if est is None else _num(est[j]),
        }
        if emp is not None:
            row["emp_accuracy"], row["n_gold_votes"] = _num(emp[0][j]), int(emp[1][j])
        rows.append(row)
    return rows


def _gold_stats(L: np.ndarray, gold: Any) -> tuple[np.ndarray, np.ndarray]:
    """Empirical accuracy and number of gold-labelled votes per labeler."""
    g = np.asarray(gold)
    if g.shape != (L.shape[0],):
        raise ValueError(f"gold must have one entry per row ({L.shape[0]}); got shape {g.shape}")
    if g.size and g.dtype.kind not in "iu":
        raise ValueError(f"gold must hold integer classes (-1 = unknown); got dtype {g.dtype}")
    usable = (L >= 0) & (g[:, None] >= 0)
    n_gold = usable.sum(axis=0)
    right = (usable & (L == g[:, None])).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n_gold > 0, right / np.maximum(n_gold, 1), np.nan)
    return acc, n_gold


def matrix_stats(L: Any, k: int) -> dict[str, float]:
    """Whole-matrix figures: rows, labelers, coverage (rows with >= 1 vote), mean votes per
    row, overlap and conflict (rows with >= 2 votes / with disagreeing votes)."""
    k = check_cardinality(k)
    L = check_matrix(L, k)
    per_row = np.count_nonzero(L >= 0, axis=1)
    counts = vote_counts(L, k)
    return {
        "rows": int(L.shape[0]),
        "labelers": int(L.shape[1]),
        "coverage": float((per_row > 0).mean()),
        "votes_per_row": float(per_row.mean()),
        "overlap": float((per_row > 1).mean()),
        "conflict": float((np.count_nonzero(counts, axis=1) > 1).mean()),
    }


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.3f}"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v).replace("|", "\\|")


def summary_table_md(rows: Sequence[dict[str, Any]]) -> str:
    """Render `lf_summary` rows (or any list of flat dicts) as a markdown table."""
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
