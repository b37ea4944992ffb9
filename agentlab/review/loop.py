"""The review loop: `push` a label run's most uncertain rows to Label Studio, `pull` the answers into reviewed.jsonl.

The run directory keeps the link (`review.json`: server, project, the rows pushed; never the API key), so a
second push adds only rows not yet in the project and `pull` needs no arguments. reviewed.jsonl holds one row
per finished annotation: the row as the source had it (so a recipe can read it as a seed or dev file) with
`label` = the person's answer, plus what the machines said and who reviewed it when.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentlab.errors import ConfigError
from agentlab.review.client import API_KEY_ENV, LabelStudio
from agentlab.review.select import pick_rows, row_key, source_columns
from agentlab.review.tasks import chosen_label, labeling_config, make_task

STATE, REVIEWED = "review.json", "reviewed.jsonl"
_TITLE_MAX = 50  # Label Studio's limit on a project title


@dataclass
class Run:
    """A finished label run read from its directory."""

    path: Path
    rows: list[dict[str, Any]]
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str((self.manifest.get("recipe") or {}).get("name") or self.path.name)

    def classes(self) -> tuple[list[str], dict[str, str]]:
        """Class names and descriptions from the recipe."""
        c = ((self.manifest.get("recipe") or {}).get("task") or {}).get("classes") or []
        return ([str(k) for k in c], {str(k): str(v) for k, v in c.items() if v}) if isinstance(c, dict) else ([str(k) for k in c], {})


def load_run(run_dir: str | Path) -> Run:
    """A finished `label` run (data.jsonl + manifest.json), or a ConfigError saying why not."""
    from agentlab.sources import read_jsonl

    path = Path(run_dir)
    data, man = path / "data.jsonl", path / "manifest.json"
    if not data.is_file() or not man.is_file():
        raise ConfigError(f"{path} is not a finished run (no data.jsonl / manifest.json): run `agentlab generate RECIPE` first")
    run = Run(path, list(read_jsonl(data)), json.loads(man.read_text(encoding="utf-8")))
    if run.manifest.get("task") != "label" or not run.classes()[0]:
        raise ConfigError(f"{path} is a {run.manifest.get('task')!r} run; review works on `label` runs (rows with votes and a label)")
    return run


def api_key(explicit: str | None = None) -> str:
    """The Label Studio API key: given, else $LABEL_STUDIO_API_KEY."""
    key = explicit or os.environ.get(API_KEY_ENV, "")
    if not key:
        raise ConfigError(f"no Label Studio API key: set {API_KEY_ENV} (Account & Settings -> Personal Access Token)")
    return key


def read_state(run_dir: Path) -> dict[str, Any]:
    """review.json, or {} before the first push."""
    p = run_dir / STATE
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def reviewed_keys(run_dir: Path) -> set[str]:
    """Keys of the rows already in reviewed.jsonl."""
    p = run_dir / REVIEWED
    if not p.is_file():
        return set()
    from agentlab.sources import read_jsonl

    return {str(r.get("id")) for r in read_jsonl(p)}


def push_review(run_dir: str | Path, url: str, n: int, key: str | None = None, transport: Any = None) -> dict[str, Any]:
    """Create or update the run's project and import the `n` rows most worth a person's time not yet in it."""
    from agentlab.store import RunDir

    run = load_run(run_dir)
    classes, descriptions = run.classes()
    config = labeling_config(classes, descriptions)
    with LabelStudio(url, api_key(key), transport=transport) as ls:
        project, created = _project(ls, run, url, config)
        pid = project["id"]
        in_project = {str(t.get("data", {}).get("agentlab_id")) for t in ls.export(pid, all_tasks=True)}
        picked = pick_rows(run.rows, n, skip=in_project | reviewed_keys(run.path))
        version = f"agentlab {(run.manifest.get('metrics') or {}).get('used') or 'label model'} {str(run.manifest.get('recipe_hash', ''))[:8]}"
        tasks = [make_task(run.rows[c.index], c, run.name, version) for c in picked]
        if tasks:
            ls.import_tasks(pid, tasks)
    state = {"url": url.rstrip("/"), "project_id": pid, "title": project.get("title"), "run": run.name,
             "pushed": sorted(in_project - {"None"} | {c.key for c in picked}), "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    RunDir(run.path).write_text(STATE, json.dumps(state, indent=1) + "\n")
    reasons: dict[str, int] = {}
    for c in picked:
        for r in c.reasons or ["lowest confidence"]:
            reasons[r] = reasons.get(r, 0) + 1
    return {"project_id": pid, "project_url": f"{url.rstrip('/')}/projects/{pid}", "created": created,
            "imported": len(tasks), "already_in_project": len(in_project - {"None"}), "reasons": reasons}


def _project(ls: LabelStudio, run: Run, url: str, config: str) -> tuple[dict[str, Any], bool]:
    """The run's project (from review.json, else by title), its labeling config brought up to date; or a new one."""
    state = read_state(run.path)
    title = f"agentlab: {run.name}"[:_TITLE_MAX]
    project = None
    if state.get("project_id") and state.get("url") == url.rstrip("/"):
        project = ls.project(int(state["project_id"]))
    if project is None:
        project = next((p for p in ls.projects() if p.get("title") == title), None)
    if project is None:
        desc = f"Rows of agentlab run {run.name!r} ({run.path.resolve()}) where the machines are least sure."
        return ls.create_project(title, config, desc), True
    if project.get("label_config") != config:
        project = ls.update_project(project["id"], label_config=config)
    return project, False


