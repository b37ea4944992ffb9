"""Pydantic helpers shared by every config: strict models and readable validation errors."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agentlab.errors import RecipeError, RecipeErrors


class StrictModel(BaseModel):
    """Base for every config: unknown fields are errors, every field has a description."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def loc_to_path(prefix: str, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into a recipe path like ``task.labelers[2].prompt``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "tagged-union", "union[")) or part in ("dict[str,any]",):
            continue
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _fix_for(err: dict[str, Any], model: type[BaseModel] | None, field_model: type[BaseModel] | None) -> str | None:
    kind = err["type"]
    if kind == "extra_forbidden":
        name = str(err["loc"][-1])
        known = sorted(field_model.model_fields) if field_model else []
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{hint}remove it or use one of: {', '.join(known)}" if known else "remove it"
    if kind == "missing":
        return f"add `{err['loc'][-1]}:` to the recipe"
    if kind in ("literal_error", "enum"):
        return f"use {err.get('ctx', {}).get('expected', 'one of the allowed values')}"
    if kind.endswith(("_parsing", "_type")):
        return f"give a value of the right type ({kind.split('_')[0]})"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "use a value within the allowed range"
    if kind == "value_error":
        return None
    return None


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last element of `loc`, for field suggestions."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        for cand in (ann, *getattr(ann, "__args__", ())):
            for sub in (cand, *getattr(cand, "__args__", ())):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    current = sub
                    break
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def validate_model(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    """Validate `data` against `model`, raising RecipeErrors with recipe paths and fixes."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RecipeErrors(convert_errors(exc, model, prefix)) from None


def convert_errors(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> list[RecipeError]:
    """Convert a pydantic ValidationError into RecipeError objects (one per problem)."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = loc_to_path(prefix, loc)
        msg = err["msg"]
        if err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        value = err.get("input") if err["type"] not in ("missing",) else None
        if isinstance(value, dict) and err["type"] != "extra_forbidden":
            value = None
        fix = _fix_for(err, model, _model_at(model, loc))
        out.append(RecipeError(path, msg, value, fix))
    return out
