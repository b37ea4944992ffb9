"""The ``local`` executor: the backend answers in this process (its own threads or asyncio loop)."""

from __future__ import annotations

import logging

from agentlab.backends.base import Backend, ChatRequest, ChatResult, OnResult
from agentlab.executors import EXECUTORS, Executor

log = logging.getLogger("agentlab")


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """Send the requests to the backend in batches of ``backend.batch_size``; results stream back per item."""

    name = "local"

    def generate(self, backend: Backend, requests: list[ChatRequest], on_result: OnResult) -> None:
        step = max(1, backend.batch_size)
        for start in range(0, len(requests), step):
            chunk = requests[start : start + step]

            def shifted(j: int, res: ChatResult, start: int = start) -> None:
                on_result(start + j, res)

            try:
                out = backend.generate(chunk, on_result=shifted)
            except Exception as exc:  # a backend must not raise per item; if it does, record it as data
                log.exception("backend %s failed on a batch", type(backend).__name__)
                out = [ChatResult(error=f"{type(exc).__name__}: {exc}") for _ in chunk]
            for j, res in enumerate(out):  # the engine ignores items already reported
                shifted(j, res)
