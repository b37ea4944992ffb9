"""The distill stage: split, train, evaluate vs label model and teachers, cost per 1,000, report."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from agentlab.distill.evaluate import cost_per_1k, evaluate_held_out, gold_index
from agentlab.distill.stage import (
    check_labeled,
    distill,
    label_source,
    recipe_classes,
    run_distill,
)
from agentlab.engine import ModelStats, RunContext
from agentlab.errors import TrainingError
from agentlab.store import CallCache, RunDir
from tests.distill.distill_data import CLASSES, make_rows, tiny_config


def _ctx(tmp_path, rows):
    ctx = RunContext(model_configs={}, cache=CallCache(None))
    ctx.run_dir, ctx.gold, ctx.classes = RunDir(tmp_path), [r.pop("gold") for r in rows], CLASSES
    ctx.stats = {"small": ModelStats(llm_calls=40, cache_hits=8, prompt_tokens=4000, completion_tokens=40, cost_usd=0.02)}
    return ctx


def test_run_distill_fills_metrics_report_artifacts_and_card(tmp_path):
    rows = make_rows()
    ctx = _ctx(tmp_path, rows)
    raw = {"task": {"type": "label", "classes": CLASSES}, "aggregate": {"method": "dawid_skene"}}
    recipe = SimpleNamespace(distill=tiny_config(max_steps=2), raw=raw, hash=lambda: "cafe01")
    run_distill(ctx, recipe, rows, {"task": 12.0})
    m = ctx.metrics["distill"]
    # the contract: metrics.student.{student, label_model}.accuracy (the head-to-head on held-out gold)
    assert ctx.metrics["student"]["student"]["accuracy"] == m["student"]["accuracy"]
    assert ctx.metrics["student"]["label_model"]["accuracy"] == m["label_model"]["accuracy"]
    assert m["cost_per_1k"]["teachers_total"]["seconds"] == 500.0  # 12 s for 24 rows: the labeling step's time
    assert set(m) >= {"student", "label_model", "teachers", "cost_per_1k", "train"}
    assert set(m["teachers"]) == {"kw", "llm@small"}
    for scores in (m["student"], m["label_model"], *m["teachers"].values()):
        assert {"accuracy", "macro_f1", "ece", "coverage", "n"} <= set(scores) and scores["n"] == 6
    assert m["student"]["coverage"] == 1.0
    assert m["teachers"]["kw"]["accuracy"] == 1.0  # kw votes the gold label whenever it votes
    tr = m["train"]
    assert tr["skipped"] == 2 and tr["held_out"] == 6 and 16 <= tr["rows"] <= 18
    assert tr["seconds"] > 0 and tr["peak_memory_mb"] > 0
    cost = m["cost_per_1k"]
    assert cost["teachers"]["small"]["llm_calls"] == 2000.0 and cost["student"]["seconds"] > 0 and cost["how"]
    assert ctx.artifacts["student"] == "student" and m["path"] == "student"
    assert any(s.startswith("## Distillation") for s in ctx.report)
    card = (tmp_path / "student" / "README.md").read_text()
    assert "recipe hash `cafe01`" in card and "label model `dawid_skene`" in card and "| label model |" in card
    json.dumps(m)  # the manifest must be able to hold it


def test_without_gold_only_agreement_is_reported(tmp_path):
    rows = make_rows()
    for r in rows:
        r.pop("gold")
    m = distill(rows, tiny_config(max_steps=1), tmp_path / "s", CLASSES, quiet=True)
    assert m["label_model"] == {} and m["teachers"] == {}
    assert 0 <= m["student"]["agreement_with_labels"] <= 1


def test_no_labels_is_a_clear_error():
    with pytest.raises(TrainingError, match="no labels in the rows .no `label` / `label_probs` columns.: distill needs a run of the `label` task"):
        check_labeled([{"text": "a"}])
    with pytest.raises(TrainingError, match="every row's `label` is None"):
        check_labeled([{"text": "a", "label": None, "label_probs": {}}])


def test_everything_filtered_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="no rows left to train on: .* lower distill.min_confidence"):
        distill(make_rows(), tiny_config(min_confidence=0.99), tmp_path, CLASSES, quiet=True)


def test_evaluate_scores_abstains_as_uncovered():
    rows = [{"label": "positive", "label_probs": {"positive": 0.9, "negative": 0.1}, "votes": {"a": "positive", "b": None}},
            {"label": None, "label_probs": {"positive": 0.5, "negative": 0.5}, "votes": {"a": None, "b": None}},
            {"label": "negative", "label_probs": {"positive": 0.2, "negative": 0.8}, "votes": {"a": "positive", "b": "negative"}}]
    P = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    ev = evaluate_held_out(P, rows, CLASSES, ["positive", "negative", 1])
    assert ev["student"]["accuracy"] == 1.0 and ev["student"]["agreement_with_labels"] == 1.0
    assert ev["label_model"]["coverage"] == pytest.approx(2 / 3, abs=1e-4) and ev["label_model"]["accuracy"] == 1.0
    assert ev["teachers"]["a"]["accuracy"] == 0.5 and ev["teachers"]["b"]["coverage"] == pytest.approx(1 / 3, abs=1e-4)


def test_gold_index_reads_names_and_indices():
    assert [gold_index(g, CLASSES) for g in ["negative", 0, "1", None, "other", 7, True]] == [1, 0, 1, -1, -1, -1, -1]


def test_cost_per_1k_counts_calls_needed_and_scales_tokens_per_call():
    usage = {"m": {"llm_calls": 10, "cache_hits": 10, "prompt_tokens": 1000, "completion_tokens": 50, "cost_usd": 0.1}}
    c = cost_per_1k(n_pred=50, wall=0.5, cpu=1.0, device="cpu", usage=usage, n_rows=20, task_seconds=4.0)
    assert c["student"] == {"seconds": 10.0, "cpu_seconds": 20.0, "usd": 0.0, "device": "cpu"}
    assert c["teachers"]["m"] == {"llm_calls": 1000.0, "prompt_tokens": 100000, "completion_tokens": 5000, "usd": 10.0}
    assert c["teachers_total"]["seconds"] == 200.0 and "cache hits" in c["how"]


def test_label_source_and_classes_from_the_recipe():
    raw = {"task": {"classes": {"pos": "good", "neg": "bad"}}, "aggregate": {"method": "all", "use": "metal"}, "models": {"small": {}}}
    assert recipe_classes(raw) == ["pos", "neg"]
    text = label_source(raw, [{"votes": {"kw": "pos", "llm@small": None}}])
    assert text.startswith("label model `metal` over 2 labelers (`kw`, `llm@small`); LLMs: small")


def test_generate_runs_the_distill_stage_end_to_end(tmp_path, monkeypatch):
    """A label recipe with keyword labelers (no LLM) and a `distill:` section, through `agentlab generate`."""
    import yaml
    from click.testing import CliRunner

    from agentlab.cli import main

    monkeypatch.chdir(tmp_path)
    rows = make_rows(n_unlabeled=0)
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"text": r["text"], "gold": r["gold"]}) + "\n" for r in rows))
    (tmp_path / "seed.jsonl").write_text("".join(json.dumps({"text": t, "label": c}) + "\n" for t, c in SEED))
    recipe = {
        "name": "distill-e2e", "source": {"path": "rows.jsonl"},
        "task": {"type": "label", "classes": CLASSES, "seed": {"path": "seed.jsonl"}, "labelers": [
            {"type": "keywords", "name": "kw", "votes": {"positive": ["loved", "great", "wonderful", "joy", "fun"],
                                                          "negative": ["awful", "boring", "terrible", "hated", "dull"]}}]},
        "aggregate": {"method": "majority"}, "eval": {"gold": "gold"}, "output": {"hf_dataset": False},
        "distill": {"max_steps": 2, "batch_size": 8, "max_length": 32, "eval_split": 0.25},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    res = CliRunner().invoke(main, ["generate", "r.yaml", "-q", "-o", "run"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    d = manifest["metrics"]["distill"]
    assert d["train"]["skipped"] > 0  # rows without any keyword: every labeler abstained
    assert d["student"]["n"] == 6 and d["label_model"]["coverage"] < 1
    assert manifest["artifacts"]["student"] == "student"
    assert "## Distillation" in (tmp_path / "run" / "report.md").read_text()
    card = (tmp_path / "run" / "student" / "README.md").read_text()
    assert manifest["recipe_hash"] in card
    # the teachers' seconds per 1,000 rows come from the labeling step's timing (it used to be missing)
    assert d["cost_per_1k"]["teachers_total"]["seconds"] > 0
    assert set(manifest["metrics"]["student"]) >= {"student", "label_model", "clean_only", "verdict"}
    assert d["clean_only"]["train_rows"] == len(SEED) and "accuracy" in d["clean_only"]
    assert set(d["candidates"]) == {"classifier", "embedding"} and d["picked"] in d["candidates"]
    assert "clean-only baseline (4 gold rows)" in (tmp_path / "run" / "report.md").read_text()


SEED = [("An absolute treat from start to finish", "positive"), ("Charming, I smiled all the way", "positive"),
        ("Tiresome and clumsy", "negative"), ("I regret buying a ticket", "negative")]


def test_the_fallback_is_kept_when_the_main_student_agrees_less_with_validation(tmp_path):
    rows = make_rows()
    # one optimiser step at a tiny learning rate: the LoRA classifier is still at chance
    cfg = tiny_config(max_steps=1, learning_rate=1e-6)
    m = distill(rows, cfg, tmp_path / "student", CLASSES, gold=[r["gold"] for r in rows], quiet=True,
                keep_others=tmp_path / "others")
    assert m["picked"] == "embedding" and m["student_type"] == "embedding"
    assert "`classifier` has a higher cross-entropy against the validation rows' label_probs" in m["picked_because"]
    assert m["candidates"]["embedding"]["val_loss"] < m["candidates"]["classifier"]["val_loss"]
    assert (tmp_path / "student" / "head.safetensors").is_file()  # the kept student is the one in the folder
    assert (tmp_path / "others" / "classifier" / "adapter_model.safetensors").is_file()
    assert not list(tmp_path.glob(".student*"))  # no temporary folders left behind
    from agentlab.distill.base import load_student

    assert load_student(tmp_path / "student").predict(["great fun"]).shape == (1, 2)


def test_no_fallback_trains_only_the_named_student(tmp_path):
    rows = make_rows()
    m = distill(rows, tiny_config(max_steps=1, fallback=None), tmp_path / "s", CLASSES, gold=[r["gold"] for r in rows],
                quiet=True, clean_rows=[{"text": t, "label": c} for t, c in SEED])
    assert list(m["candidates"]) == ["classifier"] and m["picked"] == "classifier"
    assert m["clean_only"]["student_type"] == "classifier" and m["clean_only"]["train_rows"] == 4


def test_clean_only_baseline_trains_the_kept_student_on_the_gold_rows_only(tmp_path):
    rows = make_rows()
    gold = [r["gold"] for r in rows]
    held_text = next(r["text"] for i, r in enumerate(rows) if i in set(split_held(len(rows))))
    clean = [{"text": t, "label": c} for t, c in SEED] + [{"text": held_text, "label": "positive"}, {"text": "x", "label": "?"}]
    cfg = tiny_config(student={"type": "embedding"})
    m = distill(rows, cfg, tmp_path / "s", CLASSES, gold=gold, quiet=True, clean_rows=clean)
    c = m["clean_only"]
    assert c["train_rows"] == 4  # a held-out row and a row with an unknown label are left out
    assert c["n"] == m["student"]["n"] == 6 and 0 <= c["accuracy"] <= 1 and c["student_type"] == "embedding"
    assert "gold rows you gave, the same student scores" in m["verdict"]
    assert distill(rows, cfg, tmp_path / "s2", CLASSES, gold=gold, quiet=True)["clean_only"] == {
        "skipped": "no gold rows given besides the source (task.seed / aggregate.dev)"}
    off = tiny_config(student={"type": "embedding"}, clean_baseline=False)
    assert distill(rows, off, tmp_path / "s3", CLASSES, gold=gold, quiet=True, clean_rows=clean)["clean_only"] == {
        "skipped": "distill.clean_baseline is off"}


def split_held(n):
    from agentlab.distill.data import split_indices

    return split_indices(n, tiny_config().eval_split, tiny_config().seed)[1]
