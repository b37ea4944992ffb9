"""Load a recipe's source rows with `datasets` (JSONL/JSON/CSV/TSV/Parquet/HF folder/WRENCH)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentlab.config.sections import SourceConfig
from agentlab.errors import AgentlabError, DataError, RecipeError, RecipeErrors
from agentlab.filecheck import (
    diagnose,
    jsonl_line,
    line_encoding_problem,
    precheck,
    read_json,
)

_BY_EXT = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def detect_format(path: Path, fmt: str, where: str = "source") -> str:
    """The concrete format for `path` (`auto` looks at the extension and, for .json, the shape)."""
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "hf"
    kind = _BY_EXT.get(path.suffix.lower())
    if kind is None:
        raise RecipeErrors([RecipeError(f"{where}.format", f"cannot tell the format of {path.name!r}", fix=f"set {where}.format: jsonl|json|csv|tsv|parquet|hf|wrench")])
    if kind == "json" and _looks_wrench(path):
        return "wrench"
    return kind


def _looks_wrench(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as f:
        head = f.read(4096).lstrip()
    return head.startswith("{") and '"data"' in head and '"weak_labels"' in head


def _wrench_names(path: Path, field: str) -> dict[str, str]:
    """Class names from the `label.json` beside a WRENCH split ({"0": "ham", ...}); none if absent."""
    names_file = path.parent / "label.json"
    if not names_file.exists():
        return {}
    names = read_json(names_file, field)
    if not isinstance(names, dict):
        raise DataError(names_file, "expected an object {class index: class name}", field=field,
                        fix='write e.g. {"0": "ham", "1": "spam"}')
    return {str(k): str(v) for k, v in names.items()}


def _wrench_example(path: Path, key: str, ex: Any, field: str) -> None:
    """A WRENCH example must be {data: {...}, label: int, weak_labels: [int, ...]}."""
    shape = 'fix it to {"data": {"text": ...}, "label": 0, "weak_labels": [-1, 1, ...]}'
    if not isinstance(ex, dict) or not isinstance(ex.get("data", {}), dict):
        raise DataError(path, f"example {key!r} is not a WRENCH example", field=field, fix=shape)
    label, weak = ex.get("label"), ex.get("weak_labels", [])
    if label is not None and (not isinstance(label, int) or isinstance(label, bool)):
        raise DataError(path, f"example {key!r}: label {label!r} is not a class index", field=field, fix=shape)
    if not isinstance(weak, list) or any(not isinstance(v, int) or isinstance(v, bool) for v in weak if v is not None):
        raise DataError(path, f"example {key!r}: weak_labels must be a list of class indexes (-1 = abstain)", field=field, fix=shape)


def _read_wrench(path: Path, field: str = "source.path") -> list[dict[str, Any]]:
    """WRENCH json: {id: {data: {text,...}, label: int, weak_labels: [...]}} -> rows with class names."""
    names = _wrench_names(path, field)
    name = lambda i: (names.get(str(i), str(i)).lower() if i is not None and i >= 0 else None)
    data = read_json(path, field)
    if not isinstance(data, dict):
        raise DataError(path, "a WRENCH file is one JSON object {id: example}", field=field,
                        fix="set source.format to json for a list of rows")
    rows = []
    for key, ex in data.items():
        _wrench_example(path, key, ex, field)
        row = {"id": key, **ex.get("data", {})}
        if "label" in ex:
            row["label"] = name(ex["label"])
        if "weak_labels" in ex:
            row["weak_labels"] = [name(v) for v in ex["weak_labels"]]
        rows.append(row)
    return rows


def _read(path: Path, fmt: str, split: str | None, where: str = "source") -> list[dict[str, Any]]:
    """All rows of `path` as `fmt`; any reader failure becomes a DataError naming the line and the fix."""
    field = f"{where}.path"
    err = precheck(path, fmt, field)
    if err is not None:
        raise err
    if fmt == "wrench":
        return _read_wrench(path, field)
    try:
        return _read_with_datasets(path, fmt, split, where)
    except AgentlabError:
        raise
    except Exception as exc:  # the reader's own error types vary (arrow, pandas, datasets); say what is wrong instead
        raise diagnose(path, fmt, exc, field) from None


def quiet_datasets() -> Any:
    """The `datasets` module with its progress bars and error logging off (we report a bad file ourselves)."""
    import logging

    import datasets

    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity(logging.CRITICAL)
    return datasets


def _read_with_datasets(path: Path, fmt: str, split: str | None, where: str) -> list[dict[str, Any]]:
    datasets = quiet_datasets()
    if fmt == "hf":
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if split is None:
                split = next(iter(ds))
            if split not in ds:
                raise RecipeErrors([RecipeError(f"{where}.split", "split not found", split, f"use one of: {', '.join(ds)}")])
            ds = ds[split]
        return ds.to_list()
    if fmt in ("jsonl", "json"):
        ds = datasets.load_dataset("json", data_files=str(path), split="train")
    elif fmt in ("csv", "tsv"):
        ds = datasets.load_dataset("csv", data_files=str(path), split="train", delimiter="\t" if fmt == "tsv" else ",")
    else:
        ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
    return ds.to_list()


def prepare_row(cfg: SourceConfig, row: dict[str, Any], i: int) -> dict[str, Any]:
    """Rename `fields`, fill `text`, set `id` (row number `i` unless `id_field`), in place; returns the row."""
    for new, old in cfg.fields.items():
        row[new] = row.pop(old) if old != new else row[old]
    if cfg.text_fields:
        row["text"] = "\n\n".join(str(row.get(f) or "") for f in cfg.text_fields).strip()
    elif cfg.text_field:
        row["text"] = row[cfg.text_field]
    row["id"] = str(row[cfg.id_field]) if cfg.id_field else str(row.get("id", i))
    return row


def load_rows(cfg: SourceConfig, path: Path, limit: int | None = None, where: str = "source") -> list[dict[str, Any]]:
    """Rows as dicts, with `fields` renamed, `text` filled from text_field(s), `id` set, shuffled/limited.

    `where` is the recipe section that names the file (`source`, `task.seed`), for error messages.
    """
    rows = _read(path, detect_format(path, cfg.format, where), cfg.split, where)
    if not rows:
        raise DataError(path, "no rows", field=f"{where}.path", fix="point to a file with at least one row")
    _check_columns(cfg, rows[0], path, where)
    for i, row in enumerate(rows):
        prepare_row(cfg, row, i)
    if cfg.shuffle:
        random.Random(cfg.seed).shuffle(rows)
    n = min(x for x in (limit, cfg.limit, len(rows)) if x is not None)
    return rows[:n]


def _check_columns(cfg: SourceConfig, first: dict[str, Any], path: Path | None = None, where: str = "source") -> None:
    """Every column the `source:` section names must be in the file."""
    cols = set(first)
    wanted = [(f"{where}.fields." + k, v) for k, v in cfg.fields.items()]
    wanted += [(f"{where}.text_fields[{i}]", f) for i, f in enumerate(cfg.text_fields or [])]
    wanted += [(f"{where}.{p}", getattr(cfg, p)) for p in ("text_field", "id_field", "group_by") if getattr(cfg, p)]
    errors = [RecipeError(p, f"column not in {path.name if path else 'the source'}", c, f"use one of: {', '.join(sorted(map(str, cols)))}")
              for p, c in wanted if c not in cols]
    if errors:
        raise RecipeErrors(errors)


def check_template_names(rows: list[dict[str, Any]], names: dict[str, str], path: Path, task: str,
                         where: str = "source") -> None:
    """Reject a column whose name a task's templates already use for something else (`row`, `classes`, ...).

    Args:
        rows: the loaded rows (every row's columns are checked; sources may differ row to row).
        names: template variable -> what the task puts there.
        path: the source file, for the message.
        task: the task type, for the message.
    """
    cols = dict.fromkeys(k for r in rows for k in r)
    clash = [c for c in cols if c in names]
    if not clash:
        return
    c = clash[0]
    more = f" (also: {', '.join(clash[1:])})" if len(clash) > 1 else ""
    raise DataError(path, f"column {c!r}{more} has the name of a template variable: {task} templates get `{c}` = "
                    f"{names[c]}", field=f"{where}.fields",
                    fix=f"rename the column, e.g. `{where}: {{fields: {{{c}_: {c}}}}}`, and write `{{{{ {c}_ }}}}` in templates")


def read_jsonl(path: Path, field: str | None = None) -> Iterator[dict[str, Any]]:
    """JSON objects, one a line (blank lines skipped); a bad line is a DataError naming its number and column.

    `field` is the recipe field or flag that named the file, for the message.
    """
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            err = line_encoding_problem(raw, i, path, field)
            if err is not None:
                raise err
            row = jsonl_line(raw.decode("utf-8"), i, path, field)
            if isinstance(row, DataError):
                raise row
            if row is not None:
                yield row
