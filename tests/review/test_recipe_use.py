"""reviewed.jsonl feeds the next run: as `aggregate.dev` gold rows, as few-shot `task.seed` rows, and as the source of
an evaluation against the person's labels. A re-run repeats no LLM call that does not depend on the review."""

from __future__ import annotations

import json

import httpx

from agentlab.review.loop import pull_review, push_review
from agentlab.review.tasks import choice_result
from tests.conftest import run_recipe_cli
from tests.helpers.label_run import label_recipe
from tests.review.test_loop import PAT, FakeLabelStudio


def _review_two_rows(run) -> list[dict]:
    fake = FakeLabelStudio()
    t = httpx.MockTransport(fake)
    push_review(run, "http://ls", 6, key=PAT, transport=t)
    for task in fake.tasks.values():
        if task["data"]["agentlab_row"] in (1, 2):  # the person's answers: one per class
            label = {1: "negative", 2: "positive"}[task["data"]["agentlab_row"]]
            task["annotations"].append({"id": 1, "completed_by": 1, "result": choice_result(label)})
    pull_review(run, key=PAT, transport=t)
    return [json.loads(line) for line in (run / "reviewed.jsonl").read_text().splitlines()]


def test_reviewed_rows_as_dev_seed_and_eval_gold(workdir, monkeypatch):
    monkeypatch.setenv("AGENTLAB_CACHE_DIR", str(workdir / "cache"))
    base = label_recipe()
    base["output"] = {"cache": "user"}  # calls shared by every run below
    run_recipe_cli(workdir, base)
    reviewed = _review_two_rows(workdir / "out")
    assert [r["label"] for r in reviewed] == ["negative", "positive"]
    (workdir / "reviewed.jsonl").write_text((workdir / "out" / "reviewed.jsonl").read_text())

    # the review as few-shot examples (a second model, so its calls are counted apart) and as dev gold
    few = json.loads(json.dumps(base))
    few["models"]["m2"] = {**base["models"]["m"], "model": "fake-2"}
    few["task"]["seed"] = {"path": "reviewed.jsonl"}
    few["task"]["labelers"].append({"type": "prompt", "model": "m2", "prompt": "p.jinja", "examples": 2})
    few["aggregate"] = {"dev": {"path": "reviewed.jsonl", "gold": "label"}}
    _, man = run_recipe_cli(workdir, few)
    assert man["models"]["m"]["llm_calls"] == 0 and man["models"]["m"]["cache_hits"] > 0  # nothing it did changed
    assert man["models"]["m2"]["llm_calls"] > 0

    # the review as gold: the same labelers scored against the person's answers, for free
    ev = json.loads(json.dumps(base))
    ev["source"] = {"path": "reviewed.jsonl"}
    _, man = run_recipe_cli(workdir, ev)
    assert man["counts"]["rows"] == 2 and man["models"]["m"]["llm_calls"] == 0
    assert man["metrics"]["majority"]["n"] == 2
