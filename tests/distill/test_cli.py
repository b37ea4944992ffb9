"""`agentlab train RUN_DIR` and `agentlab predict STUDENT_DIR INPUT.jsonl` through click."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from agentlab.cli import main
from tests.distill.distill_data import make_rows, write_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run re-distilled by the CLI (2 steps); shared by the predict tests."""
    root = tmp_path_factory.mktemp("cli")
    run = write_run(root / "run", make_rows(), distill={"max_length": 32, "batch_size": 8, "student": {"peft": {"r": 4}},
                                                                "fallback": None})
    res = CliRunner().invoke(main, ["train", str(run), "--max-steps", "2", "-q", "-o", str(root / "student")])
    return root, run, res


def test_train_re_distills_a_finished_run(trained):
    root, _, res = trained
    assert res.exit_code == 0, res.output
    assert f"Wrote {root / 'student'}/" in res.output and "student      accuracy" in res.output
    metrics = json.loads((root / "student" / "distill_metrics.json").read_text())
    assert metrics["train"]["skipped"] == 2 and metrics["train"]["steps"] == 2
    meta = json.loads((root / "student" / "agentlab_student.json").read_text())
    assert meta["provenance"]["recipe_hash"] == "abc123" and meta["max_length"] == 32  # the run's distill section is kept


def test_predict_writes_one_row_per_input_row(trained, tmp_path):
    root, _, _ = trained
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": 1, "review": "loved it"}\n\n{"id": 2, "review": "awful"}\n{"id": 3, "review": ""}\n')
    out = tmp_path / "out" / "pred.jsonl"
    res = CliRunner().invoke(main, ["predict", str(root / "student"), str(inp), "-o", str(out), "--text-field", "review"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["label"] in ("positive", "negative") and set(r["label_probs"]) == {"positive", "negative"}
        assert abs(sum(r["label_probs"].values()) - 1) < 1e-4 and r["confidence"] == max(r["label_probs"].values())


def test_predict_names_a_missing_text_field(trained, tmp_path):
    root, _, _ = trained
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"review": "x"}\n')
    res = CliRunner().invoke(main, ["predict", str(root / "student"), str(inp), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2
    assert "Error: row 1 has no field 'text' (it has: review); use --text-field" in res.output
    assert not (tmp_path / "o.jsonl").exists() and not list(tmp_path.glob(".o.jsonl*"))


def test_train_refuses_a_run_without_labels(tmp_path):
    run = write_run(tmp_path / "run", [{"text": "a"}, {"text": "b"}])
    res = CliRunner().invoke(main, ["train", str(run)])
    assert res.exit_code == 1
    assert f"Error: no labels in run {run} (no `label` / `label_probs` columns): distill needs a run of the `label` task" in res.output


def test_train_names_an_unknown_base(tmp_path):
    run = write_run(tmp_path / "run", make_rows())
    res = CliRunner().invoke(main, ["train", str(run), "--base", "gpt-17"])
    assert res.exit_code == 1
    assert "Error: unknown base model 'gpt-17'" in res.output and "minilm, smollm2" in res.output


def test_train_needs_a_finished_run(tmp_path):
    res = CliRunner().invoke(main, ["train", str(tmp_path)])
    assert res.exit_code == 2 and "no data.jsonl" in res.output


def test_predict_needs_a_student(tmp_path):
    (tmp_path / "in.jsonl").write_text("{}\n")
    res = CliRunner().invoke(main, ["predict", str(tmp_path), str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 1 and "is not a saved student" in res.output
