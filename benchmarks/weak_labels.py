"""End-to-end weak-label numbers on real data (embedded LLM, offline).

1. WRENCH youtube TEST split: the 10 precomputed LFs alone vs the same LFs + embedded-LLM labelers
   (zero-shot by log-likelihood, few-shot from the valid split) -> label model accuracy.
2. SST-2 dev (400 rows, no existing votes): embedded LLM + keywords + embedding labelers -> accuracy.

Usage: python benchmarks/weak_labels.py [--data-dir ../shared/data] [--limit N] [--sst2-limit N] [--out DIR]
Prints a table; every number comes from this run.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
YT_NAMES = ["keyword_my", "keyword_subscribe", "keyword_link", "keyword_please", "keyword_song", "regex_check_out",
            "short_comment", "has_person_nlp", "textblob_polarity", "textblob_subjectivity"]


def youtube(data: Path, with_llm: bool) -> dict:
    labelers = [{"type": "precomputed", "field": "weak_labels", "names": YT_NAMES}]
    if with_llm:
        labelers += [
            {"type": "prompt", "model": "small", "prompt": "prompts/label/zero_shot.jinja", "calibrate": True},
            {"type": "prompt", "model": "small", "prompt": "prompts/label/few_shot.jinja", "examples": 8},
        ]
    return {
        "name": f"bench_youtube_{'llm' if with_llm else 'lfs'}",
        "source": {"path": str(data / "wrench/youtube/test.json"), "format": "wrench"},
        "models": {"small": {"backend": "embedded"}},
        "task": {"type": "label", "classes": {"ham": "a genuine comment about the video or the song",
                                              "spam": "promotes a channel, a link or a product, or asks people to subscribe"},
                 "seed": {"path": str(data / "wrench/youtube/valid.json"), "format": "wrench"}, "labelers": labelers},
        "aggregate": {"method": "all", "use": "dawid_skene"},
        "eval": {"gold": "label"},
    }


def sst2(data: Path) -> dict:
    import yaml

    recipe = yaml.safe_load((REPO / "recipes/sst2_sentiment.yaml").read_text())
    recipe["source"]["path"] = str(data / "sst2/dev.tsv")
    recipe.pop("distill", None)
    recipe["name"] = "bench_sst2"
    return recipe


def run(recipe: dict, out: Path, limit: int | None) -> tuple[dict, float]:
    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    rec = parse_recipe(copy.deepcopy(recipe), REPO / "recipes" / "bench.yaml")
    t0 = time.perf_counter()
    run_dir = run_recipe(rec, out=str(out / recipe["name"]), limit=limit, quiet=True)
    return json.loads((run_dir / "manifest.json").read_text()), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=None, help="Rows per youtube run (default: the whole test split).")
    ap.add_argument("--sst2-limit", type=int, default=None, help="Rows of SST-2 dev (default: all 400).")
    ap.add_argument("--out", type=Path, default=Path("/tmp/agentlab-bench"))
    args = ap.parse_args()
    os.chdir(REPO)
    rows = []
    for label, recipe, limit in [("youtube test: 10 LFs", youtube(args.data_dir, False), args.limit),
                                 ("youtube test: 10 LFs + embedded LLM", youtube(args.data_dir, True), args.limit),
                                 ("sst2 dev: LLM + keywords + embedding", sst2(args.data_dir), args.sst2_limit)]:
        man, secs = run(recipe, args.out, limit)
        m = man["metrics"]
        for agg in ("majority", "weighted", "dawid_skene", "metal"):
            if agg in m:
                rows.append((label, agg, m[agg]["accuracy_all"] if "accuracy_all" in m[agg] else m[agg]["accuracy"],
                             m[agg]["macro_f1"], m[agg]["coverage"], man["counts"]["llm_calls"], secs))
        for lf in m.get("labelers", []):
            if "@" in lf["name"]:
                rows.append((label, f"  LF {lf['name']}", lf.get("emp_accuracy"), None, lf["coverage"], None, None))
    print(f"{'setting':<40} {'model':<28} {'acc(all)':>8} {'macroF1':>8} {'cover':>6} {'calls':>6} {'secs':>7}")
    for r in rows:
        fmt = lambda v, w, p=4: (f"{v:>{w}.{p}f}" if isinstance(v, float) else f"{'' if v is None else v:>{w}}")
        print(f"{r[0]:<40} {r[1]:<28} {fmt(r[2], 8)} {fmt(r[3], 8)} {fmt(r[4], 6, 3)} {fmt(r[5], 6)} {fmt(r[6], 7, 1)}")


if __name__ == "__main__":
    main()
