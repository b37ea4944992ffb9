"""Ensemble averaging, soft/hard targets, the auxiliary confidence loss, one tiny student trained with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agentlab.distill.classifier import soft_cross_entropy
from agentlab.errors import TrainingError
from agentlab.w2s.train import (
    AuxConfidenceLoss,
    average_probs,
    from_answer_space,
    harden,
    merge_duplicates,
    one_hot,
    soft_targets,
    to_answer_space,
    train_and_predict,
)


def test_average_probs_and_targets():
    a = np.array([[0.9, 0.1], [0.2, 0.8]])
    b = np.array([[0.5, 0.5], [0.6, 0.4]])
    np.testing.assert_allclose(average_probs([a, b]), [[0.7, 0.3], [0.4, 0.6]])
    np.testing.assert_allclose(average_probs([a]), a)
    with pytest.raises(TrainingError, match="disagree on shape"):
        average_probs([a, np.zeros((3, 2))])
    with pytest.raises(TrainingError):
        average_probs([])
    np.testing.assert_allclose(soft_targets(np.array([[0.7, 0.3], [0.4, 0.6]]), soft=True), [[0.7, 0.3], [0.4, 0.6]])
    assert soft_targets(np.array([[0.7, 0.3], [0.4, 0.6]]), soft=False) == [[1.0, 0.0], [0.0, 1.0]]
    assert one_hot([1, 0, 2], 3) == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]


def test_answer_space_maps_correctness_to_answers_and_back():
    classes = ["yes", "no"]
    # "yes" proposed and 0.8 correct -> yes 0.8; "no" proposed and 0.8 correct -> no 0.8 (so yes 0.2)
    assert to_answer_space([[0.8, 0.2], [0.8, 0.2], [0.0, 1.0]], ["yes", "no", "no"], classes) == [
        [0.8, 0.2], [0.2, 0.8], [1.0, 0.0]]
    # a student's p(yes) = 0.7: "yes" proposed is 0.7 correct, "no" proposed 0.3 correct
    np.testing.assert_allclose(from_answer_space(np.array([[0.7, 0.3], [0.7, 0.3]]), ["yes", "no"], classes),
                               [[0.7, 0.3], [0.3, 0.7]])
    targets = [[0.9, 0.1], [0.1, 0.9], [0.2, 0.8]]
    back = from_answer_space(np.array(to_answer_space(targets, ["yes", "no", "yes"], classes)), ["yes", "no", "yes"], classes)
    np.testing.assert_allclose(back, targets)
    # the two examples of a paired review read one text: merged into one example with the mean target
    texts, merged = merge_duplicates(["a", "b", "a"], [[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]])
    assert texts == ["a", "b"]
    np.testing.assert_allclose(merged, [[0.8, 0.2], [0.0, 1.0]])


def test_harden_adaptive_matches_the_weak_class_balance():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])   # argmax says class 0 everywhere
    weak = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])     # weak labels: half class 1
    hard = harden(probs, weak, "adaptive")
    # the two rows least sure of class 0 become class 1, as many as the weak labels carry
    assert hard.tolist() == [[1, 0], [1, 0], [0, 1], [0, 1]]
    assert harden(probs, weak, "argmax").tolist() == [[1, 0]] * 4
    three = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    assert harden(three, torch.zeros(2, 3), "adaptive").tolist() == [[0, 1, 0], [1, 0, 0]]


def test_aux_loss_mixes_weak_labels_with_hardened_predictions_after_warmup():
    logits = torch.log(torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]]))
    weak = torch.tensor([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]])  # mean class-1 mass 0.5
    loss = AuxConfidenceLoss(weight=0.5, warmup=0.2, threshold="adaptive")
    loss.progress = 0.0
    assert loss.coefficient() == 0.0
    torch.testing.assert_close(loss.mixed_targets(logits, weak), weak)   # warm-up start: the weak labels alone
    loss.progress = 0.1
    assert loss.coefficient() == pytest.approx(0.25)
    loss.progress = 0.5
    assert loss.coefficient() == 0.5
    hard = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    expected = 0.5 * weak + 0.5 * hard
    torch.testing.assert_close(loss.mixed_targets(logits, weak), expected)
    w = torch.ones(4)
    torch.testing.assert_close(loss(logits, weak, w), soft_cross_entropy(logits, expected, w))
    assert AuxConfidenceLoss(0.5, warmup=0).coefficient() == 0.5


def test_a_tiny_student_trains_with_the_aux_loss_and_predicts(tiny_bert, tmp_path):
    from agentlab.config.sections import DistillConfig

    cfg = DistillConfig.model_validate({"student": {"base": str(tiny_bert)}, "max_steps": 3, "batch_size": 4, "max_length": 32})
    texts = ["great fun", "dull mess", "wonderful", "boring"] * 2
    loss = AuxConfidenceLoss(0.5, warmup=0.5)
    probs, metrics = train_and_predict(cfg, ["yes", "no"], texts, one_hot([0, 1, 0, 1] * 2, 2),
                                       {"a": texts[:3], "b": texts}, tmp_path / "s", seed=3, loss=loss)
    assert probs["a"].shape == (3, 2) and probs["b"].shape == (8, 2)
    np.testing.assert_allclose(probs["b"].sum(1), 1.0, rtol=1e-5)
    assert metrics["steps"] == 3 and loss.progress == pytest.approx(2 / 3)  # set before each of the 3 steps
    assert not (tmp_path / "s").exists()   # not kept
