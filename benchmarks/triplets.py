"""Scene-graph triplets on FACTUAL captions: an ablation of the shipped offline pipeline (embedded SmolLM2).

Rows, on the same captions:
- `rules (previous)`: the earlier rule extractor (agentlab/triplets/baseline.py), no model;
- `rules`: the hybrid's rule proposer alone (agentlab/triplets/propose.py `rule_pass`), no model;
- `rules + model`: `recipes/factual_triplets.yaml` as shipped (method auto -> hybrid: the model keeps, rejects and
  chooses the rules' candidates by log-likelihood; VG150 alignment by rules -> SmolLM2 options -> MiniLM);
- `model alone`: the same recipe with `method: llm4sgg` and the direct chain (the model writes triplets).
Columns: P / R / F1 as extracted (exact after lemmatising) and after alignment to VG150 (gold aligned by rules +
MiniLM, never the LLM), LLM calls, seconds and captions per minute.

Held-out split: the shared data has only dev.csv, so it is split by image: `crc32(image_id) % 2 == 0` is the
tuning part (rules, prompts and thresholds were developed on it), `== 1` the held-out part, never tuned on.
`--split held` (default) takes the first N held-out captions, `--split dev` the first N rows of dev.csv (as the
earlier benchmark did), `--split tune` the first N tuning captions.

Usage: python benchmarks/triplets.py [--n 100] [--split held|dev|tune] [--data ../shared/data/factual]
                                     [--no-llm] [--skip-model-alone] [--out /tmp/agentlab-bench-triplets] [--json FILE]
Prints a table; every number comes from this run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
import zlib
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
REPO = Path(__file__).resolve().parent.parent
THRESHOLD = 0.6  # the recipe's embedding_fallback


def split_rows(data: Path, split: str, n: int) -> list[dict]:
    """The first n captions of a split (see the module docstring)."""
    with (data / "dev.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if split != "dev":
        want = 1 if split == "held" else 0
        rows = [r for r in rows if zlib.crc32(r["image_id"].encode()) % 2 == want]
    return rows[:n]


def rules_only(data: Path, rows: list[dict], extract) -> dict:
    """A rule extractor, aligned by rules + MiniLM (no LLM), finalised like the task."""
    from agentlab.triplets.align import Aligner, Vocabulary
    from agentlab.triplets.finalise import finalise, predicate_counts
    from agentlab.triplets.metrics import score_against_gold
    from agentlab.triplets.text import parse_factual, unique

    t0 = time.perf_counter()
    vocabs = {"entity": Vocabulary.from_file(data / "vg150_entities.txt", "entity"),
              "predicate": Vocabulary.from_file(data / "vg150_predicates.txt", "predicate")}
    extracted = [extract(r["caption"]) for r in rows]
    aligner = Aligner(vocabs, None, THRESHOLD)
    aligner.align_all(extracted)
    mapped = [unique(aligner.map(ts)) for ts in extracted]
    counts = predicate_counts(mapped)
    aligned = [finalise(ts, counts) for ts in mapped]
    gold = [parse_factual(r["scene_graph"])[0] for r in rows]
    metrics = score_against_gold(extracted, aligned, gold, vocabs, THRESHOLD)
    return {"metrics": metrics, "seconds": time.perf_counter() - t0, "llm_calls": 0, "failed_rows": 0}


def recipe_run(data: Path, rows: list[dict], out: Path, **task) -> dict:
    """The shipped recipe (task fields overridden by `task`) on these rows, fresh (no cached calls)."""
    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    recipe = yaml.safe_load((REPO / "recipes/factual_triplets.yaml").read_text())
    src = Path(tempfile.mkdtemp(prefix="agentlab-bench-triplets-")) / "captions.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    recipe["name"] = "bench_triplets"
    recipe["source"].update(path=str(src), limit=len(rows))
    recipe["task"].update(task)
    recipe["task"]["vocabulary"] = {"entities": str(data / "vg150_entities.txt"), "predicates": str(data / "vg150_predicates.txt")}
    t0 = time.perf_counter()
    run = run_recipe(parse_recipe(recipe, REPO / "recipes" / "bench.yaml"), out=str(out), fresh=True, quiet=True)
    manifest = json.loads((run / "manifest.json").read_text())
    m = manifest["metrics"]
    return {"metrics": {"triplets": m["triplets"], "triplets_aligned": m["triplets_aligned"]},
            "seconds": time.perf_counter() - t0, "llm_calls": manifest["counts"]["llm_calls"],
            "failed_rows": manifest["counts"].get("failed_rows", 0), "path": m["triplets_path"], "verify": m.get("verify")}


def table(results: dict[str, dict], title: str) -> str:
    lines = [title, "| method | P | R | F1 | P aligned | R aligned | F1 aligned | failed rows | LLM calls | seconds | captions/min |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        o, a = r["metrics"]["triplets"], r["metrics"]["triplets_aligned"]
        rate = o["rows"] / r["seconds"] * 60 if r["seconds"] else float("inf")
        lines.append(f"| {name} | {o['precision']:.4f} | {o['recall']:.4f} | {o['f1']:.4f} | {a['precision']:.4f} | "
                     f"{a['recall']:.4f} | {a['f1']:.4f} | {r['failed_rows']} | {r['llm_calls']} | {r['seconds']:.0f} | {rate:.1f} |")
    first = next(iter(results.values()))
    lines.append(f"gold triplets alignable to VG150 (rules + MiniLM >= {THRESHOLD}): "
                 f"{first['metrics']['triplets_aligned']['gold_alignable']:.1%}")
    return "\n".join(lines)


def main() -> None:
    from agentlab.triplets.baseline import rule_triplets
    from agentlab.triplets.propose import rule_pass

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="first N captions of the split")
    ap.add_argument("--split", choices=["held", "dev", "tune"], default="held")
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/factual"))
    ap.add_argument("--no-llm", action="store_true", help="only the rule rows")
    ap.add_argument("--skip-model-alone", action="store_true", help="leave out the (slow) model-alone row")
    ap.add_argument("--out", default="/tmp/agentlab-bench-triplets")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    os.chdir(REPO)
    data = Path(args.data)
    rows = split_rows(data, args.split, args.n)
    results = {"rules (previous)": rules_only(data, rows, rule_triplets), "rules": rules_only(data, rows, rule_pass)}
    if not args.no_llm:
        results["rules + model (shipped)"] = recipe_run(data, rows, Path(args.out) / "hybrid")
        if not args.skip_model_alone:
            results["model alone (LLM4SGG direct)"] = recipe_run(data, rows, Path(args.out) / "llm4sgg",
                                                                 method="llm4sgg", chains=["direct"])
    print(table(results, f"FACTUAL {args.split}: {len(rows)} captions"))
    for name, r in results.items():
        if r.get("path"):
            print(f"{name}: path {r['path']['path']} ({r['path']['why']})" + (f"; verify {r['verify']}" if r.get("verify") else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
