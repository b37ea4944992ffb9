"""A recipe's source read lazily, in chunks of rows, in source order with stable ids.

JSONL is read line by line, Parquet by record batch, CSV/TSV and HF dataset folders through a
memory-mapped Arrow table (``datasets``), so memory does not grow with the number of rows. A few
sources are read whole, then chunked (the documented limit): a JSON array or WRENCH file (one JSON
document), and any source with ``shuffle: true`` (a permutation needs every row).

Rows come out exactly as :func:`agentlab.sources.load_rows` makes them: ``fields`` renamed, ``text``
filled from ``text_field(s)``, ``id`` from ``id_field`` or the row number, limited to the first N.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentlab.config.sections import SourceConfig
from agentlab.errors import AgentlabError
from agentlab.filecheck import diagnose, jsonl_line, line_encoding_problem, precheck
from agentlab.sources import (
    _check_columns,
    _read,
    detect_format,
    prepare_row,
    quiet_datasets,
)

WHOLE = ("json", "wrench")  # formats that are one JSON document: read whole, then chunked


class ChunkedSource:
    """The rows of a recipe's source, chunk by chunk.

    Args:
        cfg: the recipe's ``source:`` section.
        path: the resolved source path.
        limit: the command line's ``--limit`` (the smaller of it and ``source.limit`` applies).
    """

    def __init__(self, cfg: SourceConfig, path: Path, limit: int | None = None):
        self.cfg, self.path = cfg, path
        self.format = detect_format(path, cfg.format)
        caps = [x for x in (limit, cfg.limit) if x is not None]
        self.limit = min(caps) if caps else None
        self.whole = cfg.shuffle or self.format in WHOLE
        self._rows: list[dict[str, Any]] | None = None  # the whole source, for `whole` sources only

    @property
    def streams(self) -> bool:
        """False when this source is read whole into memory (JSON array, WRENCH, `shuffle: true`)."""
        return not self.whole

    def count(self) -> int | None:
        """How many rows the run will see (for the progress bar's ETA), cheaply: JSON lines are counted, not
        parsed; None when that would mean reading the whole source."""
        n: int | None = None
        if self.whole:
            n = len(self._whole())
        elif self.format == "jsonl":
            n, last = 0, b"\n"
            with open(self.path, "rb") as f:
                while block := f.read(1 << 20):
                    n += block.count(b"\n") - block.count(b"\n\n")  # blank lines are not rows (about: ETA only)
                    last = block[-1:]
            n += last != b"\n"
        elif self.format == "parquet":
            import pyarrow.parquet as pq

            n = pq.ParquetFile(str(self.path)).metadata.num_rows
        return n if self.limit is None or n is None else min(n, self.limit)

    def peek(self) -> dict[str, Any] | None:
        """The first prepared row (columns checked), or None for an empty source. Reads one chunk at most."""
        for chunk in self.chunks(1):
            return chunk[0]
        return None

    def chunks(self, size: int, skip: int = 0) -> Iterator[list[dict[str, Any]]]:
        """Rows `skip`, `skip + 1`, ... in lists of up to `size` (chunk k covers rows [k*size, (k+1)*size) when
        `skip` is a multiple of `size`, so chunk boundaries do not move between a run and its resume)."""
        buf: list[dict[str, Any]] = []
        for i, row in self._rows_from(skip):
            buf.append(prepare_row(self.cfg, row, i) if not self.whole else row)
            if len(buf) >= size:
                yield buf
                buf = []
        if buf:
            yield buf

    def _rows_from(self, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
        end = self.limit
        if self.whole:
            rows = self._whole()
            for i in range(skip, len(rows) if end is None else min(end, len(rows))):
                yield i, dict(rows[i])
            return
        err = precheck(self.path, self.format, "source.path")
        if err is not None:
            raise err
        checked = False
        try:
            for i, row in self._raw(skip):
                if end is not None and i >= end:
                    return
                if not checked:
                    _check_columns(self.cfg, row, self.path)
                    checked = True
                yield i, row
        except AgentlabError:
            raise
        except Exception as exc:  # a reader's own error (arrow, pandas): say what is wrong with the file instead
            raise diagnose(self.path, self.format, exc, "source.path") from None

    def _whole(self) -> list[dict[str, Any]]:
        if self._rows is None:
            rows = _read(self.path, self.format, self.cfg.split)
            if rows:
                _check_columns(self.cfg, rows[0], self.path)
            rows = [prepare_row(self.cfg, r, i) for i, r in enumerate(rows)]
            if self.cfg.shuffle:
                random.Random(self.cfg.seed).shuffle(rows)
            self._rows = rows
        return self._rows

    # -- raw rows (before renaming) with their row numbers, from row `skip` on ------------------------------
    def _raw(self, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
        if self.format == "jsonl":
            yield from _jsonl(self.path, skip)
        elif self.format == "parquet":
            yield from _parquet(self.path, skip)
        else:
            yield from _arrow(self.path, self.format, self.cfg.split, skip)


def _jsonl(path: Path, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """JSON lines; blank lines are not rows; rows before `skip` are counted, not parsed. A bad line is the
    same DataError as :func:`agentlab.sources.read_jsonl` gives (line, column, fix)."""
    import orjson

    i = 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            if i >= skip:
                try:  # the fast path; the checks below say what is wrong with a bad line
                    row = orjson.loads(raw)
                except ValueError:  # orjson.JSONDecodeError is one; NaN, big ints: the stdlib reads them
                    try:
                        row = json.loads(raw.decode("utf-8"))
                    except ValueError:
                        row = None
                if not isinstance(row, dict):
                    err = line_encoding_problem(raw, n, path, "source.path")
                    got = err or jsonl_line(raw.decode("utf-8"), n, path, "source.path")
                    raise got if isinstance(got, Exception) else AssertionError(f"line {n} parses on the second try")
                yield i, row
            i += 1


def _parquet(path: Path, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(str(path))
    i = 0
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if i + n <= skip:  # whole row groups before `skip` are not read
            i += n
            continue
        for batch in pf.iter_batches(batch_size=4096, row_groups=[g]):
            for row in batch.to_pylist():
                if i >= skip:
                    yield i, row
                i += 1


def _arrow(path: Path, fmt: str, split: str | None, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV/TSV and HF folders via `datasets`: a memory-mapped Arrow table, read a batch at a time."""
    from agentlab.errors import RecipeError, RecipeErrors

    datasets = quiet_datasets()
    if fmt == "hf":
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            split = split if split is not None else next(iter(ds))
            if split not in ds:
                raise RecipeErrors([RecipeError("source.split", "split not found", split, f"use one of: {', '.join(ds)}")])
            ds = ds[split]
    else:
        ds = datasets.load_dataset("csv", data_files=str(path), split="train", delimiter="\t" if fmt == "tsv" else ",")
    step = 4096
    for start in range(skip - skip % step, len(ds), step):
        batch = ds[start : start + step]
        cols = list(batch)
        for j, vals in enumerate(zip(*(batch[c] for c in cols))):
            if start + j >= skip:
                yield start + j, dict(zip(cols, vals))
