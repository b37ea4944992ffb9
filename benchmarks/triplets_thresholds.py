"""How the hybrid triplets thresholds were chosen: a grid over keep / accept / switch margins, from one run's scores.

Reads `data.jsonl` of a triplets run on the hybrid path (each row's `triplet_candidates` holds every option's
log P(yes) − log P(no)) and the gold scene graphs of its rows (by `id` = FACTUAL region_id), and prints F1 (as extracted, lemmatised) for a grid of
`verify.keep_margin`, `accept_margin` and `switch_margin`, best first. No model calls: the margins are in the rows.
Run it on the tuning split only (benchmarks/triplets.py --split tune), never on held-out captions.

Usage: python benchmarks/triplets_thresholds.py RUN_DIR [--data ../shared/data/factual/dev.csv] [--top 15]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

GRID_KEEP = [None, -4.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5]
GRID_ACCEPT = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 99.0]
GRID_SWITCH = [0.0, 0.5, 1.0, 2.0, 99.0]


def choose(cands: list[dict], keep: float | None, accept: float, switch: float) -> list[tuple[str, str, str]]:
    """The triplets the verifier would emit for one row under these thresholds (as agentlab/triplets/verify.py)."""
    out = []
    for c in cands:
        opts = c["options"]
        margins = [o["margin"] for o in opts]
        if any(m is None for m in margins):
            if c["rules"]:
                out.append(tuple(opts[0]["triplet"]))
            continue
        if not c["rules"]:
            if margins[0] >= accept:
                out.append(tuple(opts[0]["triplet"]))
            continue
        best = max(range(len(margins)), key=lambda j: margins[j])
        pick = best if margins[best] - margins[0] >= switch else 0
        if keep is None or margins[pick] >= keep:
            out.append(tuple(opts[pick]["triplet"]))
    return out


def main() -> None:
    from agentlab.triplets.metrics import triplet_prf
    from agentlab.triplets.text import parse_gold

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/factual/dev.csv")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    rows = [json.loads(line) for line in (args.run / "data.jsonl").read_text().splitlines() if line.strip()]
    with args.data.open(encoding="utf-8") as f:
        graphs = {r["region_id"]: r["scene_graph"] for r in csv.DictReader(f)}
    gold = [parse_gold(graphs[str(r["id"])], "factual") for r in rows]
    results = []
    for keep, accept, switch in itertools.product(GRID_KEEP, GRID_ACCEPT, GRID_SWITCH):
        pred = [choose(r.get("triplet_candidates") or [], keep, accept, switch) for r in rows]
        results.append((triplet_prf(pred, gold), keep, accept, switch))
    rules = triplet_prf([choose(r.get("triplet_candidates") or [], None, 99.0, 99.0) for r in rows], gold)
    print(f"{len(rows)} rows; rules alone (no drop, no accept, no switch): F1 {rules['f1']:.4f} "
          f"(P {rules['precision']:.4f}, R {rules['recall']:.4f})")
    print("| keep | accept | switch | P | R | F1 |\n|---|---|---|---|---|---|")
    for m, keep, accept, switch in sorted(results, key=lambda x: -x[0]["f1"])[: args.top]:
        print(f"| {keep} | {accept} | {switch} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} |")


if __name__ == "__main__":
    main()
