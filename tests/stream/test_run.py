"""Streaming runs end to end: rows on disk mid-run, kill -9 and resume, same rows as the in-memory path."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import run_recipe_cli, write_recipe

pytestmark = pytest.mark.timeout(600)


def _rows(workdir, n):
    (workdir / "rows.jsonl").write_text("".join(json.dumps({"text": f"row number {i}", "gold": "yes" if i % 3 else "no"})
                                                + "\n" for i in range(n)))


def _recipe(workdir, n, delay, chunk=5, commit=0.2, **task):
    _rows(workdir, n)
    return write_recipe(workdir / "r.yaml", {
        "name": "stream",
        "source": {"path": "rows.jsonl"},
        "models": {"m": {"backend": "fake", "default": '{"answer": "yes"}', "delay": delay,
                         "call_log": str(workdir / "calls.log")}},
        "task": {"type": "generate", "prompt": "p.jinja", "model": "m", "schema": {"answer": "yes|no"}, **task},
        "eval": {"gold": "gold"},
        "output": {"chunk_size": chunk, "commit_seconds": commit},
    })


def _start(workdir, path):
    return subprocess.Popen([sys.executable, "-m", "agentlab", "generate", str(path), "-q", "-o", "out"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _lines(workdir):
    path = workdir / "out" / "data.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def _calls(workdir):
    path = workdir / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


def test_partial_output_is_readable_mid_run(workdir):
    path = _recipe(workdir, 60, delay=0.03)
    proc = _start(workdir, path)
    deadline = time.time() + 120
    while len(_lines(workdir)) < 10 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    still_running = proc.poll() is None
    head = _lines(workdir)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    assert still_running and 10 <= len(head) < 60, "rows should be on disk while the run goes"
    texts = [json.loads(l)["text"] for l in head[: len(head) - 1]]  # the last line may be mid-write
    assert texts == [f"row number {i}" for i in range(len(texts))]
    log = (workdir / "out" / "run.log").read_text()
    assert "chunk 1 committed: rows 0-4 -> data.jsonl" in log
    rows = [json.loads(l) for l in _lines(workdir)]
    assert [r["text"] for r in rows] == [f"row number {i}" for i in range(60)]
    manifest = json.loads((workdir / "out" / "manifest.json").read_text())
    assert manifest["counts"]["rows"] == 60 and manifest["streaming"]["chunks"] >= 12


def test_kill9_at_random_points_then_resume_gives_every_row_once_in_order(workdir):
    n = 120
    path = _recipe(workdir, n, delay=0.01, chunk=7, commit=0.1)
    rng = random.Random(16)
    kills = 0
    for _ in range(3):
        seen = len(_calls(workdir))
        target = seen + rng.randint(5, 25)
        proc = _start(workdir, path)
        deadline = time.time() + 120
        while len(_calls(workdir)) < target and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        journal = json.loads((workdir / "out" / "stream.json").read_text()) if (workdir / "out" / "stream.json").exists() else None
        if journal is not None:  # what the journal says is committed is on disk, complete and in order
            committed = (workdir / "out" / "data.jsonl").read_bytes()[: journal["bytes"]].decode().splitlines()
            assert [json.loads(l)["text"] for l in committed] == [f"row number {i}" for i in range(journal["rows"])]
    assert kills >= 2
    done = _start(workdir, path)
    assert done.wait(timeout=300) == 0, done.stderr.read().decode()
    rows = [json.loads(l) for l in _lines(workdir)]
    assert [r["text"] for r in rows] == [f"row number {i}" for i in range(n)]
    assert [r["gold"] for r in rows] == ["yes" if i % 3 else "no" for i in range(n)]
    calls = _calls(workdir)
    # each kill repeats at most the call in flight plus those completed in the last group commit (50 ms, 10 ms a call)
    assert n <= len(calls) <= n + kills * 8, len(calls)
    assert len(set(calls)) == n  # every row's call, each made once apart from the repeats counted above


@pytest.mark.parametrize("schema", [True, False])
def test_streaming_generate_equals_the_in_memory_path(workdir, monkeypatch, schema):
    (workdir / "rows.jsonl").write_text("".join(json.dumps({"text": t, "gold": i}) + "\n" for i, t in enumerate(
        ["fine", "bad json please", "fails here", "fine again", "fine", "bad json please", "images?"] * 3)))
    task = {"type": "generate", "prompt": "p.jinja", "model": "m"}
    if schema:
        task["schema"] = {"answer": "yes|no"}
    recipe = {"name": "same", "source": {"path": "rows.jsonl"}, "task": task, "eval": {"gold": "gold"},
              "models": {"m": {"backend": "fake", "default": '{"answer": "yes"}', "rules": {"bad json": "{answer: yes"},
                               "fail_on": "fails here"}},
              "output": {"chunk_size": 4}}
    (workdir / "p.jinja").write_text("{{ text }}")
    streamed, man_s = run_recipe_cli(workdir, recipe)
    monkeypatch.setattr("agentlab.stream.run.streams", lambda task, recipe: False)
    (workdir / "out").rename(workdir / "streamed")
    in_memory, man_m = run_recipe_cli(workdir, {**recipe, "name": "same"})
    assert streamed == in_memory
    assert "streaming" in man_s and "streaming" not in man_m
    assert man_s["counts"]["failed_rows"] == man_m["counts"]["failed_rows"] > 0
    for key in ("repaired", "failed"):
        assert man_s["counts"][key] == man_m["counts"][key]


def test_streaming_label_equals_the_in_memory_path(workdir, monkeypatch):
    rng = random.Random(0)
    classes = ["ham", "spam"]
    rows = [{"text": f"comment {i} {'check out my channel' if i % 4 == 0 else 'nice song'}",
             "votes": [rng.choice([None, "ham", "spam"]) for _ in range(5)], "label": rng.choice(classes)} for i in range(40)]
    (workdir / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (workdir / "lab.jinja").write_text("Is this spam? {{ text }}")
    recipe = {"name": "lab", "source": {"path": "rows.jsonl"},
              "models": {"m": {"backend": "fake", "rules": {"channel": "spam"}, "default": "ham"}},
              "task": {"type": "label", "classes": classes, "labelers": [
                  {"type": "precomputed", "field": "votes"},
                  {"type": "keywords", "votes": {"spam": ["channel"]}},
                  {"type": "prompt", "model": "m", "prompt": "lab.jinja"}]},
              "aggregate": {"method": "all", "use": "dawid_skene"},
              "eval": {"gold": "label"}, "output": {"chunk_size": 6}}
    streamed, man_s = run_recipe_cli(workdir, recipe)
    (workdir / "out").rename(workdir / "streamed")
    monkeypatch.setattr("agentlab.stream.run.streams", lambda task, recipe: False)
    in_memory, man_m = run_recipe_cli(workdir, recipe)
    assert streamed == in_memory
    assert man_s["metrics"]["dawid_skene"] == man_m["metrics"]["dawid_skene"]
    assert man_s["metrics"]["labelers"] == man_m["metrics"]["labelers"]
    import numpy as np

    assert (np.load(workdir / "streamed" / "label_matrix.npy") == np.load(workdir / "out" / "label_matrix.npy")).all()
