"""`vllm`: an in-process `vllm.LLM` engine for machines with an NVIDIA GPU.

One batched ``llm.chat`` call answers a whole batch of chat requests; JSON schemas use vLLM's
structured decoding (whichever API this vLLM has); ``ChatRequest.options`` are scored by exact
log-likelihood from ``prompt_logprobs``, all options of all requests in one ``llm.generate`` call.
vLLM is imported only when the first batch runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import shutil
import sys
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field, model_validator

from agentlab.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    ChatRequest,
    ChatResult,
    OnResult,
)
from agentlab.errors import BackendError, BackendUnavailable

log = logging.getLogger("agentlab")
_ENGINES: dict[str, Any] = {}  # one vllm.LLM per engine config per process: a GPU holds one
_LOCK = threading.Lock()
NOT_INSTALLED = "vllm is not installed: pip install 'agentlab[vllm]' (Linux with an NVIDIA GPU)"
NO_GPU = ("no CUDA GPU is visible (torch.cuda.is_available() is False); the vllm backend needs an NVIDIA GPU: "
          "use the embedded or openai backend on this machine")

OPTIONS_WITH_IMAGES = ("the vllm backend scores options of text-only requests; for images, ask for the label "
                       "as text or JSON (json_schema) instead of options")


class VLLMConfig(BackendConfig):
    """An in-process vLLM engine. Fields map onto ``vllm.LLM(...)`` arguments."""

    backend: str = Field("vllm", description="Registered backend name: vllm.")
    model: str = Field(description="Hugging Face model id or local model folder; a multimodal model also takes image parts.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs to shard the model over.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of each GPU's memory vLLM may take (weights + KV cache).")
    max_model_len: int | None = Field(None, ge=16, description="Context length in tokens (default: the model's own); lower it to save memory.")
    dtype: str = Field("auto", description="Weight dtype: auto, bfloat16, float16 or float32.")
    seed: int = Field(0, description="Engine seed; also the sampling seed of requests that set none.")
    trust_remote_code: bool = Field(False, description="Run model code shipped with the checkpoint (only for models you trust).")
    enforce_eager: bool = Field(False, description="Skip CUDA graph capture: faster start, slower decoding.")
    batch_size: int = Field(256, ge=1, description="Requests handed to vLLM per call; vLLM schedules them together.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="More vllm.LLM arguments, e.g. quantization, max_num_seqs, limit_mm_per_prompt.")

    @model_validator(mode="after")
    def _no_repeats(self) -> VLLMConfig:
        named = set(_ENGINE_FIELDS) & set(self.engine_kwargs)
        if named:
            raise ValueError(f"engine_kwargs repeats {', '.join(sorted(named))}; set those as fields of the model config instead")
        return self


_ENGINE_FIELDS = ("model", "tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "dtype", "seed",
                  "trust_remote_code", "enforce_eager")


def vllm_installed() -> bool:
    """True when `vllm` can be imported (without importing it: that takes seconds)."""
    if "vllm" in sys.modules:
        return sys.modules["vllm"] is not None
    return importlib.util.find_spec("vllm") is not None


def cuda_reason() -> str | None:
    """None when a CUDA GPU is visible, else why not. Imports torch (vLLM needs it anyway)."""
    try:
        import torch
    except ImportError:
        return None if shutil.which("nvidia-smi") else NO_GPU
    return None if torch.cuda.is_available() else NO_GPU


def structured_kwargs(schema: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams keyword for JSON-schema decoding in this vLLM: the API was renamed in 0.11."""
    sp = importlib.import_module("vllm.sampling_params")
    if hasattr(sp, "StructuredOutputsParams"):
        return {"structured_outputs": sp.StructuredOutputsParams(json=schema)}
    if hasattr(sp, "GuidedDecodingParams"):
        return {"guided_decoding": sp.GuidedDecodingParams(json=schema)}
    raise BackendError("this vLLM has neither StructuredOutputsParams nor GuidedDecodingParams: upgrade vllm (>= 0.6.3)")


