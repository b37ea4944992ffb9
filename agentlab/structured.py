"""Structured answers: parse, repair (`json-repair`), validate against a pydantic schema."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def json_schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    """A self-contained JSON schema for a pydantic model (what backends constrain to)."""
    return schema.model_json_schema()


def parse_structured(text: str | None, schema: type[BaseModel]) -> tuple[BaseModel | None, bool, str | None]:
    """Parse `text` into `schema`.

    Returns:
        (value, repaired, error): value is None when even the repaired text does not validate;
        repaired is True when json-repair had to fix the text.
    """
    if text is None or not text.strip():
        return None, False, "empty answer"
    body = _FENCE.sub("", text.strip()).strip()
    try:
        return schema.model_validate(json.loads(body)), False, None
    except (json.JSONDecodeError, ValidationError, TypeError) as exc:
        first_error = _short(exc)
    try:
        import json_repair

        fixed = json_repair.loads(body)
        if isinstance(fixed, list) and len(fixed) == 1 and isinstance(fixed[0], dict):
            fixed = fixed[0]
        return schema.model_validate(fixed), True, None
    except (ValidationError, ValueError, TypeError) as exc:
        return None, False, f"{first_error}; after repair: {_short(exc)}"


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors(include_url=False)[:3])
    return str(exc).splitlines()[0][:200]


def retry_messages(messages: list[dict[str, Any]], raw: str | None, error: str, schema: type[BaseModel]) -> list[dict[str, Any]]:
    """The messages for the single retry after a parse failure: the bad answer and the error."""
    return [
        *messages,
        {"role": "assistant", "content": raw or ""},
        {
            "role": "user",
            "content": f"That answer could not be used ({error}). Reply with only a JSON object matching this schema: "
            + json.dumps(json_schema_of(schema)),
        },
    ]
