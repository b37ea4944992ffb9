"""Dawid–Skene's priors: the accuracy prior spread by class balance and the shrunk balance (labeling/dawid_skene.py)."""

import numpy as np
import pytest

from agentlab.labeling.dawid_skene import DawidSkene


def test_a_rare_class_beside_a_catch_all_rule_is_not_starved():
    """trec's failure, synthetic: a catch-all rule votes the big class on 70% of all rows, the rare class (3%)
    has one precise rule. With the accuracy prior spread evenly and the ML balance, EM drove the rare class's
    balance to 0 (every row it could claim also has the catch-all's vote); spreading the prior by balance or
    shrinking the balance each keep it."""
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.choice(3, n, p=[0.55, 0.42, 0.03])
    cols = [np.where(rng.random(n) < 0.7, 0, -1), np.where((y == 0) & (rng.random(n) < 0.3), 0, -1)]
    cols += [np.where((y == 1) & (rng.random(n) < 0.4), 1, np.where(rng.random(n) < 0.02, 1, -1)) for _ in range(3)]
    cols.append(np.where((y == 2) & (rng.random(n) < 0.6), 2, -1))
    L = np.stack(cols, 1)

    def rare_recall(**kw) -> float:
        p = DawidSkene(3, **kw).fit(L).predict(L)
        return float(((p == 2) & (y == 2)).sum() / (y == 2).sum())

    assert rare_recall(prior_spread="even", balance_shrink=0.0) == 0.0  # the old prior: starved
    assert rare_recall(prior_spread="balance", balance_shrink=0.0) > 0.5
    assert rare_recall(prior_spread="even", balance_shrink=0.5) > 0.5
    assert rare_recall() > 0.5  # the defaults
    with pytest.raises(ValueError, match="prior_spread"):
        DawidSkene(3, prior_spread="uniform")
    with pytest.raises(ValueError, match="balance_shrink"):
        DawidSkene(3, balance_shrink=2)
