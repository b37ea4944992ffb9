"""ChunkSink: the page rows it samples while committing equal a pass over the written file."""

import random

from agentlab.eval.html_rows import budget_for, load_rows
from agentlab.store import RunDir
from agentlab.stream.sink import ChunkSink


def _rows(n: int, width: int) -> list[dict]:
    rng = random.Random(1)
    return [{"id": str(i), "label": "a", "confidence": round(rng.random(), 3),
             "votes": {f"v{j}": "a" for j in range(width)}} for i in range(n)]


def test_page_rows_sampled_while_committing_equal_reading_the_file(tmp_path):
    run = RunDir(tmp_path / "run")
    rows = _rows(2500, 600)  # 600 votes a row: the page keeps 1,000 rows, so it samples
    sink = ChunkSink(run, {"t": 1})
    for i in range(0, len(rows), 300):
        sink.commit(rows[i:i + 300])
    sink.finish()
    streamed = sink.page_rows.result()
    assert streamed == load_rows(sink.path, budget_for(rows[0]))
    kept, total, note = streamed
    assert total == 2500 and len(kept) == 1000 and "least confident" in note
    assert [r["id"] for r in kept] == sorted((r["id"] for r in kept), key=int)  # file order
    assert min(r["confidence"] for r in rows) in {r["confidence"] for r in kept}


def test_a_resumed_sink_leaves_the_page_to_the_file(tmp_path):
    run = RunDir(tmp_path / "run")
    rows = _rows(20, 2)
    sink = ChunkSink(run, {"t": 1})
    sink.commit(rows[:10])
    sink.close()  # killed before finishing
    again = ChunkSink(run, {"t": 1})
    assert again.resumed == 10
    again.commit(rows[10:])
    assert again.page_rows is None
