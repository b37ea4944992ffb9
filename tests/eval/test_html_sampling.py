"""report.html's bounded sampling: rows read as bytes with their confidence, a row budget by vote width."""

import json

from agentlab.eval.html_rows import (
    MAX_ROWS,
    _lines_with_confidence,
    load_rows,
    row_budget,
)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    return path


def test_confidence_read_without_parsing_matches_the_parsed_row(tmp_path):
    rows = [{"label": "a", "label_probs": {"a": 0.9, "b": 0.1}, "confidence": 0.9, "votes": {"x": "a"}},
            {"text": 'he said "confidence": 3 {', "confidence": 0.25},
            {"text": "x", "answer": {"confidence": 0.5}},  # nested only: the row has none
            {"text": "x", "answer": {"confidence": 0.5}, "confidence": 0.1},
            {"confidence": None}, {"confidence": 1e-07}, {"text": "x"}, {"a": [{"b": 1}], "confidence": 2}]
    got = [c for _, c in _lines_with_confidence(_write(tmp_path / "d.jsonl", rows))]
    assert got == [r.get("confidence") for r in rows]


def test_row_budget_shrinks_with_votes_per_row(tmp_path):
    many = _write(tmp_path / "a.jsonl", [{"text": "t", "confidence": 0.5, "votes": {f"l{j}": "a" for j in range(32)}}])
    assert row_budget(many) == 500_000 // 32
    assert row_budget(_write(tmp_path / "b.jsonl", [{"text": "t"}])) == MAX_ROWS
    huge = _write(tmp_path / "c.jsonl", [{"votes": {f"l{j}": "a" for j in range(5000)}}])
    assert row_budget(huge) == 1000


def test_sampled_rows_are_the_least_confident_plus_a_sample_in_file_order(tmp_path):
    rows = [{"i": i, "confidence": (i % 100) / 100} for i in range(2000)]
    kept, total, note = load_rows(_write(tmp_path / "d.jsonl", rows), max_rows=100)
    assert total == 2000 and len(kept) == 100 and note
    assert [r["i"] for r in kept] == sorted(r["i"] for r in kept)
    assert sum(r["confidence"] == 0.0 for r in kept) >= 20  # the 20 least confident rows are all kept
