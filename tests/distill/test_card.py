"""The model card: provenance, metrics, and a loading snippet that runs with plain libraries."""

from __future__ import annotations

import numpy as np

from agentlab.distill.card import finish_student, render_card
from tests.distill.distill_data import run_snippet


def test_lora_classifier_snippet_reproduces_predict(trained_classifier):
    student, out = trained_classifier
    card = (out / "README.md").read_text()
    ns = run_snippet(card)
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


def test_causal_snippet_generates_like_the_student(tiny_llama, tmp_path):
    from agentlab.distill.causal import train_causal

    lm = train_causal([("Text: good\nLabel:", " positive")] * 4, str(tiny_llama), {"method": "lora", "r": 4}, tmp_path,
                      max_steps=1, batch_size=4, eval_split=0, quiet=True, meta={"prompt": "Text: {text}\nLabel:"})
    ns = run_snippet((tmp_path / "README.md").read_text())
    assert ns["tok"].decode(ns["out"][0, ns["enc"]["input_ids"].shape[1]:], skip_special_tokens=True).strip() == \
        lm.generate(["Text: an example text\nLabel:"], max_new_tokens=8)[0]
