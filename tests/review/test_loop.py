"""The review loop's orchestration against an in-memory stand-in for Label Studio's REST API (httpx.MockTransport).

The real server is exercised by test_label_studio.py (`make test-review`); this keeps push/pull logic, token
handling and error messages in the default suite.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from click.testing import CliRunner

from agentlab.cli import main
from agentlab.errors import ConfigError, RemoteError
from agentlab.review.client import LabelStudio, is_personal_access_token
from agentlab.review.loop import pull_review, push_review
from agentlab.review.tasks import choice_result
from tests.helpers.label_run import make_label_run

PAT = ".".join(base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=")
               for p in ({"alg": "HS256", "typ": "JWT"}, {"token_type": "refresh"})) + ".sig"


class FakeLabelStudio:
    """Projects, tasks and annotations in dicts; Bearer access tokens that expire after `ttl` requests."""

    def __init__(self, ttl: int = 1000):
        self.projects: dict[int, dict] = {}
        self.tasks: dict[int, dict] = {}
        self.ttl, self.uses, self.refreshes = ttl, 0, 0

    def __call__(self, req: httpx.Request) -> httpx.Response:
        path, body = req.url.path, json.loads(req.content) if req.content else None
        if path == "/api/token/refresh":
            assert body == {"refresh": PAT}
            self.refreshes, self.uses = self.refreshes + 1, 0
            return httpx.Response(200, json={"access": f"access-{self.refreshes}"})
        if req.headers.get("authorization") != f"Bearer access-{self.refreshes}" or self.uses >= self.ttl:
            return httpx.Response(401, json={"detail": "Token is invalid or expired"})
        self.uses += 1
        parts = path.strip("/").split("/")
        if path == "/api/projects" and req.method == "GET":
            return httpx.Response(200, json={"results": list(self.projects.values()), "next": None})
        if path == "/api/projects" and req.method == "POST":
            pid = len(self.projects) + 1
            self.projects[pid] = {"id": pid, **body}
            return httpx.Response(201, json=self.projects[pid])
        if parts[:2] == ["api", "projects"] and len(parts) == 3:
            if int(parts[2]) not in self.projects:
                return httpx.Response(404, json={"detail": "Not found."})
            self.projects[int(parts[2])].update(body or {})
            return httpx.Response(200, json=self.projects[int(parts[2])])
        if parts[-1] == "import":
            for t in body:
                tid = len(self.tasks) + 1
                self.tasks[tid] = {"id": tid, "project": int(parts[2]), "annotations": [], **t}
            return httpx.Response(201, json={"task_count": len(body)})
        if parts[-1] == "export":
            everything = req.url.params["download_all_tasks"] == "true"
            return httpx.Response(200, json=[t for t in self.tasks.values() if t["project"] == int(parts[2])
                                             and (everything or t["annotations"])])
        if parts[-1] == "annotations":
            ann = {"id": 100 + len(self.tasks[int(parts[2])]["annotations"]), "completed_by": 1,
                   "updated_at": f"2026-01-01T00:00:0{len(self.tasks[int(parts[2])]['annotations'])}", **body}
            self.tasks[int(parts[2])]["annotations"].append(ann)
            return httpx.Response(201, json=ann)
        return httpx.Response(404, json={"detail": f"no route {req.method} {path}"})


def test_token_kinds():
    assert is_personal_access_token(PAT) and not is_personal_access_token("0123456789abcdef")
    seen = []
    transport = httpx.MockTransport(lambda r: (seen.append(r.headers["authorization"]), httpx.Response(200, json=[]))[1])
    with LabelStudio("http://ls", "0123456789abcdef", transport=transport) as ls:
        assert ls.projects() == []
    assert seen == ["Token 0123456789abcdef"]


def test_push_then_pull_with_access_token_renewal(workdir):
    run = make_label_run(workdir)
    fake = FakeLabelStudio(ttl=2)  # the access token expires every 2 calls: the client must renew it
    t = httpx.MockTransport(fake)
    first = push_review(run, "http://ls/", 3, key=PAT, transport=t)
    assert first["created"] and first["imported"] == 3 and fake.refreshes > 1
    project = fake.projects[first["project_id"]]
    assert '<Choice value="negative" hint="the reviewer did not"/>' in project["label_config"]
    rows = [json.loads(line) for line in (run / "data.jsonl").read_text().splitlines()]
    for task in fake.tasks.values():
        row = rows[task["data"]["agentlab_row"]]
        assert task["data"]["votes"] == row["votes"]
        assert task["predictions"][0]["score"] == row["confidence"]
        assert task["predictions"][0]["result"] == choice_result(row["label"])
    second = push_review(run, "http://ls", 10, key=PAT, transport=t)  # same project, only the rest
    assert not second["created"] and second["imported"] == 3 and second["already_in_project"] == 3
    assert len(fake.projects) == 1
    tasks = sorted(fake.tasks.values(), key=lambda t: t["data"]["agentlab_row"])
    fake.tasks[tasks[0]["id"]]["annotations"] += [
        {"id": 1, "completed_by": 1, "updated_at": "2026-01-01T00:00:00", "result": choice_result("positive")},
        {"id": 2, "completed_by": 2, "updated_at": "2026-01-02T00:00:00", "result": choice_result("negative")}]
    fake.tasks[tasks[1]["id"]]["annotations"].append({"id": 3, "was_cancelled": True, "result": []})
    fake.tasks[tasks[2]["id"]]["annotations"].append({"id": 4, "result": choice_result("maybe")})
    out = pull_review(run, key=PAT, transport=t)
    assert (out["reviewed"], out["cancelled"], out["unknown_class"]) == (1, 1, 1)
    (rec,) = [json.loads(line) for line in (run / "reviewed.jsonl").read_text().splitlines()]
    assert rec["id"] == rows[0]["id"] and rec["label"] == "negative" and rec["review"]["annotator"] == 2  # the latest answer
    assert rec["text"] == rows[0]["text"] and rec["label_model"] == rows[0]["label"]
    third = push_review(run, "http://ls", 10, key=PAT, transport=t)
    assert third["imported"] == 0  # reviewed or already pushed rows are never sent twice


def test_errors_are_clear(workdir, monkeypatch):
    run = make_label_run(workdir)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    res = CliRunner().invoke(main, ["review", "push", str(run), "--url", "http://ls"])
    assert res.exit_code == 2 and "Error: no Label Studio API key: set LABEL_STUDIO_API_KEY" in res.output
    res = CliRunner().invoke(main, ["review", "pull", str(run)], env={"LABEL_STUDIO_API_KEY": "k"})
    assert res.exit_code == 2 and "run `agentlab review push" in res.output
    with pytest.raises(RemoteError, match="check LABEL_STUDIO_API_KEY"):
        push_review(run, "http://ls", 2, key="wrong", transport=httpx.MockTransport(FakeLabelStudio()))
    with pytest.raises(RemoteError, match="cannot reach Label Studio at http://127.0.0.1:9"):
        push_review(run, "http://127.0.0.1:9", 2, key="k")
    (workdir / "out2").mkdir()
    with pytest.raises(ConfigError, match="is not a finished run"):
        push_review(workdir / "out2", "http://ls", 2, key="k")
