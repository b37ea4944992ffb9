"""Novelty, difficulty and the objective on hand-made accuracy tables; the reference-accuracy CSV."""

from __future__ import annotations

import pytest

from agentlab.autobench import scoring
from agentlab.errors import ConfigError


@pytest.mark.parametrize("values, ranks", [
    ([0.1, 0.5, 0.3], [1, 3, 2]),
    ([0.2, 0.2, 0.9], [1.5, 1.5, 3]),
    ([1, 1, 1], [2, 2, 2]),
])
def test_rankdata_averages_ties(values, ranks):
    assert scoring.rankdata(values) == ranks


@pytest.mark.parametrize("a, b, rho", [
    ([0.1, 0.2, 0.3], [0.5, 0.6, 0.9], 1.0),
    ([0.1, 0.2, 0.3], [0.9, 0.6, 0.5], -1.0),
    ([0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.4, 0.3], 0.6),   # 1 - 6·4 / (4·15)
    ([0.0, 0.0, 0.5], [0.1, 0.2, 0.3], 0.8660254),      # ties: Pearson on averaged ranks
    ([0.3, 0.3, 0.3], [0.1, 0.2, 0.3], None),           # no ranking on one side
    ([0.3], [0.1], None),
])
def test_spearman(a, b, rho):
    got = scoring.spearman(a, b)
    assert got == (None if rho is None else pytest.approx(rho))


def test_difficulty_is_one_minus_best():
    assert scoring.difficulty({"a": 0.2, "b": 0.7, "c": 0.5}) == pytest.approx(0.3)
    assert scoring.difficulty({}) is None


def test_novelty_against_reference():
    ref = {"big": 0.8, "mid": 0.6, "small": 0.3}
    assert scoring.novelty({"big": 0.5, "mid": 0.3, "small": 0.1}, ref) == pytest.approx(0.0)   # same order: not novel
    assert scoring.novelty({"big": 0.1, "mid": 0.3, "small": 0.5}, ref) == pytest.approx(2.0)   # reversed: most novel
    assert scoring.novelty({"big": 0.3, "mid": 0.5, "small": 0.1}, ref) == pytest.approx(1.0 - 0.5)
    assert scoring.novelty({"big": 0.0, "mid": 0.0, "small": 0.0}, ref) is None                 # orders nothing


def test_score_table_leave_one_out():
    # the ranking the run predicts for a category = mean accuracy on the other categories
    table = {"c1": {"a": 0.9, "b": 0.5, "c": 0.1}, "c2": {"a": 0.8, "b": 0.4, "c": 0.2}, "c3": {"a": 0.1, "b": 0.4, "c": 0.6}}
    assert scoring.leave_one_out(table, "c3") == pytest.approx({"a": 0.85, "b": 0.45, "c": 0.15})
    s = scoring.score_table(table, None)
    assert s["c3"]["novelty"] == pytest.approx(2.0)          # c3 reverses what c1 and c2 predict
    assert s["c3"]["difficulty"] == pytest.approx(0.4)
    # c1 against mean(c2, c3) = a .45, b .4, c .4: ranks a > b = c vs a > b > c
    assert s["c1"]["novelty"] == pytest.approx(1 - 0.8660254)
    s = scoring.score_table(table, {"a": 0.1, "b": 0.2, "c": 0.3})
    assert s["c1"]["novelty"] == pytest.approx(2.0) and s["c3"]["novelty"] == pytest.approx(0.0)


def test_objective_and_salience_constraint():
    assert scoring.objective(0.5, 0.8, 0.4, beta=0.5) == pytest.approx(0.9)
    assert scoring.objective(None, 0.8, None, beta=1.0) == pytest.approx(0.8)   # undefined novelty counts 0
    assert scoring.objective(0.5, 0.8, 0.1, beta=1.0, min_salience=0.2) is None
    assert scoring.objective(0.5, None, 0.9, beta=1.0) is None
    assert scoring.mean([None, 0.2, 0.4]) == pytest.approx(0.3) and scoring.mean([None]) is None


def test_read_reference_long_and_wide(tmp_path):
    long = tmp_path / "long.csv"
    long.write_text("model,benchmark,accuracy\nbig,mmlu,0.8\nbig,arc,0.6\nsmall,mmlu,0.3\nsmall,arc,0.1\nother,mmlu,0.5\n")
    assert scoring.read_reference(long, ["big", "small"]) == pytest.approx({"big": 0.7, "small": 0.2})
    wide = tmp_path / "wide.csv"
    wide.write_text("candidate,mmlu,arc\nbig,0.8,0.6\nsmall,0.3,\n")
    assert scoring.read_reference(wide, ["big", "small"]) == pytest.approx({"big": 0.7, "small": 0.3})
    with pytest.raises(ConfigError, match="no accuracy for candidate.*mid"):
        scoring.read_reference(wide, ["big", "mid"])
