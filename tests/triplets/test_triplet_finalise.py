"""Fine-grained predicate selection, dedupe, per-image graphs, metrics on hand cases, the rule baseline."""

from __future__ import annotations

from collections import Counter

import pytest

from agentlab.triplets.baseline import rule_triplets
from agentlab.triplets.finalise import (
    finalise,
    fine_grained,
    image_graphs,
    predicate_counts,
)
from agentlab.triplets.metrics import predicate_distribution, triplet_prf


def test_fine_grained_keeps_the_globally_rarest_predicate():
    counts = Counter({"on": 10, "parked on": 2, "near": 5, "in": 2})
    ts = [("car", "on", "street"), ("car", "parked on", "street"), ("car", "near", "man"),
          ("cup", "in", "box"), ("cup", "on", "box")]
    assert fine_grained(ts, counts) == [("car", "parked on", "street"), ("car", "near", "man"), ("cup", "in", "box")]


def test_fine_grained_ties_keep_the_first_seen():
    assert fine_grained([("a", "on", "b"), ("a", "in", "b")], Counter({"on": 1, "in": 1})) == [("a", "on", "b")]


def test_finalise_dedupes_and_optionally_selects():
    ts = [("a", "on", "b"), ("a", "on", "b"), ("a", "in", "b")]
    assert finalise(ts) == [("a", "on", "b"), ("a", "in", "b")]
    assert finalise(ts, predicate_counts([ts, [("x", "on", "y")]])) == [("a", "in", "b")]


def test_image_graphs_union_captions():
    graphs = image_graphs(["img1", "img1", "img2"], ["r1", "r2", "r3"],
                          [[("man", "on", "horse")], [("man", "riding", "horse"), ("horse", "on", "beach")], []],
                          Counter({"on": 3, "riding": 1}))
    assert graphs[0] == {"image": "img1", "captions": ["r1", "r2"], "objects": ["man", "horse", "beach"],
                         "triplets": [{"subject": "man", "predicate": "riding", "object": "horse"},
                                      {"subject": "horse", "predicate": "on", "object": "beach"}]}
    assert graphs[1] == {"image": "img2", "captions": ["r3"], "objects": [], "triplets": []}


def test_prf_on_hand_cases():
    pred = [[("men", "riding", "horses"), ("man", "on", "beach")], [], [("cup", "on", "table")]]
    gold = [[("man", "ride", "horse")], [("dog", "on", "grass")], [("cup", "on", "table"), ("cup", "is", "white")]]
    m = triplet_prf(pred, gold)
    # lemmatised: men riding horses == man ride horse; 2 of 3 predictions right, 2 of 4 gold found
    assert m == {"precision": 0.6667, "recall": 0.5, "f1": 0.5714, "true_positives": 2, "predicted": 3, "gold": 4, "rows": 3}
    assert triplet_prf(pred, gold, lemmatise=False)["true_positives"] == 1
    assert triplet_prf([[]], [[]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "true_positives": 0,
                                       "predicted": 0, "gold": 0, "rows": 1}
    with pytest.raises(ValueError, match="2 predicted rows for 1 gold rows"):
        triplet_prf([[], []], [[]])


def test_predicate_distribution():
    d = predicate_distribution([[("a", "on", "b"), ("c", "on", "d")], [("a", "near", "b")]], ["on", "near", "in", "under"])
    assert d == {"triplets": 3, "predicates_used": 2, "counts": {"on": 2, "near": 1},
                 "vocabulary_size": 4, "vocabulary_covered": 2}


@pytest.mark.parametrize("caption,expected", [
    ("white stove in a kitchen", [("stove", "in", "kitchen"), ("stove", "is", "white")]),
    ("the man is wearing black glasses .", [("man", "wearing", "glasses"), ("glasses", "is", "black")]),
    ("a man riding a horse on the beach", [("man", "riding", "horse"), ("horse", "on", "beach")]),
    ("birds swimming in the water", [("birds", "swimming in", "water")]),
    ("", []),
])
def test_rule_baseline(caption, expected):
    assert rule_triplets(caption) == expected
