"""Asyncio plumbing shared by the HTTP backends (openai, langchain).

The engine calls ``Backend.generate`` synchronously. HTTP backends keep one event loop per
backend running on a daemon thread (async clients stay bound to it across batches), run a batch's
items there concurrently, and hand each result back to the caller's thread as it completes, so
``on_result`` callbacks run serially on the engine's thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from agentlab.backends.base import ChatResult, OnResult

log = logging.getLogger("agentlab")


class BackgroundLoop:
    """An event loop running forever on a daemon thread, started on first use."""

    def __init__(self, name: str):
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (started now if needed)."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=self.name)
                self._thread.start()
            return self._loop

    @property
    def started(self) -> bool:
        """True once the loop runs (and until it is closed)."""
        return self._loop is not None

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self, cleanup: Callable[[], Coroutine[Any, Any, Any]] | None = None) -> None:
        """Run `cleanup()` on the loop (best effort), then stop it. Safe to call twice."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        if cleanup is not None:
            try:
                asyncio.run_coroutine_threadsafe(cleanup(), loop).result(5)
            except Exception:  # pragma: no cover - closing is best effort
                log.debug("%s: cleanup failed", self.name, exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        loop.close()


def run_items(bg: BackgroundLoop, n: int, item: Callable[[int], Awaitable[ChatResult]],
              on_result: OnResult | None = None, describe: Callable[[Exception], str] = str) -> list[ChatResult]:
    """Run `item(i)` for i < n concurrently on `bg`; results reach `on_result` on this thread as they complete.

    An exception from an item becomes that item's error result (text from `describe`), never a lost row.
    """
    done: queue.SimpleQueue = queue.SimpleQueue()

    async def one(i: int) -> None:
        try:
            res = await item(i)
        except Exception as exc:
            log.debug("%s: item %d failed", bg.name, i, exc_info=True)
            res = ChatResult(error=f"{type(exc).__name__}: {describe(exc)}")
        done.put((i, res))

    async def batch() -> None:
        await asyncio.gather(*(one(i) for i in range(n)))

    fut = asyncio.run_coroutine_threadsafe(batch(), bg.loop)
    fut.add_done_callback(lambda _: done.put(None))
    out: list[ChatResult | None] = [None] * n
    try:
        while (got := done.get()) is not None:
            i, res = got
            out[i] = res
            if on_result:
                on_result(i, res)
    except BaseException:  # Ctrl-C in the caller: stop sending
        fut.cancel()
        raise
    for i, res in enumerate(out):
        if res is None:  # the batch itself was cancelled or broke
            why = "cancelled" if fut.cancelled() else repr(fut.exception())
            out[i] = ChatResult(error=f"internal error: {why}")
            if on_result:
                on_result(i, out[i])
    return out  # type: ignore[return-value]


class TokenBucket:
    """An asyncio token bucket: `rate_per_minute` tokens refill continuously, about one second's worth of burst."""

    def __init__(self, rate_per_minute: float):
        self.rate = rate_per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, n: float = 1.0) -> None:
        """Wait until `n` tokens are available (a request larger than the bucket waits for a full one)."""
        async with self._lock:
            while True:
                self._refill()
                need = min(n, self.capacity)
                if self.level >= need:
                    self.level -= n
                    return
                await asyncio.sleep((need - self.level) / self.rate)

    def give(self, n: float) -> None:
        """Return unused tokens (negative: take more, when the estimate was below the real usage)."""
        self._refill()
        self.level = min(self.capacity, self.level + n)
