"""The backend protocol: a batch of chat requests in, one result per request out.

A backend implements one method, :meth:`Backend.generate`. Per-item failures are results
(``ChatResult.error``), never exceptions; only a backend that cannot work at all raises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from agentlab.config import StrictModel
from agentlab.registry import Registry


class ChatRequest(BaseModel):
    """One chat call. Messages are OpenAI-style; content may be a string or a list of parts."""

    messages: list[dict[str, Any]]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = Field(None, description="Constrain the answer to this JSON schema.")
    options: list[str] | None = Field(
        None, description="Score these completions by log-likelihood instead of generating."
    )
    logprobs: int = Field(0, description="Top-k token log-probs to return for the first tokens (0 = none).")

    def cache_key(self, identity: dict[str, Any]) -> str:
        """Content address of this call for a backend identity (no secrets in either)."""
        payload = {"backend": identity, "request": self.model_dump(mode="json")}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def has_images(self) -> bool:
        """True when any message carries an image part."""
        return any(
            isinstance(m.get("content"), list) and any(p.get("type") == "image_url" for p in m["content"])
            for m in self.messages
        )


class ChatResult(BaseModel):
    """The outcome of one call: text and/or option log-probs, or an error with what was received."""

    text: str | None = None
    error: str | None = None
    option_logprobs: dict[str, float] | None = None
    top_logprobs: list[dict[str, float]] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    structured: str | None = Field(None, description="How structure was enforced: json_schema, json_object, grammar, prompt.")
    attempts: int = 1
    cached: bool = False

    @property
    def ok(self) -> bool:
        """True when the call produced an answer."""
        return self.error is None


class BackendConfig(StrictModel):
    """Fields common to every backend config."""

    backend: str = Field(description="Registered backend name: embedded, openai, vllm, langchain, fake.")
    price_per_1k_input: float = Field(0.0, ge=0, description="USD per 1,000 prompt tokens, for cost accounting.")
    price_per_1k_output: float = Field(0.0, ge=0, description="USD per 1,000 completion tokens, for cost accounting.")


OnResult = Callable[[int, ChatResult], None]


class Backend:
    """Base class of backends. Subclasses set `config_cls` and implement `generate`.

    Capabilities tell tasks what the backend can do natively; tasks fall back otherwise:
    ``json_schema`` (constrained decoding), ``options`` (log-likelihood scoring of given
    completions), ``logprobs`` (top-k token log-probs), ``images`` (image parts in messages).
    """

    config_cls: ClassVar[type[BackendConfig]] = BackendConfig
    capabilities: ClassVar[frozenset[str]] = frozenset()
    batch_size: int = 16
    #: config fields that never enter cache keys or outputs (secrets, concurrency knobs)
    not_identity: ClassVar[frozenset[str]] = frozenset({"api_key"})

    def __init__(self, config: BackendConfig):
        self.config = config

    def identity(self) -> dict[str, Any]:
        """What makes an answer reproducible: backend, model and settings. Never a secret."""
        skip = {"price_per_1k_input", "price_per_1k_output", *self.not_identity}
        return self.config.model_dump(mode="json", exclude=skip)

    def generate(self, requests: list[ChatRequest], on_result: OnResult | None = None) -> list[ChatResult]:
        """Answer every request; call `on_result(i, result)` as each one completes, if given."""
        raise NotImplementedError

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD cost of one call from the configured prices."""
        return (prompt_tokens * self.config.price_per_1k_input + completion_tokens * self.config.price_per_1k_output) / 1000

    def rate_limits(self) -> dict[str, float]:
        """Client-side rate limits by kind (e.g. ``{"rpm": 500}``, per minute); executors share them across workers."""
        return {}

    def share_limits(self, buckets: dict[str, Any]) -> None:
        """Take these shared token buckets (same kinds as :meth:`rate_limits`) instead of per-process ones.

        A bucket has ``await take(n)`` and ``give(n)``, like :class:`agentlab.backends.aio.TokenBucket`;
        the ray executor passes buckets held by one Ray actor, so all workers draw on one budget.
        """

    def close(self) -> None:
        """Release resources (servers, engines). Safe to call twice."""

    @classmethod
    def check(cls, config: BackendConfig) -> str | None:
        """Return None when this backend is usable here, else a one-line reason (for `agentlab models`)."""
        return None


def _load_builtins() -> None:
    from agentlab.backends import embedded, fake, langchain, openai, vllm  # noqa: F401


BACKENDS: Registry[type[Backend]] = Registry("backend", _load_builtins)


def image_error(backend: str) -> str:
    """The per-item error text for an image request sent to a text-only backend."""
    return (
        f"backend {backend!r} does not accept images; use an OpenAI-compatible VLM "
        "(models.<name>.backend: openai with a vision model) or vllm with a multimodal model"
    )
