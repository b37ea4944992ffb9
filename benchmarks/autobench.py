"""AutoBencher on SciFact: the adaptive search vs its two ablations, on the same corpus and candidates.

Runs `recipes/scifact_autobench.yaml` fresh (no cached calls) with both ablations on (no documents; no
adaptive search: every category proposed at once) and prints, per variant: categories, questions, mean
novelty and difficulty, questions per minute, and the fraction of answers found in their source document.
A second, smaller run writes answers freely (`answer_mode: write`, nothing dropped) to measure how often a
model's own answers are in the document, against the extracted answers of the main run (grounded by
construction). Paper reference (METHODS.md §6): 27% more novel, 22% more difficult than existing benchmarks.

Usage: python benchmarks/autobench.py [--iterations 3] [--categories 2] [--questions 4] [--write-check 8]
                                      [--data ../shared/data/scifact] [--out /tmp/agentlab-bench-autobench] [--json FILE]
Every number printed comes from this run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent


def _recipe(args: argparse.Namespace, name: str, **task) -> dict:
    data = Path(args.data).resolve()
    recipe = yaml.safe_load((REPO / "recipes/scifact_autobench.yaml").read_text())
    recipe["name"] = name
    recipe["source"]["path"] = str(data / "corpus.jsonl")
    recipe["task"].update(iterations=args.iterations, categories_per_iteration=args.categories,
                          questions_per_category=args.questions, **task)
    recipe["task"]["leakage"]["against"] = [str(data / "queries.jsonl")]
    return recipe


def _run(recipe: dict, out: str) -> tuple[dict, float]:
    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    t0 = time.perf_counter()
    path = run_recipe(parse_recipe(recipe, REPO / "recipes" / "bench.yaml"), out=out, fresh=True, quiet=True)
    return json.loads((path / "manifest.json").read_text()), time.perf_counter() - t0


def run(args: argparse.Namespace) -> dict:
    """The search with both ablations, then the free-writing grounding check; returns every number printed."""
    man, secs = _run(_recipe(args, "bench_autobench", ablations={"no_documents": True, "no_adaptive": True}), args.out)
    res = {"variants": man["metrics"]["ablations"], "seconds": round(secs, 1), "llm_calls": man["counts"]["llm_calls"],
           "categories": man["metrics"]["categories"], "leaderboard": man["metrics"]["leaderboard"]}
    if args.write_check:
        check = _recipe(args, "bench_autobench_write", answer_mode="write", question_style="written", require_grounded=False,
                        ablations={})
        check["task"].update(iterations=1, categories_per_iteration=2, questions_per_category=max(1, args.write_check // 2))
        wman, wsecs = _run(check, args.out + "-write")
        w = wman["metrics"]["autobench"]
        res["write_check"] = {"grounded_fraction": w["grounded_fraction"], "generated": w["generated"],
                              "rejected": w["rejected"], "seconds": round(wsecs, 1)}
    return res


def main() -> None:
    """Parse arguments, run, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=3, help="search iterations")
    ap.add_argument("--categories", type=int, default=2, help="categories per iteration")
    ap.add_argument("--questions", type=int, default=4, help="questions per category")
    ap.add_argument("--write-check", type=int, default=8, help="questions written freely for the grounding check (0 = skip)")
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/scifact"))
    ap.add_argument("--out", default="/tmp/agentlab-bench-autobench")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    res = run(args)
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
    print(f"AutoBencher on SciFact, embedded SmolLM2 in every role  [{res['seconds']}s, {res['llm_calls']} calls]")
    print(f"{'variant':<14} {'cats':>5} {'scored':>6} {'questions':>9} {'novelty':>8} {'difficulty':>10} {'grounded':>8} {'q/min':>6}")
    for name, v in res["variants"].items():
        print(f"{name:<14} {v['categories']:>5} {v['categories_scored']:>6} {v['questions']:>9} {fmt(v['novelty']):>8} "
              f"{fmt(v['difficulty']):>10} {fmt(v['grounded_fraction']):>8} {v['questions_per_min'] or 0:>6.2f}")
        if v["rejected"]:
            print(f"{'':<14} rejected: {v['rejected']}")
    print(f"leaderboard (search): {res['leaderboard']}")
    if "write_check" in res:
        w = res["write_check"]
        print(f"free-written answers found in their document: {fmt(w['grounded_fraction'])} of {w['generated']} "
              f"(rejected {w['rejected']}) [{w['seconds']}s]; extracted answers: 1.000 by construction")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
