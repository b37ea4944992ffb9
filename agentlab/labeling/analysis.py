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

SUMMARY_CHUNK = 200_000  # rows per block in lf_summary


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
    est = None if est_accuracy is None else np.asarray(est_accuracy, dtype=float).ravel()
    if est is not None and est.shape != (m,):
        raise ValueError(f"est_accuracy must have one value per labeler ({m}); got {est.shape[0]}")
    g = None if gold is None else _check_gold(L, gold)
    n = L.shape[0]
    cov, ovl, cfl, n_gold, right = (np.zeros(m) for _ in range(5))
    polarity: list[set[int]] = [set() for _ in range(m)]
    for start in range(0, n, SUMMARY_CHUNK):  # row blocks: the temporaries are (block, m), not (n, m) int64
        B = L[start:start + SUMMARY_CHUNK]
        voted = B >= 0
        per_row = np.count_nonzero(voted, axis=1)
        counts = vote_counts(B, k)
        same = np.take_along_axis(counts, np.where(voted, B, 0).astype(np.intp), axis=1)
        cov += voted.sum(axis=0)
        ovl += (voted & (per_row[:, None] > 1)).sum(axis=0)
        cfl += (voted & (per_row[:, None] - same > 0)).sum(axis=0)
        for j in range(m):
            polarity[j].update(np.unique(B[voted[:, j], j]).tolist())
        if g is not None:
            gb = g[start:start + SUMMARY_CHUNK]
            usable = voted & (gb[:, None] >= 0)
            n_gold += usable.sum(axis=0)
            right += (usable & (B == gb[:, None])).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        emp = None if g is None else (np.where(n_gold > 0, right / np.maximum(n_gold, 1), np.nan), n_gold)
    rows = []
    for j, name in enumerate(names):
        classes = sorted(polarity[j])
        row = {
            "name": name,
            "polarity": [class_names[c] for c in classes] if class_names is not None else classes,
            "coverage": float(cov[j] / n),
            "overlap": float(ovl[j] / n),
            "conflict": float(cfl[j] / n),
            "est_accuracy": None if est is None else _num(est[j]),
        }
        if emp is not None:
            row["emp_accuracy"], row["n_gold_votes"] = _num(emp[0][j]), int(emp[1][j])
        rows.append(row)
    return rows


def _check_gold(L: np.ndarray, gold: Any) -> np.ndarray:
    """Gold as an (n,) int array (-1 = unknown), or a ValueError naming the problem."""
    g = np.asarray(gold)
    if g.shape != (L.shape[0],):
        raise ValueError(f"gold must have one entry per row ({L.shape[0]}); got shape {g.shape}")
    if g.size and g.dtype.kind not in "iu":
        raise ValueError(f"gold must hold integer classes (-1 = unknown); got dtype {g.dtype}")
    return g


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
