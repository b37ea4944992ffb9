"""Synthetic queries on SciFact: `recipes/queries_scifact.yaml` on the first N documents.

Runs the recipe fresh (no cached calls) with the embedded SmolLM2 (or `--model-path` GGUF) and prints:
queries generated / kept by the BM25 consistency filter (top k over the whole 5,183-document corpus),
and nDCG@10 / MRR@10 / Recall@100 of BM25 and untrained MiniLM on held-out labeled queries
(reference: BM25 nDCG@10 on SciFact = 0.665 on the test split, METHODS.md §4).

Usage: python benchmarks/queries.py [--n 20] [--eval-queries 200] [--top-k 30]
                                    [--data ../shared/data/scifact] [--out /tmp/agentlab-bench-queries] [--json FILE]
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


def run(args: argparse.Namespace) -> dict:
    """The shipped recipe with the benchmark's overrides; returns metrics, counts and timings."""
    import agentlab.tasks.queries  # noqa: F401  (registers the task)
    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    data = Path(args.data).resolve()
    recipe = yaml.safe_load((REPO / "recipes/queries_scifact.yaml").read_text())
    recipe["name"] = "bench_queries"
    recipe["source"].update(path=str(data / "corpus.jsonl"), limit=args.n)
    task = recipe["task"]
    task["labeled"].update(queries=str(data / "queries.jsonl"), qrels=str(data / "qrels/train.tsv"),
                           eval_queries=args.eval_queries)
    task["filter"] = {"bm25_top_k": args.top_k}
    t0 = time.perf_counter()
    out = run_recipe(parse_recipe(recipe, REPO / "recipes" / "bench.yaml"), out=args.out, fresh=True, quiet=True)
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    return {"metrics": manifest["metrics"], "seconds": round(time.perf_counter() - t0, 1),
            "timings": manifest.get("timings"), "llm_calls": manifest["counts"].get("llm_calls"),
            "samples": [{"id": r["id"], "queries": r["queries"], "kept": r["kept"]} for r in rows[:5]]}


def main() -> None:
    """Parse arguments, run, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20, help="documents to generate queries for")
    ap.add_argument("--eval-queries", type=int, default=200, help="held-out labeled queries for retrieval metrics")
    ap.add_argument("--top-k", type=int, default=30, help="BM25 consistency filter depth")
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/scifact"))
    ap.add_argument("--out", default="/tmp/agentlab-bench-queries")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    res = run(args)
    q, ret = res["metrics"]["queries"], res["metrics"].get("retrieval", {})
    print(f"documents {q['documents']}  generated {q['generated']}  empty {q['empty']}  retried {q['retried']}  "
          f"kept (BM25 top {q['bm25_top_k']}) {q['kept']} ({q['kept_fraction']:.0%})  [{res['seconds']}s]")
    print(f"{'retriever':<10} {'nDCG@10':>8} {'MRR@10':>8} {'R@100':>8} {'queries':>8}")
    for name, m in ret.items():
        print(f"{name:<10} {m['ndcg@10']:>8.4f} {m['mrr@10']:>8.4f} {m['recall@100']:>8.4f} {m['queries']:>8}")
    for s in res["samples"]:
        print(f"  {s['id']}: {list(zip(s['queries'], s['kept']))}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
