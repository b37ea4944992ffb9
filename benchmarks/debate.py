"""Debate vs single judge on WRENCH YouTube spam (recipes/debate_spam.yaml, embedded model, offline).

Runs the recipe once and prints, from that one run: accuracy / precision / recall / F1 / Cohen's kappa
of the debate, of the debate with the speaking order swapped, and of the single-prompt judge (same
model, definition and examples, no debate), plus position consistency and the run's cost.

Usage: python benchmarks/debate.py [--limit N] [--recipe recipes/debate_spam.yaml] [--data-dir ../shared/data]
       [--out /tmp/agentlab-bench/debate] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
KEYS = ("accuracy", "precision", "recall", "f1", "kappa", "coverage")


def run(recipe_path: Path, data_dir: Path | None, limit: int | None, out: Path, fresh: bool) -> tuple[dict, float]:
    """Run the recipe (source path re-pointed under `data_dir` when given); return the manifest and seconds."""
    import yaml

    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    raw = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    if data_dir is not None:
        raw["source"]["path"] = str(data_dir / "wrench/youtube/test.json")
    recipe = parse_recipe(raw, recipe_path)
    t0 = time.perf_counter()
    run_dir = run_recipe(recipe, out=str(out), limit=limit, quiet=True, fresh=fresh)
    return json.loads((run_dir / "manifest.json").read_text()), time.perf_counter() - t0


def table(manifest: dict) -> str:
    """The comparison table and the position-bias line, from one manifest."""
    m = manifest["metrics"]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    lines = ["| annotator | " + " | ".join(KEYS) + " | n |", "|---|" + "---|" * (len(KEYS) + 1)]
    for name in ("debate", "debate_swapped", "single_judge"):
        if name in m:
            lines.append(f"| {name} | " + " | ".join(fmt(m[name][k]) for k in KEYS) + f" | {m[name]['n']} |")
    pb = m.get("position_bias")
    if pb:
        lines.append(f"\nposition consistency: {fmt(pb['consistency'])} ({pb['n'] - pb['changed']} of {pb['n']} rows kept "
                     f"their decision when the speaking order was reversed; bias rate {fmt(pb['rate'])})")
    run = m.get("debate_run", {})
    lines.append(f"judge mode: {run.get('judge_mode')}; decided by refusal: {run.get('decided_by_refusal')}; "
                 f"undecided: {run.get('undecided')}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", type=Path, default=REPO / "recipes/debate_spam.yaml")
    ap.add_argument("--data-dir", type=Path, default=None, help="folder holding wrench/youtube (default: as the recipe says)")
    ap.add_argument("--limit", type=int, default=None, help="rows (default: the recipe's source.limit)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/agentlab-bench/debate"))
    ap.add_argument("--fresh", action="store_true", help="ignore the call cache")
    args = ap.parse_args()
    os.chdir(REPO)
    man, secs = run(args.recipe.resolve(), args.data_dir, args.limit, args.out, args.fresh)
    c, u = man["counts"], man["usage"]
    print(f"recipe {args.recipe.name}: {c['rows']} rows, {c['llm_calls']} calls ({c['cache_hits']} cached), "
          f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens, {secs:.1f}s")
    print(table(man))
    print(f"outputs: {args.out}")


if __name__ == "__main__":
    main()
