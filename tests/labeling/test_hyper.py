"""`hyper`: the real HyperLM package (optional extra `bench`); skipped when it is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from agentlab.labeling.aggregators import make_aggregator
from tests.labeling.test_aggregators import synth

pytest.importorskip("hyperlm")


def test_hyperlm_labels_a_binary_matrix():
    L, y = synth(600, [0.6, 0.7, 0.8, 0.85, 0.9], 2, 0.7, seed=1)
    model = make_aggregator("hyper", 2).fit(L)
    P = model.predict_proba(L)
    assert P.shape == (600, 2) and np.allclose(P.sum(axis=1), 1.0)
    covered = (L >= 0).any(axis=1)
    assert (P.argmax(1)[covered] == y[covered]).mean() > 0.85
    assert model.labeler_accuracy().shape == (5,)


def test_hyperlm_takes_k_from_the_task_not_the_largest_vote():
    # class 2 gets no vote at all: the package alone would think there are 2 classes
    L, _ = synth(300, [0.8] * 4, 2, 0.8, seed=2)
    P = make_aggregator("hyper", 3).fit(L).predict_proba(L)
    assert P.shape == (300, 3)
    assert (P.argmax(1) == 2).sum() == 0
    all_abstain = np.concatenate([L, -np.ones((2, 4), dtype=L.dtype)])
    P = make_aggregator("hyper", 3).fit(all_abstain).predict_proba(all_abstain)
    np.testing.assert_allclose(P[-2:].sum(axis=1), 1.0)
