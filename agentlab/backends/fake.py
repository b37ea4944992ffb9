"""A scripted backend for orchestration tests only (never a default, never in recipes/)."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import ClassVar

from pydantic import Field, model_validator

from agentlab.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    ChatRequest,
    ChatResult,
    OnResult,
)


class FakeConfig(BackendConfig):
    """Scripted answers: the first rule whose substring occurs in the last user message wins."""

    backend: str = "fake"
    rules: dict[str, str] = Field(default_factory=dict, description="substring (case-insensitive) -> answer text")
    default: str = Field("ok", description="Answer when no rule matches.")
    fail_on: str | None = Field(None, description="Requests containing this substring fail with an error.")
    model: str = Field("fake", description="A model name, part of the cache identity.")
    delay: float = Field(0.0, ge=0, description="Seconds to wait per call (to test interruption).")
    call_log: str | None = Field(None, description="Append one line per call (the last user message) to this file.")
    crash_on_call: int | None = Field(
        None, ge=1, description="Kill this process (os._exit) at this instance's Nth call, once: to test lost workers.")
    crash_marker: str | None = Field(
        None, description="With crash_on_call: the file created when the crash happens, so only one process crashes, once.")

    @model_validator(mode="after")
    def _marker(self) -> FakeConfig:
        if self.crash_on_call is not None and not self.crash_marker:
            raise ValueError("crash_on_call needs crash_marker (a file path)")
        return self


@BACKENDS.register("fake")
class FakeBackend(Backend):
    """Answers from rules; for `options` requests the matching option scores highest."""

    config_cls = FakeConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({"json_schema", "options", "images"})
    calls = 0  # class-wide call counter for tests
    not_identity = frozenset({"delay", "call_log", "crash_on_call", "crash_marker"})
    _lock = threading.Lock()

    def _answer(self, req: ChatRequest) -> str:
        last = next((m for m in reversed(req.messages) if m.get("role") == "user"), {"content": ""})
        content = last["content"] if isinstance(last["content"], str) else json.dumps(last["content"])
        for needle, answer in self.config.rules.items():
            if needle.lower() in content.lower():
                return answer
        return self.config.default

    def _maybe_crash(self) -> None:
        """Exit the whole process without cleanup at the configured call, once (the marker file claims it)."""
        cfg = self.config
        if cfg.crash_on_call is None or self._n != cfg.crash_on_call:
            return
        try:
            os.close(os.open(cfg.crash_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(17)

    def generate(self, requests: list[ChatRequest], on_result: OnResult | None = None) -> list[ChatResult]:
        out = []
        for i, req in enumerate(requests):
            with self._lock:
                FakeBackend.calls += 1
                self._n = getattr(self, "_n", 0) + 1
                self._maybe_crash()
            if self.config.delay:
                time.sleep(self.config.delay)
            text = self._answer(req)
            blob = json.dumps(req.messages)
            if self.config.call_log:
                with open(self.config.call_log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(req.messages[-1]["content"]) + "\n")
                    f.flush()
            if self.config.fail_on and self.config.fail_on in blob:
                res = ChatResult(error="scripted failure")
            elif req.options:
                scores = {o: (0.0 if o.strip().lower() == text.strip().lower() else -5.0) for o in req.options}
                res = ChatResult(option_logprobs=scores, text=max(scores, key=scores.get), prompt_tokens=len(blob) // 4)
            else:
                res = ChatResult(text=text, prompt_tokens=len(blob) // 4, completion_tokens=len(text) // 4)
            res.cost_usd = self.cost(res.prompt_tokens, res.completion_tokens)
            if on_result:
                on_result(i, res)
            out.append(res)
        return out
