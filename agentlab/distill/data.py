"""Labeled rows -> training examples (text, target distribution, weight), and the held-out split.

Only `label`, `label_probs` and `confidence` are read: gold is never a training target here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentlab.errors import TrainingError

if TYPE_CHECKING:
    from agentlab.config.sections import DistillConfig


@dataclass
class Example:
    """One training example: the text, a distribution over the classes, and a loss weight."""

    text: str
    target: list[float]
    weight: float = 1.0

    @property
    def label(self) -> int:
        """Index of the most likely class."""
        return max(range(len(self.target)), key=self.target.__getitem__)


def infer_classes(rows: list[dict[str, Any]]) -> list[str]:
    """Class names from the rows' `label_probs` keys and labels (in first-seen order)."""
    seen: dict[str, None] = {}
    for r in rows:
        for c in (r.get("label_probs") or {}):
            seen.setdefault(str(c), None)
        if r.get("label") is not None:
            seen.setdefault(str(r["label"]), None)
    return list(seen)


def row_target(row: dict[str, Any], classes: list[str], soft: bool) -> list[float] | None:
    """The row's target distribution over `classes`: `label_probs` when soft, else one-hot; None when unlabeled."""
    label = row.get("label")
    if label is None:
        return None
    if str(label) not in classes:
        raise TrainingError(f"row label {label!r} is not one of the classes {classes}; check task.classes")
    probs = row.get("label_probs") or {}
    if soft and probs:
        vec = [max(0.0, float(probs.get(c, 0.0))) for c in classes]
        total = sum(vec)
        if total > 0:
            return [v / total for v in vec]
    return [1.0 if c == str(label) else 0.0 for c in classes]


def build_examples(rows: list[dict[str, Any]], classes: list[str], config: DistillConfig,
                   text_field: str = "text") -> tuple[list[Example], dict[str, int]]:
    """Training examples from labeled rows, and counts: rows, skipped (no label), filtered (low confidence)."""
    out: list[Example] = []
    skipped = filtered = 0
    for r in rows:
        target = row_target(r, classes, config.soft_labels)
        if target is None:
            skipped += 1
            continue
        conf = float(r.get("confidence") if r.get("confidence") is not None else max(target))
        if config.min_confidence is not None and conf < config.min_confidence:
            filtered += 1
            continue
        weight = conf if config.weight_by_confidence else 1.0
        out.append(Example(str(r.get(text_field) or ""), target, weight))
    if config.class_weights and out:
        _apply_class_weights(out, len(classes))
    return out, {"rows": len(out), "skipped": skipped, "filtered": filtered}


def _apply_class_weights(examples: list[Example], k: int) -> None:
    """Multiply each weight by the inverse frequency of its (soft) class: n / (k * count)."""
    mass = [sum(e.target[c] for e in examples) for c in range(k)]
    n = len(examples)
    inv = [n / (k * m) if m > 0 else 0.0 for m in mass]
    for e in examples:
        e.weight *= sum(t * w for t, w in zip(e.target, inv))


def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held_out) row indices: a seeded shuffle; the held-out part has round(n * fraction) rows."""
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    k = round(n * fraction)
    if fraction > 0 and n >= 2:
        k = min(max(k, 1), n - 1)
    return sorted(idx[k:]), sorted(idx[:k])
