"""The call cache's group commit: puts are durable within the flush interval, even across `kill -9`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from agentlab.store import CallCache

CHILD = r"""
import sys, time
from pathlib import Path
from agentlab.store import CallCache
cache = CallCache(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    cache.put(f"k{i}", {"text": str(i)})
print("put", flush=True)
time.sleep(60)
"""


def test_puts_are_visible_at_once_and_committed_together(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    cache.put("a", {"text": "1"})
    assert cache.get_many(["a", "b"]) == {"a": {"text": "1"}}  # buffered, still answered
    time.sleep(0.3)
    other = CallCache(tmp_path / "c.sqlite", flush_interval=0)  # another connection sees it once committed
    assert other.get_many(["a"]) == {"a": {"text": "1"}}
    other.close()
    cache.close()


def test_kill9_loses_nothing_older_than_the_flush_interval(tmp_path):
    path = tmp_path / "c.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), "500"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "put"
    time.sleep(0.25)  # five flush intervals: every put must be committed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = CallCache(path)
    assert len(cache) == 500
    cache.close()


def test_flush_interval_zero_commits_each_put(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite", flush_interval=0)
    cache.put("a", {"text": "1"})
    assert cache._pending == {} and len(cache) == 1
    cache.close()
