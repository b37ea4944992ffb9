"""Synthetic queries on SciFact: `recipes/scifact_queries.yaml` (hard vs soft prompt, retrievers) on the first N documents.

Runs the recipe fresh (no cached calls, soft prompt or retrievers; corpus embeddings of unchanged
models are reused) with the embedded SmolLM2 and prints: queries generated / kept by the BM25
consistency filter per prompt, soft-prompt tuning (loss before/after, steps, seconds), the example
filter's scores, generation throughput (docs/min), retriever training time, and nDCG@10 / MRR@10 /
Recall@100 (pytrec_eval) of BM25, untrained MiniLM and the retrievers trained on labeled pairs only
and on labeled + kept hard / soft queries, on held-out labeled queries, or on a test split with
`--test-queries/--test-qrels` (the recipe's `eval:` section; reference: BM25 nDCG@10 on SciFact =
0.665 on the test split over the whole corpus, METHODS.md §4).

Usage: python benchmarks/queries.py [--n 20] [--labeled 24] [--eval-queries 100] [--eval-corpus 1000 (0 = all)]
                                    [--prompt both] [--top-k 30] [--epochs 2] [--virtual-tokens 20]
                                    [--test-queries FILE --test-qrels FILE]
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
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # as `agentlab generate -q`
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
REPO = Path(__file__).resolve().parent.parent


def recipe(args: argparse.Namespace) -> dict:
    """The shipped recipe with the benchmark's overrides."""
    data = Path(args.data).resolve()
    rec = yaml.safe_load((REPO / "recipes/scifact_queries.yaml").read_text())
    rec["name"] = "bench_queries"
    rec["source"].update(path=str(data / "corpus.jsonl"), limit=args.n)
    task = rec["task"]
    task["labeled"].update(queries=str(data / "queries.jsonl"), qrels=str(data / "qrels/train.tsv"), n=args.labeled,
                           eval_queries=args.eval_queries, eval_corpus=args.eval_corpus or None)
    task["filter"] = {"bm25_top_k": args.top_k}
    task["prompt"] = args.prompt
    task["soft"].update(epochs=args.epochs, num_virtual_tokens=args.virtual_tokens)
    if args.test_queries:  # a test split: evaluate on it instead of held-out labeled queries
        rec["eval"] = {"queries": str(Path(args.test_queries).resolve()), "qrels": str(Path(args.test_qrels).resolve())}
        del task["labeled"]["eval_queries"]
    return rec


def run(args: argparse.Namespace) -> dict:
    """Run the recipe; returns metrics, counts and timings."""
    import agentlab.tasks.queries  # noqa: F401  (registers the task)
    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    t0 = time.perf_counter()
    out = run_recipe(parse_recipe(recipe(args), REPO / "recipes" / "bench.yaml"), out=args.out, fresh=True, quiet=True)
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    return {"metrics": manifest["metrics"], "seconds": round(time.perf_counter() - t0, 1),
            "timings": manifest.get("timings"), "llm_calls": manifest["counts"].get("llm_calls"),
            "samples": [{"id": r["id"], "hard": list(zip(r.get("queries", []), r.get("kept", []))),
                         "soft": list(zip(r.get("soft_queries", []), r.get("soft_kept", [])))} for r in rows[:5]]}


def report(res: dict) -> None:
    """Print the tables."""
    m = res["metrics"]
    for name, q in m["queries"].items():
        print(f"{name:<5} prompt: documents {q['documents']}  generated {q['generated']}  empty {q['empty']}  "
              f"retried {q['retried']}  kept (BM25 top {q['bm25_top_k']}) {q['kept']} ({q['kept_fraction']:.0%})")
    sp = m.get("sptar")
    if sp:
        t, g, f = sp["soft_prompt"], sp["generation"], sp["example_filter"]
        print(f"soft prompt: {t['train_pairs']} pairs, {t['steps']} steps, val loss {t['init_val_loss']} -> "
              f"{t['val_loss']}, {t['seconds']}s;  generation {g['seconds']}s ({g['docs_per_min']} docs/min)")
        print(f"example filter: losses {[c['mean_loss'] for c in f['candidates']]} -> set {f['chosen']}")
    for name, r in m.get("retriever", {}).items():
        print(f"retriever {name}: {r['pairs']} pairs, {r.get('steps')} steps, {r.get('seconds')}s")
    ev = m.get("retrieval_eval", {})
    print(f"\n{ev.get('queries')} evaluation queries ({ev.get('source')}) over {ev.get('corpus')} documents "
          f"({'whole corpus' if ev.get('whole_corpus') else 'subset'});  run {res['seconds']}s  timings {res['timings']}")
    print(f"{'system':<13} {'nDCG@10':>8} {'MRR@10':>8} {'R@100':>8}")
    for name, r in m.get("retrieval", {}).items():
        print(f"{name:<13} {r['ndcg@10']:>8.4f} {r['mrr@10']:>8.4f} {r['recall@100']:>8.4f}")
    for s in res["samples"]:
        print(f"  {s['id']}: hard {s['hard']}  soft {s['soft']}")


def main() -> None:
    """Parse arguments, run, print."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20, help="documents to generate queries for")
    ap.add_argument("--labeled", type=int, default=24, help="labeled pairs (examples, soft-prompt tuning, training)")
    ap.add_argument("--eval-queries", type=int, default=100, help="held-out labeled queries for retrieval metrics")
    ap.add_argument("--eval-corpus", type=int, default=1000, help="documents to retrieve from (0 = the whole corpus)")
    ap.add_argument("--prompt", default="both", choices=["hard", "soft", "both"])
    ap.add_argument("--top-k", type=int, default=30, help="BM25 consistency filter depth")
    ap.add_argument("--epochs", type=float, default=2, help="soft-prompt tuning epochs")
    ap.add_argument("--virtual-tokens", type=int, default=20, help="soft-prompt length")
    ap.add_argument("--test-queries", help="test queries.jsonl (the recipe's eval.queries; with --test-qrels)")
    ap.add_argument("--test-qrels", help="test qrels TSV (eval.qrels)")
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/scifact"))
    ap.add_argument("--out", default="/tmp/agentlab-bench-queries")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if bool(args.test_queries) != bool(args.test_qrels):
        ap.error("--test-queries and --test-qrels go together")
    res = run(args)
    report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
