"""What is wrong with an input file: the line, the column and the fix, as a :class:`DataError`.

Readers (`datasets`, pyarrow, pandas) fail with messages about their own internals. These checks
re-read a file with the standard library to point at the first bad byte, line or row. Most of them
run only after a reader failed, so a good file is read once; each takes a path (or one line) and
returns an error or None, so a chunked reader can reuse them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from agentlab.errors import DataError

#: formats read as text (UTF-8)
TEXT_FORMATS = frozenset({"jsonl", "json", "csv", "tsv", "wrench"})
_FIX_UTF8 = "save the file as UTF-8 text (e.g. `iconv -f latin1 -t utf-8 old > new`)"


def empty_file(path: Path, field: str | None) -> DataError | None:
    """An error when `path` is a file holding nothing but whitespace."""
    if not path.is_file():
        return None
    with path.open("rb") as f:
        head = f.read(4096)
        if head.strip() or (len(head) == 4096 and f.read(1 << 20).strip()):
            return None
    return DataError(path, "the file is empty", field=field, fix="point to a file with rows (one JSON object a line, "
                     "or a CSV header and rows)")


def encoding_problem(path: Path, field: str | None) -> DataError | None:
    """The first line holding a NUL byte (a binary file) or bytes that are not UTF-8."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            err = line_encoding_problem(raw, n, path, field)
            if err is not None:
                return err
    return None


def line_encoding_problem(raw: bytes, n: int, path: Path, field: str | None) -> DataError | None:
    """The encoding error in one raw line (number `n`), or None."""
    if b"\x00" in raw:
        return DataError(path, "binary data (a NUL byte), not a text file", line=n, field=field,
                         fix=f"point to the data file itself, or {_FIX_UTF8}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        col = len(raw[: exc.start].decode("utf-8", "replace")) + 1
        return DataError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", line=n, column=col, field=field, fix=_FIX_UTF8)
    return None


def _kind(value: Any) -> str | None:
    """The JSON type of a value as a column sees it (ints and floats are both numbers; null fits any)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object"}[type(value)]


def jsonl_line(line: str, n: int, path: Path, field: str | None) -> dict[str, Any] | DataError | None:
    """One JSON-lines line parsed: the object, None for a blank line, or the error naming line and column."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return DataError(path, f"not valid JSON ({exc.msg})", line=n, column=exc.colno, field=field,
                         fix=f"correct or delete line {n}: each line must be one JSON object")
    if not isinstance(obj, dict):
        return DataError(path, f"a JSON {_kind(obj) or 'null'} where an object was expected", line=n, field=field,
                         fix='write one JSON object a line, e.g. {"text": "..."}')
    return obj


def _column_types(rows: Any, path: Path, field: str | None) -> DataError | None:
    """The first (line, row) whose column holds another JSON type than on an earlier line."""
    seen: dict[str, tuple[str, int]] = {}
    for n, obj in rows:
        for key, value in obj.items():
            kind = _kind(value)
            if kind is None:
                continue
            first = seen.setdefault(key, (kind, n))
            if first[0] != kind:
                return DataError(path, f"column {key!r} holds a {kind} here but a {first[0]} on line {first[1]}", line=n,
                                 field=field, fix=f"give column {key!r} one type in every row (e.g. quote numbers as strings)")
    return None


def jsonl_problem(path: Path, field: str | None) -> DataError | None:
    """The first bad line of a JSON-lines file: not JSON, not an object, or a column changing type."""
    parsed: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            obj = jsonl_line(line, n, path, field)
            if isinstance(obj, DataError):
                return obj
            if obj is not None:
                parsed.append((n, obj))
    return _column_types(parsed, path, field)


def read_json(path: Path, field: str | None) -> Any:
    """A whole JSON document; a syntax or encoding error is a DataError naming line and column."""
    err = encoding_problem(path, field)
    if err is not None:
        raise err
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc.msg})", line=exc.lineno, column=exc.colno, field=field,
                        fix="correct the JSON there (or, for one object a line, name the file .jsonl)") from None


def json_problem(path: Path, field: str | None) -> DataError | None:
    """What keeps a .json file from being rows: bad JSON, or not a list of objects."""
    try:
        data = read_json(path, field)
    except DataError as err:
        return err
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return DataError(path, f"the file holds a JSON {_kind(data) or 'null'}, not rows", field=field,
                         fix='write a list of objects, e.g. [{"text": "..."}], or one object a line in a .jsonl file')
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            return DataError(path, f"item {i} of the list is a JSON {_kind(item) or 'null'}, not an object", field=field,
                             fix='make every item an object, e.g. {"text": "..."}')
    return _column_types(((i, r) for i, r in enumerate(data, 1)), path, field)


def precheck(path: Path, fmt: str, field: str | None) -> DataError | None:
    """Cheap checks before a reader runs: an empty file; for CSV/TSV, a row with extra fields in the first
    1,000 rows (pandas takes extra fields on the first row for index columns, silently shifting every column)."""
    err = empty_file(path, field)
    if err is None and fmt in ("csv", "tsv") and path.is_file():
        err = csv_problem(path, field, "\t" if fmt == "tsv" else ",", max_rows=1000)
    return err


def csv_problem(path: Path, field: str | None, delimiter: str = ",", max_rows: int | None = None) -> DataError | None:
    """The first CSV/TSV row with more fields than the header (within `max_rows` rows, if given)."""
    name = "tab" if delimiter == "\t" else repr(delimiter)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                return DataError(path, "no header row (column names)", line=1, field=field,
                                 fix=f"put the column names, {name}-separated, on the first line")
            rows = 0
            for row in reader:
                rows += 1
                if max_rows is not None and rows > max_rows:
                    break
                if len(row) > len(header):
                    return DataError(path, f"{len(row)} fields but the header has {len(header)} ({', '.join(header)})",
                                     line=reader.line_num, field=field,
                                     fix=f"quote fields that hold a {name}, or fix line {reader.line_num}")
        except csv.Error as exc:
            return DataError(path, f"not valid CSV ({exc})", line=reader.line_num, field=field, fix="fix the quoting there")
        except UnicodeDecodeError:
            return encoding_problem(path, field)
    if not rows:
        return DataError(path, "no rows, only a header", field=field, fix="point to a file with at least one row")
    return None


def diagnose(path: Path, fmt: str, exc: BaseException, field: str | None) -> DataError:
    """The most precise error for a file that the `fmt` reader refused with `exc`."""
    err = None
    if fmt in TEXT_FORMATS and path.is_file():
        err = empty_file(path, field) or encoding_problem(path, field)
        if err is None and fmt == "jsonl":
            err = jsonl_problem(path, field)
        elif err is None and fmt in ("json", "wrench"):
            err = json_problem(path, field)
        elif err is None and fmt in ("csv", "tsv"):
            err = csv_problem(path, field, "\t" if fmt == "tsv" else ",")
    if err is not None:
        return err
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    if fmt == "parquet":
        return DataError(path, f"not a readable Parquet file ({reason})", field=field,
                         fix="check that the file is complete Parquet, or set source.format to what it is")
    if fmt == "hf":
        return DataError(path, f"not a dataset folder written by `save_to_disk` ({reason})", field=field,
                         fix="point to the folder `Dataset.save_to_disk` wrote, or to a data file")
    return DataError(path, f"could not be read as {fmt} ({reason})", field=field,
                     fix=f"check that the file is {fmt}, or set source.format to what it is")
