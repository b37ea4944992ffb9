"""The review loop against a real Label Studio server (SQLite, temp data dir): push, a person annotates, pull.

Marked `label_studio` (the server takes 25-60 s to start): `make test-review` builds the server's own
virtualenv (`make review-env`) and runs these.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner

from agentlab.cli import main
from agentlab.review.client import LabelStudio
from agentlab.review.tasks import choice_result
from tests.helpers.label_run import make_label_run
from tests.helpers.label_studio import Server, server_binary, start_server

pytestmark = pytest.mark.label_studio


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if os.environ.get("LABEL_STUDIO_TEST_URL"):  # reuse a running server (its personal access token in LABEL_STUDIO_TEST_TOKEN)
        yield Server(os.environ["LABEL_STUDIO_TEST_URL"], os.environ["LABEL_STUDIO_TEST_TOKEN"], 0.0, None)
        return
    binary = server_binary()
    if binary is None:
        pytest.skip("Label Studio is not installed: `make review-env` builds it in .venv-ls (or set LABEL_STUDIO_BIN)")
    srv = start_server(binary, tmp_path_factory.mktemp("label-studio"))
    print(f"\nLabel Studio started in {srv.start_seconds:.1f}s at {srv.url}")
    yield srv
    srv.stop()


def _cli(*args):
    res = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_push_annotate_pull_round_trip(server, workdir, monkeypatch):
    run = make_label_run(workdir)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    rows = [json.loads(line) for line in (run / "data.jsonl").read_text().splitlines()]
    with LabelStudio(server.url, server.token) as ls:  # a reused server may hold this project from an earlier run
        for p in ls.projects():
            if p["title"] == "agentlab: tiny_reviews":
                ls.request("DELETE", f"/api/projects/{p['id']}")
    t0 = time.perf_counter()
    out = _cli("review", "push", str(run), "--url", server.url, "--n", "4")
    assert "created project" in out and "imported 4 tasks" in out
    state = json.loads((run / "review.json").read_text())
    assert server.token not in (run / "review.json").read_text()
    with LabelStudio(server.url, server.token) as ls:
        project = ls.project(state["project_id"])
        assert '<Choice value="positive" hint="the reviewer liked it"/>' in project["label_config"]
        tasks = ls.export(state["project_id"], all_tasks=True)
        assert len(tasks) == 4
        for t in tasks:  # the label model's answer as a scored pre-annotation, every labeler's vote in the data
            row = rows[t["data"]["agentlab_row"]]
            assert t["data"]["votes"] == row["votes"] and t["data"]["text"] == row["text"]
            if row["label"] is not None:
                (pred,) = ls.request("GET", f"/api/tasks/{t['id']}")["predictions"]
                assert pred["result"] == choice_result(row["label"]) and pred["score"] == pytest.approx(row["confidence"])

        # a second push updates the same project and adds only rows not yet in it
        assert "updated project" in _cli("review", "push", str(run), "--url", server.url, "--n", "10")
        tasks = ls.export(state["project_id"], all_tasks=True)
        assert sorted(t["data"]["agentlab_id"] for t in tasks) == sorted(r["id"] for r in rows)

        # a person answers two tasks (one against the label model) and skips a third
        by_row = {t["data"]["agentlab_row"]: t for t in tasks}
        answers = {0: "negative", 3: "negative"}
        for i, label in answers.items():
            ls.annotate(by_row[i]["id"], choice_result(label), lead_time=4.2)
        ls.annotate(by_row[1]["id"], [], was_cancelled=True)

    out = _cli("review", "pull", str(run))
    seconds = time.perf_counter() - t0
    print(f"review round trip (push 4, push again, annotate 2 + skip 1, pull): {seconds:.2f}s")
    assert "Wrote 2 reviewed rows" in out
    reviewed = [json.loads(line) for line in (run / "reviewed.jsonl").read_text().splitlines()]
    assert [(r["id"], r["label"]) for r in reviewed] == [(rows[i]["id"], label) for i, label in answers.items()]
    for r in reviewed:
        i = r["review"]["row"]
        assert r["text"] == rows[i]["text"] and r["label_model"] == rows[i]["label"]
        assert r["review"]["annotator"] == "reviewer@example.com" and r["review"]["lead_time"] == pytest.approx(4.2)
        assert "votes" not in r and "gold" not in r
