"""Jinja prompt templates (sandboxed): row values are data, never template code or chat roles.

A template renders to one user message, or to several messages when its *source* has role
markers on their own lines: ``<|system|>``, ``<|user|>``, ``<|assistant|>``. Markers are found in
the template source before rendering (each becomes a private sentinel), so a row value holding
``<|system|>`` or ``{{ 7*7 }}`` stays verbatim text inside its message.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    meta,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agentlab.errors import ConfigError

_ROLE = re.compile(r"^<\|(system|user|assistant)\|>[ \t]*$", re.MULTILINE)
_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
#: per-process secret in the role sentinels: row text cannot forge one
_NONCE = secrets.token_hex(8)
_SENTINEL = re.compile("\x00" + _NONCE + r":(system|user|assistant)\x00")


def _mark_roles(source: str) -> str:
    """The template source with each role-marker line replaced by its sentinel."""
    return _ROLE.sub(lambda m: f"\x00{_NONCE}:{m.group(1)}\x00", source)


class Prompt:
    """A compiled template with its source hash."""

    def __init__(self, source: str, name: str = "<inline>"):
        self.source, self.name = source, name
        self.hash = hashlib.sha256(source.encode()).hexdigest()[:16]
        try:
            ast = _ENV.parse(_mark_roles(source))
            self._tpl = _ENV.from_string(ast)
        except TemplateSyntaxError as exc:
            raise ConfigError(f"template {name}, line {exc.lineno}: {exc.message}; fix the Jinja syntax") from None
        except TemplateError as exc:
            raise ConfigError(f"template {name}: {exc}") from None
        #: the top-level variables the template reads (e.g. `text`, `row`, `classes`)
        self.variables: frozenset[str] = frozenset(meta.find_undeclared_variables(ast))

    def _render(self, variables: dict[str, Any]) -> str:
        try:
            return self._tpl.render(**variables)
        except UndefinedError as exc:
            raise ConfigError(f"template {self.name}: {exc.message}; available: {', '.join(sorted(variables))}") from None
        except TemplateError as exc:
            raise ConfigError(f"template {self.name}: {exc}") from None

    def render(self, **variables: Any) -> str:
        """Render to text (role markers kept as written). Missing variables raise ConfigError naming them."""
        return _SENTINEL.sub(lambda m: f"<|{m.group(1)}|>", self._render(variables)).strip()

    def messages(self, **variables: Any) -> list[dict[str, str]]:
        """Render to chat messages: the template's own role markers split the text (default role: user)."""
        parts = _SENTINEL.split(self._render(variables))
        if len(parts) == 1:
            return [{"role": "user", "content": parts[0].strip()}]
        out = []
        if parts[0].strip():
            out.append({"role": "user", "content": parts[0].strip()})
        for role, content in zip(parts[1::2], parts[2::2]):
            if content.strip():
                out.append({"role": role, "content": content.strip()})
        return out


def row_variables(row: dict[str, Any], **supplied: Any) -> dict[str, Any]:
    """Template variables for one row: its columns, then what the task supplies (which wins), and `row` itself.

    Tasks declare the names they supply (`Task.template_names`) so the runner rejects a clashing column
    before any work starts; this merge can therefore never fail on a duplicate name.
    """
    return {**row, **supplied, "row": row}


@lru_cache(maxsize=256)
def _load(path: str, mtime: float) -> Prompt:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"template {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    return Prompt(text, name=path)


def load_prompt(path: str | Path) -> Prompt:
    """Load (and cache) a template file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"template {str(p)!r} not found")
    return _load(str(p), p.stat().st_mtime)
