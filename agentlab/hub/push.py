"""`agentlab push`: a run's dataset (Parquet shards + card) and optionally its student, to the Hugging Face Hub.

The work is split so it can be tested without a Hub: `plan_push` stages the files and returns one `Upload`
(repo, type, `CommitOperationAdd`s, commit message) per repository; `push` runs each through `hub_commit`,
the only function that talks to the network. The token comes from huggingface_hub (`HF_TOKEN` or
`huggingface-cli login`) and is handed to the client only: it is never written, logged or printed.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlab.errors import ConfigError, RemoteError

MAX_SHARD_BYTES = 500 * 1024 * 1024  # the size `datasets.push_to_hub` uses
_SKIP = {"checkpoint", "runs", "__pycache__"}  # trainer leftovers never belong in a model repo


@dataclass
class Upload:
    """One commit to one Hub repository."""

    repo_id: str
    repo_type: str  # "dataset" or "model"
    operations: list[Any]  # huggingface_hub.CommitOperationAdd
    commit_message: str
    private: bool = False
    files: list[str] = field(default_factory=list)  # path_in_repo of each operation, for display

    def describe(self) -> str:
        """A few lines for the terminal: the repo, the commit message and the files."""
        head = f"{self.repo_type} {self.repo_id}{' (private)' if self.private else ''}: {self.commit_message!r}"
        return "\n".join([head, *(f"  {p}" for p in self.files)])


def plan_push(run_dir: str | Path, repo_id: str, staging: str | Path, *, private: bool = False, student: bool = False,
              student_repo: str | None = None, max_shard_bytes: int = MAX_SHARD_BYTES) -> list[Upload]:
    """Stage the files to upload under `staging` and return the commits that would upload them.

    Args:
        run_dir: a finished run (manifest.json and dataset/).
        repo_id: the Hub dataset repo, `user/name`.
        staging: an empty folder that must outlive the uploads (the operations point into it).
        private: create the repos private.
        student: also upload the run's student (RUN_DIR/student) to a model repo.
        student_repo: that model repo (default `<repo_id>-student`).
        max_shard_bytes: Parquet shard size.
    """
    run_dir, staging = Path(run_dir), Path(staging)
    _check_repo_id(repo_id, "REPO_ID")
    manifest = _manifest(run_dir)
    student_dir = _student_dir(run_dir, manifest) if student else None
    student_repo = (student_repo or f"{repo_id}-student") if student else None
    if student_repo:
        _check_repo_id(student_repo, "--student-repo")
    uploads = [_dataset_upload(run_dir, manifest, repo_id, staging / "dataset", private, student_repo, max_shard_bytes)]
    if student_dir is not None:
        uploads.append(_student_upload(student_dir, student_repo, repo_id, staging / "student", private))
    return uploads


def push(uploads: list[Upload], token: str | None = None) -> list[str]:
    """Commit every planned upload; return the commit URLs. The token is passed to the client only."""
    token = token or hub_token()
    return [hub_commit(u, token) for u in uploads]


def hub_token() -> str:
    """The user's Hugging Face token (HF_TOKEN, or the one `huggingface-cli login` stored), once the Hub is reachable."""
    from huggingface_hub import get_token

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ConfigError("HF_HUB_OFFLINE is set, so the Hub cannot be reached; run `HF_HUB_OFFLINE=0 agentlab push ...` "
                          "(or use --dry-run to see the plan)")
    token = get_token()
    if not token:
        raise ConfigError("no Hugging Face token: set HF_TOKEN or run `huggingface-cli login` (a write token)")
    return token


