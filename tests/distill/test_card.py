"""The model card: provenance, metrics, and a loading snippet that runs with plain libraries."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from agentlab.distill.card import extract_snippet, finish_student, render_card


def _run(snippet: str) -> dict:
    ns: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(snippet, "<model card>", "exec"), ns)  # noqa: S102 - our own generated code
    return ns


def test_lora_classifier_snippet_reproduces_predict(trained_classifier):
    student, out = trained_classifier
    card = (out / "README.md").read_text()
    ns = _run(extract_snippet(card))
    assert "import agentlab" not in card.split("```python", 1)[1]
    assert np.allclose(ns["probs"].numpy(), student.predict(["an example text"]), atol=1e-5)


def test_card_names_base_provenance_metrics_and_limits(tmp_path):
    meta = {"type": "classifier", "base": "minilm", "hub_id": "sentence-transformers/all-MiniLM-L6-v2", "base_path": "/x",
            "classes": ["a", "b"], "peft": "lora", "train": {"examples": 10, "train_loss": 0.5},
            "provenance": {"recipe_hash": "deadbeef", "run_dir": "/runs/r1", "label_source": "label model `dawid_skene`"},
            "evaluation": {"student": {"accuracy": 0.9, "macro_f1": 0.89, "ece": 0.05, "coverage": 1.0, "n": 20}}}
    finish_student(tmp_path, meta)
    card = (tmp_path / "README.md").read_text()
    for text in ("base_model: sentence-transformers/all-MiniLM-L6-v2", "recipe hash `deadbeef`", "`/runs/r1`",
                 "label model `dawid_skene`", "| student | 0.9000 | 0.8900 | 0.0500 | 1.0000 | 20 |", "## Intended use",
                 "## Limits", "Gold labels were not used for training", "PeftModel.from_pretrained"):
        assert text in card
    assert render_card(tmp_path, {**meta, "peft": "none"}).count("PeftModel") == 0
