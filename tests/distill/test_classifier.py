"""The classifier student: LoRA / full fine-tune, soft vs hard labels, save and reload."""

from __future__ import annotations

import numpy as np

from agentlab.distill.base import load_student, make_student
from tests.distill.distill_data import CLASSES, make_rows, run_snippet, tiny_config

TEXTS = ["loved it, wonderful", "boring and awful", "a movie"]


def test_trains_with_validation_and_saves_an_adapter(trained_classifier):
    student, out = trained_classifier
    names = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "agentlab_student.json", "README.md"} <= names
    assert "_checkpoints" not in names and "model.safetensors" not in names
    train = student.meta["train"]
    assert train["steps"] == 4 and train["examples"] == 16  # 18 rows, 2 unlabeled
    assert {"train_loss", "val_loss", "val_accuracy", "best_step", "seconds"} <= set(train)
    assert student.meta["classes"] == CLASSES and student.meta["peft"] == "lora"


def test_predicts_probabilities_and_reloads_identically(trained_classifier):
    student, out = trained_classifier
    P = student.predict(TEXTS)
    assert P.shape == (3, 2) and np.allclose(P.sum(1), 1)
    again = load_student(out)
    assert again.classes == CLASSES
    assert np.allclose(again.predict(TEXTS), P, atol=1e-5)


def _train(tmp_path, name, **over):
    rows = make_rows(n_unlabeled=0, soft=0.6)
    student = make_student("classifier", CLASSES)
    student.train(rows, tiny_config(max_steps=3, eval_split=0, learning_rate=1e-2, **over), tmp_path / name, quiet=True)
    return student.predict([r["text"] for r in rows]), rows


def test_soft_labels_train_a_less_confident_model_than_hard_labels(tmp_path):
    soft, rows = _train(tmp_path, "soft", soft_labels=True)
    hard, _ = _train(tmp_path, "hard", soft_labels=False)
    # same seed, data and steps: only the targets differ (0.6/0.4 vs 1/0)
    assert not np.allclose(soft, hard)
    gold = np.array([CLASSES.index(r["label"]) for r in rows])
    p_soft, p_hard = soft[np.arange(len(rows)), gold], hard[np.arange(len(rows)), gold]
    assert p_hard.mean() > p_soft.mean()


def test_full_fine_tune_saves_a_plain_model(tmp_path):
    rows = make_rows()
    student = make_student("classifier", CLASSES)
    student.train(rows, tiny_config(max_steps=1, eval_split=0, student={"peft": {"method": "none"}}), tmp_path, quiet=True)
    assert (tmp_path / "model.safetensors").is_file() and not (tmp_path / "adapter_config.json").exists()
    assert np.allclose(load_student(tmp_path).predict(TEXTS), student.predict(TEXTS), atol=1e-5)
    ns = run_snippet((tmp_path / "README.md").read_text())  # plain transformers, no peft
    assert np.allclose(ns["probs"].numpy(), student.predict(["an example text"]), atol=1e-5)
