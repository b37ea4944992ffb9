"""Progress bars per stage: rows done, cached, failed, tokens/s and cost so far (rich)."""

from __future__ import annotations

import threading
import time
from typing import Any


class _Handle:
    """One bar; `advance` is thread-safe."""

    def __init__(self, owner: Progress, task_id: Any, total: int):
        self.owner, self.task_id, self.total = owner, task_id, total
        self.done = self.cached = self.failed = self.tokens = 0
        self.cost = 0.0
        self.t0 = time.perf_counter()
        self._lock = threading.Lock()

    def advance(self, n: int = 1, cached: int = 0, failed: int = 0, tokens: int = 0, cost: float = 0.0) -> None:
        """Count `n` more rows done (of which `cached` from cache, `failed` failed)."""
        with self._lock:
            self.done += n
            self.cached += cached
            self.failed += failed
            self.tokens += tokens
            self.cost += cost
            if self.owner._rich is not None:
                rate = self.tokens / max(time.perf_counter() - self.t0, 1e-6)
                stats = f"cached {self.cached} · failed {self.failed} · {rate:,.0f} tok/s · ${self.cost:.4f}"
                self.owner._rich.update(self.task_id, advance=n, stats=stats)

    def close(self) -> None:
        """Finish the bar."""
        if self.owner._rich is not None:
            self.owner._rich.update(self.task_id, completed=self.total)


class Progress:
    """A rich progress display (no-op when quiet or not started)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._rich: Any | None = None

    def __enter__(self) -> Progress:
        if not self.quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"), transient=False,
            )
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def task(self, desc: str, total: int) -> _Handle:
        """Start a bar for `total` rows."""
        task_id = self._rich.add_task(desc, total=total, stats="") if self._rich is not None else None
        return _Handle(self, task_id, total)


class RowsBar:
    """A streaming run's bar: rows done of the total (when known), rows/s, ETA and the chunk being written.

    Updates are throttled (at most ten a second), so advancing per row costs next to nothing.
    """

    def __init__(self, owner: Progress, desc: str, total: int | None, done: int = 0):
        self.owner, self.total = owner, total
        self.done = self.start = done  # rows already on disk from an earlier (killed) run
        self.failed = 0
        self.chunk = ""
        self.t0 = self._shown = time.perf_counter()
        self.task_id = owner._rich.add_task(desc, total=total, completed=done, stats="") if owner._rich is not None else None

    def advance(self, n: int = 1, failed: int = 0) -> None:
        """Count `n` more finished rows (`failed` of them with an error)."""
        self.done += n
        self.failed += failed
        now = time.perf_counter()
        if now - self._shown >= 0.1:
            self._show(now)

    def note_chunk(self, text: str) -> None:
        """Say which chunk is being written (shown on the bar)."""
        self.chunk = text
        self._show(time.perf_counter())

    def stats_text(self, now: float | None = None) -> str:
        """`rows/s · ETA · failed · chunk` as shown."""
        elapsed = max((now or time.perf_counter()) - self.t0, 1e-6)
        rate = (self.done - self.start) / elapsed
        eta = "?"
        if self.total is not None and rate > 0:
            left = max(self.total - self.done, 0) / rate
            eta = f"{int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
        return f"{rate:,.0f} rows/s · ETA {eta} · failed {self.failed} · {self.chunk}"

    def _show(self, now: float) -> None:
        self._shown = now
        if self.owner._rich is not None:
            self.owner._rich.update(self.task_id, completed=self.done, stats=self.stats_text(now))

    def close(self) -> None:
        """Show the final numbers."""
        self._show(time.perf_counter())


def rows_bar(progress: Progress, desc: str, total: int | None, done: int = 0) -> RowsBar:
    """A :class:`RowsBar` on `progress` (a no-op display when it is quiet)."""
    return RowsBar(progress, desc, total, done)
