"""The executor seam without Ray: the registry, the local executor, and clear errors for Ray settings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from agentlab.backends.base import ChatRequest, ChatResult
from agentlab.backends.fake import FakeBackend, FakeConfig
from agentlab.cli import main
from agentlab.config.sections import ExecutorConfig
from agentlab.executors import EXECUTORS, make_executor
from agentlab.executors.local import LocalExecutor

RECIPE = {"name": "r", "source": {"path": "data.jsonl"}, "models": {"m": {"backend": "fake"}},
          "task": {"type": "generate", "prompt": "p.jinja", "model": "m"}}


def test_registry_has_local_and_ray():
    assert {"local", "ray"} <= set(EXECUTORS.names())
    assert isinstance(make_executor(ExecutorConfig()), LocalExecutor)
    assert make_executor(ExecutorConfig()).describe() == {"type": "local"}


def test_local_executor_batches_and_turns_a_raising_backend_into_error_results():
    class Flaky(FakeBackend):
        batch_size = 2

        def generate(self, requests, on_result=None):
            if any("boom" in r.messages[-1]["content"] for r in requests):
                raise RuntimeError("boom")
            return super().generate(requests, on_result)

    got: dict[int, ChatResult] = {}
    reqs = [ChatRequest(messages=[{"role": "user", "content": c}]) for c in ("a", "b", "boom", "c", "d")]
    LocalExecutor(ExecutorConfig()).generate(Flaky(FakeConfig(default="x")), reqs, lambda i, r: got.setdefault(i, r))
    assert [got[i].text for i in (0, 1, 4)] == ["x", "x", "x"]
    assert got[2].error == got[3].error == "RuntimeError: boom"  # the failing batch only, as data


def test_missing_ray_names_the_extra(workdir, recipe_file, monkeypatch):
    import agentlab.executors.ray as ray_executor

    monkeypatch.setattr(ray_executor, "ray_installed", lambda: False)
    path = recipe_file({**RECIPE, "executor": {"type": "ray"}})
    res = CliRunner().invoke(main, ["generate", str(path), "-q"])
    assert res.exit_code == 2
    assert "Error: the ray executor needs Ray, which is not installed: pip install 'agentlab[ray]'" in res.output
    assert not (workdir / "outputs").exists()  # nothing written
    res = CliRunner().invoke(main, ["generate", str(recipe_file(RECIPE)), "-q", "--executor", "ray"])
    assert res.exit_code == 2 and "pip install 'agentlab[ray]'" in res.output


def test_address_without_ray_is_a_clear_error(workdir, recipe_file):
    res = CliRunner().invoke(main, ["generate", str(recipe_file(RECIPE)), "-q", "--address", "ray://head:10001"])
    assert res.exit_code == 2 and "--address ray://head:10001 is a Ray cluster address; add --executor ray" in res.output
    bad = recipe_file({**RECIPE, "executor": {"address": "auto"}})
    res = CliRunner().invoke(main, ["validate", str(bad)])
    assert res.exit_code == 2 and "`address` is a Ray cluster address; set `type: ray`" in res.output


def test_ray_recipe_validates(workdir, recipe_file):
    path = recipe_file({**RECIPE, "executor": {"type": "ray", "address": "auto", "replicas": 8, "batch_size": 256}})
    res = CliRunner().invoke(main, ["validate", str(path)])
    assert res.exit_code == 0, res.output


def test_crash_on_call_needs_a_marker():
    with pytest.raises(ValueError, match="crash_on_call needs crash_marker"):
        FakeConfig(crash_on_call=2)


def test_configs_shipped_to_ray_workers_carry_the_key_and_the_reserved_cpus(monkeypatch):
    from agentlab.backends.embedded import EmbeddedConfig
    from agentlab.backends.openai import OpenAIBackend, OpenAIConfig
    from agentlab.executors.ray import _shippable

    monkeypatch.setenv("MY_KEY", "sk-test")
    cfg = OpenAIConfig(model="x", api_key_env="MY_KEY", base_url="http://127.0.0.1:9/v1", requests_per_minute=60)
    shipped = _shippable(cfg, 1)
    assert shipped.api_key.get_secret_value() == "sk-test" and cfg.api_key is None
    assert OpenAIBackend(shipped).identity() == OpenAIBackend(cfg).identity()  # same cache keys on every worker
    assert OpenAIBackend(cfg).rate_limits() == {"rpm": 60}
    assert _shippable(EmbeddedConfig(), 4).n_threads == 4
    assert _shippable(EmbeddedConfig(n_threads=2), 4).n_threads == 2


def test_no_ray_cluster_at_the_address_stops_the_run_with_a_clear_error(workdir, recipe_file, monkeypatch):
    ray = pytest.importorskip("ray")

    def refuse(**kwargs):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    res = CliRunner().invoke(main, ["generate", str(recipe_file(RECIPE)), "-q", "--executor", "ray", "--address", "auto"])
    assert res.exit_code == 2, res.output
    assert ("Error: could not join the Ray cluster at 'auto': Could not find any running Ray instance. "
            "Fix executor.address / --address") in res.output
