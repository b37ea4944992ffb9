"""The streaming form of an :class:`agentlab.tasks.base.LLMTask` (``generate``): render -> call -> parse -> write.

Rows are read a chunk at a time and their requests submitted to a :class:`CallStream` while earlier
rows are still in flight, up to a window of rows (the executor's capacity plus two chunks), so the
executor never waits for the slowest call of a chunk. Finished rows leave in source order: the
finished prefix is committed to ``data.jsonl`` every ``chunk_size`` rows, or after ``commit_seconds``
when fewer are ready. Parsing is :meth:`agentlab.engine.RunContext.complete`'s: structured answers are
repaired, else retried once with the parse error, else kept as ``_raw``/``_error``; counters are the same.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from agentlab.backends.base import ChatResult
from agentlab.engine import Answer, RunContext
from agentlab.stream.calls import CallStream
from agentlab.structured import json_schema_of, retry_messages

_NO_GOLD = object()


class _Slot:
    """One row on its way through the pipeline."""

    __slots__ = ("answer", "gold", "out", "req", "row")

    def __init__(self, row: dict[str, Any], gold: Any):
        self.row, self.gold = row, gold
        self.req = self.answer = self.out = None


class LLMStream:
    """Run an LLMTask over chunks of rows, committing finished rows to a sink.

    Args:
        ctx: the run context.
        task: the task (``build(row)``, ``parse(value, row)``, ``schema``, ``config.model``).
        sink: where committed rows go (:class:`agentlab.stream.sink.ChunkSink`).
        bar: the rows progress bar.
        chunk_size: rows per commit.
        commit_seconds: commit the finished rows at least this often.
    """

    def __init__(self, ctx: RunContext, task: Any, sink: Any, bar: Any, chunk_size: int, commit_seconds: float):
        self.ctx, self.task, self.sink, self.bar = ctx, task, sink, bar
        self.chunk_size, self.commit_seconds = chunk_size, commit_seconds
        self.calls = CallStream(ctx, getattr(task.config, "model", None))
        self.schema = task.schema
        self.js = json_schema_of(self.schema) if self.schema is not None else None
        self.window = self.calls.capacity + 2 * chunk_size
        self.pending: deque[_Slot] = deque()
        self.ready = 0  # finished rows at the head of `pending`

    def run(self, chunks: Iterator[list[dict[str, Any]]], gold_field: str | None) -> None:
        """Read `chunks` (rows with the gold column still in, if any), answer and commit every row, in order."""
        exhausted = False
        try:
            while True:
                while not exhausted and len(self.pending) < self.window:
                    rows = next(chunks, None)
                    if rows is None:
                        exhausted = True
                    else:
                        self._submit(rows, gold_field)
                self._advance_ready()
                self._maybe_commit(final=exhausted)
                if exhausted and not self.pending:
                    return
                self.calls.pump(0.05)
        finally:
            self.calls.close()

    # -- render and send ---------------------------------------------------------------------------------------
    def _submit(self, rows: list[dict[str, Any]], gold_field: str | None) -> None:
        slots = [_Slot(r, r.pop(gold_field, None) if gold_field else _NO_GOLD) for r in rows]
        reqs = []
        for s in slots:
            req = self.task.build(s.row)
            if self.js is not None:
                req = req.model_copy(update={"json_schema": self.js})
            s.req = req
            reqs.append(req)
        self.pending.extend(slots)
        self.calls.submit(reqs, [self._first(s) for s in slots])

    def _first(self, slot: _Slot):
        def on_result(res: ChatResult) -> None:
            ans = RunContext._parse(res, self.schema)
            if self.schema is not None and ans.value is None and res.ok:  # retry once with the parse error
                slot.answer = ans
                msgs = retry_messages(slot.req.messages, ans.raw, ans.error or "", self.schema)
                self.calls.submit([slot.req.model_copy(update={"messages": msgs})], [self._retried(slot)])
                return
            self._finish(slot, ans)

        return on_result

    def _retried(self, slot: _Slot):
        def on_result(res: ChatResult) -> None:
            fixed = RunContext._parse(res, self.schema)
            if fixed.value is not None:
                fixed.repaired = True
                ans = fixed
            else:
                ans = slot.answer
                ans.error = f"unparsable after retry: {fixed.error}"
            self._finish(slot, ans)

        return on_result

    def _finish(self, slot: _Slot, ans: Answer) -> None:
        stats = self.calls.stats
        stats.repaired += int(ans.repaired)
        stats.failed += int(ans.value is None)
        row = slot.row
        new = dict(row)
        if ans.value is not None:
            new.update(self.task.parse(ans.value, row))
        new["_raw"] = ans.raw
        new["_error"] = ans.error
        if slot.gold is not _NO_GOLD:
            new["gold"] = slot.gold
        slot.out, slot.row, slot.req, slot.answer = new, None, None, None
        self.bar.advance(1, failed=int(ans.error is not None))

    # -- commit ------------------------------------------------------------------------------------------------
    def _advance_ready(self) -> None:
        p = self.pending
        while self.ready < len(p) and p[self.ready].out is not None:
            self.ready += 1

    def _maybe_commit(self, final: bool) -> None:
        while self.ready >= self.chunk_size or (self.ready and (
                (final and self.ready == len(self.pending)) or time.monotonic() - self.sink.t_last >= self.commit_seconds)):
            n = min(self.ready, self.chunk_size)
            rows = [self.pending.popleft().out for _ in range(n)]
            self.ready -= n
            self.bar.note_chunk(f"chunk {self.sink.chunks + 1} -> {self.sink.name}")
            self.sink.commit(rows, stats_snapshot(self.ctx))


def stats_snapshot(ctx: RunContext) -> dict[str, Any]:
    """The run's per-model counters, as saved with each commit."""
    return {name: asdict(s) for name, s in ctx.stats.items()}