def pull_review(run_dir: str | Path, url: str | None = None, project_id: int | None = None, key: str | None = None,
                transport: Any = None) -> dict[str, Any]:
    """Fetch finished annotations into reviewed.jsonl (rewritten whole: the project is the truth)."""
    from agentlab.store import RunDir

    run = load_run(run_dir)
    state = read_state(run.path)
    url = url or state.get("url")
    project_id = project_id or state.get("project_id")
    if not url or not project_id:
        raise ConfigError(f"{run.path} has no {STATE}: run `agentlab review push {run.path} --url URL` first "
                          "(or give --url and --project)")
    classes = set(run.classes()[0])
    index = {row_key(r, i): i for i, r in enumerate(run.rows)}
    with LabelStudio(url, api_key(key), transport=transport) as ls:
        exported = ls.export(int(project_id))
        emails = ls.user_emails() if exported else {}
    out, stats = [], {"cancelled": 0, "not_in_run": 0, "unknown_class": 0}
    for task in exported:
        rec = _reviewed_row(task, run, index, classes, int(project_id), stats, emails)
        if rec is not None:
            out.append(rec)
    out.sort(key=lambda r: r["review"]["row"])
    RunDir(run.path).write_jsonl(REVIEWED, out)
    agree = sum(r["label"] == r["label_model"] for r in out)
    return {"reviewed": len(out), "agree_with_label_model": agree, "path": str(run.path / REVIEWED), **stats}


def _reviewed_row(task: dict[str, Any], run: Run, index: dict[str, int], classes: set[str], project_id: int,
                  stats: dict[str, int], emails: dict[int, str]) -> dict[str, Any] | None:
    data = task.get("data") or {}
    i = index.get(str(data.get("agentlab_id")))
    if i is None:
        stats["not_in_run"] += 1
        return None
    done = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not done:
        stats["cancelled"] += bool(task.get("annotations"))
        return None
    ann = max(done, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
    label = chosen_label(ann.get("result"))
    if label not in classes:
        stats["unknown_class"] += 1
        return None
    row = run.rows[i]
    who = ann.get("completed_by")
    who = who.get("email") if isinstance(who, dict) else emails.get(who, who)
    return {**source_columns(row), "label": label, "label_model": row.get("label"), "confidence": row.get("confidence"),
            "review": {"row": i, "annotator": who, "task_id": task.get("id"),
                       "annotation_id": ann.get("id"), "project_id": project_id,
                       "updated_at": ann.get("updated_at") or ann.get("created_at"), "lead_time": ann.get("lead_time")}}
