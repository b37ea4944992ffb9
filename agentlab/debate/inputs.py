"""What the judge is given besides the row: the definition and the in-context examples."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.debate.config import AnswerConfig, JudgeConfig, yaml_words
from agentlab.debate.parse import match_choice
from agentlab.errors import ConfigError
from agentlab.sources import read_jsonl

if TYPE_CHECKING:
    from agentlab.engine import RunContext


@dataclass
class Example:
    """One labeled in-context example for the judge."""

    text: str | None
    answer: str
    category: str | None = None
    reason: str | None = None
    images: list[str] = field(default_factory=list)


def _resolve(ctx: RunContext, rel: str) -> Path:
    return ctx.recipe.resolve(rel) if ctx.recipe is not None else Path(rel)


def load_definition(ctx: RunContext, value: str | None) -> str | None:
    """The definition text: read from a .md/.txt file (hash recorded like a prompt's), or the inline text itself."""
    if value is None or not value.strip():
        return None
    if "\n" in value.strip() or not value.strip().lower().endswith((".md", ".txt")):
        return value.strip()
    path = _resolve(ctx, value.strip())
    if not path.is_file():
        raise ConfigError(f"definition file {value!r} not found; give a path relative to the recipe, or write the definition inline")
    text = path.read_text(encoding="utf-8").strip()
    ctx.prompts[value] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return text


def load_examples(ctx: RunContext, judge: JudgeConfig, answer: AnswerConfig) -> list[Example]:
    """The judge's in-context examples from JSONL; every `answer` must be one of the choices."""
    if not judge.examples:
        return []
    path = _resolve(ctx, judge.examples)
    if not path.is_file():
        raise ConfigError(f"judge.examples file {judge.examples!r} not found (relative to the recipe or the current directory)")
    out = [_example(obj, answer, f"{judge.examples} example {n}") for n, obj in enumerate(read_jsonl(path), 1)]
    ctx.prompts[judge.examples] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return out[: judge.max_examples] if judge.max_examples is not None else out


def _example(obj: Any, answer: AnswerConfig, where: str) -> Example:
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected an object with `text` and `answer`")
    choice = match_choice(yaml_words(obj.get("answer")), answer.choices)
    if choice is None:
        raise ConfigError(f"{where}: answer {obj.get('answer')!r} is not one of the choices {answer.choices}")
    images = obj.get("frames") or ([obj["image"]] if obj.get("image") else [])
    if obj.get("text") is None and not images:
        raise ConfigError(f"{where}: needs `text` or `image`/`frames`")
    return Example(obj.get("text"), choice, obj.get("category"), obj.get("reason"), [str(i) for i in images])


def verdict_text(ex: Example, answer: AnswerConfig, mode: str) -> str:
    """How the judge answers this example: 'Yes, <category>' / 'No, <reason>', or JSON in json mode."""
    head = ex.answer[:1].upper() + ex.answer[1:]
    is_pos = ex.answer == answer.positive_choice
    if mode == "json":
        obj: dict[str, Any] = {"decision": ex.answer}
        if answer.category:
            obj["category"] = ex.category if is_pos else None
        if answer.reason:
            obj["reason"] = ex.reason or ""
        return json.dumps(obj, ensure_ascii=False)
    detail = ex.category if (answer.category and is_pos and ex.category) else ex.reason if answer.reason else None
    return f"{head}, {detail}" if detail else head
