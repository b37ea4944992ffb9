"""`dataset/` for a streaming run, converted from `data.jsonl` by Arrow without holding the rows in memory."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("agentlab")
BLOCK_BYTES = 8 << 20  # Arrow JSON reader block: the schema comes from the first one


def dataset_from_jsonl(run: Any, path: Path) -> Any:
    """Convert `path` (the run's data.jsonl) to `dataset/` (`save_to_disk`); return the dataset.

    Arrow's JSON reader does the work in blocks; a column whose type changes between rows falls back to
    a row-by-row conversion storing nested values as JSON text, as for in-memory runs.
    """
    import datasets

    datasets.disable_progress_bars()
    tmp = run.path(".dataset-build")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        try:
            return _as_dataset_dir(_arrow_stream(path, tmp), run.path("dataset"))
        except Exception:  # a column whose type changes after the first block: let `datasets` try
            log.debug("dataset/: the Arrow block reader gave up; using the datasets JSON loader", exc_info=True)
        try:
            ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp))
        except Exception:  # mixed types in a column: store complex values as JSON text
            log.info("dataset/: mixed column types, storing nested values as JSON strings")
            ds = datasets.Dataset.from_generator(_flat_rows, gen_kwargs={"path": str(path)}, cache_dir=str(tmp))
        out = run.path("dataset")
        shutil.rmtree(out, ignore_errors=True)
        ds.save_to_disk(str(out))
        return datasets.load_from_disk(str(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _arrow_stream(path: Path, tmp: Path) -> Path:
    """The file read block by block by Arrow's JSON reader (threads, no row objects) into one Arrow stream file,
    checked to open as a Dataset; returns its path. Every block must have the first block's schema (else an error: the caller
    falls back); rows stay in file order."""
    import datasets
    import pyarrow as pa
    import pyarrow.json as pj

    tmp.mkdir(parents=True, exist_ok=True)
    reader = pj.open_json(str(path), read_options=pj.ReadOptions(block_size=BLOCK_BYTES))
    schema = reader.schema
    if any(pa.types.is_null(f.type) for f in schema):  # an all-null column in the first block: its type is unknown
        raise ValueError("column type unknown from the first block")
    target = tmp / "data.arrow"
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in reader:
            if batch.schema != schema:
                raise ValueError("column types change between blocks")
            writer.write_batch(batch)
    datasets.Dataset.from_file(str(target))  # readable as a Dataset (features from the schema), or an error here
    return target


def _as_dataset_dir(arrow_file: Path, out: Path) -> Any:
    """Make `out` the folder `save_to_disk` would write (one shard, state.json, dataset_info.json) by moving the
    Arrow file in, instead of `save_to_disk` reading it back through a memory map (at 10M rows the pages it
    touches count as gigabytes of the run's resident memory). Returns `load_from_disk(out)`."""
    import dataclasses
    import uuid

    import datasets

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shard = out / "data-00000-of-00001.arrow"
    shutil.move(str(arrow_file), str(shard))
    info = dataclasses.asdict(datasets.Dataset.from_file(str(shard)).info)
    state = {"_data_files": [{"filename": shard.name}], "_fingerprint": uuid.uuid4().hex[:16], "_format_columns": None,
             "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False, "_split": None}
    (out / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    (out / "dataset_info.json").write_text(json.dumps({k: info[k] for k in sorted(info)}, indent=2), encoding="utf-8")
    return datasets.load_from_disk(str(out))


def _flat_rows(path: str) -> Iterator[dict[str, Any]]:
    from agentlab.outputs import _flat

    with open(path, encoding="utf-8") as f:
        for line in f:
            yield {k: _flat(v) for k, v in json.loads(line).items()}
