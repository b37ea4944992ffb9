"""The plugin seam: executors and aggregators registered in the test or through an entry point are
selectable from a recipe and the command line; unknown names say "did you mean"."""

from __future__ import annotations

import json
import textwrap
from importlib import metadata

import pytest
from click.testing import CliRunner

from agentlab.cli import main
from agentlab.executors import EXECUTORS
from agentlab.labeling.label_model import AGGREGATORS
from agentlab.registry import Registry, UnknownKey

PLUGIN = textwrap.dedent('''
    """A third-party package: one executor and one aggregator."""
    import numpy as np

    from agentlab.executors.local import LocalExecutor
    from agentlab.labeling.label_model import LabelModel

    CALLS = []


    class CountingExecutor(LocalExecutor):
        name = "counting"

        def generate(self, backend, requests, on_result):
            CALLS.append(len(requests))
            super().generate(backend, requests, on_result)

        def describe(self):
            return {"type": self.name, "batches": len(CALLS)}


    class FirstVote(LabelModel):
        """The first labeler that votes decides, with probability 0.9."""

        name = "first_vote"

        def fit(self, L, W=None):
            self.m_ = np.asarray(L).shape[1]
            return self

        def predict_proba(self, L, W=None):
            L = np.asarray(L)
            out = np.full((len(L), self.k), 1.0 / self.k)
            for i, row in enumerate(L):
                voted = row[row >= 0]
                if len(voted):
                    out[i] = 0.1 / (self.k - 1)
                    out[i, voted[0]] = 0.9
            return out

        def labeler_accuracy(self):
            return np.full(self.m_, np.nan)
''')

ROWS = [("buy cheap pills now", "spam"), ("lovely song", "ham"), ("a good deal", None)]


@pytest.fixture
def clean_registries():
    """Whatever a test registers (or loads from entry points) is gone afterwards."""
    for reg in (EXECUTORS, AGGREGATORS):
        reg.names()  # built-ins register on first import only: load them before taking the snapshot
    saved = {reg: (dict(reg._items), reg._loaded) for reg in (EXECUTORS, AGGREGATORS)}
    yield
    for reg, (items, loaded) in saved.items():
        reg._items.clear()
        reg._items.update(items)
        reg._loaded = loaded


@pytest.fixture
def plugin(tmp_path, monkeypatch, clean_registries):
    """The plugin module importable, and offered through fake `agentlab.executors` / `agentlab.aggregators` entry points."""
    (tmp_path / "agentlab_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [metadata.EntryPoint("counting", "agentlab_test_plugin:CountingExecutor", "agentlab.executors"),
           metadata.EntryPoint("first_vote", "agentlab_test_plugin:FirstVote", "agentlab.aggregators")]
    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points",
                        lambda **kw: [e for e in eps if e.group == kw.get("group")] if "group" in kw else real(**kw))
    for reg in (EXECUTORS, AGGREGATORS):
        reg._loaded = False  # load again, now finding the entry points
    import agentlab_test_plugin

    agentlab_test_plugin.CALLS.clear()
    return agentlab_test_plugin


def label_recipe(workdir, **extra) -> dict:
    (workdir / "rows.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in ROWS))
    (workdir / "lab.jinja").write_text("Text: {{ text }}\nspam or ham?")
    return {"name": "plug", "source": {"path": "rows.jsonl"},
            "models": {"m": {"backend": "fake", "rules": {"song": "ham", "cheap": "spam", "deal": "ham"}, "default": "ham"}},
            "task": {"type": "label", "classes": ["spam", "ham"],
                     "labelers": [{"type": "keywords", "votes": {"spam": ["cheap", "deal"], "ham": ["song"]}},
                                  {"type": "prompt", "model": "m", "prompt": "lab.jinja"}]},
            "output": {"hf_dataset": False}, **extra}


def generate(workdir, recipe: dict, *args: str):
    from tests.conftest import write_recipe

    path = write_recipe(workdir / "r.yaml", recipe)
    return CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out", *args])


def test_an_entry_point_executor_runs_from_the_recipe(workdir, plugin):
    res = generate(workdir, label_recipe(workdir, executor={"type": "counting"}))
    assert res.exit_code == 0, res.output
    man = json.loads((workdir / "out" / "manifest.json").read_text())
    assert plugin.CALLS == [3] and man["executor"] == {"type": "counting", "batches": 1}


def test_an_entry_point_executor_runs_from_the_command_line(workdir, plugin):
    res = generate(workdir, label_recipe(workdir), "--executor", "counting")
    assert res.exit_code == 0, res.output
    assert plugin.CALLS == [3]


def test_an_entry_point_aggregator_labels_the_rows(workdir, plugin):
    res = generate(workdir, label_recipe(workdir, aggregate={"method": "first_vote"}))
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (workdir / "out" / "data.jsonl").read_text().splitlines()]
    # "a good deal": the keywords (first labeler) vote spam, the model ham; first_vote follows the first
    assert [r["label"] for r in rows] == ["spam", "ham", "spam"]
    assert [r["confidence"] for r in rows] == [0.9, 0.9, 0.9]


def test_an_executor_registered_in_process_is_selectable(workdir, clean_registries):
    from agentlab.executors.local import LocalExecutor

    seen = []

    class Recording(LocalExecutor):
        name = "recording"

        def generate(self, backend, requests, on_result):
            seen.extend(r.messages[-1]["content"] for r in requests)
            super().generate(backend, requests, on_result)

    EXECUTORS.register("recording", Recording)
    res = generate(workdir, label_recipe(workdir, executor={"type": "recording"}))
    assert res.exit_code == 0, res.output
    assert len(seen) == 3 and all(s.startswith("Text: ") for s in seen)


@pytest.mark.parametrize(("section", "expected"), [
    ({"executor": {"type": "rey"}}, "executor.type: unknown executor 'rey'; did you mean 'ray'? known: "),
    ({"aggregate": {"method": "dawid_skeen"}},
     "aggregate.method: unknown aggregator 'dawid_skeen'; did you mean 'dawid_skene'? known: "),
    ({"aggregate": {"method": "all", "use": "metl"}}, "aggregate.use: unknown aggregator 'metl'; did you mean 'metal'?"),
])
def test_unknown_names_in_the_recipe_say_did_you_mean(workdir, section, expected):
    res = generate(workdir, label_recipe(workdir, **section))
    assert res.exit_code == 2 and expected in res.output, res.output
    assert "Traceback" not in res.output and not (workdir / "out").exists()


def test_an_unknown_executor_on_the_command_line_says_did_you_mean(workdir):
    res = generate(workdir, label_recipe(workdir), "--executor", "lcoal")
    assert res.exit_code == 2, res.output
    assert "Error: --executor: unknown executor 'lcoal'; did you mean 'local'? known: " in res.output
    assert "Traceback" not in res.output and not (workdir / "out").exists()


def test_registry_rejects_duplicates_and_suggests():
    reg: Registry[int] = Registry("thing")
    reg.register("alpha", 1)
    with pytest.raises(ValueError, match="thing 'alpha' is already registered"):
        reg.register("alpha", 2)
    with pytest.raises(UnknownKey) as exc:
        reg.get("alpah")
    assert str(exc.value) == "unknown thing 'alpah'; did you mean 'alpha'? known: alpha"
