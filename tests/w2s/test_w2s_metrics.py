"""PGR and accuracy on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from agentlab.w2s.metrics import (
    accuracy,
    decision_accuracy,
    gap_note,
    pgr,
    render,
    table,
)


@pytest.mark.parametrize("acc, weak, ceiling, expected", [
    (0.80, 0.60, 0.90, 0.666667),   # (0.8 - 0.6) / (0.9 - 0.6) = 2/3
    (0.90, 0.60, 0.90, 1.0),        # the ceiling recovers the whole gap
    (0.60, 0.60, 0.90, 0.0),        # no better than the weak supervisor
    (0.50, 0.60, 0.90, -0.333333),  # worse than the supervisor: negative
    (0.95, 0.60, 0.90, 1.166667),   # beats the ceiling: above 1
    (0.70, 0.70, 0.70, None),       # no gap: null, not a division by zero
    (0.70, 0.75, 0.70, None),       # ceiling below weak: null
    (0.70, 0.70, 0.70 + 1e-12, None),  # a gap of ~0 is no gap
    (None, 0.60, 0.90, None),
    (0.80, None, 0.90, None),
])
def test_pgr(acc, weak, ceiling, expected):
    got = pgr(acc, weak, ceiling)
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-6))


def test_accuracy_and_decisions():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.2, 0.8]])
    assert accuracy(probs, [0, 1, 1, 1]) == 0.75
    assert accuracy(np.zeros((0, 2)), []) is None
    # an undecided row (None) counts as wrong
    assert decision_accuracy(["yes", None, "no", "no"], [0, 1, 1, 0], ["yes", "no"]) == 0.5


def test_table_is_exactly_accuracy_and_pgr_in_order():
    accs = {"ceiling": 0.9, "w2s_debate_ensemble": 0.8, "weak": 0.6, "weak_ensemble": 0.65}
    t = table(accs)
    assert list(t) == ["weak", "weak_ensemble", "w2s_debate_ensemble", "ceiling"]
    assert all(set(v) == {"accuracy", "pgr"} for v in t.values())
    assert t["weak"]["pgr"] == 0.0 and t["ceiling"]["pgr"] == 1.0
    assert t["weak_ensemble"]["pgr"] == pytest.approx(1 / 6, abs=1e-6)
    assert t["w2s_debate_ensemble"]["pgr"] == pytest.approx(2 / 3, abs=1e-6)


def test_gap_note_and_render():
    assert gap_note(0.6, 0.9) is None
    assert "does not beat the weak student (0.7000)" in gap_note(0.7, 0.7)
    t = table({"weak": 0.7, "ceiling": 0.7})
    info = {"sizes": {"half1": 5, "half2": 5, "test": 4}, "weak_base": "minilm", "strong_base": "smollm2", "ensemble": 4,
            "debate_samples": 1, "pgr_note": gap_note(0.7, 0.7)}
    text = "\n".join(render(t, info))
    assert "| weak | 0.7000 | n/a |" in text and "PGR is null" in text and "half 1 5" in text
