"""Metrics on hand-computed cases; plots are written as PNG."""

from __future__ import annotations

import numpy as np
import pytest

from agentlab.eval.metrics import (
    classification_metrics,
    cohen_kappa,
    expected_calibration_error,
    prf1,
    risk_coverage,
)


def test_classification_metrics_by_hand():
    y = np.array([0, 1, 1, 0, -1])  # the last row has no gold and is left out
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])
    m = classification_metrics(y, probs, abstained=[False, False, False, True, False])
    assert m["n"] == 4 and m["n_covered"] == 3
    assert m["coverage"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["accuracy_all"] == pytest.approx(0.5)
    assert m["macro_f1_all"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert m["ece"] == pytest.approx((0.1 + 0.4 + 0.8) / 3)


def test_non_finite_rows_count_as_abstained():
    m = classification_metrics([0, 1], [[1.0, 0.0], [np.nan, np.nan]])
    assert m["coverage"] == 0.5 and m["accuracy"] == 1.0 and m["accuracy_all"] == 0.5


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="probs must have shape"):
        classification_metrics([0, 1], [[1.0, 0.0]])
    with pytest.raises(ValueError, match="integer classes"):
        classification_metrics([0.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])


def test_ece_perfect_and_overconfident():
    y = np.array([0, 1, 0, 1])
    assert expected_calibration_error(y, np.eye(2)[y]) == 0.0
    assert expected_calibration_error(1 - y, np.eye(2)[y]) == pytest.approx(1.0)


def test_risk_coverage_by_hand():
    rc = risk_coverage([0, 1, 1], [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    np.testing.assert_allclose(rc["coverage"], [1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(rc["risk"], [0, 0, 1 / 3])
    np.testing.assert_allclose(rc["threshold"], [0.9, 0.7, 0.6])
    assert rc["aurc"] == pytest.approx(1 / 9)


def test_cohen_kappa_by_hand():
    assert cohen_kappa([0, 0, 1, 1, -1], [0, 1, 1, 1, 0]) == pytest.approx(0.5)
    assert cohen_kappa([2, 2], [2, 2]) == 1.0
    assert np.isnan(cohen_kappa([-1], [0]))


def test_prf1_by_hand():
    out = prf1([1, 0, 1, 1, 0], [1, 1, 0, 1, -1], positive=1)
    assert out == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert prf1([0, 0], [0, 0], positive=1) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_agrees_with_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    probs = np.eye(4)[pred] * 0.5 + 0.125
    m = classification_metrics(y, probs)
    assert m["macro_f1"] == pytest.approx(sk.f1_score(y, pred, average="macro"))
    assert cohen_kappa(y, pred) == pytest.approx(sk.cohen_kappa_score(y, pred))
    assert prf1(y, pred, 2)["f1"] == pytest.approx(sk.f1_score(y == 2, pred == 2))


def test_plots_are_written(tmp_path):
    from agentlab.eval.plots import reliability_diagram, risk_coverage_curve

    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1, 1, 1], 200)
    y = rng.integers(0, 3, 200)
    for fn, name in [(reliability_diagram, "sub/rel.png"), (risk_coverage_curve, "rc.png")]:
        out = fn(y, probs, tmp_path / name)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
