"""Rows -> training examples; the held-out split; the soft-label loss."""

from __future__ import annotations

import math

import pytest

from agentlab.config.sections import DistillConfig
from agentlab.distill.data import (
    build_examples,
    infer_classes,
    row_target,
    split_indices,
)
from agentlab.errors import TrainingError

CLASSES = ["pos", "neg"]


def _row(label, p=0.7, conf=None, **kw):
    probs = {"pos": p, "neg": 1 - p}
    return {"text": f"t{p}", "label": label, "label_probs": probs, "confidence": max(p, 1 - p) if conf is None else conf, **kw}


def test_soft_target_is_label_probs_hard_is_one_hot():
    r = _row("pos", 0.7)
    assert row_target(r, CLASSES, soft=True) == pytest.approx([0.7, 0.3])
    assert row_target(r, CLASSES, soft=False) == [1.0, 0.0]
    assert row_target(_row(None), CLASSES, soft=True) is None


def test_a_label_outside_the_classes_is_an_error():
    with pytest.raises(TrainingError, match="row label 'maybe' is not one of the classes"):
        row_target(_row("maybe"), CLASSES, soft=True)


def test_unlabeled_rows_are_skipped_and_counted_and_gold_is_never_read():
    rows = [_row("pos"), _row(None, gold="pos"), _row("neg", 0.2)]
    ex, counts = build_examples(rows, CLASSES, DistillConfig())
    assert counts == {"rows": 2, "skipped": 1, "filtered": 0}
    assert [e.label for e in ex] == [0, 1]


def test_min_confidence_and_confidence_weights():
    rows = [_row("pos", 0.9), _row("pos", 0.55), _row("neg", 0.3)]
    ex, counts = build_examples(rows, CLASSES, DistillConfig(min_confidence=0.6, weight_by_confidence=True))
    assert counts["filtered"] == 1
    assert [round(e.weight, 2) for e in ex] == [0.9, 0.7]


def test_class_weights_balance_the_classes():
    rows = [_row("pos", 1.0)] * 3 + [_row("neg", 0.0)]
    ex, _ = build_examples(rows, CLASSES, DistillConfig(class_weights=True, soft_labels=False))
    pos = sum(e.weight for e in ex if e.label == 0)
    neg = sum(e.weight for e in ex if e.label == 1)
    assert math.isclose(pos, neg)


def test_infer_classes_in_first_seen_order():
    assert infer_classes([_row("pos"), {"label": "other"}]) == ["pos", "neg", "other"]


def test_split_is_seeded_disjoint_and_sized():
    train, held = split_indices(20, 0.25, seed=3)
    assert len(held) == 5 and not set(train) & set(held) and sorted(train + held) == list(range(20))
    assert split_indices(20, 0.25, seed=3) == (train, held)
    assert split_indices(20, 0.25, seed=4) != (train, held)
    assert split_indices(3, 0.0, 0) == ([0, 1, 2], [])
    assert len(split_indices(2, 0.1, 0)[1]) == 1


def test_soft_cross_entropy():
    import torch

    from agentlab.distill.classifier import soft_cross_entropy

    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    hard = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ones = torch.ones(2)
    assert torch.isclose(soft_cross_entropy(logits, hard, ones), torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])))
    # the soft loss is smallest when the model's distribution equals the target
    target = torch.tensor([[0.8, 0.2]])
    best = torch.log(target)
    assert soft_cross_entropy(best, target, torch.ones(1)) < soft_cross_entropy(torch.tensor([[5.0, -5.0]]), target, torch.ones(1))
    assert soft_cross_entropy(logits, hard, torch.zeros(2)) == 0
