"""Plan vs actual: `agentlab plan`'s calls, tokens, cost and time against what the run then counts.

For each recipe: plan (no calls), run it fresh into a temp directory, read the manifest, plan again
(a finished run should plan zero calls). Prints one table, plan and actual side by side.

    .venv/bin/python benchmarks/plan_vs_actual.py                      # quickstart + youtube_spam (300 rows)
    .venv/bin/python benchmarks/plan_vs_actual.py --recipe recipes/quickstart.yaml:0
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
REPO = Path(__file__).resolve().parent.parent
DEFAULT = ["recipes/quickstart.yaml:0", "recipes/youtube_spam.yaml:300"]


def measure(recipe_path: Path, limit: int | None, workdir: Path) -> dict:
    """Plan, run, re-plan one recipe; the numbers for one table row."""
    from agentlab.plan import make_plan
    from agentlab.recipe import load_recipe
    from agentlab.runner import run_recipe

    recipe = load_recipe(str(recipe_path))
    out = str(workdir / recipe.name)
    t0 = time.perf_counter()
    plan = make_plan(recipe, out=out, limit=limit)
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_dir = run_recipe(recipe, out=out, limit=limit, quiet=True)
    run_s = time.perf_counter() - t0
    man = json.loads((run_dir / "manifest.json").read_text())
    again = make_plan(recipe, out=out, limit=limit)
    c, u, t = man["counts"], man["usage"], plan["totals"]
    return {"recipe": recipe.name, "rows": plan["rows"], "plan_s": plan_s,
            "calls": (t["calls"], c["llm_calls"] + c["cache_hits"]), "to_call": (t["to_call"], c["llm_calls"]),
            "prompt_tokens": (t["prompt_tokens"], u["prompt_tokens"]), "completion_tokens": (t["completion_tokens"], u["completion_tokens"]),
            "cost_usd": (t["cost_usd"], u["cost_usd"]), "time_s": (t["wall_time_s"], man["timings"].get("task", run_s)),
            "replan_to_call": again["totals"]["to_call"], "tokenizers": sorted({m["tokenizer"] for m in plan["models"].values()})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", action="append", help="PATH[:LIMIT] (LIMIT 0 = all rows); repeatable")
    ap.add_argument("--out", type=Path, help="Keep the run directories here (default: a temp dir, removed)")
    args = ap.parse_args()
    print("| recipe | rows | calls plan / run | to call plan / run llm_calls | prompt tokens plan / run | completion tokens plan / run "
          "| cost $ plan / run | time s plan / run (task stage) | re-plan after the run: to call | plan took s | tokenizer |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="plan-vs-actual-") as tmp:
        for spec in args.recipe or DEFAULT:
            path, _, lim = spec.partition(":")
            r = measure(REPO / path, (int(lim) or None) if lim else None, args.out or Path(tmp))
            pair = lambda k, f="{}", r=r: f"{f.format(r[k][0])} / {f.format(r[k][1])}"
            print(f"| {r['recipe']} | {r['rows']} | {pair('calls')} | {pair('to_call')} | {pair('prompt_tokens')} | {pair('completion_tokens')} "
                  f"| {pair('cost_usd', '{:.4f}')} | {pair('time_s', '{:.0f}')} | {r['replan_to_call']} | {r['plan_s']:.1f} | {'; '.join(r['tokenizers'])} |",
                  flush=True)


if __name__ == "__main__":
    main()
