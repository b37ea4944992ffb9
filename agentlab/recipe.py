"""The recipe: one YAML file describing a whole run, validated before any work starts."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, PrivateAttr

from agentlab.config import StrictModel, validate_model
from agentlab.config.sections import (
    AggregateConfig,
    DistillConfig,
    EscalateConfig,
    EvalConfig,
    ExecutorConfig,
    OutputConfig,
    SourceConfig,
)
from agentlab.errors import ConfigError, RecipeError, RecipeErrors
from agentlab.registry import UnknownKey

DEFAULT_MODEL = "default"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Recipe(StrictModel):
    """A whole run: source -> task (LLM stage) -> aggregate -> escalate -> distill -> eval -> output."""

    name: str = Field(description="Run name; the default output dir is `outputs/<name>`.")
    description: str | None = Field(None, description="Free text, copied to the report.")
    seed: int = Field(0, description="Global seed (sampling, splits, training).")
    source: SourceConfig = Field(description="The input rows.")
    models: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named backend configs, e.g. `small: {backend: embedded}`. Empty = one embedded model named `default`.",
    )
    task: dict[str, Any] = Field(description="The task: `type` (registry key) plus that task's fields.")
    aggregate: AggregateConfig | None = Field(None, description="Label model over the votes (label task).")
    escalate: EscalateConfig | None = Field(None, description="Send uncertain rows to a stronger model (label task).")
    distill: DistillConfig | None = Field(None, description="Train a small student on the labels (label task), or the "
                                             "queries task's dense retrievers (`student: {type: retriever}`).")
    eval: EvalConfig | None = Field(None, description="Evaluate against gold (label tasks) or test queries (queries task).")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig, description="Where LLM calls run.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="What to write where.")

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)
    _path: Path | None = PrivateAttr(None)
    _task_config: Any = PrivateAttr(None)
    _model_configs: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def task_config(self):
        """The validated task config (an instance of the task's `config_cls`)."""
        return self._task_config

    @property
    def model_configs(self) -> dict[str, Any]:
        """Validated backend configs by model name."""
        return self._model_configs

    @property
    def raw(self) -> dict[str, Any]:
        """The recipe as written (before `${ENV}` interpolation: no secrets)."""
        return self._raw

    @property
    def path(self) -> Path | None:
        """The recipe file, when loaded from one."""
        return self._path

    def hash(self) -> str:
        """sha256 of the canonical recipe as written."""
        return hashlib.sha256(json.dumps(self._raw, sort_keys=True, default=str).encode()).hexdigest()

    def resolve(self, rel: str) -> Path:
        """Resolve a path named in the recipe: as given (cwd), else next to the recipe, else in the project."""
        p = Path(rel).expanduser()
        if p.is_absolute() or p.exists():
            return p
        candidates = []
        if self._path is not None:
            candidates.append(self._path.parent / p)
        candidates.append(Path(__file__).resolve().parent.parent / p)
        for c in candidates:
            if c.exists():
                return c
        return p


def interpolate(data: Any, path: str = "") -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in strings; a missing variable is a RecipeError."""
    if isinstance(data, dict):
        return {k: interpolate(v, f"{path}.{k}" if path else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, f"{path}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, str):
        return data

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise RecipeError(path, f"environment variable {name} is not set", fix=f"export {name}=... or write ${{{name}:-default}}")

    return _ENV.sub(sub, data)


def load_recipe(path: str | Path) -> Recipe:
    """Read, interpolate and fully validate a recipe file. Raises RecipeErrors (exit 2)."""
    p = Path(path)
    if not p.is_file():
        raise RecipeErrors([RecipeError("", f"recipe file {str(p)!r} not found", fix="check the path")])
    return parse_recipe(read_yaml(p), p)


def read_yaml(p: Path) -> Any:
    """The YAML document in `p`; bad bytes or syntax are a RecipeErrors naming the line and column."""
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise RecipeErrors([RecipeError("", f"{p}, line {line}: not UTF-8 text (byte {exc.object[exc.start]:#04x})",
                                        fix="save the recipe as UTF-8")]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(p)
        what = " ".join(x for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x) or str(exc)
        raise RecipeErrors([RecipeError("", f"{where}: not valid YAML ({what})",
                                        fix="fix the YAML syntax there (indentation, a missing ':' or quote)")]) from None
    if raw is None:
        raise RecipeErrors([RecipeError("", f"{p} is empty", fix="start with `name:`, `source:` and `task:` (see recipes/quickstart.yaml)")])
    return raw


def parse_recipe(raw: Any, path: Path | None = None) -> Recipe:
    """Validate a recipe given as data (already read from YAML)."""
    if not isinstance(raw, dict):
        raise RecipeErrors([RecipeError("", "a recipe must be a mapping", type(raw).__name__, "start with `name:`")])
    try:
        data = interpolate(raw)
    except RecipeError as e:
        raise RecipeErrors([e]) from None
    recipe = validate_model(Recipe, data)
    recipe._raw, recipe._path = raw, path
    errors: list[RecipeError] = []
    if not _NAME.match(recipe.name):
        errors.append(RecipeError("name", "must be letters, digits, '.', '_' or '-'", recipe.name, "e.g. `name: my-run`"))
    recipe._model_configs = _validate_models(recipe, errors)
    recipe._task_config = _validate_task(recipe, errors)
    if recipe._task_config is not None:
        _check_refs(recipe, errors)
        _check_sections(recipe, errors)
    _check_files(recipe, errors)
    if errors:
        raise RecipeErrors(errors)
    return recipe


def _validate_models(recipe: Recipe, errors: list[RecipeError]) -> dict[str, Any]:
    from agentlab.backends.base import BACKENDS

    models = recipe.models or {DEFAULT_MODEL: {"backend": "embedded"}}
    out = {}
    for name, cfg in models.items():
        if not isinstance(cfg, dict):
            errors.append(RecipeError(f"models.{name}", "must be a mapping", cfg, "e.g. `{backend: embedded}`"))
            continue
        backend = cfg.get("backend", "embedded")
        cls = _lookup(BACKENDS, backend, f"models.{name}.backend", errors)
        if cls is None:
            continue
        try:
            out[name] = validate_model(cls.config_cls, {**cfg, "backend": backend}, f"models.{name}")
        except RecipeErrors as e:
            errors.extend(e.errors)
    return out


def _lookup(registry: Any, name: Any, path: str, errors: list[RecipeError]) -> Any:
    """The registry entry `name` names, or None with an error appended (a non-string name included)."""
    if not isinstance(name, str):
        errors.append(RecipeError(path, f"must be a name, not a {type(name).__name__}", name,
                                  f"write one of: {', '.join(registry.names())}"))
        return None
    try:
        return registry.get(name)
    except UnknownKey as e:
        errors.append(RecipeError(path, str(e), fix=f"use one of: {', '.join(e.known)}"))
        return None


def _validate_task(recipe: Recipe, errors: list[RecipeError]) -> Any:
    from agentlab.tasks.base import TASKS

    kind = recipe.task.get("type")
    if kind is None or kind == "":
        errors.append(RecipeError("task.type", "is missing", fix=f"add `type:` with one of: {', '.join(TASKS.names())}"))
        return None
    cls = _lookup(TASKS, kind, "task.type", errors)
    if cls is None:
        return None
    try:
        config = validate_model(cls.config_cls, recipe.task, "task")
    except RecipeErrors as e:
        errors.extend(e.errors)
        return None
    _validate_nested(config, errors)
    return config


def _validate_nested(config: Any, errors: list[RecipeError]) -> None:
    """Validate list fields whose items are registry entries (e.g. `task.labelers[i]` by `type`)."""
    for field, registry in getattr(config, "nested_registries", {}).items():
        items, out = getattr(config, field) or [], []
        for i, item in enumerate(items):
            path = f"task.{field}[{i}]"
            if not isinstance(item, dict) or "type" not in item:
                errors.append(RecipeError(f"{path}.type", "is missing", fix=f"add `type:` with one of: {', '.join(registry.names())}"))
                continue
            cls = _lookup(registry, item["type"], f"{path}.type", errors)
            if cls is None:
                continue
            try:
                out.append(validate_model(cls.config_cls, item, path))
            except RecipeErrors as e:
                errors.extend(e.errors)
        setattr(config, field, out)


def _check_refs(recipe: Recipe, errors: list[RecipeError]) -> None:
    import difflib

    known = list(recipe._model_configs)
    refs = list(recipe._task_config.model_refs())
    if recipe.escalate:
        refs.append(("escalate.to", recipe.escalate.to))
    for path, name in refs:
        if name not in known and name != DEFAULT_MODEL:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            errors.append(RecipeError(path, f"unknown model {name!r}", fix=f"{hint}define it under `models:` (known: {', '.join(known)})"))
        elif name == DEFAULT_MODEL and DEFAULT_MODEL not in known and len(known) > 1:
            errors.append(RecipeError(path, "no model named", fix=f"name one of: {', '.join(known)}"))


def _check_sections(recipe: Recipe, errors: list[RecipeError]) -> None:
    """`distill:` and `eval:` against what the task does, then the task's own cross-section checks."""
    from agentlab.tasks.base import TASKS

    kind = recipe._task_config.type
    cls = TASKS.get(kind)
    if recipe.distill is not None and kind != "label" and not cls.handles_distill:
        errors.append(RecipeError("distill", f"needs a task that produces labels (`label`) or trains its own student "
                                  f"(`queries`: a retriever), not {kind!r}",
                                  fix="remove `distill:` or use `agentlab train` on a label run"))
    ev = recipe.eval
    if ev is not None and kind != "queries":
        for field in ("queries", "qrels"):
            if getattr(ev, field) is not None:
                errors.append(RecipeError(f"eval.{field}", f"test {field} are read by the `queries` task only, not {kind!r}",
                                          getattr(ev, field), f"remove eval.{field}"))
    errors.extend(cls.check_recipe(recipe))


def _check_files(recipe: Recipe, errors: list[RecipeError]) -> None:
    from agentlab.prompts import load_prompt

    src = recipe.resolve(recipe.source.path)
    if not src.exists():
        errors.append(RecipeError("source.path", "file or folder not found", recipe.source.path, "check the path (relative to the current directory or the recipe)"))
    for field in ("queries", "qrels"):
        value = getattr(recipe.eval, field, None) if recipe.eval is not None else None
        if value is not None and not recipe.resolve(value).is_file():
            errors.append(RecipeError(f"eval.{field}", "file not found", value, "check the path (relative to the current directory or the recipe)"))
    if recipe._task_config is None:
        return
    seed = getattr(recipe._task_config, "seed", None)
    if isinstance(seed, SourceConfig) and not recipe.resolve(seed.path).exists():
        errors.append(RecipeError("task.seed.path", "file or folder not found", seed.path, "check the path (relative to the current directory or the recipe)"))
    refs = list(recipe._task_config.template_refs())
    if recipe.escalate is not None and recipe.escalate.prompt:
        refs.append(("escalate.prompt", recipe.escalate.prompt))
    for path, tpl in refs:
        if not recipe.resolve(tpl).is_file():
            errors.append(RecipeError(path, "template not found", tpl, "give a path under prompts/ or next to the recipe"))
            continue
        try:  # a syntax error is found now, by `validate` too, not after the run started
            load_prompt(recipe.resolve(tpl))
        except ConfigError as e:
            errors.append(RecipeError(path, str(e)))
