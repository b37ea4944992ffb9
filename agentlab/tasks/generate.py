"""`generate`: render a Jinja prompt per row, call a model, write the parsed fields as new columns."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, create_model, field_validator

from agentlab.backends.base import ChatRequest
from agentlab.prompts import row_variables
from agentlab.tasks.base import TASKS, LLMTask, TaskConfig

_TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "list[str]": list[str]}


class GenerateConfig(TaskConfig):
    """Prompt a model once per row."""

    type: Literal["generate"] = "generate"
    prompt: str = Field(description="Jinja template file; row columns are variables (and `row` is the whole row).")
    model: str = Field("default", description="Model name under `models:`.")
    system: str | None = Field(None, description="Optional system message.")
    schema_: dict[str, str] | None = Field(
        None, alias="schema",
        description="Structured output: field -> type (str, int, float, bool, list[str], or choices `a|b|c`). "
        "Without it the answer text goes to `output_field`.",
    )
    output_field: str = Field("output", description="Column for the free-text answer (when no schema).")
    max_tokens: int = Field(256, ge=1, description="Max tokens to generate.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy).")
    seed: int | None = Field(None, description="Sampling seed (default: the recipe seed).")

    @field_validator("schema_")
    @classmethod
    def _types(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for name, kind in (v or {}).items():
            if kind not in _TYPES and "|" not in kind:
                raise ValueError(f"field {name!r} has unknown type {kind!r}; use one of {', '.join(_TYPES)} or choices like `yes|no`")
        return v


def schema_model(fields: dict[str, str], name: str = "Answer") -> type[BaseModel]:
    """A pydantic model from `{field: type}` (choices `a|b` become an enum)."""
    spec: dict[str, Any] = {}
    for field, kind in fields.items():
        typ = _TYPES.get(kind) or Literal[tuple(c.strip() for c in kind.split("|"))]  # type: ignore[misc]
        spec[field] = (typ, ...)
    return create_model(name, **spec)


@TASKS.register("generate")
class GenerateTask(LLMTask):
    """The generic task: one templated call per row."""

    config_cls = GenerateConfig
    template_names: ClassVar[dict[str, str]] = {"row": "the whole row"}

    def __init__(self, config: GenerateConfig):
        super().__init__(config)
        self.schema = schema_model(config.schema_) if config.schema_ else None
        self._prompt = None

    def prepare(self, ctx):
        self._prompt = ctx.load_prompt(self.config.prompt)
        self._seed = self.config.seed if self.config.seed is not None else ctx.seed

    def preflight(self, ctx, rows):
        self.prepare(ctx)
        self.build(rows[0])

    def build(self, row: dict[str, Any]) -> ChatRequest:
        messages = self._prompt.messages(**row_variables(row))
        if self.config.system:
            messages = [{"role": "system", "content": self.config.system}, *messages]
        return ChatRequest(messages=messages, max_tokens=self.config.max_tokens,
                           temperature=self.config.temperature, seed=self._seed)

    def parse(self, value: Any, row: dict[str, Any]) -> dict[str, Any]:
        if isinstance(value, BaseModel):
            return value.model_dump()
        return {self.config.output_field: value.strip() if isinstance(value, str) else value}
