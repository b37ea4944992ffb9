"""LF analysis on a hand-checked label matrix."""

from __future__ import annotations

import numpy as np
import pytest

from agentlab.labeling.aggregators import make_aggregator
from agentlab.labeling.analysis import lf_summary, matrix_stats, summary_table_md

L = np.array([
    [0, 0, -1],
    [0, 1, -1],
    [-1, 1, 1],
    [-1, -1, -1],
])
GOLD = np.array([0, 1, 1, -1])


def test_snorkel_definitions_by_hand():
    rows = lf_summary(L, 2, names=["a", "b", "c"])
    assert [r["name"] for r in rows] == ["a", "b", "c"]
    assert [r["polarity"] for r in rows] == [[0], [0, 1], [1]]
    assert [r["coverage"] for r in rows] == [0.5, 0.75, 0.25]
    assert [r["overlap"] for r in rows] == [0.5, 0.75, 0.25]
    assert [r["conflict"] for r in rows] == [0.25, 0.25, 0.0]
    assert all(r["est_accuracy"] is None and "emp_accuracy" not in r for r in rows)


def test_gold_and_estimated_accuracy():
    rows = lf_summary(L, 2, gold=GOLD, est_accuracy=[0.9, np.nan, 0.7], class_names=["ham", "spam"])
    assert [r["emp_accuracy"] for r in rows] == [0.5, 1.0, 1.0]
    assert [r["n_gold_votes"] for r in rows] == [2, 3, 1]
    assert [r["est_accuracy"] for r in rows] == [0.9, None, 0.7]
    assert rows[1]["polarity"] == ["ham", "spam"] and rows[0]["name"] == "lf_0"


def test_labeler_without_gold_votes_has_no_accuracy():
    rows = lf_summary(L, 2, gold=np.array([-1, -1, 1, 0]))
    assert rows[0]["emp_accuracy"] is None and rows[0]["n_gold_votes"] == 0


def test_with_a_label_model_estimate():
    model = make_aggregator("dawid_skene", 2).fit(L)
    rows = lf_summary(L, 2, est_accuracy=model.labeler_accuracy())
    assert all(r["est_accuracy"] is None or 0 <= r["est_accuracy"] <= 1 for r in rows)


def test_matrix_stats():
    assert matrix_stats(L, 2) == {"rows": 4, "labelers": 3, "coverage": 0.75, "votes_per_row": 1.5,
                                  "overlap": 0.75, "conflict": 0.25}


def test_bad_arguments():
    with pytest.raises(ValueError, match="2 labeler names for 3"):
        lf_summary(L, 2, names=["a", "b"])
    with pytest.raises(ValueError, match="one entry per row"):
        lf_summary(L, 2, gold=[0, 1])
    with pytest.raises(ValueError, match="one value per labeler"):
        lf_summary(L, 2, est_accuracy=[0.5])


def test_markdown_table():
    md = summary_table_md(lf_summary(L, 2, names=["a|b", "b", "c"], est_accuracy=[0.91234, np.nan, 0.5]))
    lines = md.splitlines()
    assert lines[0] == "| name | polarity | coverage | overlap | conflict | est_accuracy |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert lines[2] == "| a\\|b | 0 | 0.500 | 0.500 | 0.250 | 0.912 |"
    assert lines[3] == "| b | 0, 1 | 0.750 | 0.750 | 0.250 | – |"
    assert summary_table_md([]) == ""


def test_summary_in_row_blocks_equals_one_block(monkeypatch):
    from agentlab.labeling import analysis

    rng = np.random.default_rng(3)
    L = np.where(rng.random((1000, 6)) < 0.4, rng.integers(0, 3, (1000, 6)), -1)
    gold = rng.integers(-1, 3, 1000)
    whole = analysis.lf_summary(L, 3, gold=gold, est_accuracy=np.full(6, 0.7))
    monkeypatch.setattr(analysis, "SUMMARY_CHUNK", 77)  # blocks that do not divide the rows
    assert analysis.lf_summary(L, 3, gold=gold, est_accuracy=np.full(6, 0.7)) == whole
