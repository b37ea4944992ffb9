"""Scene-graph triplets on FACTUAL dev (first N region captions): LLM4SGG on the embedded model vs a rule baseline.

Rows: the rule-based pattern extractor (no model), then `recipes/factual_triplets.yaml` (both chains,
VG150 alignment: rules -> SmolLM2 by log-likelihood -> MiniLM fallback). Columns: precision / recall /
F1 of the triplets as extracted (exact after lemmatising) and after alignment to VG150 (gold aligned
by rules + MiniLM, never the LLM, so both rows are scored against the same gold).

Usage: python benchmarks/triplets.py [--n 100] [--data ../shared/data/factual] [--chains direct,paraphrase]
                                     [--no-llm] [--out /tmp/agentlab-bench-triplets] [--json FILE]
Prints a table; every number comes from this run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
THRESHOLD = 0.6  # the recipe's embedding_fallback


def baseline(data: Path, n: int) -> dict:
    """The rule extractor, aligned by rules + MiniLM (no LLM), finalised like the task."""
    from agentlab.triplets.align import Aligner, Vocabulary
    from agentlab.triplets.baseline import rule_triplets
    from agentlab.triplets.finalise import finalise, predicate_counts
    from agentlab.triplets.metrics import score_against_gold
    from agentlab.triplets.text import parse_factual, unique

    t0 = time.perf_counter()
    with (data / "dev.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    vocabs = {"entity": Vocabulary.from_file(data / "vg150_entities.txt", "entity"),
              "predicate": Vocabulary.from_file(data / "vg150_predicates.txt", "predicate")}
    extracted = [rule_triplets(r["caption"]) for r in rows]
    aligner = Aligner(vocabs, None, THRESHOLD)
    aligner.align_all(extracted)
    mapped = [unique(aligner.map(ts)) for ts in extracted]
    counts = predicate_counts(mapped)
    aligned = [finalise(ts, counts) for ts in mapped]
    gold = [parse_factual(r["scene_graph"])[0] for r in rows]
    metrics = score_against_gold(extracted, aligned, gold, vocabs, THRESHOLD)
    return {"metrics": metrics, "seconds": time.perf_counter() - t0, "llm_calls": 0}


def llm4sgg(data: Path, n: int, chains: list[str], out: Path) -> dict:
    """The shipped recipe on the first n rows (fresh: no cached calls)."""
    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    recipe = yaml.safe_load((REPO / "recipes/factual_triplets.yaml").read_text())
    recipe["name"] = "bench_triplets"
    recipe["source"].update(path=str(data / "dev.csv"), limit=n)
    recipe["task"]["chains"] = chains
    recipe["task"]["vocabulary"] = {"entities": str(data / "vg150_entities.txt"), "predicates": str(data / "vg150_predicates.txt")}
    t0 = time.perf_counter()
    run = run_recipe(parse_recipe(recipe, REPO / "recipes" / "bench.yaml"), out=str(out), fresh=True, quiet=True)
    manifest = json.loads((run / "manifest.json").read_text())
    m = manifest["metrics"]
    return {"metrics": {"triplets": m["triplets"], "triplets_aligned": m["triplets_aligned"]},
            "seconds": time.perf_counter() - t0, "llm_calls": manifest["counts"]["llm_calls"],
            "failed_rows": manifest["counts"]["failed_rows"], "alignment": m["alignment"],
            "predicates_covered": m["predicate_distribution"].get("vocabulary_covered")}


def table(results: dict[str, dict], n: int) -> str:
    head = (f"FACTUAL dev, first {n} captions\n"
            "| method | P | R | F1 | P aligned | R aligned | F1 aligned | pred / gold (aligned) | LLM calls | seconds |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for name, r in results.items():
        o, a = r["metrics"]["triplets"], r["metrics"]["triplets_aligned"]
        lines.append(f"| {name} | {o['precision']:.4f} | {o['recall']:.4f} | {o['f1']:.4f} | {a['precision']:.4f} | "
                     f"{a['recall']:.4f} | {a['f1']:.4f} | {a['predicted']} / {a['gold']} | {r['llm_calls']} | {r['seconds']:.0f} |")
    first = next(iter(results.values()))
    lines.append(f"gold triplets alignable to VG150 (rules + MiniLM >= {THRESHOLD}): "
                 f"{first['metrics']['triplets_aligned']['gold_alignable']:.1%}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="first N captions of dev.csv")
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/factual"))
    ap.add_argument("--chains", default="direct,paraphrase")
    ap.add_argument("--no-llm", action="store_true", help="only the rule baseline")
    ap.add_argument("--out", default="/tmp/agentlab-bench-triplets")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    data = Path(args.data)
    results = {"rule baseline": baseline(data, args.n)}
    if not args.no_llm:
        results["LLM4SGG, embedded SmolLM2"] = llm4sgg(data, args.n, args.chains.split(","), Path(args.out))
    print(table(results, args.n))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
