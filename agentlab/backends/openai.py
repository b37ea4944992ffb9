"""`openai`: any OpenAI-compatible chat server (OpenAI, vLLM, llama.cpp's server, Ollama, ...).

Calls run on a background event loop owned by the backend, at most ``max_in_flight`` at once,
optionally held to requests/tokens per minute. Transient failures (429/503 with ``Retry-After``,
5xx, timeouts, dropped connections, unreadable bodies) are retried with exponential backoff and
jitter, a bounded number of times; then the item becomes an error result. Each result is handed
to ``on_result`` on the caller's thread as soon as it arrives, so the engine caches it at once.

Structured output: ``json_schema`` response_format where the server accepts it, else
``json_object`` with the schema (llama.cpp's server), else the schema in the prompt. With
``structured: auto`` the backend learns the mode once per (server, model) -- a backend instance
talks to one model on one server -- and only from an answer that says the response_format is
unsupported (see :func:`is_refusal`); a server fault, a timeout or a dropped connection never
downgrades it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import json
import logging
import os
import random
import re
import threading
import time
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr

from agentlab.backends.aio import BackgroundLoop, TokenBucket, run_items
from agentlab.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    ChatRequest,
    ChatResult,
    OnResult,
)
from agentlab.errors import BackendUnavailable, RateLimitError, TransportError

log = logging.getLogger("agentlab")
OPENAI_URL = "https://api.openai.com/v1"
UNSEEN_LOGPROB = -30.0  # an option none of whose prefixes is among the top tokens
FALLBACK = {"json_schema": "json_object", "json_object": "prompt"}
_RETRY_STATUS = {408, 409, 425, 429}
_UNSUPPORTED_STATUS = {400, 404, 415, 422, 501}  # "your request asks for something I do not do"
_FEATURE_WORDS = ("response_format", "json_schema", "json_object", "structured output")


class OpenAIConfig(BackendConfig):
    """An OpenAI-compatible server and how hard to drive it."""

    backend: str = Field("openai", description="Registered backend name.")
    model: str = Field(description="Model name as the server knows it (e.g. gpt-4o-mini, or the name vLLM/Ollama serve).")
    base_url: str | None = Field(None, description="API root, e.g. http://localhost:8000/v1 for vLLM; default: OpenAI's.")
    api_key: SecretStr | None = Field(None, description="API key (default: $api_key_env). Never cached, logged or written.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key.")
    max_in_flight: int = Field(64, ge=1, description="Most requests in flight at once.")
    requests_per_minute: float | None = Field(None, gt=0, description="Client-side request rate limit (none by default).")
    tokens_per_minute: float | None = Field(None, gt=0, description="Client-side token rate limit (prompt estimate + max_tokens).")
    timeout: float = Field(120.0, gt=0, description="Seconds before one HTTP attempt times out (then it is retried).")
    max_retries: int = Field(6, ge=0, description="Retries per item after the first attempt; then the item is an error result.")
    backoff_base: float = Field(1.0, ge=0, description="First retry delay in seconds; doubles per retry, with jitter.")
    backoff_max: float = Field(60.0, ge=0, description="Longest delay between retries, also the cap on a server's Retry-After.")
    structured: Literal["auto", "json_schema", "json_object", "prompt"] = Field(
        "auto", description="How to enforce a JSON schema; auto tries json_schema, then json_object, then the prompt.")
    logprobs: bool = Field(True, description="The server returns token log-probs (enables option scoring); false for e.g. Ollama.")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Extra JSON fields for every request (server-specific).")
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens", description="The length-limit field the server expects (OpenAI's reasoning models: max_completion_tokens).")
    transport: Literal["auto", "aiohttp", "openai"] = Field(
        "auto", description="HTTP client: `aiohttp` (lean: one pooled session, plain-dict answers; far less CPU a call), "
        "`openai` (the official client), `auto` = aiohttp when installed. Retries, Retry-After and rate limits are the same.")


def is_local(base_url: str | None) -> bool:
    """True for loopback, private-network and ``.local`` hosts (servers that need no API key)."""
    host = (urlsplit(base_url).hostname or "") if base_url else ""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def public_url(base_url: str | None) -> str:
    """The server URL without credentials or query string (safe for identities and logs)."""
    parts = urlsplit((base_url or OPENAI_URL).rstrip("/"))
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def api_key_of(config: OpenAIConfig) -> str | None:
    """The configured key, else the environment's, else None."""
    if config.api_key is not None:
        return config.api_key.get_secret_value()
    return os.environ.get(config.api_key_env) or None


