"""Chunked source reading: the same rows, ids and order as `load_rows`, a chunk at a time, for every format."""

from __future__ import annotations

import json

import pytest

from agentlab.config.sections import SourceConfig
from agentlab.sources import load_rows
from agentlab.stream.source import ChunkedSource

ROWS = [{"key": f"k{i}", "body": f"text {i}", "n": i} for i in range(23)]


def _write(tmp_path, fmt: str):
    if fmt == "jsonl":
        path = tmp_path / "rows.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" + ("\n" if i == 5 else "") for i, r in enumerate(ROWS)))
    elif fmt == "csv":
        path = tmp_path / "rows.csv"
        path.write_text("key,body,n\n" + "".join(f"{r['key']},{r['body']},{r['n']}\n" for r in ROWS))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "rows.parquet"
        pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=7)
    elif fmt == "hf":
        import datasets

        path = tmp_path / "ds"
        datasets.Dataset.from_list(ROWS).save_to_disk(str(path))
    else:  # a JSON array: read whole, then chunked
        path = tmp_path / "rows.json"
        path.write_text(json.dumps(ROWS))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "hf", "json"])
@pytest.mark.parametrize("cfg", [{}, {"text_field": "body", "id_field": "key"}, {"fields": {"t": "body"}, "limit": 11},
                                 {"shuffle": True, "seed": 3, "limit": 9}])
def test_chunks_match_load_rows(tmp_path, fmt, cfg):
    path = _write(tmp_path, fmt)
    src_cfg = SourceConfig(path=str(path), **cfg)
    want = load_rows(src_cfg, path)
    source = ChunkedSource(src_cfg, path)
    chunks = list(source.chunks(5))
    assert [len(c) for c in chunks[:-1]] == [5] * (len(chunks) - 1)
    assert [r for c in chunks for r in c] == want
    assert source.count() in (len(want), None)
    # resuming at a chunk boundary gives the rest, with the same boundaries
    assert [r for c in source.chunks(5, skip=10) for r in c] == want[10:]
    assert source.streams is not (cfg.get("shuffle") or fmt == "json")


def test_a_bad_line_names_the_line(tmp_path):
    from agentlab.errors import DataError

    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"\n')
    source = ChunkedSource(SourceConfig(path=str(path)), path)
    with pytest.raises(DataError, match="line 2"):
        list(source.chunks(10))


def test_rows_before_skip_are_not_parsed(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("not json at all\n" + json.dumps({"text": "b"}) + "\n")
    source = ChunkedSource(SourceConfig(path=str(path)), path)
    assert [r["text"] for c in source.chunks(10, skip=1) for r in c] == ["b"]
