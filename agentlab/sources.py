"""Load a recipe's source rows with `datasets` (JSONL/JSON/CSV/TSV/Parquet/HF folder/WRENCH)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentlab.config.sections import SourceConfig
from agentlab.errors import ConfigError, RecipeError, RecipeErrors

_BY_EXT = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def detect_format(path: Path, fmt: str) -> str:
    """The concrete format for `path` (`auto` looks at the extension and, for .json, the shape)."""
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "hf"
    kind = _BY_EXT.get(path.suffix.lower())
    if kind is None:
        raise RecipeErrors([RecipeError("source.format", f"cannot tell the format of {path.name!r}", fix="set source.format: jsonl|json|csv|tsv|parquet|hf|wrench")])
    if kind == "json" and _looks_wrench(path):
        return "wrench"
    return kind


def _looks_wrench(path: Path) -> bool:
    with path.open(encoding="utf-8") as f:
        head = f.read(4096).lstrip()
    return head.startswith("{") and '"data"' in head and '"weak_labels"' in head


def _read_wrench(path: Path) -> list[dict[str, Any]]:
    """WRENCH json: {id: {data: {text,...}, label: int, weak_labels: [...]}} -> rows with class names."""
    names_file = path.parent / "label.json"
    names = json.loads(names_file.read_text()) if names_file.exists() else {}
    name = lambda i: (names.get(str(i), str(i)).lower() if i is not None and i >= 0 else None)
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for key, ex in data.items():
        row = {"id": key, **ex.get("data", {})}
        if "label" in ex:
            row["label"] = name(ex["label"])
        if "weak_labels" in ex:
            row["weak_labels"] = [name(v) for v in ex["weak_labels"]]
        rows.append(row)
    return rows


def _read(path: Path, fmt: str, split: str | None) -> list[dict[str, Any]]:
    if fmt == "wrench":
        return _read_wrench(path)
    import datasets

    datasets.disable_progress_bars()
    if fmt == "hf":
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if split is None:
                split = next(iter(ds))
            if split not in ds:
                raise RecipeErrors([RecipeError("source.split", "split not found", split, f"use one of: {', '.join(ds)}")])
            ds = ds[split]
        return ds.to_list()
    if fmt in ("jsonl", "json"):
        ds = datasets.load_dataset("json", data_files=str(path), split="train")
    elif fmt in ("csv", "tsv"):
        ds = datasets.load_dataset("csv", data_files=str(path), split="train", delimiter="\t" if fmt == "tsv" else ",")
    else:
        ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
    return ds.to_list()


def load_rows(cfg: SourceConfig, path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows as dicts, with `fields` renamed, `text` filled from text_field(s), `id` set, shuffled/limited."""
    rows = _read(path, detect_format(path, cfg.format), cfg.split)
    if rows:
        _check_columns(cfg, rows[0])
    for i, row in enumerate(rows):
        for new, old in cfg.fields.items():
            row[new] = row.pop(old) if old != new else row[old]
        if cfg.text_fields:
            row["text"] = "\n\n".join(str(row.get(f) or "") for f in cfg.text_fields).strip()
        elif cfg.text_field:
            row["text"] = row[cfg.text_field]
        row["id"] = str(row[cfg.id_field]) if cfg.id_field else str(row.get("id", i))
    if cfg.shuffle:
        random.Random(cfg.seed).shuffle(rows)
    n = min(x for x in (limit, cfg.limit, len(rows)) if x is not None)
    return rows[:n]


def _check_columns(cfg: SourceConfig, first: dict[str, Any]) -> None:
    cols = set(first)
    wanted = [("source.fields." + k, v) for k, v in cfg.fields.items()]
    wanted += [(f"source.text_fields[{i}]", f) for i, f in enumerate(cfg.text_fields or [])]
    wanted += [(p, getattr(cfg, p.split(".")[1])) for p in ("source.text_field", "source.id_field", "source.group_by") if getattr(cfg, p.split(".")[1])]
    errors = [RecipeError(p, "column not in the source", c, f"use one of: {', '.join(sorted(cols))}") for p, c in wanted if c not in cols]
    if errors:
        raise RecipeErrors(errors)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """JSON objects, one a line (blank lines skipped); a bad line is an error naming its number."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}")
            yield row
