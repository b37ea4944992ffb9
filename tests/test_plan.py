"""`agentlab plan`: the plan's calls equal what a real run then counts, and planning calls and writes nothing.

Real paths: the quickstart on the real embedded model, and a `generate` recipe against a local
OpenAI-compatible server (the scripted fault server, which counts the calls it receives).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentlab.backends.base import ChatRequest
from agentlab.cli import main
from agentlab.tokens import TokenCounter, completion_estimate
from tests.conftest import REPO, run_recipe_cli, write_recipe
from tests.helpers.fault_server import FaultServer


def plan_cli(*args: str, code: int = 0) -> str:
    res = CliRunner().invoke(main, ["plan", *args], catch_exceptions=False)
    assert res.exit_code == code, res.output
    return res.output


def snapshot(d: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime) for p in sorted(d.rglob("*"))} if d.exists() else {}


# -- units -----------------------------------------------------------------------------------------
def test_completion_estimate_options_schema_and_free_text():
    c = TokenCounter()
    assert completion_estimate(ChatRequest(messages=[], options=["a", "b"]), c) == (0, "options scored (no generation)")
    enum = {"type": "object", "properties": {"label": {"enum": ["positive", "negative"]}}}
    n, how = completion_estimate(ChatRequest(messages=[], max_tokens=256, json_schema=enum), c)
    assert how == "schema" and 0 < n < 20
    free = {"type": "object", "properties": {"summary": {"type": "string"}}}
    assert completion_estimate(ChatRequest(messages=[], max_tokens=99, json_schema=free), c) == (99, "max_tokens (schema has free text)")
    assert completion_estimate(ChatRequest(messages=[], max_tokens=7), c) == (7, "max_tokens (upper bound)")


def test_debate_plan_counts_every_turn_judge_and_baseline(workdir):
    from tests.tasks.test_debate import ROWS, recipe

    (workdir / "c.jsonl").write_text("".join(json.dumps({"text": t, "gold": g}) + "\n" for t, g in ROWS))
    write_recipe(workdir / "d.yaml", recipe())
    plan_cli(str(workdir / "d.yaml"), "-o", "out")
    plan = json.loads((workdir / "out.plan.json").read_text())
    m = plan["models"]["small"]
    # 4 rows x (2 rounds x 2 debaters + judge + category/reason at most) + 4 single-judge calls
    assert m["calls"] == 28 and m["upper_bound"] and m["to_call"] == 28
    assert [s["desc"] for s in plan["stages"]][:4] == ["debate: round 1, affirmative", "debate: round 1, negative",
                                                       "debate: round 2, affirmative", "debate: round 2, negative"]
    assert [s["exact"] for s in plan["stages"]][:2] == [True, False]
    _, man = run_recipe_cli(workdir, recipe())
    assert man["counts"]["llm_calls"] + man["counts"]["cache_hits"] == 28


# -- the quickstart on the real embedded model -------------------------------------------------------
def test_quickstart_plan_matches_the_run_and_a_finished_run_plans_zero(workdir):
    recipe = str(REPO / "recipes" / "quickstart.yaml")
    out = plan_cli(recipe, "-o", "run")
    assert not (workdir / "run").exists()  # nothing written into (or as) the run directory
    plan = json.loads((workdir / "run.plan.json").read_text())
    m = plan["models"]["small"]
    # 2 prompt labelers x (40 rows + the 6 labeled seed rows, which they also vote on to pick the label model)
    assert plan["rows"] == 40 and m["calls"] == 92 and m["cached"] == 0 and m["to_call"] == 92
    assert m["tokenizer"].startswith("llama.cpp tokenizer") and m["completion_tokens"] == 0 and m["cost_usd"] == 0
    assert "small" in out and "92" in out

    res = CliRunner().invoke(main, ["generate", recipe, "-q", "-o", "run"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    man = json.loads((workdir / "run" / "manifest.json").read_text())
    assert man["counts"]["llm_calls"] == m["to_call"] == 92 and man["counts"]["cache_hits"] == 0
    assert man["usage"]["prompt_tokens"] == m["prompt_tokens"]  # the same tokenizer and chat template as the run

    before = snapshot(workdir / "run")
    plan_cli(recipe, "-o", "run", "--plan-file", "again.json")
    again = json.loads((workdir / "again.json").read_text())["models"]["small"]
    assert again["calls"] == 92 and again["cached"] == 92 and again["to_call"] == 0 and again["prompt_tokens"] == 0
    assert snapshot(workdir / "run") == before  # the cache was read without writing

    plan_cli(recipe, "-o", "run", "--fresh", "--plan-file", "f.json")
    assert json.loads((workdir / "f.json").read_text())["models"]["small"]["to_call"] == 92


# -- generate against a local OpenAI-compatible server -----------------------------------------------
def _server_recipe(url: str, price: float = 1.0) -> dict:
    return {"name": "gen", "source": {"path": "data.jsonl"},
            "models": {"srv": {"backend": "openai", "base_url": url, "model": "m", "api_key": "none",
                               "max_in_flight": 4, "requests_per_minute": 60,
                               "price_per_1k_input": price, "price_per_1k_output": 2 * price}},
            "task": {"type": "generate", "model": "srv", "prompt": "p.jinja", "schema": {"label": "positive|negative"}}}


def test_generate_plan_on_a_local_server_matches_the_run(workdir):
    with FaultServer() as server:
        path = write_recipe(workdir / "g.yaml", _server_recipe(server.url))
        plan_cli(str(path), "-o", "out")
        assert len(server.calls) == 0  # planning calls nothing
        plan = json.loads((workdir / "out.plan.json").read_text())
        m = plan["models"]["srv"]
        assert m["calls"] == 6 and m["to_call"] == 6 and m["completion_tokens_from"] == ["schema"]
        assert m["prompt_tokens"] > 0 and m["cost_usd"] == pytest.approx((m["prompt_tokens"] + 2 * m["completion_tokens"]) / 1000)
        assert m["wall_time_bound"] == "requests_per_minute=60" and m["wall_time_s"] == pytest.approx(6.0)
        assert m["tokenizer"].startswith(("tiktoken", "estimate"))

        _, man = run_recipe_cli(workdir, _server_recipe(server.url))
        assert man["counts"]["llm_calls"] == m["to_call"] == len(server.calls) == 6

        plan_cli(str(path), "-o", "out")
        done = json.loads((workdir / "out.plan.json").read_text())["models"]["srv"]
        assert done["cached"] == 6 and done["to_call"] == 0 and done["cost_usd"] == 0


def test_max_cost_usd_refuses_to_start_and_writes_nothing(workdir):
    with FaultServer() as server:
        path = write_recipe(workdir / "g.yaml", _server_recipe(server.url, price=10.0))
        res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out", "--max-cost-usd", "0.01"])
        assert res.exit_code == 2 and res.output.startswith("Error: the plan estimates $") and "--max-cost-usd 0.01" in res.output
        assert "Traceback" not in res.output and not (workdir / "out").exists() and len(server.calls) == 0
        res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out", "--max-cost-usd", "100"])
        assert res.exit_code == 0, res.output
        assert len(server.calls) == 6


def test_plan_of_an_invalid_recipe_is_a_clear_error(workdir):
    path = write_recipe(workdir / "bad.yaml", {"name": "x", "source": {"path": "data.jsonl"}, "task": {"type": "nope"}})
    res = CliRunner().invoke(main, ["plan", str(path)])
    assert res.exit_code == 2 and res.output.startswith("Error:") and "Traceback" not in res.output
