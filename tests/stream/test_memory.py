"""Memory stays bounded: peak RSS of a streaming run barely grows from 5k to 50k rows (generous headroom;
the real limits are measured by benchmarks/scale.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(600)

CHILD = r"""
import json, resource, sys
from pathlib import Path
import yaml
kind, n, work = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
with open(work / "rows.jsonl", "w") as f:
    for i in range(n):
        row = {"text": f"row {i} " + "x" * 200}
        if kind == "label":
            row["weak"] = [i % 2, -1, (i // 2) % 2, 1, 0, -1, i % 2, 1]
        f.write(json.dumps(row) + "\n")
(work / "p.jinja").write_text("{{ text }}")
task = ({"type": "generate", "prompt": "p.jinja", "model": "m", "max_tokens": 4} if kind == "generate" else
        {"type": "label", "classes": ["a", "b"], "labelers": [{"type": "precomputed", "field": "weak"}]})
rec = {"name": kind, "source": {"path": "rows.jsonl"}, "models": {"m": {"backend": "fake", "default": "ok"}}, "task": task,
       "output": {"hf_dataset": False, "cache": "none"}}
(work / "r.yaml").write_text(yaml.safe_dump(rec))
from agentlab.recipe import load_recipe
from agentlab.runner import run_recipe
import agentlab.outputs
import agentlab.stream.sink
# report.html keeps up to 50k rows (bounded, however many the run has); not what is measured here
agentlab.outputs._write_html = lambda *a, **k: None
agentlab.stream.sink.budget_for = lambda first: 1000
rec = load_recipe(str(work / "r.yaml"))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = run_recipe(rec, out=str(work / "out"), quiet=True)
assert json.loads((out / "manifest.json").read_text())["counts"]["rows"] == n
print(json.dumps({"base_kb": base, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _peak_mb(tmp_path, kind: str, n: int) -> float:
    work = tmp_path / f"{kind}{n}"
    work.mkdir()
    got = subprocess.run([sys.executable, "-c", CHILD, kind, str(n), str(work)], capture_output=True, text=True, check=False)
    assert got.returncode == 0, got.stderr[-3000:]
    r = json.loads(got.stdout.strip().splitlines()[-1])
    return (r["peak_kb"] - r["base_kb"]) / 1024


@pytest.mark.parametrize("kind", ["generate", "label"])
def test_peak_memory_does_not_grow_with_rows(tmp_path, kind):
    small, big = _peak_mb(tmp_path, kind, 5_000), _peak_mb(tmp_path, kind, 50_000)
    # holding 45k more rows as dicts (~1 KB each with their new columns) would add > 45 MB
    assert big - small < 25, f"{kind}: peak RSS grew {big - small:.0f} MB from 5k to 50k rows ({small:.0f} -> {big:.0f} MB)"