@BACKENDS.register("vllm")
class VLLMBackend(Backend):
    """vLLM in-process: batched chat, structured JSON, token log-probs, exact option scoring, images."""

    config_cls = VLLMConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({"json_schema", "options", "logprobs", "images"})
    not_identity = frozenset({"tensor_parallel_size", "gpu_memory_utilization", "enforce_eager", "batch_size"})

    def __init__(self, config: VLLMConfig):
        super().__init__(config)
        reason = self.check(config)
        if reason:
            raise BackendUnavailable(reason)
        self.batch_size = config.batch_size
        self._llm = None
        self._lock = threading.Lock()

    @property
    def llm(self):
        """The vllm.LLM engine, built on first use and shared in this process."""
        if self._llm is None:
            key = self.config.model_dump_json(include=set(_ENGINE_FIELDS) | {"engine_kwargs"})
            with _LOCK:
                if key not in _ENGINES:
                    _ENGINES[key] = self._load()
                self._llm = _ENGINES[key]
        return self._llm

    def _load(self):
        try:
            import vllm
        except ImportError as exc:
            raise BackendUnavailable(NOT_INSTALLED) from exc
        cfg = self.config
        kwargs = {name: getattr(cfg, name) for name in _ENGINE_FIELDS if getattr(cfg, name) is not None}
        kwargs.update(cfg.engine_kwargs)
        log.info("loading %s with vLLM %s", cfg.model, getattr(vllm, "__version__", "?"))
        try:
            return vllm.LLM(**kwargs)
        except Exception as exc:
            raise BackendError(f"vLLM could not load model {cfg.model!r}: {type(exc).__name__}: {exc}") from exc

    def generate(self, requests: list[ChatRequest], on_result: OnResult | None = None) -> list[ChatResult]:
        results: list[ChatResult | None] = [None] * len(requests)
        chat = [i for i, r in enumerate(requests) if not r.options]
        score = [i for i, r in enumerate(requests) if r.options]
        for idx, run in ((chat, self._chat_batch), (score, self._score_batch)):
            if not idx:
                continue
            with self._lock:
                batch = run([requests[i] for i in idx])
            for i, res in zip(idx, batch, strict=True):
                res.cost_usd = self.cost(res.prompt_tokens, res.completion_tokens)
                results[i] = res
                if on_result:
                    on_result(i, res)
        return results  # type: ignore[return-value]

    # --- chat -------------------------------------------------------------------------------
    def sampling_params(self, req: ChatRequest):
        """vllm.SamplingParams for one chat request."""
        import vllm

        kwargs: dict[str, Any] = {"max_tokens": req.max_tokens, "temperature": req.temperature, "top_p": req.top_p,
                                  "seed": req.seed if req.seed is not None else self.config.seed, "stop": req.stop or None}
        if req.logprobs:
            kwargs["logprobs"] = req.logprobs
        if req.json_schema is not None:
            kwargs.update(structured_kwargs(req.json_schema))
        return vllm.SamplingParams(**kwargs)

    def _chat_batch(self, reqs: list[ChatRequest]) -> list[ChatResult]:
        params: dict[int, Any] = {}
        out: dict[int, Any] = {}
        for j, req in enumerate(reqs):
            try:
                params[j] = self.sampling_params(req)
            except Exception as exc:  # an invalid setting fails its own request only
                out[j] = _error(exc)
        ok = list(params)

        def call(idx: list[int]) -> list[Any]:
            return self.llm.chat([reqs[j].messages for j in idx], sampling_params=[params[j] for j in idx], use_tqdm=False)

        out.update(zip(ok, _isolate(call, ok), strict=True))
        return [out[j] if isinstance(out[j], ChatResult) else parse_chat(out[j], reqs[j]) for j in range(len(reqs))]

    # --- options ----------------------------------------------------------------------------
    def prefix_ids(self, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of the chat-templated prompt, ending where the assistant's answer starts."""
        tok = self.llm.get_tokenizer()
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if not isinstance(text, str):  # some tokenizers (vLLM's Mistral mode) return token ids
            return list(text)
        return list(tok.encode(text, add_special_tokens=False))

    def _score_batch(self, reqs: list[ChatRequest]) -> list[ChatResult]:
        """Every option of every request is one prompt (prefix + option) scored in one generate call."""
        import vllm

        prompts: list[dict[str, list[int]]] = []
        spans: list[tuple[int, str, int, int]] = []  # (request, option, first option token, end)
        failed: dict[int, ChatResult] = {}
        tok = None
        for j, req in enumerate(reqs):
            if req.has_images():
                failed[j] = ChatResult(error=OPTIONS_WITH_IMAGES)
                continue
            try:
                prefix = self.prefix_ids(req.messages)
                tok = tok or self.llm.get_tokenizer()
                for opt in req.options or []:
                    ids = prefix + list(tok.encode(opt, add_special_tokens=False))
                    spans.append((j, opt, len(prefix), len(ids)))
                    prompts.append({"prompt_token_ids": ids})
            except Exception as exc:
                failed[j] = _error(exc)
        keep = [k for k, span in enumerate(spans) if span[0] not in failed]
        # prompt_logprobs=1: the prompt's own token is always returned next to the top-1
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, seed=self.config.seed)

        def call(idx: list[int]) -> list[Any]:
            return self.llm.generate([prompts[k] for k in idx], sampling_params=params, use_tqdm=False)

        outs = dict(zip(keep, _isolate(call, keep), strict=True))
        return [failed.get(j) or _collect(j, reqs[j], spans, outs) for j in range(len(reqs))]

    def close(self) -> None:
        """Drop this backend's engine (vLLM frees GPU memory when the last reference goes)."""
        with _LOCK:
            for key, llm in list(_ENGINES.items()):
                if llm is self._llm:
                    del _ENGINES[key]
        self._llm = None

    @classmethod
    def check(cls, config: VLLMConfig) -> str | None:
        if not vllm_installed():
            return NOT_INSTALLED
        return cuda_reason()


