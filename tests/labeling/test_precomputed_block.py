"""Precomputed votes: the int-block fast path gives the same matrix as the row-by-row path."""

import numpy as np

from agentlab.labeling.base import LabelSpace
from agentlab.labeling.labelers import PrecomputedLabeler, PrecomputedLabelerConfig


def _votes(rows, **cfg):
    lab = PrecomputedLabeler(PrecomputedLabelerConfig(field="weak", **cfg), LabelSpace(["ham", "spam"], {}), 0)
    return lab.label(None, rows).votes


def test_int_block_matches_row_by_row():
    rng = np.random.default_rng(0)
    block = rng.integers(-1, 4, size=(300, 8)).tolist()  # 2 and 3 are out of range: abstain
    fast = _votes([{"weak": v} for v in block])
    slow = _votes([{"weak": v} for v in block] + [{"weak": ["ham"]}])[:-1]  # a string vote: the row-by-row path
    assert fast.shape == (300, 8) and (fast == slow).all()
    assert ((fast == -1) == (np.array(block) < 0) | (np.array(block) > 1)).all()


def test_int_block_reads_class_order_and_leaves_bools_to_the_slow_path():
    got = _votes([{"weak": [0, 1]}, {"weak": [1, -1]}], classes=["spam", "ham"])
    assert got.tolist() == [[1, 0], [0, -1]]
    mixed = _votes([{"weak": [1, True]}, {"weak": [0, 1]}])  # True is not the index 1
    assert mixed[1].tolist() == [0, 1] and mixed[0, 0] == 1
