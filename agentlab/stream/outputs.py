"""`dataset/` for a streaming run, converted from `data.jsonl` by Arrow without holding the rows in memory."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("agentlab")


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


def _flat_rows(path: str) -> Iterator[dict[str, Any]]:
    from agentlab.outputs import _flat

    with open(path, encoding="utf-8") as f:
        for line in f:
            yield {k: _flat(v) for k, v in json.loads(line).items()}