def _error(exc: BaseException) -> ChatResult:
    return ChatResult(error=f"{type(exc).__name__}: {exc}")


def _isolate(call: Callable[[list[int]], list[Any]], items: list[int]) -> list[Any]:
    """Outputs of `call(items)` in order; if the batch raises, its halves are retried, so bad items fail alone.

    vLLM validates a whole batch before it runs any of it (a prompt over max_model_len, an image
    sent to a text model), so one bad request would otherwise fail all of its neighbours. Halving
    finds k bad items among n in about k * log2(n) extra calls.
    """
    if not items:
        return []
    try:
        outs = list(call(items))
        if len(outs) != len(items):
            raise BackendError(f"vLLM returned {len(outs)} outputs for {len(items)} prompts")
        return outs
    except Exception as exc:
        if len(items) == 1:
            return [_error(exc)]
        log.warning("a vLLM batch of %d failed (%s: %s); retrying it in halves", len(items), type(exc).__name__, exc)
        mid = len(items) // 2
        return _isolate(call, items[:mid]) + _isolate(call, items[mid:])


def parse_chat(out: Any, req: ChatRequest) -> ChatResult:
    """A vLLM RequestOutput -> ChatResult: text, token counts, top-k log-probs per generated token."""
    if not out.outputs:
        return ChatResult(error="vLLM returned no completion")
    comp = out.outputs[0]
    top = None
    if req.logprobs and comp.logprobs:
        top = [_top_k(pos, req.logprobs) for pos in comp.logprobs]
    return ChatResult(text=comp.text, top_logprobs=top, prompt_tokens=len(out.prompt_token_ids or ()),
                      completion_tokens=len(comp.token_ids or ()),
                      structured="json_schema" if req.json_schema is not None else None)


def _top_k(position: dict[int, Any], k: int) -> dict[str, float]:
    """{token text: logprob} of the k best; vLLM also adds the sampled token when it ranks below k."""
    ranked = sorted(position.items(), key=lambda kv: kv[1].rank if kv[1].rank is not None else 0)
    best = [(tid, lp) for tid, lp in ranked if lp.rank is None or lp.rank <= k][:k]
    return {(lp.decoded_token if lp.decoded_token is not None else str(tid)): float(lp.logprob) for tid, lp in best}


def option_logprob(out: Any, start: int, end: int) -> float:
    """Sum of the prompt log-probs of tokens start..end-1 (the option), read from a RequestOutput."""
    ids, rows = out.prompt_token_ids, out.prompt_logprobs
    if rows is None:
        raise BackendError("vLLM returned no prompt_logprobs")
    total = 0.0
    for pos in range(start, end):
        row = rows[pos]
        if row is None or ids[pos] not in row:
            raise BackendError(f"vLLM returned no log-prob for prompt token {pos} (id {ids[pos]})")
        total += float(row[ids[pos]].logprob)
    return total


def _collect(j: int, req: ChatRequest, spans: list[tuple[int, str, int, int]], outs: dict[int, Any]) -> ChatResult:
    """Option scores of request j, or the first error among its options."""
    scores: dict[str, float] = {}
    prompt_tokens = 0
    for k, (owner, opt, start, end) in enumerate(spans):
        if owner != j:
            continue
        out = outs[k]
        if isinstance(out, ChatResult):
            return out
        try:
            scores[opt] = option_logprob(out, start, end)
        except Exception as exc:
            return _error(exc)
        prompt_tokens += end
    best = max(scores, key=scores.get)  # type: ignore[arg-type]
    return ChatResult(text=best, option_logprobs=scores, prompt_tokens=prompt_tokens)
