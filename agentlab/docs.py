"""Generate the recipe reference (docs/recipes.md) from the pydantic schemas: `python -m agentlab.docs`."""

from __future__ import annotations

import re
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def _type_name(ann) -> str:
    text = getattr(ann, "__name__", None) if not typing.get_args(ann) else None
    text = text or re.sub(r"\b(?:[a-z_]+\.)+([A-Za-z_]+)", r"\1", str(ann))
    return text.replace("NoneType", "None")


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(see below)"
    return f"`{value!r}`" if value not in (None, {}, []) else "—"


def model_table(model: type[BaseModel], skip: tuple[str, ...] = ()) -> str:
    """A markdown table of a config model's fields."""
    lines = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        key = f.alias or name
        desc = (f.description or "").replace("|", "\\|").replace("\n", " ")
        kind = _type_name(f.annotation).replace("|", "\\|")  # `X | None` must not split the table cell
        lines.append(f"| `{key}` | `{kind}` | {_default(f)} | {desc} |")
    return "\n".join(lines)


def render() -> str:
    """The whole reference."""
    from agentlab.backends.base import BACKENDS
    from agentlab.config import sections
    from agentlab.labeling.base import LABELERS
    from agentlab.recipe import Recipe
    from agentlab.tasks.base import TASKS

    out = ["# Recipe reference", "", "Generated from the schemas by `make docs` (`python -m agentlab.docs`). "
           "Every section rejects unknown fields; `${VAR}` and `${VAR:-default}` are read from the environment.", "",
           "## Top level", model_table(Recipe), ""]
    for title, model in [("source", sections.SourceConfig), ("output", sections.OutputConfig), ("executor", sections.ExecutorConfig),
                         ("aggregate", sections.AggregateConfig), ("escalate", sections.EscalateConfig),
                         ("distill", sections.DistillConfig), ("distill.student", sections.StudentConfig), ("eval", sections.EvalConfig)]:
        out += [f"## `{title}`", (model.__doc__ or "").strip(), "", model_table(model), ""]
    out += ["## `models.<name>` (by `backend`)", ""]
    for name in BACKENDS.names():
        cls = BACKENDS.get(name)
        out += [f"### backend: `{name}`", (cls.config_cls.__doc__ or "").strip(), "", model_table(cls.config_cls), ""]
    out += ["## `task` (by `type`)", ""]
    for name in TASKS.names():
        cls = TASKS.get(name)
        out += [f"### type: `{name}`", (cls.config_cls.__doc__ or "").strip(), "", model_table(cls.config_cls), ""]
    out += ["## `task.labelers[]` (by `type`, label task)", ""]
    for name in LABELERS.names():
        cls = LABELERS.get(name)
        out += [f"### type: `{name}`", (cls.config_cls.__doc__ or "").strip(), "", model_table(cls.config_cls), ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
