"""Scoring categories: accuracy per candidate, difficulty, novelty (rank correlation), the objective.

difficulty = 1 − the best candidate's accuracy. novelty = 1 − Spearman ρ between the candidates'
accuracies on the category and the accuracies predicted for them (from existing benchmarks, or from
the run's other categories); it lies in [0, 2] and is undefined (None) when either side has no
ranking (all tied), since a category that does not order the candidates cannot reorder them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from agentlab.errors import ConfigError


def rankdata(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties getting the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's ρ (Pearson correlation of the tie-averaged ranks); None when either side is constant or n < 2."""
    if len(a) != len(b):
        raise ValueError(f"spearman needs equal lengths, got {len(a)} and {len(b)}")
    if len(a) < 2:
        return None
    ra, rb = rankdata(a), rankdata(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return max(-1.0, min(1.0, cov / math.sqrt(va * vb)))


def difficulty(accuracy: Mapping[str, float]) -> float | None:
    """1 − the best candidate's accuracy (None without accuracies)."""
    return None if not accuracy else 1.0 - max(accuracy.values())


def novelty(accuracy: Mapping[str, float], predicted: Mapping[str, float]) -> float | None:
    """1 − Spearman ρ between the category's accuracies and the predicted ones, over candidates in both."""
    names = [n for n in accuracy if n in predicted]
    rho = spearman([accuracy[n] for n in names], [predicted[n] for n in names])
    return None if rho is None else 1.0 - rho


def leave_one_out(table: Mapping[str, Mapping[str, float]], category: str) -> dict[str, float]:
    """Each candidate's mean accuracy over the other categories: the ranking the run itself predicts."""
    others = [acc for name, acc in table.items() if name != category and acc]
    names = {n for acc in others for n in acc}
    return {n: sum(acc[n] for acc in others if n in acc) / sum(n in acc for acc in others) for n in names}


def objective(nov: float | None, diff: float | None, salience: float | None, beta: float,
              min_salience: float = 0.0) -> float | None:
    """novelty + β·difficulty (an undefined novelty counts 0); None when salience breaks the constraint or nothing was measured."""
    if diff is None or (salience is not None and salience < min_salience):
        return None
    return (nov or 0.0) + beta * diff


def score_table(table: Mapping[str, Mapping[str, float]], reference: Mapping[str, float] | None) -> dict[str, dict]:
    """{category: {difficulty, novelty, rho_reference}} for a category × candidate accuracy table."""
    out = {}
    for cat, acc in table.items():
        predicted = reference if reference is not None else leave_one_out(table, cat)
        out[cat] = {"difficulty": difficulty(acc), "novelty": novelty(acc, predicted) if acc else None}
    return out


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the defined values (None when there are none)."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def read_reference(path: Path, candidates: Sequence[str]) -> dict[str, float]:
    """Each candidate's mean accuracy on existing benchmarks from a CSV (long or wide layout).

    Long: columns `candidate` (or `model`), `benchmark`, `accuracy`. Wide: `candidate` plus one column per benchmark.
    """
    if not path.is_file():
        raise ConfigError(f"reference_accuracies file {str(path)!r} not found")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ConfigError(f"reference_accuracies {str(path)!r} has no rows")
    key = "candidate" if "candidate" in rows[0] else "model" if "model" in rows[0] else None
    if key is None:
        raise ConfigError(f"reference_accuracies needs a `candidate` (or `model`) column; columns: {', '.join(rows[0])}")
    values: dict[str, list[float]] = {}
    for row in rows:
        cells = [row["accuracy"]] if "accuracy" in row else [v for k, v in row.items() if k not in (key, "benchmark")]
        for cell in cells:
            if cell not in (None, ""):
                values.setdefault(row[key], []).append(float(cell))
    missing = [c for c in candidates if c not in values]
    if missing:
        raise ConfigError(f"reference_accuracies has no accuracy for candidate(s) {', '.join(missing)}; "
                          f"it names: {', '.join(values)}")
    return {c: sum(v) / len(v) for c, v in values.items() if c in candidates}
