"""`agentlab push`: the upload plan (files, paths, commit messages) tested without a Hub; the token stays in memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from huggingface_hub import CommitOperationAdd, DatasetCard

from agentlab.cli import main
from agentlab.distill.card import finish_student
from agentlab.hub import push as push_mod
from agentlab.hub.card import code_blocks
from agentlab.hub.metadata import metadata_problems
from agentlab.hub.push import plan_push
from tests.helpers.label_run import make_label_run

TOKEN = "hf_secretsecretsecretsecret123"


def _add_student(run):
    meta = {"type": "classifier", "base": "minilm", "hub_id": "sentence-transformers/all-MiniLM-L6-v2", "base_path": "/x",
            "classes": ["positive", "negative"], "peft": "lora",
            "provenance": {"recipe_hash": "abc", "run_dir": str(run.resolve())}}
    student = run / "student"
    (student / "checkpoint-2").mkdir(parents=True)
    (student / "checkpoint-2" / "optimizer.pt").write_bytes(b"x")
    (student / "adapter_model.safetensors").write_bytes(b"weights")
    finish_student(student, meta)
    man = json.loads((run / "manifest.json").read_text())
    man["artifacts"]["student"] = "student"
    (run / "manifest.json").write_text(json.dumps(man))


def test_plan_uploads_parquet_shards_and_a_card_that_loads(workdir, tmp_path):
    run = make_label_run(workdir, license="mit")
    uploads = plan_push(run, "me/tiny-reviews", tmp_path / "stage", max_shard_bytes=200)
    assert len(uploads) == 1
    up = uploads[0]
    assert (up.repo_id, up.repo_type, up.private) == ("me/tiny-reviews", "dataset", False)
    shards = [f for f in up.files if f.startswith("data/")]
    assert len(shards) > 1 and shards[0] == f"data/train-00000-of-{len(shards):05d}.parquet"
    assert up.files[-1] == "README.md"
    assert all(isinstance(op, CommitOperationAdd) for op in up.operations)
    assert [op.path_in_repo for op in up.operations] == up.files
    assert up.commit_message == f"agentlab: 6 rows from run 'tiny_reviews' (label task, recipe {_hash(run)[:12]})"
    card = (tmp_path / "stage" / "dataset" / "README.md").read_text()
    assert metadata_problems(DatasetCard(card).data.to_dict()) == []
    assert "/work" not in card and str(run) not in card  # no local paths in a published card
    # the card's own Hub snippet, run against the staged repo folder: `configs` must point at the shards
    ns: dict = {}
    exec(code_blocks(card)[0].replace("'me/tiny-reviews'", repr(str(tmp_path / "stage" / "dataset"))), ns)  # noqa: S102
    assert len(ns["ds"]) == 6 and ns["ds"][0]["text"] == "I loved this movie, wonderful"


def _hash(run):
    return json.loads((run / "manifest.json").read_text())["recipe_hash"]


def test_student_goes_to_a_model_repo_linked_both_ways(workdir, tmp_path):
    run = make_label_run(workdir)
    _add_student(run)
    _, model = plan_push(run, "me/tiny", tmp_path / "stage", private=True, student=True)
    assert (model.repo_id, model.repo_type, model.private) == ("me/tiny-student", "model", True)
    assert sorted(model.files) == ["README.md", "adapter_model.safetensors", "agentlab_student.json"]
    card = (tmp_path / "stage" / "student" / "README.md").read_text()
    assert "datasets: [me/tiny]" in card and "https://huggingface.co/datasets/me/tiny" in card
    assert "https://huggingface.co/me/tiny-student" in (tmp_path / "stage" / "dataset" / "README.md").read_text()
    assert "student" in model.commit_message and "me/tiny" in model.commit_message


def test_cli_push_commits_each_plan_and_never_writes_the_token(workdir, monkeypatch):
    run = make_label_run(workdir)
    _add_student(run)
    seen = []

    def fake_commit(upload, token):
        assert token == TOKEN
        seen.append((upload.repo_id, upload.repo_type, [op.path_in_repo for op in upload.operations]))
        assert all(Path(op.path_or_fileobj).exists() for op in upload.operations)  # staged files live until committed
        return f"https://huggingface.co/{upload.repo_id}/commit/1"

    monkeypatch.setattr(push_mod, "hub_commit", fake_commit)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    res = CliRunner().invoke(main, ["push", str(run), "me/tiny", "--student"])
    assert res.exit_code == 0, res.output
    assert [s[:2] for s in seen] == [("me/tiny", "dataset"), ("me/tiny-student", "model")]
    assert "pushed: https://huggingface.co/me/tiny/commit/1" in res.output and TOKEN not in res.output
    for f in workdir.rglob("*"):
        assert not f.is_file() or TOKEN.encode() not in f.read_bytes(), f


def test_dry_run_prints_the_plan_and_uploads_nothing(workdir, monkeypatch):
    run = make_label_run(workdir)
    monkeypatch.setattr(push_mod, "hub_commit", lambda *a: pytest.fail("dry run uploaded"))
    res = CliRunner().invoke(main, ["push", str(run), "me/tiny", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert 'would commit to dataset me/tiny: "agentlab: 6 rows' in res.output
    assert "  data/train-00000-of-00001.parquet" in res.output and "  README.md" in res.output


@pytest.mark.parametrize(("args", "env", "message"), [
    (["me/tiny"], {"HF_TOKEN": None, "HF_HUB_OFFLINE": "0"}, "no Hugging Face token"),
    (["me/tiny"], {"HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
    (["not a repo"], {"HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0"}, "is not a Hub repo id"),
    (["me/tiny", "--student", "--dry-run"], {}, "has no student"),
])
def test_push_errors_are_clear_and_upload_nothing(workdir, monkeypatch, tmp_path, args, env, message):
    run = make_label_run(workdir)
    monkeypatch.setattr(push_mod, "hub_commit", lambda *a: pytest.fail("uploaded"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "token"))  # no stored login
    for k, v in env.items():
        monkeypatch.delenv(k, raising=False) if v is None else monkeypatch.setenv(k, v)
    res = CliRunner().invoke(main, ["push", str(run), *args])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and message in res.output and "Traceback" not in res.output


def test_push_of_a_non_run_is_an_error(tmp_path):
    res = CliRunner().invoke(main, ["push", str(tmp_path), "me/x", "--dry-run"])
    assert res.exit_code == 2 and "is not a finished run" in res.output
