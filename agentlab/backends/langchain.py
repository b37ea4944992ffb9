"""`langchain`: any LangChain chat model, built by a registered factory named in the recipe.

A recipe names a factory, never an import path::

    models:
      default: {backend: langchain, factory: openai_chat, kwargs: {model: gpt-4o-mini}}

Factories live in :data:`CHAT_MODELS`; plugins add more through the ``agentlab.langchain_models``
entry-point group. Calls run concurrently (``max_concurrency``) on a background event loop;
each failure is an error result. Structured output uses ``with_structured_output`` where the
model supports it, else the schema goes into the prompt and the engine parses the answer.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentlab.backends.aio import BackgroundLoop, run_items
from agentlab.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    ChatRequest,
    ChatResult,
    OnResult,
)
from agentlab.backends.openai import is_refusal, public_url, with_schema_prompt
from agentlab.errors import BackendError, BackendUnavailable
from agentlab.registry import Registry, UnknownKey

log = logging.getLogger("agentlab")
CHAT_MODELS: Registry[Callable[..., Any]] = Registry("langchain_model")
MODES = ("json_schema", "json_object", "prompt")
_SECRET = re.compile(r"(key|secret|password|passwd|credential|auth|_token|headers)$|^token$", re.IGNORECASE)
_KNOBS = {"max_retries", "timeout", "request_timeout", "max_concurrency", "http_client", "http_async_client", "rate_limiter"}


def _lazy(module: str, cls: str, package: str) -> Callable[..., Any]:
    def factory(**kwargs: Any) -> Any:
        try:
            mod = __import__(module, fromlist=[cls])
        except ImportError as exc:
            raise BackendUnavailable(f"{package} is not installed: pip install {package}") from exc
        return getattr(mod, cls)(**kwargs)

    factory.__doc__ = f"`{module}.{cls}(**kwargs)`"
    return factory


CHAT_MODELS.register("openai_chat", _lazy("langchain_openai", "ChatOpenAI", "langchain-openai"))
CHAT_MODELS.register("azure_openai_chat", _lazy("langchain_openai", "AzureChatOpenAI", "langchain-openai"))
CHAT_MODELS.register("ollama_chat", _lazy("langchain_ollama", "ChatOllama", "langchain-ollama"))
CHAT_MODELS.register("anthropic_chat", _lazy("langchain_anthropic", "ChatAnthropic", "langchain-anthropic"))


class LangChainConfig(BackendConfig):
    """A LangChain chat model from a registered factory."""

    backend: str = Field("langchain", description="Registered backend name.")
    factory: str = Field(description="Registered chat-model factory: openai_chat, azure_openai_chat, ollama_chat, anthropic_chat.")
    kwargs: dict[str, Any] = Field(default_factory=dict,
                                   description="Factory arguments (model, base_url, ...); keep API keys in the environment.")
    max_concurrency: int = Field(16, ge=1, description="Most calls in flight at once.")
    structured: Literal["auto", "json_schema", "json_object", "prompt"] = Field(
        "auto", description="How to get JSON: auto tries with_structured_output(json_schema), then an OpenAI-style "
        "response_format json_object with the schema (llama.cpp), then the schema in the prompt.")
    request_params: bool = Field(True, description="Pass each request's max_tokens, temperature, top_p, seed and stop to the call.")


def to_langchain(messages: list[dict[str, Any]]) -> list[Any]:
    """OpenAI-style message dicts (string or part-list content, image parts included) -> LangChain messages."""
    from langchain_core.messages import convert_to_messages

    return convert_to_messages([{"role": m["role"], "content": m.get("content") or ""} for m in messages])


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content or [])


def _openai_compatible(model: Any) -> bool:
    try:
        from langchain_openai.chat_models.base import BaseChatOpenAI
    except ImportError:
        return False
    return isinstance(model, BaseChatOpenAI)


def _partial_text(exc: Exception) -> str | None:
    try:
        return exc.completion.choices[0].message.content  # type: ignore[attr-defined]
    except (AttributeError, IndexError, TypeError):
        return None


@BACKENDS.register("langchain")
class LangChainBackend(Backend):
    """Wrap any LangChain `BaseChatModel`; calls run concurrently with per-item errors."""

    config_cls = LangChainConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({"json_schema", "images"})
    not_identity = frozenset({"max_concurrency"})

    def __init__(self, config: LangChainConfig):
        super().__init__(config)
        if importlib.util.find_spec("langchain_core") is None:
            raise BackendUnavailable("langchain-core is not installed: pip install 'agentlab[langchain]'")
        try:
            factory = CHAT_MODELS.get(config.factory)
        except UnknownKey as exc:
            raise BackendError(f"models: {exc}") from None
        self.model = factory(**config.kwargs)
        self._secrets = [str(v) for k, v in config.kwargs.items() if _SECRET.search(k) and v]
        self.batch_size = config.max_concurrency * 8
        self._bg = BackgroundLoop("agentlab-langchain")
        self._mode: str | None = None if config.structured == "auto" else config.structured
        self._setup_lock = threading.Lock()
        self._sem: Any = None
        self._schema_runnables: dict[str, Any] = {}

    def identity(self) -> dict[str, Any]:
        """Factory and kwargs, without secrets, concurrency knobs or URL credentials."""
        ident = super().identity()
        kwargs = {k: v for k, v in self.config.kwargs.items() if not _SECRET.search(k) and k not in _KNOBS}
        for k in ("base_url", "openai_api_base", "azure_endpoint"):
            if isinstance(kwargs.get(k), str):
                kwargs[k] = public_url(kwargs[k])
        ident["kwargs"] = kwargs
        return ident

    async def _setup(self) -> None:
        import asyncio

        self._sem = asyncio.Semaphore(self.config.max_concurrency)
        self._probe = asyncio.Lock()

    def generate(self, requests: list[ChatRequest], on_result: OnResult | None = None) -> list[ChatResult]:
        """Call the model for every request concurrently; `on_result` runs on this thread."""
        with self._setup_lock:
            if self._sem is None:
                self._bg.run(self._setup())
        return run_items(self._bg, len(requests), lambda i: self._one(requests[i]), on_result, describe=self._scrub)

    def close(self) -> None:
        self._sem = None
        self._bg.close()

    def _call_kwargs(self, req: ChatRequest) -> dict[str, Any]:
        if not self.config.request_params:
            return {}
        kw: dict[str, Any] = dict(max_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p)
        if req.seed is not None:
            kw["seed"] = req.seed
        if req.stop:
            kw["stop"] = req.stop
        return kw

    async def _one(self, req: ChatRequest) -> ChatResult:
        if req.json_schema is None:
            async with self._sem:
                return await self._invoke(self.model, req.messages, req, None)
        if self._mode is None:
            async with self._probe:  # the first structured call finds what works; the others wait for it
                if self._mode is None:
                    return await self._structured(req, "json_schema", learn=True)
        return await self._structured(req, self._mode, learn=self.config.structured == "auto")

    async def _structured(self, req: ChatRequest, mode: str, learn: bool) -> ChatResult:
        while True:
            runnable, extra = self.model, {}
            if mode == "json_schema":
                runnable = self._with_schema(req.json_schema)
            elif mode == "json_object":  # OpenAI-compatible servers only (llama.cpp's enforces the schema)
                runnable = self.model if _openai_compatible(self.model) else None
                extra = {"response_format": {"type": "json_object", "schema": req.json_schema}}
            if runnable is None and learn:
                mode = MODES[MODES.index(mode) + 1]
                continue
            if runnable is None:
                return ChatResult(error=f"{type(self.model).__name__} has no with_structured_output", structured=mode)
            messages = req.messages if mode == "json_schema" else with_schema_prompt(req.messages, req.json_schema or {})
            async with self._sem:
                res = await self._invoke(runnable, messages, req, mode, refusals=learn and mode != "prompt", extra=extra)
            if res is None:  # refused: try the next way
                log.warning("%s refused structured output %s; using %s from now on", self.config.factory, mode,
                            MODES[MODES.index(mode) + 1])
                mode = MODES[MODES.index(mode) + 1]
                continue
            if learn and res.ok:
                self._mode = mode
            return res

    def _with_schema(self, schema: dict[str, Any] | None) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._schema_runnables:
            try:
                self._schema_runnables[key] = self.model.with_structured_output(schema, method="json_schema")
            except (NotImplementedError, TypeError, ValueError) as exc:
                log.debug("with_structured_output(method='json_schema') unavailable: %s", exc)
                self._schema_runnables[key] = None
        return self._schema_runnables[key]

    async def _invoke(self, runnable: Any, messages: list[dict[str, Any]], req: ChatRequest, mode: str | None,
                      refusals: bool = False, extra: dict[str, Any] | None = None) -> ChatResult | None:
        """One call; returns None when `refusals` and the server rejected the structured-output format."""
        from langchain_core.callbacks import UsageMetadataCallbackHandler
        from langchain_core.exceptions import OutputParserException

        usage = UsageMetadataCallbackHandler()
        text = error = None
        try:
            out = await runnable.ainvoke(to_langchain(messages), config={"callbacks": [usage]},
                                         **self._call_kwargs(req), **(extra or {}))
            text = _text(out.content) if hasattr(out, "content") else json.dumps(out if isinstance(out, dict) else out.model_dump())
        except OutputParserException as exc:  # keep the raw answer: the engine repairs or retries it
            text = exc.llm_output
        except Exception as exc:
            text = _partial_text(exc)  # e.g. openai's LengthFinishReasonError carries the cut-off answer
            if refusals and (is_refusal(exc) or isinstance(exc, NotImplementedError)):
                return None
            if text is None:
                error = f"{type(exc).__name__}: {self._scrub(exc)}"
        pt = sum(u.get("input_tokens", 0) for u in usage.usage_metadata.values())
        ct = sum(u.get("output_tokens", 0) for u in usage.usage_metadata.values())
        return ChatResult(text=text, error=error, prompt_tokens=pt, completion_tokens=ct, cost_usd=self.cost(pt, ct),
                          structured=mode)

    def _scrub(self, exc: Exception | str) -> str:
        text = " ".join(str(exc).split())[:300]
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @classmethod
    def check(cls, config: LangChainConfig) -> str | None:
        if importlib.util.find_spec("langchain_core") is None:
            return "langchain-core not installed (pip install 'agentlab[langchain]')"
        factory = getattr(config, "factory", None)
        if factory is not None and factory not in CHAT_MODELS:
            return f"unknown LangChain factory {factory!r}; known: {', '.join(CHAT_MODELS.names())}"
        return None
