"""The causal student: completion-only loss, LoRA and prompt tuning, generate/loss helpers.

Fast tests use a tiny random Llama (local folder); the real SmolLM2 path is marked slow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentlab.distill.base import load_student, make_student
from agentlab.distill.causal import (
    CausalLM,
    Pair,
    as_pairs,
    encode_pair,
    perplexity,
    train_causal,
)
from agentlab.distill.classifier import load_tokenizer
from tests.distill.distill_data import CLASSES, make_rows, tiny_config

PAIRS = [("Document: the cat sat on the mat\nQuery:", " where is the cat"),
         ("Document: paris is the capital of france\nQuery:", " capital of france")] * 4


def test_pairs_from_tuples_dicts_and_pairs():
    assert as_pairs([("p", "c"), {"prompt": "p", "completion": "c", "weight": 2}, Pair("p", "c", 0.5)]) == [
        Pair("p", "c", 1.0), Pair("p", "c", 2.0), Pair("p", "c", 0.5)]


def test_loss_covers_the_completion_only(tiny_llama):
    tok = load_tokenizer(tiny_llama)
    enc = encode_pair(tok, Pair("a long prompt here", " answer"), max_length=64)
    n_prompt = len(tok("a long prompt here")["input_ids"])
    assert enc["labels"][:n_prompt] == [-100] * n_prompt
    assert enc["labels"][n_prompt:] == enc["input_ids"][n_prompt:] and enc["labels"][-1] == tok.eos_token_id
    short = encode_pair(tok, Pair("word " * 100, " answer"), max_length=16)
    assert len(short["input_ids"]) == 16 and short["labels"][-1] == tok.eos_token_id  # the prompt's start is cut


@pytest.mark.parametrize("peft", [{"method": "lora", "r": 4}, {"method": "prompt_tuning", "num_virtual_tokens": 4,
                                                               "init_text": "write a query for this document"}])
def test_train_causal_generate_loss_and_reload(tiny_llama, tmp_path, peft):
    lm = train_causal(PAIRS, str(tiny_llama), peft, tmp_path, eval_pairs=PAIRS[:2], max_steps=2, batch_size=4,
                      learning_rate=1e-2, quiet=True)
    assert (tmp_path / "adapter_model.safetensors").is_file() and not (tmp_path / "_checkpoints").exists()
    assert {"train_loss", "val_loss", "steps"} <= set(lm.metrics) and lm.metrics["steps"] == 2
    out = lm.generate(["Document: a dog\nQuery:", "Document: rain\nQuery:"], max_new_tokens=3)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    losses = lm.loss(PAIRS[:2])
    assert len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)
    again = CausalLM.load(tmp_path)
    assert np.allclose(again.loss(PAIRS[:2]), losses, atol=1e-4)
    assert again.generate(["Document: a dog\nQuery:"], max_new_tokens=3) == out[:1]
    assert perplexity(again, PAIRS[:2]) == pytest.approx(math.exp(sum(losses) / 2), rel=1e-4)


def test_training_lowers_the_completion_loss(tiny_llama, tmp_path):
    before = CausalLM.from_base(str(tiny_llama)).loss(PAIRS[:2])
    lm = train_causal(PAIRS, str(tiny_llama), {"method": "lora", "r": 8, "alpha": 32}, tmp_path, max_steps=6,
                      batch_size=8, learning_rate=3e-2, eval_split=0, quiet=True)
    assert sum(lm.loss(PAIRS[:2])) < sum(before)


def test_soft_labels_become_one_weighted_pair_per_class():
    student = make_student("causal", CLASSES)
    rows = make_rows(n_unlabeled=1, soft=0.8)
    soft = student.pairs(rows, tiny_config(student={"type": "causal"}))
    hard = student.pairs(rows, tiny_config(soft_labels=False, student={"type": "causal"}))
    assert len(soft) == 2 * 23 and len(hard) == 23
    assert sorted({round(p.weight, 2) for p in soft}) == [0.2, 0.8] and {p.weight for p in hard} == {1.0}
    assert soft[0].prompt.startswith("Text: ") and soft[0].prompt.endswith("\nLabel:")
    assert {p.completion for p in hard} == {" positive", " negative"}


def test_causal_student_classifies_by_completion_likelihood(tiny_llama, tmp_path):
    student = make_student("causal", CLASSES)
    rows = make_rows()
    cfg = tiny_config(max_steps=2, student={"type": "causal", "base": str(tiny_llama), "peft": {"method": "lora", "r": 4}})
    student.train(rows[:18], cfg, tmp_path, eval_data=rows[18:], quiet=True)
    P = student.predict(["great fun", "awful"])
    assert P.shape == (2, 2) and np.allclose(P.sum(1), 1)
    again = load_student(tmp_path)
    assert again.classes == CLASSES and np.allclose(again.predict(["great fun", "awful"]), P, atol=1e-5)


def test_smollm2_lora_sft_real_path(tmp_path):
    """The one real-model test in the default run: SmolLM2-135M (dequantised from the GGUF into the user
    cache on first use, ~35 s once; ~1 s after), one LoRA step, generate, loss, reload."""
    lm = train_causal(PAIRS[:2], "smollm2", {"method": "lora"}, tmp_path, max_steps=1, batch_size=2, eval_split=0,
                      max_length=32, quiet=True)
    assert lm.meta["model_type"] == "llama" and lm.metrics["steps"] == 1
    assert lm.generate(["Document: the cat sat on the mat\nQuery:"], max_new_tokens=3)[0]
    assert np.allclose(CausalLM.load(tmp_path).loss(PAIRS[:2]), lm.loss(PAIRS[:2]), atol=1e-4)


@pytest.mark.slow
def test_smollm2_prompt_tuning_real_path(tmp_path):
    lm = train_causal(PAIRS, "smollm2", {"method": "prompt_tuning", "num_virtual_tokens": 8,
                                         "init_text": "please generate query for this document"},
                      tmp_path, eval_pairs=PAIRS[:2], max_steps=2, batch_size=4, quiet=True)
    assert CausalLM.load(tmp_path).generate(["Document: the cat sat on the mat\nQuery:"], max_new_tokens=4) == \
        lm.generate(["Document: the cat sat on the mat\nQuery:"], max_new_tokens=4)
