"""Jinja prompt templates (sandboxed): row values are data, never template code.

A template renders to one user message, or to several messages when it uses role markers
on their own lines: ``<|system|>``, ``<|user|>``, ``<|assistant|>``.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agentlab.errors import ConfigError

_ROLE = re.compile(r"^<\|(system|user|assistant)\|>\s*$", re.MULTILINE)
_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


class Prompt:
    """A compiled template with its source hash."""

    def __init__(self, source: str, name: str = "<inline>"):
        self.source, self.name = source, name
        self.hash = hashlib.sha256(source.encode()).hexdigest()[:16]
        try:
            self._tpl = _ENV.from_string(source)
        except TemplateError as exc:
            raise ConfigError(f"template {name}: {exc}") from None

    def render(self, **variables: Any) -> str:
        """Render to text. Missing variables raise ConfigError naming them."""
        try:
            return self._tpl.render(**variables).strip()
        except UndefinedError as exc:
            raise ConfigError(f"template {self.name}: {exc.message}; available: {', '.join(sorted(variables))}") from None

    def messages(self, **variables: Any) -> list[dict[str, str]]:
        """Render to chat messages (role markers split the text; default role: user)."""
        text = self.render(**variables)
        parts = _ROLE.split(text)
        if len(parts) == 1:
            return [{"role": "user", "content": text}]
        out = []
        if parts[0].strip():
            out.append({"role": "user", "content": parts[0].strip()})
        for role, content in zip(parts[1::2], parts[2::2]):
            if content.strip():
                out.append({"role": role, "content": content.strip()})
        return out


@lru_cache(maxsize=256)
def _load(path: str, mtime: float) -> Prompt:
    return Prompt(Path(path).read_text(encoding="utf-8"), name=path)


def load_prompt(path: str | Path) -> Prompt:
    """Load (and cache) a template file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"template {str(p)!r} not found")
    return _load(str(p), p.stat().st_mtime)