def option_logprob(option: str, top: list[tuple[str, float]]) -> float:
    """Log-prob of the best top token that is a case-insensitive prefix of the option."""
    want = option.strip().lower()
    for token, lp in sorted(top, key=lambda t: -t[1]):
        tok = token.strip().lower()
        if tok and want.startswith(tok):
            return lp
    return UNSEEN_LOGPROB


def with_schema_prompt(messages: list[dict[str, Any]], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Append a 'reply with JSON matching this schema' instruction to the last user message."""
    note = "\n\nReply with only a JSON object that matches this JSON schema:\n" + json.dumps(schema)
    out = [dict(m) for m in messages]
    for m in reversed(out):
        if m.get("role") == "user":
            c = m.get("content")
            m["content"] = c + note if isinstance(c, str) else [*(c or []), {"type": "text", "text": note}]
            return out
    return [*out, {"role": "user", "content": note.strip()}]


def retry_after_of(exc: Exception) -> float | None:
    """Seconds from a response's ``retry-after-ms`` / ``Retry-After`` header, if any."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def is_refusal(exc: Exception) -> bool:
    """True when the answer says the response_format itself is unsupported (so a simpler one may work).

    That is a 4xx/501 whose message names the feature (OpenAI: 400 "'response_format' of type 'json_schema'
    is not supported with this model"; vLLM, Ollama: 400/422). A 5xx is a server fault and never counts,
    with one exception: llama-cpp-python's server answers a request body it cannot validate with HTTP 500,
    so a 500 that is a validation error on ``response_format`` says "unsupported" too. Timeouts and
    dropped connections carry no status and never count.
    """
    status = _status(exc)
    text = f"{getattr(exc, 'message', '')} {getattr(exc, 'body', '')}".lower()
    if not any(w in text for w in _FEATURE_WORDS):
        return False
    if status in _UNSUPPORTED_STATUS:
        return True
    return status == 500 and "validation error" in text and "response_format" in text


def is_transient(exc: Exception) -> bool:
    """Worth retrying: rate limits, 5xx, timeouts, connection errors, unreadable bodies."""
    import openai

    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError, ValueError, _BadResponse)):
        return True  # APITimeoutError is an APIConnectionError; JSONDecodeError is a ValueError
    status = _status(exc)
    return status is not None and (status in _RETRY_STATUS or status >= 500)


def transport_error(exc: Exception) -> TransportError | None:
    """The typed form of a failed attempt that is worth retrying, or None when retrying cannot help.

    A 429 becomes :class:`RateLimitError`; other transient failures :class:`TransportError`; both carry
    the server's ``Retry-After`` (seconds) when it sent one.
    """
    if not is_transient(exc):
        return None
    status, after = _status(exc), retry_after_of(exc)
    if status == 429:
        return RateLimitError(_short(exc), retry_after=after)
    return TransportError(_short(exc), status=status, retry_after=after)


class _BadResponse(Exception):
    """A 2xx answer without choices."""


