"""`dataset/` of a streaming run, converted from data.jsonl by Arrow block by block (stream/outputs.py)."""

import json

import pytest

from agentlab.store import RunDir
from agentlab.stream import outputs


def _write(run: RunDir, rows: list[dict]) -> None:
    with open(run.path("data.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def test_arrow_blocks_keep_every_row_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "BLOCK_BYTES", 1 << 10)  # many blocks
    run = RunDir(tmp_path / "run")
    rows = [{"id": str(i), "text": f"row {i}", "label": ["ham", "spam"][i % 2],
             "label_probs": {"ham": 0.25, "spam": 0.75}, "votes": {"a": "ham", "b": None}} for i in range(500)]
    _write(run, rows)
    ds = outputs.dataset_from_jsonl(run, run.path("data.jsonl"))
    assert ds.num_rows == 500 and ds["id"] == [str(i) for i in range(500)]
    assert ds[3]["label_probs"] == {"ham": 0.25, "spam": 0.75} and ds[3]["votes"] == {"a": "ham", "b": None}
    assert not run.path(".dataset-build").exists()
    folder = run.path("dataset")  # the layout save_to_disk writes: one shard + state.json + dataset_info.json
    assert sorted(p.name for p in folder.iterdir()) == ["data-00000-of-00001.arrow", "dataset_info.json", "state.json"]
    import datasets

    again = datasets.load_from_disk(str(folder))
    assert again.num_rows == 500 and again.features == ds.features and again[499]["id"] == "499"


@pytest.mark.parametrize("late", [{"score": "high"}, {"score": 1, "extra": "new column"}])
def test_a_column_that_changes_after_the_first_block_falls_back(tmp_path, monkeypatch, late):
    monkeypatch.setattr(outputs, "BLOCK_BYTES", 1 << 10)
    run = RunDir(tmp_path / "run")
    rows = [{"id": str(i), "score": i} for i in range(300)] + [{"id": "300", **late}]
    _write(run, rows)
    with pytest.raises(ValueError):
        outputs._arrow_stream(run.path("data.jsonl"), tmp_path / "scratch")
    ds = outputs.dataset_from_jsonl(run, run.path("data.jsonl"))  # the fallback keeps every row
    assert ds.num_rows == 301 and ds["id"][-1] == "300"


def test_an_all_null_column_in_the_first_block_is_not_guessed(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "BLOCK_BYTES", 1 << 10)
    run = RunDir(tmp_path / "run")
    rows = [{"id": str(i), "gold": None} for i in range(200)] + [{"id": "200", "gold": "spam"}]
    _write(run, rows)
    with pytest.raises(ValueError):
        outputs._arrow_stream(run.path("data.jsonl"), tmp_path / "scratch")
    ds = outputs.dataset_from_jsonl(run, run.path("data.jsonl"))
    assert ds.num_rows == 201 and ds["gold"][-1] == "spam"
