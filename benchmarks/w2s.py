"""Weak-to-strong with debate on SST-2 (recipes/sst2_w2s.yaml: MiniLM weak, SmolLM2-135M strong, embedded debaters).

Runs the recipe once and prints, from that run: test accuracy and PGR of every variant (weak alone, the
weak ensembles with and without debate, the debate judge, each weak -> strong student, the gold ceiling),
the split sizes (examples and reviews: paired, each review is asked with both answers) and where the time went.

Usage: python benchmarks/w2s.py [--limit N] [--recipe recipes/sst2_w2s.yaml] [--data-dir ../shared/data]
       [--out /tmp/agentlab-bench/w2s] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent


def run(recipe_path: Path, data_dir: Path | None, limit: int | None, out: Path, fresh: bool) -> tuple[dict, float]:
    """Run the recipe (source path re-pointed under `data_dir` when given); return the manifest and seconds."""
    import yaml

    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    raw = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    if data_dir is not None:
        raw["source"]["path"] = str(data_dir / "sst2/dev.tsv")
    if limit is not None:
        raw["source"]["limit"] = limit
    recipe = parse_recipe(raw, recipe_path)
    t0 = time.perf_counter()
    run_dir = run_recipe(recipe, out=str(out), quiet=True, fresh=fresh)
    return json.loads((run_dir / "manifest.json").read_text()), time.perf_counter() - t0


def table(manifest: dict) -> str:
    """The PGR table, the split sizes and the timings, from one manifest."""
    from agentlab.w2s.metrics import DESCRIPTIONS

    m, info = manifest["metrics"]["w2s"], manifest["metrics"]["w2s_run"]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    lines = ["| variant | accuracy | PGR | what |", "|---|---|---|---|"]
    lines += [f"| {k} | {fmt(v['accuracy'])} | {fmt(v['pgr'])} | {DESCRIPTIONS.get(k, '')} |" for k, v in m.items()]
    s, r = info["sizes"], info.get("source_rows", {})
    lines.append(f"\nsplits (examples / reviews): half 1 {s['half1']} / {r.get('half1')}, half 2 {s['half2']} / {r.get('half2')}, "
                 f"test {s['test']} / {r.get('test')}; paired {info.get('paired')}; positive (correct) rate {info['positive_rate']}")
    if info.get("pgr_note"):
        lines.append(info["pgr_note"])
    t = info["timings"]
    lines.append(f"seconds: debate {t.get('debate')}, weak students {t.get('weak')}, strong students {t.get('strong')}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", type=Path, default=REPO / "recipes/sst2_w2s.yaml")
    ap.add_argument("--data-dir", type=Path, default=None, help="folder holding sst2/dev.tsv (default: as the recipe says)")
    ap.add_argument("--limit", type=int, default=None, help="reviews (default: the recipe's source.limit)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/agentlab-bench/w2s"))
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