@BACKENDS.register("openai")
class OpenAIBackend(Backend):
    """An OpenAI-compatible server through the official `openai` client, many calls in flight."""

    config_cls = OpenAIConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({"json_schema", "options", "logprobs", "images"})
    not_identity = frozenset({"api_key", "api_key_env", "max_in_flight", "requests_per_minute", "tokens_per_minute",
                              "timeout", "max_retries", "backoff_base", "backoff_max", "max_tokens_param", "transport"})
    overlaps: ClassVar[bool] = True  # calls run on an event loop: two batches may share the in-flight slots

    def __init__(self, config: OpenAIConfig):
        super().__init__(config)
        if importlib.util.find_spec("openai") is None:
            raise BackendUnavailable("the openai package is not installed: pip install openai")
        key = api_key_of(config)
        if key is None and not is_local(config.base_url):
            raise BackendUnavailable(f"no API key for {public_url(config.base_url)}: set {config.api_key_env} (or api_key)")
        self._key = key or "not-needed"  # local servers ignore it; the client insists on one
        self.server = public_url(config.base_url)
        caps = {"images"} | ({"json_schema"} if config.structured != "prompt" else set())
        self.capabilities = frozenset(caps | ({"options", "logprobs"} if config.logprobs else set()))
        self.batch_size = config.max_in_flight * 8  # results are cached one by one, so big batches lose nothing
        self._bg = BackgroundLoop("agentlab-openai")
        self._setup_lock = threading.Lock()
        self._client: Any = None
        self._cooldown_until = 0.0
        self._shared: dict[str, Any] = {}  # token buckets shared with other workers (ray executor)
        # structured: auto -- the mode this model on this server accepted, and whether the first call probed it
        self._mode: str | None = None
        self._probed = False

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["base_url"] = self.server
        return ident

    async def _setup(self) -> None:
        import openai

        from agentlab.backends import http

        if self.config.transport == "aiohttp" or (self.config.transport == "auto" and http.available()):
            self._client = http.LeanClient(self.config.base_url or OPENAI_URL, self._key, self.config.timeout,
                                           self.config.max_in_flight)
        else:  # retries are ours: bounded, shared cooldown, per-item errors
            self._client = openai.AsyncOpenAI(api_key=self._key, base_url=self.config.base_url, timeout=self.config.timeout,
                                              max_retries=0)
        self._sem = asyncio.Semaphore(self.config.max_in_flight)
        self._probe = asyncio.Lock()
        rpm, tpm = self.config.requests_per_minute, self.config.tokens_per_minute
        self._rpm = self._shared.get("rpm") or (TokenBucket(rpm) if rpm else None)
        self._tpm = self._shared.get("tpm") or (TokenBucket(tpm) if tpm else None)

    def rate_limits(self) -> dict[str, float]:
        """The requests/tokens-per-minute budget, which the ray executor shares across its actors."""
        limits = {"rpm": self.config.requests_per_minute, "tpm": self.config.tokens_per_minute}
        return {kind: rate for kind, rate in limits.items() if rate}

    def share_limits(self, buckets: dict[str, Any]) -> None:
        """Draw on shared buckets (one budget for all Ray actors) instead of this process's own."""
        if self._client is not None:
            raise RuntimeError("share_limits must be called before the first request")
        self._shared = dict(buckets)

    def generate(self, requests: list[ChatRequest], on_result: OnResult | None = None) -> list[ChatResult]:
        """Send every request concurrently; `on_result` runs on this thread, one result at a time."""
        with self._setup_lock:
            if self._client is None:
                self._bg.run(self._setup())
        return run_items(self._bg, len(requests), lambda i: self._one(requests[i]), on_result, describe=self._describe)

    def close(self) -> None:
        client, self._client = self._client, None
        self._bg.close(client.close if client is not None else None)

    # -- one item ------------------------------------------------------------------------------------------
    async def _one(self, req: ChatRequest) -> ChatResult:
        if req.options and self.config.logprobs:
            return await self._score(req)
        if req.options:  # no log-probs here: let the model pick one option under an enum schema
            return await self._choose(req)
        if req.json_schema is not None:
            return await self._structured(req)
        resp, attempts, exc = await self._request(self._params(req), refusable=False)
        return self._finish(req, resp, exc, attempts)

    def _params(self, req: ChatRequest, mode: str | None = None) -> dict[str, Any]:
        messages = req.messages
        p: dict[str, Any] = {"model": self.config.model, self.config.max_tokens_param: req.max_tokens,
                             "temperature": req.temperature, "top_p": req.top_p}
        if req.seed is not None:
            p["seed"] = req.seed
        if req.stop:
            p["stop"] = req.stop
        if req.logprobs and self.config.logprobs:
            p.update(logprobs=True, top_logprobs=req.logprobs)
        if mode == "json_schema":
            name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(req.json_schema.get("title") or "answer"))[:64]
            p["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "schema": req.json_schema}}
        elif mode in ("json_object", "prompt"):
            messages = with_schema_prompt(messages, req.json_schema or {})
            if mode == "json_object":
                p["response_format"] = {"type": "json_object", "schema": req.json_schema}
        if self.config.extra_body:
            p["extra_body"] = self.config.extra_body
        p["messages"] = messages
        return p

    async def _structured(self, req: ChatRequest) -> ChatResult:
        if self.config.structured != "auto":
            return await self._try_modes(req, self.config.structured, learn=False)
        if not self._probed:
            async with self._probe:  # the first structured call finds what the model accepts; the rest wait
                if not self._probed:
                    try:
                        return await self._try_modes(req, "json_schema", learn=True)
                    finally:  # whatever the probe learned (maybe nothing: a server fault), the rest go concurrently
                        self._probed = True
        return await self._try_modes(req, self._mode or "json_schema", learn=True)

    async def _try_modes(self, req: ChatRequest, mode: str, learn: bool) -> ChatResult:
        attempts = 0
        while True:
            resp, n, exc = await self._request(self._params(req, mode), refusable=mode != "prompt")
            attempts += n
            if exc is not None and learn and mode in FALLBACK and is_refusal(exc):
                log.warning("%s refused response_format %s for model %s (%s); using %s from now on",
                            self.server, mode, self.config.model, self._scrub(_short(exc)), FALLBACK[mode])
                mode = FALLBACK[mode]
                self._learn(mode)
                continue
            if exc is None and learn and self._mode is None:
                self._mode = mode
            return self._finish(req, resp, exc, attempts, structured=mode)

    def _learn(self, mode: str) -> None:
        """Remember a downgrade; concurrent calls never undo one another's (json_schema > json_object > prompt)."""
        order = ["json_schema", "json_object", "prompt"]
        if self._mode is None or order.index(mode) > order.index(self._mode):
            self._mode = mode

    @property
    def structured_mode(self) -> str | None:
        """The structured-output mode learned for this model on this server (None until a structured call)."""
        return self._mode if self.config.structured == "auto" else self.config.structured

    async def _score(self, req: ChatRequest) -> ChatResult:
        """One token with the top-20 log-probs; each option gets the log-prob of its best matching first token."""
        one = req.model_copy(update={"max_tokens": 1, "logprobs": 20, "temperature": 0.0, "json_schema": None})
        resp, attempts, exc = await self._request(self._params(one), refusable=False)
        res = self._finish(one, resp, exc, attempts)
        if not res.ok:
            hint = "; set logprobs: false for this model" if "logprob" in (res.error or "").lower() else ""
            return res.model_copy(update={"error": res.error + hint})
        if not res.top_logprobs:
            return res.model_copy(update={"error": "the server returned no log-probs; set logprobs: false for this model"})
        top = list(res.top_logprobs[0].items())
        scores = {o: option_logprob(o, top) for o in req.options or []}
        return res.model_copy(update={"text": max(scores, key=scores.get), "option_logprobs": scores})

    async def _choose(self, req: ChatRequest) -> ChatResult:
        schema = {"title": "choice", "type": "object", "required": ["answer"],
                  "properties": {"answer": {"type": "string", "enum": list(req.options or [])}}}
        res = await self._structured(req.model_copy(update={"json_schema": schema, "options": None}))
        if not res.ok:
            return res
        try:
            answer = json.loads(res.text or "")["answer"]
        except (ValueError, KeyError, TypeError):
            answer = None
        if answer not in (req.options or []):
            return res.model_copy(update={"error": f"no option chosen in {res.text!r}"})
        return res.model_copy(update={"text": answer})

    # -- transport -----------------------------------------------------------------------------------------
    async def _request(self, params: dict[str, Any], refusable: bool) -> tuple[Any, int, Exception | None]:
        """One item's HTTP attempts. Returns (response or None, attempts, last error or None)."""
        estimate = _estimate_tokens(params)
        attempts = 0
        while True:
            attempts += 1
            await self._throttle(estimate)
            try:
                async with self._sem:
                    resp = await self._client.chat.completions.create(**params)
                if not getattr(resp, "choices", None):
                    raise _BadResponse("the server answered without choices")
                if self._tpm is not None and resp.usage is not None:
                    self._tpm.give(estimate - resp.usage.total_tokens)
                return resp, attempts, None
            except Exception as exc:
                err = None if refusable and is_refusal(exc) else transport_error(exc)
                if err is None or attempts > self.config.max_retries:
                    return None, attempts, exc
                delay = self._delay(err, attempts)
                log.debug("attempt %d failed (%s: %s); retrying in %.2fs", attempts, type(err).__name__,
                          self._scrub(str(err)), delay)
                await asyncio.sleep(delay)

    def _delay(self, err: TransportError, attempts: int) -> float:
        """Backoff with jitter; a server's Retry-After pauses every request to it."""
        after = err.retry_after
        if after is not None:
            after = min(after, self.config.backoff_max)
            self._cooldown_until = max(self._cooldown_until, time.monotonic() + after)
            return after * random.uniform(1.0, 1.1)
        full = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempts - 1))
        return full / 2 + random.uniform(0, full / 2)

    async def _throttle(self, estimate: int) -> None:
        wait = self._cooldown_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._rpm is not None:
            await self._rpm.take(1)
        if self._tpm is not None:
            await self._tpm.take(estimate)

    def _finish(self, req: ChatRequest, resp: Any, exc: Exception | None, attempts: int,
                structured: str | None = None) -> ChatResult:
        if exc is not None:
            what = f"HTTP {_status(exc)}" if _status(exc) else type(exc).__name__
            return ChatResult(error=f"{what} after {attempts} attempt(s): {self._scrub(_short(exc))}", attempts=attempts,
                              structured=structured)
        choice, usage = resp.choices[0], resp.usage
        pt, ct = (usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage is not None else (0, 0)
        top = None
        content = getattr(choice.logprobs, "content", None) if choice.logprobs is not None else None
        if req.logprobs and content:
            top = [{t.token: t.logprob for t in (c.top_logprobs or [])} or {c.token: c.logprob} for c in content]
        text = choice.message.content
        error = f"the model refused: {choice.message.refusal}" if text is None and getattr(choice.message, "refusal", None) else None
        return ChatResult(text=text, error=error, top_logprobs=top, prompt_tokens=pt, completion_tokens=ct,
                          cost_usd=self.cost(pt, ct), structured=structured, attempts=attempts)

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key and self._key != "not-needed" else text

    def _describe(self, exc: Exception) -> str:
        return self._scrub(_short(exc))

    @classmethod
    def check(cls, config: OpenAIConfig) -> str | None:
        if importlib.util.find_spec("openai") is None:
            return "openai not installed (pip install openai)"
        if api_key_of(config) is None and not is_local(config.base_url):
            return f"no API key for {public_url(config.base_url)}: set {config.api_key_env} or api_key"
        return None


def _short(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]


def _estimate_tokens(params: dict[str, Any]) -> int:
    """Rough tokens a call counts against a tokens/minute limit: prompt chars / 4 (+800 per image) + max_tokens."""
    chars, images = 0, 0
    for m in params.get("messages") or []:
        c = m.get("content")
        if isinstance(c, str):
            chars += len(c)
        else:
            for part in c or []:
                chars += len(part.get("text", "")) if part.get("type") == "text" else 0
                images += part.get("type") == "image_url"
    return chars // 4 + 800 * images + int(params.get("max_tokens") or params.get("max_completion_tokens") or 0)
