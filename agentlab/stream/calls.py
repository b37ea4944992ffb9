"""The streaming side of the call service: requests go in as rows are read, results come back as calls finish.

:class:`CallStream` answers requests for one model through the call cache and the run's executor,
like :meth:`agentlab.engine.RunContext.call`, but without waiting for a whole list: cache hits are
answered at once, misses queue for worker threads that hand batches to the executor. Two workers
feed an asynchronous backend (the ``openai`` backend's event loop), so while one batch drains its
slowest calls the next one already fills the free slots: the executor stays full across chunk
boundaries. Results return on the caller's thread (:meth:`CallStream.pump`), where each one is
counted, cached (group commit, see :class:`agentlab.store.CallCache`) and handed to its callbacks.
A key already in flight is not sent twice: its callbacks wait for the one call.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from agentlab.backends.base import ChatRequest, ChatResult, image_error
from agentlab.errors import ConfigError

log = logging.getLogger("agentlab")
Callback = Callable[[ChatResult], None]
_FIELDS = tuple(f for f in ChatResult.model_fields if f != "cached")


def result_json(res: ChatResult) -> str:
    """A result as the cache stores it (what `model_dump(mode="json", exclude={"cached"})` gives, without pydantic)."""
    d = res.__dict__
    return json.dumps({f: d[f] for f in _FIELDS})


def cached_result(d: dict[str, Any]) -> ChatResult:
    """A cached result dict as a ChatResult, without re-validating what we wrote ourselves."""
    return ChatResult.model_construct(**d, cached=True)


def plan(executor: Any, backend: Any) -> tuple[int, int]:
    """(worker threads, requests per batch) for an executor and backend.

    Locally an asynchronous backend gets two overlapping batches (one drains while the next fills);
    the ray executor gets one large batch at a time (each batch is one Ray Dataset over the actor pool,
    which costs seconds to start).
    """
    if executor.name == "local":
        return (2 if getattr(backend, "overlaps", False) else 1), max(1, backend.batch_size)
    cfg = executor.config
    return 1, max(512, 8 * cfg.batch_size * cfg.replicas)


class CallStream:
    """Cached, counted, streaming calls to one model of a run.

    Args:
        ctx: the run context (call service: backends, cache, stats, executor).
        model: a model name (or None/`default`).
    """

    def __init__(self, ctx: Any, model: str | None):
        from agentlab.engine import ModelStats

        self.ctx = ctx
        self.name = ctx.resolve_model(model)
        self.backend = ctx.backend(self.name)
        self.stats = ctx.stats.setdefault(self.name, ModelStats())
        self.ident = self.backend.identity()
        self.executor = ctx.get_executor()
        self.workers, self.batch = plan(self.executor, self.backend)
        self._images = "images" in self.backend.capabilities
        self._todo: queue.Queue = queue.Queue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: dict[str, list[Callback]] = {}
        self._threads: list[threading.Thread] = []

    @property
    def capacity(self) -> int:
        """Calls worth having queued or in flight to keep the executor busy."""
        return self.workers * self.batch

    @property
    def in_flight(self) -> int:
        """Distinct calls sent and not yet answered."""
        return len(self._waiting)

    def submit(self, requests: Sequence[ChatRequest], callbacks: Sequence[Callback]) -> None:
        """Answer each request through its callback: cache hits now, the rest as their calls finish (in :meth:`pump`)."""
        keys = [r.cache_key(self.ident) for r in requests]
        cache = self.ctx.cache
        new = [k for k in keys if k not in self._waiting]
        hits = cache.get_many(new) if new and not self.ctx.fresh else {}
        for k, req, cb in zip(keys, requests, callbacks):
            if k in self._waiting:
                self._waiting[k].append(cb)
            elif k in hits:
                self.stats.cache_hits += 1
                cb(cached_result(hits[k]))
            elif not self._images and req.has_images():
                cb(ChatResult(error=image_error(self.ctx.model_configs[self.name].backend)))
            else:
                self._waiting[k] = [cb]
                self._todo.put((k, req))
                self._start()

    def pump(self, timeout: float) -> int:
        """Deliver finished calls (waiting up to `timeout` s for the first); returns how many were delivered."""
        try:
            item = self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
        except queue.Empty:
            return 0
        n = 0
        while True:
            self._deliver(*item)
            n += 1
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                return n

    def _deliver(self, key: str | None, res: Any) -> None:
        if key is None:  # the executor cannot run at all (e.g. no Ray cluster there): stop the run
            raise res
        s = self.stats
        s.llm_calls += 1
        s.prompt_tokens += res.prompt_tokens
        s.completion_tokens += res.completion_tokens
        s.cost_usd += res.cost_usd
        if res.error is None:
            self.ctx.cache.put_json(key, result_json(res))
        for cb in self._waiting.pop(key, ()):
            cb(res)

    # -- workers -----------------------------------------------------------------------------------------------
    def _start(self) -> None:
        if len(self._threads) >= self.workers:
            return
        if not self._threads and hasattr(self.executor, "connect"):
            self.executor.connect()  # Ray starts on this (the main) thread, not a worker's
        t = threading.Thread(target=self._work, daemon=True, name=f"agentlab-calls-{len(self._threads)}")
        self._threads.append(t)
        t.start()

    def _take(self) -> list[tuple[str, ChatRequest]] | None:
        first = self._todo.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self.batch:
            try:
                nxt = self._todo.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self._todo.put(None)  # leave the stop signal for this worker's next round
                break
            batch.append(nxt)
        return batch

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            keys, seen = [k for k, _ in batch], set()

            def on_result(j: int, res: ChatResult, keys=keys, seen=seen) -> None:
                if j not in seen:
                    seen.add(j)
                    self._done.put((keys[j], res))

            lost = "the executor reported no result for this call"
            try:
                self.executor.generate(self.backend, [r for _, r in batch], on_result)
            except ConfigError as exc:
                self._done.put((None, exc))
            except Exception as exc:  # an executor that cannot finish: the unanswered calls become error data
                log.exception("executor %s failed", self.executor.name)
                lost = f"{type(exc).__name__}: {exc}"
            for j in range(len(batch)):
                on_result(j, ChatResult(error=lost))

    def close(self) -> None:
        """Stop the workers (calls still queued are dropped: their rows were not committed)."""
        while True:
            try:
                self._todo.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._todo.put(None)
        for t in self._threads:
            t.join(10)
        self._threads.clear()
