"""Does a calibrated contrast make SmolLM2's yes/no scores of rule-proposed triplets useful? (tuning split only)

Reads a hybrid triplets run (`data.jsonl`: every row's `triplet_candidates` with each option's margin
log P(yes) - log P(no) given the caption) and scores each option twice more with the embedded model:
- `no caption`: the same fact after "Caption: N/A" (contextual calibration: how plausible the fact is alone);
- `swapped`: the fact with subject and object swapped, given the caption (relations only; an attribute's swap
  "white is stove" is scored too, as the same kind of corruption).
Then prints, per score, the AUC of separating options that are in the row's gold graph from those that are not
(relations and attributes apart), and the best F1 of a keep threshold on it against the rules alone. Scores:
`raw` = margin; `calibrated` = margin - margin(no caption); `contrast` = margin - margin(swapped).
Run it on the tuning split only (benchmarks/triplets.py --split tune), never on held-out captions.

Usage: python benchmarks/triplets_contrast.py RUN_DIR [--data ../shared/data/factual/dev.csv] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent


def auc(pos: list[float], neg: list[float]) -> float | None:
    """P(a random positive scores above a random negative), ties half."""
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    from agentlab.backends.base import ChatRequest
    from agentlab.backends.embedded import EmbeddedBackend, EmbeddedConfig
    from agentlab.prompts import load_prompt
    from agentlab.triplets.metrics import triplet_prf
    from agentlab.triplets.text import parse_gold, triplet_key
    from agentlab.triplets.verify import NO, YES, _margin, verbalise

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/factual/dev.csv")
    ap.add_argument("--limit", type=int, default=None, help="first N rows of the run")
    args = ap.parse_args()
    rows = [json.loads(line) for line in (args.run / "data.jsonl").read_text().splitlines() if line.strip()][: args.limit]
    with args.data.open(encoding="utf-8") as f:
        graphs = {r["region_id"]: r["scene_graph"] for r in csv.DictReader(f)}
    gold = [parse_gold(graphs[str(r["id"])], "factual") for r in rows]
    prompt = load_prompt(REPO / "prompts/triplets/verify.jinja")
    backend = EmbeddedBackend(EmbeddedConfig(n_threads=1))

    opts = []  # (row, slot, option index, triplet, margin, kind, is rule pick)
    for i, r in enumerate(rows):
        for k, c in enumerate(r.get("triplet_candidates") or []):
            for j, o in enumerate(c["options"]):
                opts.append((i, k, j, tuple(o["triplet"]), o["margin"], c["kind"], bool(c["rules"]) and j == 0))

    def score(caption: str, fact: str) -> float:
        req = ChatRequest(messages=prompt.messages(caption=caption, fact=fact), options=[*YES, *NO], max_tokens=1, seed=0)
        return _margin(backend.generate([req])[0].option_logprobs)

    t0 = time.perf_counter()
    blank, swapped = {}, {}
    for i, _, _, t, _, _, _ in opts:
        fact = verbalise(t)
        if fact not in blank:
            blank[fact] = score("N/A", fact)
        swapped[(i, t)] = score(rows[i]["caption"], verbalise((t[2], t[1], t[0])))
    secs = time.perf_counter() - t0
    print(f"{len(rows)} rows, {len(opts)} options, {len(blank) + len(swapped)} extra scores in {secs:.0f} s")

    gold_keys = [{triplet_key(g) for g in gs} for gs in gold]
    scores = {"raw": lambda o: o[4], "calibrated": lambda o: o[4] - blank[verbalise(o[3])],
              "contrast": lambda o: o[4] - swapped[(o[0], o[3])]}
    print("| score | kind | options | in gold | AUC |\n|---|---|---|---|---|")
    for name, f in scores.items():
        for kind in ("relation", "attribute"):
            sel = [o for o in opts if o[5] == kind and o[4] is not None]
            pos = [f(o) for o in sel if triplet_key(o[3]) in gold_keys[o[0]]]
            neg = [f(o) for o in sel if triplet_key(o[3]) not in gold_keys[o[0]]]
            a = auc(pos, neg)
            print(f"| {name} | {kind} | {len(sel)} | {len(pos)} | {'n/a' if a is None else f'{a:.3f}'} |")

    # keep threshold on the rules' picks only (no switching, no additions): the lever that could beat the rules
    rule_opts = [o for o in opts if o[6] and o[4] is not None]
    base = triplet_prf([[o[3] for o in rule_opts if o[0] == i] for i in range(len(rows))], gold)
    print(f"\nrules alone: F1 {base['f1']:.4f} (P {base['precision']:.4f}, R {base['recall']:.4f})")
    print("| score | best keep threshold | P | R | F1 |\n|---|---|---|---|---|")
    for name, f in scores.items():
        vals = sorted({round(f(o), 2) for o in rule_opts})
        best = None
        for th in vals:
            m = triplet_prf([[o[3] for o in rule_opts if o[0] == i and f(o) >= th] for i in range(len(rows))], gold)
            if best is None or m["f1"] > best[1]["f1"]:
                best = (th, m)
        th, m = best
        print(f"| {name} | {th} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} |")


if __name__ == "__main__":
    main()
