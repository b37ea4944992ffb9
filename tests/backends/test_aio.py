"""The asyncio plumbing of the HTTP backends: results stream back in completion order, failures become rows."""

from __future__ import annotations

import asyncio
import threading
import time

from agentlab.backends.aio import BackgroundLoop, TokenBucket, run_items
from agentlab.backends.base import ChatResult


def test_run_items_streams_results_and_turns_exceptions_into_errors():
    bg = BackgroundLoop("test-loop")

    async def item(i: int) -> ChatResult:
        await asyncio.sleep(0.05 * (3 - i))
        if i == 1:
            raise RuntimeError("boom")
        return ChatResult(text=str(i))

    seen = []
    try:
        out = run_items(bg, 3, item, lambda i, r: seen.append((i, threading.get_ident())))
        again = run_items(bg, 1, item)  # the loop persists across batches
    finally:
        bg.close()
        bg.close()
    assert [i for i, _ in seen] == [2, 1, 0]
    assert {t for _, t in seen} == {threading.get_ident()}
    assert out[0].text == "0" and out[1].error == "RuntimeError: boom" and out[2].text == "2"
    assert again[0].text == "0" and not bg.started


def test_token_bucket_paces_after_the_burst():
    async def run() -> float:
        bucket = TokenBucket(600)  # 10/s, a burst of 10
        t0 = time.monotonic()
        for _ in range(15):
            await bucket.take()
        return time.monotonic() - t0

    assert 0.4 <= asyncio.run(run()) < 1.5
