"""Base model names -> local folders."""

from __future__ import annotations

import pytest

from agentlab.distill.bases import lora_targets, resolve_base
from agentlab.errors import TrainingError


def test_unknown_base_names_the_value_and_the_choices():
    with pytest.raises(TrainingError) as err:
        resolve_base("gpt-17")
    assert str(err.value) == ("unknown base model 'gpt-17' (not a known base and no such directory); use one of: "
                              "minilm, smollm2, or a local Hugging Face model directory")


def test_a_folder_without_config_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="a folder without config.json"):
        resolve_base(str(tmp_path))


def test_minilm_is_offline_and_bert():
    base = resolve_base("minilm")
    assert (base.path / "config.json").is_file() and base.model_type == "bert"
    assert base.hub_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_a_local_directory(tiny_llama):
    base = resolve_base(str(tiny_llama))
    assert base.path == tiny_llama.resolve() and base.model_type == "llama" and base.hub_id is None


def test_lora_targets_per_architecture():
    assert lora_targets("bert") == ["query", "value"]
    assert lora_targets("llama") == ["q_proj", "v_proj"]
    assert lora_targets("llama", ["k_proj"]) == ["k_proj"]
    assert lora_targets("somethingnew") is None
