"""Which rows go to a person first."""

from __future__ import annotations

from agentlab.review.select import majority_vote, pick_rows, reasons, source_columns


def _row(i, label, conf, votes):
    return {"id": f"r{i}", "text": f"t{i}", "label": label, "confidence": conf, "votes": votes, "gold": "a",
            "label_probs": {}}


ROWS = [
    _row(0, "a", 0.99, {"x": "a", "y": "a"}),          # sure, unanimous
    _row(1, "a", 0.60, {"x": "a", "y": "a"}),          # unanimous but unsure
    _row(2, "a", 0.70, {"x": "a", "y": "b", "z": "b"}),  # label model != majority, labelers disagree
    _row(3, "b", 0.55, {"x": "a", "y": "b"}),          # labelers disagree (tie: no majority)
    _row(4, None, 0.0, {"x": None, "y": None}),        # nobody voted
    _row(5, "b", 0.51, {"x": "b", "y": None}),         # one vote, very unsure
]


def test_majority_and_reasons():
    assert majority_vote({"x": "a", "y": "b"}) is None and majority_vote({"x": "a", "y": "a", "z": "b"}) == "a"
    assert majority_vote({"x": None}) is None
    assert reasons(ROWS[2]) == (["label model differs from the labelers' majority", "labelers disagree"], "b")
    assert reasons(ROWS[4])[0] == ["no labeler voted"] and reasons(ROWS[0])[0] == []


def test_pick_rows_ranks_by_reasons_then_low_confidence_and_skips():
    assert [c.key for c in pick_rows(ROWS, 6)] == ["r2", "r4", "r3", "r5", "r1", "r0"]
    assert [c.key for c in pick_rows(ROWS, 2, skip={"r2"})] == ["r4", "r3"]
    assert pick_rows(ROWS, 1)[0].majority == "b"


def test_source_columns_drop_what_the_run_added():
    assert source_columns(ROWS[0]) == {"id": "r0", "text": "t0"}
