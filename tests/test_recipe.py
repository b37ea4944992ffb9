"""Recipe validation: broken recipes give the exact error, exit code 2, and write nothing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from agentlab.cli import main
from agentlab.errors import RecipeErrors
from agentlab.recipe import parse_recipe

GOOD = {
    "name": "t",
    "source": {"path": "data.jsonl"},
    "models": {"small": {"backend": "fake"}},
    "task": {"type": "generate", "prompt": "p.jinja", "model": "small"},
}


def with_(**changes):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        if value is ...:
            node.pop(leaf)
        else:
            node[leaf] = value
    return data


BROKEN = [
    (with_(task__prompt="missing.jinja"),
     "task.prompt: template not found (got 'missing.jinja'). Fix: give a path under prompts/ or next to the recipe"),
    (with_(task__type="generat"),
     "task.type: unknown task 'generat'; did you mean 'generate'? known: "),
    (with_(task__model="smal"),
     "task.model: unknown model 'smal'. Fix: did you mean 'small'? define it under `models:` (known: small)"),
    (with_(task__promt="p.jinja"),
     "task.promt: Extra inputs are not permitted (got 'p.jinja'). Fix: did you mean 'prompt'? remove it or use one of:"),
    (with_(source__path="nope.jsonl"),
     "source.path: file or folder not found (got 'nope.jsonl'). Fix: check the path"),
    (with_(source__limit=0),
     "source.limit: Input should be greater than or equal to 1 (got 0). Fix: use a value within the allowed range"),
    (with_(models={"small": {"backend": "opnai"}}),
     "models.small.backend: unknown backend 'opnai'; did you mean 'openai'?"),
    (with_(models={"small": {"backend": "embedded", "n_ctx": "big"}}),
     "models.small.n_ctx: Input should be a valid integer, unable to parse string as an integer (got 'big'). Fix: give a value of the right type (int)"),
    (with_(name=...), "name: Field required. Fix: add `name:` to the recipe"),
    (with_(task={"prompt": "p.jinja"}), "task.type: is missing. Fix: add `type:` with one of: "),
    (with_(task__schema={"x": "tuple"}),
     "task.schema: field 'x' has unknown type 'tuple'; use one of str, int, float, bool, list[str] or choices like `yes|no`"),
    (with_(source__path="${AGENTLAB_TEST_UNSET_VAR}"),
     "source.path: environment variable AGENTLAB_TEST_UNSET_VAR is not set. Fix: export AGENTLAB_TEST_UNSET_VAR=..."),
    ({**GOOD, "task": {"type": "label", "classes": ["a", "b"], "labelers": [{"type": "keyword", "votes": {"a": ["x"]}}]}},
     "task.labelers[0].type: unknown labeler 'keyword'; did you mean 'keywords'?"),
    ({**GOOD, "task": {"type": "label", "classes": ["a", "b"], "labelers": [{"type": "prompt", "modl": "small"}]}},
     "task.labelers[0].modl: Extra inputs are not permitted (got 'small'). Fix: did you mean 'model'?"),
    ({**GOOD, "task": {"type": "label", "classes": ["a"], "labelers": [{"type": "regex", "votes": {"a": ["x"]}}]}},
     "task.classes: needs at least two classes"),
    ({**GOOD, "escalate": {"to": "bigg"}, "task": {"type": "label", "classes": ["a", "b"], "labelers": [{"type": "regex", "votes": {"a": ["x"]}}]}},
     "escalate.to: unknown model 'bigg'"),
    (with_(distill={"student": {"type": "classifier"}}),
     ("distill: needs a task that produces labels (`label`) or trains its own student (`queries`: a retriever), not "
      "'generate'. Fix: remove `distill:` or use `agentlab train` on a label run")),
    (with_(eval={"queries": "q.jsonl", "qrels": "r.tsv"}),
     "eval.queries: test queries are read by the `queries` task only, not 'generate' (got 'q.jsonl'). Fix: remove eval.queries"),
]


@pytest.mark.parametrize("data,expected", BROKEN, ids=[e[:40] for _, e in BROKEN])
def test_broken_recipe_exact_error_exit_2_nothing_written(workdir, recipe_file, data, expected):
    path = recipe_file(data)
    result = CliRunner().invoke(main, ["generate", str(path), "-o", "out"])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert result.output.startswith("Error: invalid recipe")
    assert not (workdir / "out").exists()
    assert not (workdir / "outputs").exists()
    # validate gives the same verdict
    again = CliRunner().invoke(main, ["validate", str(path)])
    assert again.exit_code == 2 and expected in again.output


def test_all_errors_reported_at_once(workdir):
    with pytest.raises(RecipeErrors) as exc:
        parse_recipe(with_(task__model="x", source__path="nope.jsonl"))
    paths = {e.path for e in exc.value.errors}
    assert {"task.model", "source.path"} <= paths


def test_valid_recipe_and_defaults(workdir, recipe_file):
    result = CliRunner().invoke(main, ["validate", str(recipe_file(GOOD))])
    assert result.exit_code == 0, result.output
    assert "OK: t: task generate; models small (fake)" in result.output
    rec = parse_recipe({**GOOD, "models": {}, "task": {"type": "generate", "prompt": "p.jinja"}})
    assert list(rec.model_configs) == ["default"] and rec.model_configs["default"].backend == "embedded"


def test_env_interpolation_keeps_secret_out_of_raw(workdir, monkeypatch):
    monkeypatch.setenv("AGENTLAB_TEST_KEY", "sk-secret-123")
    rec = parse_recipe(with_(models={"small": {"backend": "openai", "model": "m", "api_key": "${AGENTLAB_TEST_KEY}"}}))
    key = rec.model_configs["small"].api_key
    assert getattr(key, "get_secret_value", lambda: key)() == "sk-secret-123"
    assert "sk-secret-123" not in str(rec.raw) and "sk-secret-123" not in rec.hash()


def test_bad_yaml_and_missing_file(workdir):
    (workdir / "bad.yaml").write_text("name: [unclosed")
    r = CliRunner().invoke(main, ["validate", "bad.yaml"])
    assert r.exit_code == 2 and "not valid YAML" in r.output
    r = CliRunner().invoke(main, ["validate", "none.yaml"])
    assert r.exit_code == 2 and "recipe file 'none.yaml' not found" in r.output


def test_every_shipped_recipe_validates():
    import os
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        for path in sorted((repo / "recipes").glob("*.yaml")):
            r = CliRunner().invoke(main, ["validate", str(path)])
            if "not found" in r.output and "shared" in r.output:
                continue  # benchmark data lives in ../shared (present in CI)
            assert r.exit_code == 0, (path.name, r.output)
    finally:
        os.chdir(cwd)
