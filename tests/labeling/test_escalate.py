"""Escalation's cost cap holds over a run and all its resumes (a real local OpenAI-compatible server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO as ROOT
from tests.conftest import run_recipe_cli, write_recipe
from tests.helpers.fault_server import FaultServer, last_user_text

PRICE = 1.0  # USD per 1,000 tokens in and out: a call costs about $0.02
CAP = 0.3


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def call_cost(call) -> float:
    """What the server charges for a call (its usage is len(prompt) // 4 + 1 in, len(answer) // 4 + 1 out)."""
    answer = "Positive"  # fault_server answers option scoring with this one token
    return ((len(call.prompt) // 4 + 1) + (len(answer) // 4 + 1)) * PRICE / 1000


def paid(server: FaultServer) -> float:
    """Every escalation request that reached the server counts as paid, answered or not."""
    return sum(call_cost(c) for c in server.calls if "Review:" in last_user_text(c.body["messages"]))


def recipe(workdir: Path, url: str, slow: bool = False, **output) -> dict:
    suffix = " [[faults:slow]]" if slow else ""
    rows = [{"text": f"review number {i:02d}, a film about some things{suffix}"} for i in range(40)]
    (workdir / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (workdir / "esc.jinja").write_text("Review: {{ text }}\nIs it positive or negative?")
    return {
        "name": "esc",
        "source": {"path": "rows.jsonl"},
        "models": {"strong": {"backend": "openai", "model": "strong", "base_url": url, "max_in_flight": 4,
                              "backoff_base": 0.01, "price_per_1k_input": PRICE, "price_per_1k_output": PRICE}},
        "task": {"type": "label", "classes": ["positive", "negative"],
                 "labelers": [{"type": "keywords", "votes": {"positive": ["wonderful"], "negative": ["awful"]}}]},
        "aggregate": {"method": "majority"},
        "escalate": {"to": "strong", "when": "confidence < 0.7", "max_cost_usd": CAP, "prompt": "esc.jinja"},
        "output": {"hf_dataset": False, **output},
    }


def test_a_second_invocation_spends_nothing_past_the_cap(workdir, server):
    """The cap is for the run, not per invocation: run 2 replays run 1's paid answers and pays for no new row."""
    r = recipe(workdir, server.url)
    rows1, man1 = run_recipe_cli(workdir, r)
    info1, spent1 = man1["metrics"]["escalation"], paid(server)
    assert info1["stopped_by"] == "max_cost_usd" and 0 < info1["escalated"] < info1["candidates"] == 40
    assert spent1 <= CAP and info1["cost_usd"] == pytest.approx(spent1, abs=1e-6)
    assert info1["cost_usd_this_invocation"] == info1["cost_usd"] and info1["max_cost_usd"] == CAP

    calls = len(server.calls)
    rows2, man2 = run_recipe_cli(workdir, r)
    info2 = man2["metrics"]["escalation"]
    assert len(server.calls) == calls  # no new call: every escalated answer came from the cache
    assert info2["escalated"] == info1["escalated"] and info2["cost_usd"] == pytest.approx(info1["cost_usd"])
    assert info2["cost_usd_this_invocation"] == 0 and info2["stopped_by"] == "max_cost_usd"
    assert [x["votes"]["escalate@strong"] for x in rows2] == [x["votes"]["escalate@strong"] for x in rows1]
    ledger = json.loads((workdir / "out" / "escalation_spend.json").read_text())["strong"]
    assert ledger["paid_usd"] == pytest.approx(spent1) and ledger["in_flight_rows"] == 0


@pytest.mark.parametrize("how", ["cache_none", "fresh"])
def test_without_a_cache_to_replay_the_ledger_keeps_the_cap(workdir, server, how):
    """`output.cache: none` / `--fresh` re-pay every call: the paid spend of earlier invocations still counts."""
    r = recipe(workdir, server.url, **({"cache": "none"} if how == "cache_none" else {}))
    _, man1 = run_recipe_cli(workdir, r)
    spent1 = paid(server)
    assert man1["metrics"]["escalation"]["escalated"] > 0 and spent1 <= CAP
    if how == "fresh":
        from click.testing import CliRunner

        from agentlab.cli import main

        res = CliRunner().invoke(main, ["generate", str(workdir / "r.yaml"), "-q", "-o", "out", "--fresh"])
        assert res.exit_code == 0, res.output
        man2 = json.loads((workdir / "out" / "manifest.json").read_text())
    else:
        _, man2 = run_recipe_cli(workdir, r)
    info2 = man2["metrics"]["escalation"]
    assert paid(server) <= CAP + 1e-9  # summed over both invocations
    assert info2["stopped_by"] == "max_cost_usd" and info2["cost_usd"] <= CAP + 1e-9


def test_kill_9_and_resume_never_spend_past_the_cap(workdir, server):
    """SIGKILL while escalation calls are in flight, then resume: everything the server was asked for stays
    under the cap, and the resumed run ends like an uninterrupted one (same rows, or fewer when in-doubt)."""
    server.slow_s = 0.4
    path = write_recipe(workdir / "r.yaml", recipe(workdir, server.url, slow=True))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "agentlab", "generate", str(path), "-q", "-o", "out"],
                            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while server.count("Review:") < 4:  # the first (one-row) batch is done, the next one is in flight
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    killed_after = server.count("Review:")
    ledger = json.loads((workdir / "out" / "escalation_spend.json").read_text())["strong"]
    assert ledger["in_flight_rows"] > 0  # it died mid-batch

    server.slow_s = 0.0
    rows, man = run_recipe_cli(workdir, json.loads(json.dumps(recipe(workdir, server.url, slow=True))))
    info = man["metrics"]["escalation"]
    assert paid(server) <= CAP + 1e-9, (paid(server), killed_after, info)
    assert info["cost_usd"] <= CAP + 1e-9 and info["cost_usd"] >= paid(server) - 1e-9  # in-flight calls counted
    assert info["escalated"] > 0 and sum(x["votes"]["escalate@strong"] is not None for x in rows) == info["escalated"]
