"""The task protocol and registry.

A task turns rows into new columns. Most tasks are "build messages + parse": subclass
:class:`LLMTask` and implement :meth:`LLMTask.build` and :meth:`LLMTask.parse`; the engine
does caching, batching, structured-output repair, progress and accounting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field

from agentlab.config import StrictModel
from agentlab.registry import Registry

if TYPE_CHECKING:
    from agentlab.backends.base import ChatRequest
    from agentlab.engine import RunContext
    from agentlab.errors import RecipeError


class TaskConfig(StrictModel):
    """Base of task configs; `type` is the registry key."""

    type: str = Field(description="Registered task name.")

    def model_refs(self) -> Iterator[tuple[str, str]]:
        """(recipe path, model name) for every model this config names, for validation."""
        yield from _walk_refs(self, "task", {"model", "to", "proposer", "grader"}, list_fields={"candidates"})

    def template_refs(self) -> Iterator[tuple[str, str]]:
        """(recipe path, template path) for every Jinja template this config names."""
        for path, value in _walk_values(self, "task"):
            if isinstance(value, str) and value.endswith((".jinja", ".j2", ".jinja2")):
                yield path, value


def _walk_values(obj: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _walk_values(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _walk_values(item, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_values(v, f"{path}.{k}")
    else:
        yield path, obj


def _walk_refs(obj: Any, path: str, names: set[str], list_fields: set[str]) -> Iterator[tuple[str, str]]:
    for p, value in _walk_values(obj, path):
        leaf = p.rsplit(".", 1)[-1]
        base = leaf.split("[", 1)[0]
        if isinstance(value, str) and (leaf in names or (base in list_fields and "[" in leaf)):
            yield p, value


@dataclass
class PlannedCalls:
    """Calls a task will make on one model, reported to `agentlab plan` before anything runs.

    Attributes:
        model: model name under `models:` (None = the single configured model).
        desc: what the calls are (a labeler's name, "debate: round 1, pro", ...).
        requests: the requests as the engine will send them (with `json_schema` set where an answer is
            structured). When `exact` is False they stand for calls built from earlier answers, which
            cannot be built ahead: they give the prompt size and the plan does not look them up in the cache.
        repeat: the calls are `requests` this many times over (e.g. one per debate round).
        added_prompt_tokens: tokens each repetition adds to every prompt (earlier turns), an upper bound.
        upper_bound: the count is a maximum (e.g. escalation, which sends only the uncertain rows).
    """

    model: str | None
    desc: str
    requests: list[ChatRequest]
    exact: bool = True
    repeat: int = 1
    added_prompt_tokens: int = 0
    upper_bound: bool = False

    @property
    def calls(self) -> int:
        """How many calls these are."""
        return len(self.requests) * self.repeat


class Task:
    """A task: `run(ctx, rows) -> rows` with new columns. Subclasses set `config_cls`."""

    config_cls: ClassVar[type[TaskConfig]] = TaskConfig
    #: a standing caveat about what this task measures, shown first under the report's Caveats and in
    #: manifest["caveats"] (run-specific ones go to `ctx.caveats`)
    caveat: ClassVar[str | None] = None
    #: True for a task whose output rows are not one per input row (e.g. autobench: a corpus in, questions out)
    changes_rows: ClassVar[bool] = False
    #: True for a task that reads the recipe's `distill:` section itself (e.g. queries trains retrievers); the
    #: runner then skips its generic distill stage, which trains on the `label` task's labels
    handles_distill: ClassVar[bool] = False
    #: template variables the task gives its templates next to the row's columns: name -> what it holds. The
    #: task's value wins (the column stays reachable as `row.<name>`); a column named so that a template reads
    #: is rejected before the run (agentlab.preflight)
    template_names: ClassVar[dict[str, str]] = {}

    def __init__(self, config: TaskConfig):
        self.config = config

    @classmethod
    def check_recipe(cls, recipe: Any) -> list[RecipeError]:
        """Cross-section checks of a validated recipe (e.g. its `distill:` / `eval:` against this task). Default: none."""
        return []

    def preflight(self, ctx: RunContext, rows: list[dict[str, Any]]) -> None:
        """Fail on what `run` would fail on before any call, with the first rows: render their prompts, read
        side files (a seed file). Runs before the run directory exists; makes no calls. Default: nothing."""

    def run(self, ctx: RunContext, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return one output row per input row (same order), with the task's columns added."""
        raise NotImplementedError

    def evaluate(self, ctx: RunContext, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Metrics against gold (recipe `eval`), merged into manifest["metrics"]. Default: none."""
        return {}

    def planned_calls(self, ctx: RunContext, rows: list[dict[str, Any]]) -> list[PlannedCalls] | None:
        """The LLM calls `run` would make on these rows, without making any (`ctx` refuses calls here);
        retries are not counted. None = this task cannot say (the plan then reports its calls as unknown)."""
        return None


class LLMTask(Task):
    """A task made of `build(row) -> ChatRequest` and `parse(result, row) -> dict` on one model."""

    #: pydantic model of the structured answer, or None for free text
    schema: ClassVar[type[BaseModel] | None] = None

    def build(self, row: dict[str, Any]) -> ChatRequest:
        """The request for one row."""
        raise NotImplementedError

    def parse(self, value: Any, row: dict[str, Any]) -> dict[str, Any]:
        """New columns from the parsed answer (a schema instance, or the text)."""
        raise NotImplementedError

    def prepare(self, ctx: RunContext) -> None:
        """Load what `build` needs (templates); called before `run` and before planning."""

    def planned_calls(self, ctx: RunContext, rows: list[dict[str, Any]]) -> list[PlannedCalls] | None:
        """One call per row on the task's model (its JSON schema set as `complete` sets it)."""
        from agentlab.structured import json_schema_of

        self.prepare(ctx)
        requests = [self.build(r) for r in rows]
        if self.schema is not None:
            js = json_schema_of(self.schema)
            requests = [r.model_copy(update={"json_schema": js}) for r in requests]
        return [PlannedCalls(getattr(self.config, "model", None), self.config.type, requests)]

    def run(self, ctx: RunContext, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        model = getattr(self.config, "model", None)
        self.prepare(ctx)
        requests = [self.build(r) for r in rows]
        answers = ctx.complete(model, requests, schema=self.schema, desc=self.config.type)
        out = []
        for row, ans in zip(rows, answers):
            new = dict(row)
            if ans.value is not None:
                new.update(self.parse(ans.value, row))
            new["_raw"] = ans.raw
            new["_error"] = ans.error
            out.append(new)
        return out


BUILTIN_TASKS = ["generate", "label", "debate", "triplets", "queries", "w2s", "autobench"]


def _load_builtins() -> None:
    import importlib

    for name in BUILTIN_TASKS:
        importlib.import_module(f"agentlab.tasks.{name}")


TASKS: Registry[type[Task]] = Registry("task", _load_builtins)
