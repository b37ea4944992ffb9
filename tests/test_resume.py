"""Resume: a run killed with SIGKILL midway resumes with no completed call repeated and no row lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import write_recipe


def _recipe(workdir, n=40, delay=0.05):
    (workdir / "rows.jsonl").write_text("".join(json.dumps({"text": f"row number {i}"}) + "\n" for i in range(n)))
    return write_recipe(workdir / "r.yaml", {
        "name": "resume",
        "source": {"path": "rows.jsonl"},
        "models": {"m": {"backend": "fake", "default": '{"answer": "yes"}', "delay": delay, "call_log": str(workdir / "calls.log")}},
        "task": {"type": "generate", "prompt": "p.jinja", "model": "m", "schema": {"answer": "yes|no"}},
    })


def _calls(workdir):
    path = workdir / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


def _run(workdir, path, **kw):
    return subprocess.Popen([sys.executable, "-m", "agentlab", "generate", str(path), "-q", "-o", "out"],
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_kill9_then_resume_no_repeat_no_loss(workdir):
    path = _recipe(workdir)
    proc = _run(workdir, path)
    deadline = time.time() + 120
    while len(_calls(workdir)) < 12 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = _calls(workdir)
    assert 0 < len(first) < 40, "the run should have been killed midway"
    partial = (workdir / "out" / "data.jsonl").read_text().splitlines()  # committed chunks: complete rows, in order
    assert [json.loads(l)["text"] for l in partial] == [f"row number {i}" for i in range(len(partial))]

    done = _run(workdir, path)
    assert done.wait(timeout=300) == 0, done.stderr.read().decode()
    second = _calls(workdir)[len(first):]
    repeated = set(first) & set(second)
    # at most the call in flight plus those completed in the cache's last group-commit window (50 ms; 50 ms a call)
    assert len(repeated) <= 3, f"completed calls repeated: {len(repeated)}"
    assert len(first) + len(second) - len(repeated) == 40
    rows = [json.loads(l) for l in (workdir / "out" / "data.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == [f"row number {i}" for i in range(40)]
    assert all(r["answer"] == "yes" for r in rows)

    again = _run(workdir, path)
    assert again.wait(timeout=300) == 0
    assert len(_calls(workdir)) == len(first) + len(second), "a finished recipe must make zero backend calls"
    manifest = json.loads((workdir / "out" / "manifest.json").read_text())
    assert manifest["counts"]["llm_calls"] == 0 and manifest["counts"]["cache_hits"] == 40


def test_fresh_ignores_cache(workdir):
    path = _recipe(workdir, n=5, delay=0)
    assert _run(workdir, path).wait(timeout=300) == 0
    proc = subprocess.run([sys.executable, "-m", "agentlab", "generate", str(path), "-q", "-o", "out", "--fresh"], cwd=workdir, check=False)
    assert proc.returncode == 0
    assert len(_calls(workdir)) == 10