def hub_commit(upload: Upload, token: str) -> str:
    """Create the repo if needed and commit the upload's files (the one networked step; tests replace it)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    try:
        api.create_repo(upload.repo_id, repo_type=upload.repo_type, private=upload.private, exist_ok=True)
        info = api.create_commit(upload.repo_id, upload.operations, commit_message=upload.commit_message,
                                 repo_type=upload.repo_type)
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise RemoteError(f"the Hub refused the upload to {upload.repo_type} {upload.repo_id}: {exc}", status) from None
    except OSError as exc:  # connection errors
        raise RemoteError(f"could not reach the Hub to upload {upload.repo_id}: {exc}") from None
    return str(info.commit_url)


def _check_repo_id(repo_id: str, what: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ConfigError(f"{what} {repo_id!r} is not a Hub repo id (`user/name`): {exc}") from None


def _manifest(run_dir: Path) -> dict[str, Any]:
    man = run_dir / "manifest.json"
    if not man.is_file():
        raise ConfigError(f"{run_dir} is not a finished run: no manifest.json (run `agentlab generate RECIPE` first)")
    if not (run_dir / "dataset" / "state.json").is_file():
        raise ConfigError(f"{run_dir} has no dataset/ to push: re-run with `output: {{hf_dataset: true}}` (the default)")
    return json.loads(man.read_text(encoding="utf-8"))


def _student_dir(run_dir: Path, manifest: dict[str, Any]) -> Path:
    rel = (manifest.get("artifacts") or {}).get("student") or "student"
    path = run_dir / rel
    if not (path / "agentlab_student.json").is_file():
        raise ConfigError(f"--student: {run_dir} has no student ({path} is missing; add `distill:` to the recipe or run "
                          f"`agentlab train {run_dir} -o {path}`)")
    return path


def _dataset_upload(run_dir: Path, manifest: dict[str, Any], repo_id: str, out: Path, private: bool,
                    student_repo: str | None, max_shard_bytes: int) -> Upload:
    import datasets
    from huggingface_hub import CommitOperationAdd

    from agentlab.hub.card import (
        DATA_DIR,
        SPLIT,
        StudentLink,
        feature_types,
        render_dataset_card,
    )

    datasets.disable_progress_bars()
    ds = datasets.load_from_disk(str(run_dir / "dataset"))
    n_shards = max(1, math.ceil(ds.data.nbytes / max_shard_bytes))
    (out / DATA_DIR).mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n_shards):
        rel = f"{DATA_DIR}/{SPLIT}-{i:05d}-of-{n_shards:05d}.parquet"
        ds.shard(n_shards, i, contiguous=True).to_parquet(str(out / rel))
        files.append(rel)
    card = render_dataset_card(manifest, feature_types(ds.features), len(ds), repo_id=repo_id,
                               student=StudentLink(repo_id=student_repo) if student_repo else None)
    (out / "README.md").write_text(card, encoding="utf-8")
    files.append("README.md")
    recipe = manifest.get("recipe") or {}
    message = (f"agentlab: {len(ds):,} rows from run {recipe.get('name', run_dir.name)!r} ({manifest.get('task')} task, "
               f"recipe {str(manifest.get('recipe_hash', ''))[:12]})")
    return Upload(repo_id, "dataset", [CommitOperationAdd(f, out / f) for f in files], message, private, files)


def _student_upload(student_dir: Path, repo_id: str, dataset_repo: str, out: Path, private: bool) -> Upload:
    from huggingface_hub import CommitOperationAdd

    from agentlab.distill.base import read_meta
    from agentlab.distill.card import render_card

    meta = read_meta(student_dir)
    meta["provenance"] = {**(meta.get("provenance") or {}), "dataset_repo": dataset_repo}
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(render_card(student_dir, meta), encoding="utf-8")
    ops, files = [CommitOperationAdd("README.md", out / "README.md")], ["README.md"]
    for path in sorted(p for p in student_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(student_dir).as_posix()
        if rel == "README.md" or any(part.split("-")[0] in _SKIP for part in path.relative_to(student_dir).parts):
            continue
        ops.append(CommitOperationAdd(rel, path))
        files.append(rel)
    message = f"agentlab: {meta.get('type', 'student')} student distilled from the labels in {dataset_repo}"
    return Upload(repo_id, "model", ops, message, private, files)
