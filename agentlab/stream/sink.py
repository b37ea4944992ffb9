"""`data.jsonl` written chunk by chunk while the run goes, with a journal that makes `kill -9` resumable.

Each commit appends the chunk's rows to ``data.jsonl``, flushes them to the disk (``fsync``), then
atomically rewrites ``stream.json``: rows and bytes committed so far, the run's counters at that
moment, and the signature of what is being written (recipe hash, row limit, task). A run that finds
an unfinished journal with the same signature resumes: it truncates ``data.jsonl`` to the journal's
byte count (dropping a chunk that was half written at the kill) and skips the rows already there.
Any other journal (another recipe, ``--fresh``, a finished run) starts ``data.jsonl`` over.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from agentlab.eval.html_rows import RowSampler, budget_for
from agentlab.store import RunDir, _json_default

log = logging.getLogger("agentlab")
JOURNAL = "stream.json"
SAMPLE = 5  # rows kept for the report's sample


def encode_lines(rows: list[dict[str, Any]]) -> list[bytes]:
    """The rows as JSON lines (UTF-8, one bytes object each), encoded by orjson; the stdlib encoder for what
    orjson refuses (an int past 64 bits, a circular value), so both read back the same."""
    import orjson

    opt = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    out = []
    for r in rows:
        try:
            out.append(orjson.dumps(r, default=_json_default, option=opt))
        except (TypeError, orjson.JSONEncodeError):
            out.append((json.dumps(r, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8"))
    return out


def encode_rows(rows: list[dict[str, Any]]) -> bytes:
    """The rows as JSON lines in one buffer (`encode_lines`)."""
    return b"".join(encode_lines(rows))


class ChunkSink:
    """Append-only, journaled writer of a run's rows.

    Args:
        run: the run directory.
        signature: what must match for a resume (recipe hash, limit, task, ...).
        fresh: start over even if the journal matches.
        name: the file the rows go to.
    """

    def __init__(self, run: RunDir, signature: dict[str, Any], fresh: bool = False, name: str = "data.jsonl"):
        self.run, self.signature, self.name = run, signature, name
        self.path = run.path(name)
        self.rows = self.bytes = self.chunks = self.failed_rows = 0
        self.stats: dict[str, Any] = {}  # counters saved with the last commit (restored on resume)
        self.sample: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        journal = self._journal()
        if journal and not fresh and not journal.get("complete") and journal.get("signature") == signature:
            self.rows, self.bytes, self.chunks = journal["rows"], journal["bytes"], journal["chunks"]
            self.failed_rows, self.stats = journal.get("failed_rows", 0), journal.get("stats", {})
            self.sample, self.extra = journal.get("sample", []), journal.get("extra", {})
            log.info("resuming: %d rows in %d chunks already in %s", self.rows, self.chunks, name)
        self.resumed = self.rows
        # report.html's rows, sampled as chunks commit (no second pass over data.jsonl); a resumed run has
        # not seen the rows before the kill, so its page reads the file instead
        self.page_rows: RowSampler | None = None
        self._sample_page = self.rows == 0
        with open(self.path, "ab") as f:  # drop a chunk half written at a kill (or everything, when starting over)
            f.truncate(self.bytes)
        self._f = open(self.path, "ab")  # noqa: SIM115 - held open for the run, closed in close()
        self.t_last = time.monotonic()

    def _journal(self) -> dict[str, Any] | None:
        path = self.run.path(JOURNAL)
        if not path.exists() or not self.path.exists():
            return None
        try:
            journal = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if journal.get("bytes", 0) > self.path.stat().st_size:  # the file is shorter than what was committed
            return None
        return journal

    def commit(self, rows: list[dict[str, Any]], stats: dict[str, Any] | None = None) -> None:
        """Append `rows` durably, then record the commit (with the run's counters `stats`) in the journal."""
        if not rows:
            return
        lines = encode_lines(rows)
        data = b"".join(lines)
        self._f.write(data)
        self._f.flush()
        os.fsync(self._f.fileno())
        first = self.rows
        self.bytes += len(data)
        self.rows += len(rows)
        self.chunks += 1
        self.failed_rows += sum(1 for r in rows if r.get("_error"))
        if self._sample_page:
            if self.page_rows is None:
                self.page_rows = RowSampler(budget_for(rows[0]))
            add = self.page_rows.add
            for line, r in zip(lines, rows):
                add(line, r.get("confidence"))
        if len(self.sample) < SAMPLE:
            self.sample += rows[: SAMPLE - len(self.sample)]
        if stats is not None:
            self.stats = stats
        self._write_journal(complete=False)
        self.t_last = time.monotonic()
        log.info("chunk %d committed: rows %d-%d -> %s (%d bytes)", self.chunks, first, self.rows - 1, self.name, self.bytes)

    def _write_journal(self, complete: bool) -> None:
        self.run.write_json(JOURNAL, {
            "signature": self.signature, "complete": complete, "rows": self.rows, "bytes": self.bytes,
            "chunks": self.chunks, "failed_rows": self.failed_rows, "stats": self.stats, "sample": self.sample,
            "extra": self.extra, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })

    def finish(self) -> None:
        """Mark the rows complete (a later run starts them over, answering from the call cache)."""
        self._write_journal(complete=True)
        self.close()

    def close(self) -> None:
        """Close the file (the journal keeps the last commit). Safe to call twice."""
        if not self._f.closed:
            self._f.close()
