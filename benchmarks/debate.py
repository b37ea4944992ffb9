"""Debate vs single judge on WRENCH YouTube spam (recipes/debate_spam.yaml, embedded model, offline).

Runs the recipe once on rows it never saw and prints, from that one run: accuracy / precision / recall / F1 /
Cohen's kappa of the single-prompt judge (same model, definition and examples, no debate), of the debate (the
judge's choice scores averaged over both speaking orders, the single judge's as a prior), and of each speaking
order alone (`debate_forward`, `debate_swapped`), plus position consistency (forward vs swapped) and the cost.

Rows (`--split`): `bench` (default) = youtube test rows outside the recipe's 40 (the test split shuffled with the
recipe's seed; the recipe takes the first 40, this takes the next `--limit`, 200 by default, after `--offset` more); `valid` = the
youtube valid split (where the recipe's `prior_weight` was chosen); `train` = the youtube train split (gold labels
too, never seen by the recipe: a second held-out set, `--offset` to move along it); `recipe` = the recipe's own 40.

Usage: python benchmarks/debate.py [--split bench|valid|recipe] [--limit 200] [--data-dir ../shared/data]
       [--prior-weight W | W1,W2,...] [--calibrate true|false|transcript] [--set KEY=YAML ...]
       [--out /tmp/agentlab-bench/debate] [--fresh]

`--set` overrides any task field for an ablation, e.g. `--set recenter=false`, `--set judge.debate_examples=false`,
`--set 'debaters=[{role: affirmative, model: small, max_tokens: 16}, {role: negative, model: small, max_tokens: 16}]'`
(written turns instead of quotes). The table in docs/debate.md comes from such runs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes/debate_spam.yaml"
KEYS = ("accuracy", "precision", "recall", "f1", "kappa", "coverage")


def source_rows(raw: dict, data_dir: Path, split: str, limit: int, offset: int = 0) -> list[dict]:
    """The rows of a split, as the recipe's source reads them (`offset`: skip that many more first)."""
    from agentlab.config.sections import SourceConfig
    from agentlab.sources import load_rows

    src = dict(raw["source"], limit=None)
    name = {"valid": "valid.json", "train": "train.json"}.get(split, "test.json")
    path = data_dir / "wrench/youtube" / name
    src["path"] = str(path)
    rows = load_rows(SourceConfig(**src), path)
    recipe_n = raw["source"]["limit"]
    if split == "recipe":
        return rows[:recipe_n]
    start = (recipe_n if split == "bench" else 0) + offset
    return rows[start:start + limit]


def run(raw: dict, rows: list[dict], out: Path, fresh: bool) -> tuple[dict, float]:
    """The recipe on `rows` (written to a JSONL file); the manifest and the seconds it took."""
    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    path = Path(tempfile.mkdtemp(prefix="agentlab-bench-debate-")) / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": r["id"], "text": r["text"], "label": r["label"]}) + "\n" for r in rows))
    raw = dict(raw, source={"path": str(path), "format": "jsonl", "id_field": "id"})
    t0 = time.perf_counter()
    run_dir = run_recipe(parse_recipe(raw, RECIPE), out=str(out), quiet=True, fresh=fresh)
    return json.loads((run_dir / "manifest.json").read_text()), time.perf_counter() - t0


def table(manifest: dict) -> str:
    """The comparison table and the position-bias line, from one manifest."""
    m = manifest["metrics"]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    lines = ["| annotator | " + " | ".join(KEYS) + " | n |", "|---|" + "---|" * (len(KEYS) + 1)]
    for name in ("single_judge", "debate", "debate_forward", "debate_swapped"):
        if name in m:
            lines.append(f"| {name} | " + " | ".join(fmt(m[name][k]) for k in KEYS) + f" | {m[name]['n']} |")
    pb = m.get("position_bias")
    if pb:
        lines.append(f"\nposition consistency: {fmt(pb['consistency'])} ({pb['n'] - pb['changed']} of {pb['n']} rows kept "
                     f"their decision when the speaking order was reversed; bias rate {fmt(pb['rate'])})")
    run_info = m.get("debate_run", {})
    lines.append(f"decision: {run_info.get('decision')}; judge mode: {run_info.get('judge_mode')}; "
                 f"decided by refusal: {run_info.get('decided_by_refusal')}; undecided: {run_info.get('undecided')}")
    return "\n".join(lines)


def sweep(raw: dict, rows: list[dict], args: argparse.Namespace, weights: list[float]) -> None:
    """One line per prior weight: accuracy / kappa of the single judge, the debate and each order, and consistency."""
    print(f"recipe {RECIPE.name} on {args.split} ({len(rows)} rows), prior_weight sweep")
    print("| prior_weight | single judge acc / κ | debate acc / κ | forward acc / κ | swapped acc / κ | position consistency |")
    print("|---|---|---|---|---|---|")
    fmt = lambda m: "n/a" if m is None else f"{m['accuracy']:.4f} / {m['kappa']:.4f}"
    for i, w in enumerate(weights):
        man, _ = run(dict(raw, task=dict(raw["task"], prior_weight=w)), rows, args.out, args.fresh and i == 0)
        m = man["metrics"]
        print(f"| {w} | {fmt(m.get('single_judge'))} | {fmt(m['debate'])} | {fmt(m.get('debate_forward'))} | "
              f"{fmt(m.get('debate_swapped'))} | {m.get('position_bias', {}).get('consistency')} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["bench", "valid", "train", "recipe"], default="bench")
    ap.add_argument("--limit", type=int, default=200, help="rows (bench: after the recipe's 40; valid: first N)")
    ap.add_argument("--offset", type=int, default=0, help="skip this many rows first (bench: after the recipe's 40), "
                    "e.g. --offset 200 for a second set of 200 unseen rows")
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data")
    ap.add_argument("--prior-weight", default=None,
                    help="override the recipe's task.prior_weight; a comma list (e.g. 0,0.5,1,2) reruns once per weight, "
                         "all but the first from the call cache (the weight changes no call), and prints one line each")
    ap.add_argument("--calibrate", choices=["true", "false", "transcript"], default=None,
                    help="override the recipe's task.judge.calibrate (transcript: blank the content, keep the turns)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                    help="override a task field (dotted for nested: judge.debate_examples=false); repeatable")
    ap.add_argument("--out", type=Path, default=Path("/tmp/agentlab-bench/debate"))
    ap.add_argument("--fresh", action="store_true", help="ignore the call cache")
    args = ap.parse_args()
    os.chdir(REPO)
    raw = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    if args.calibrate is not None:
        raw["task"]["judge"]["calibrate"] = {"true": True, "false": False}.get(args.calibrate, args.calibrate)
    for item in args.set:
        key, _, value = item.partition("=")
        *path, last = key.split(".")
        node = raw["task"]
        for part in path:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    weights = [float(w) for w in str(args.prior_weight).split(",")] if args.prior_weight is not None else []
    if weights:
        raw["task"]["prior_weight"] = weights[0]
    rows = source_rows(raw, args.data_dir, args.split, args.limit, args.offset)
    if len(weights) > 1:
        sweep(raw, rows, args, weights)
        return
    man, secs = run(raw, rows, args.out, args.fresh)
    c, u = man["counts"], man["usage"]
    print(f"recipe {RECIPE.name} on {args.split} ({len(rows)} rows): {c['llm_calls']} calls ({c['cache_hits']} cached), "
          f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens, {secs:.1f}s")
    print(table(man))
    print(f"outputs: {args.out}")


if __name__ == "__main__":
    main()
