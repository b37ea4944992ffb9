"""Distillation benchmark: the student vs its label model vs the clean-only baseline, on held-out gold (SST-2, youtube).

For each set, everything `agentlab generate` does, in three steps so that every student can be scored:

1. **Label run**: the recipe without its `distill:` section (`run_recipe`) on the training rows: votes,
   label model, `label_probs` (LLM calls go to the user call cache, so a second run is fast).
2. **Distill**: `agentlab.distill.stage.distill` on those rows with the recipe's `distill:` section, as the
   runner calls it (same held-out split, fallback student, clean-only baseline on the recipe's
   `task.seed` / `aggregate.dev` gold rows), keeping the students it did not keep so they can be scored too.
3. **Unseen rows**: the same label recipe on rows the students never saw (SST-2: the `dev.tsv` sentences
   outside the recipe's rows; youtube: the test split). The label model is fitted on those rows' own
   votes (transductively, as in a run); every student predicts them.

Sets: `sst2` = `recipes/sst2_sentiment.yaml` as shipped (embedded SmolLM2 prompts + keywords + embedding
labeler). `youtube` = `recipes/youtube_spam.yaml` with only its 10 precomputed WRENCH labeling functions
(its two embedded-LLM labelers over 1,936 comments take hours on 2 CPU cores; `--youtube-llm` keeps them).
`--variants` adds students trained on the same labels with one setting changed (the levers), scored the same way.

    .venv/bin/python benchmarks/distill.py [--sets sst2,youtube] [--variants full,epochs6,hard,confw] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np
import yaml

#: lever variants: a name -> the distill settings it changes (trained without fallback / clean baseline)
VARIANTS = {
    "lora": {"student": {"type": "classifier", "peft": {"method": "lora", "r": 8, "alpha": 16}}},
    "full": {"student": {"type": "classifier", "peft": {"method": "none"}}},
    "epochs6": {"epochs": 6},
    "hard": {"soft_labels": False},
    "confw": {"weight_by_confidence": True},
    "embedding": {"student": {"type": "embedding"}},
    "embedding_confw": {"student": {"type": "embedding"}, "weight_by_confidence": True},
    "embedding_hard": {"student": {"type": "embedding"}, "soft_labels": False},
    "embedding_smollm2": {"student": {"type": "embedding", "base": "smollm2", "prompt": "Text: {text}\nLabel:"}},
    "embedding_smollm2_review": {"student": {"type": "embedding", "base": "smollm2", "prompt": "Review: {text}\nSentiment:"}},
    "embedding_minilm_smollm2": {"student": {"type": "embedding", "base": "minilm+smollm2", "prompt": "Review: {text}\nSentiment:"}},
    "classifier_lora": {"student": {"type": "classifier", "base": "minilm", "peft": {"method": "lora", "r": 8, "alpha": 16}}},
}


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    """data.jsonl of a finished run."""
    return [json.loads(line) for line in (run_dir / "data.jsonl").read_text(encoding="utf-8").splitlines()]


def label_run(raw: dict[str, Any], recipe_path: Path, out: Path, threads: int | None) -> list[dict[str, Any]]:
    """Run a recipe (as data) without its distill section; return its rows (with `gold`)."""
    from agentlab.recipe import parse_recipe
    from agentlab.runner import run_recipe

    raw = json.loads(json.dumps(raw))
    raw.pop("distill", None)
    raw["output"] = {**raw.get("output", {}), "cache": "user", "hf_dataset": False}
    for m in (raw.get("models") or {}).values():
        if threads and m.get("backend") == "embedded":
            m["n_threads"] = threads
    return read_rows(run_recipe(parse_recipe(raw, recipe_path), out=str(out), quiet=True))


def score(P: np.ndarray, rows: list[dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    """Accuracy on all rows, and on the rows the label model labels (its `label` is not None)."""
    from agentlab.distill.evaluate import gold_index

    y = np.array([gold_index(r.get("gold"), classes) for r in rows])
    ok = P.argmax(1) == y
    cov = np.array([r.get("label") is not None for r in rows])
    return {"accuracy": round(float(ok.mean()), 4), "n": len(rows),
            "accuracy_on_label_model_rows": round(float(ok[cov].mean()), 4) if cov.any() else None}


def label_model_score(rows: list[dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    """The label model's accuracy on the rows it labels, and on all rows (an abstain counts as wrong)."""
    from agentlab.distill.evaluate import gold_index

    y = np.array([gold_index(r.get("gold"), classes) for r in rows])
    pred = np.array([classes.index(r["label"]) if r.get("label") is not None else -1 for r in rows])
    cov = pred >= 0
    return {"accuracy_on_label_model_rows": round(float((pred[cov] == y[cov]).mean()), 4) if cov.any() else None,
            "accuracy": round(float((pred == y).mean()), 4), "n": len(rows), "coverage": round(float(cov.mean()), 4)}


def bench_set(name: str, raw: dict[str, Any], recipe_path: Path, unseen_raw: dict[str, Any], work: Path,
              variants: list[str], threads: int | None, skip_main: bool = False) -> dict[str, Any]:
    """Label run, distill (kept + other + clean-only + variants), unseen-row label run and scores, for one set."""
    from agentlab.config import validate_model
    from agentlab.config.sections import DistillConfig
    from agentlab.distill.base import load_student
    from agentlab.distill.compare import clean_rows_from_recipe
    from agentlab.distill.stage import distill, gold_from_rows
    from agentlab.recipe import parse_recipe

    t0 = time.perf_counter()
    rows = label_run(raw, recipe_path, work / f"{name}-label", threads)
    unseen = label_run(unseen_raw, recipe_path, work / f"{name}-unseen", threads)
    label_s = time.perf_counter() - t0
    recipe = parse_recipe(raw, recipe_path)
    classes = list(recipe.task_config.classes)
    cfg = recipe.distill
    clean = clean_rows_from_recipe(recipe, cfg.student.text_field) if cfg.clean_baseline else []
    texts = [str(r.get("text") or "") for r in unseen]
    out: dict[str, Any] = {"rows": len(rows), "unseen_rows": len(unseen), "clean_rows": len(clean),
                           "label_seconds": round(label_s, 1), "models": {}}
    lm_unseen = label_model_score(unseen, classes)
    if skip_main:  # only the label model and the variants (the recipe's own students can take most of an hour)
        out.update(distill_seconds=0, picked="-", picked_because="nothing (--skip-main)", verdict="")
        out["models"]["label model"] = {"held_out": {}, "unseen": lm_unseen}
    if not skip_main:
        t = time.perf_counter()
        m = distill(rows, cfg, work / f"{name}-student", classes, gold=gold_from_rows(rows), quiet=True,
                    clean_rows=clean, keep_others=work / f"{name}-others")
        out["distill_seconds"] = round(time.perf_counter() - t, 1)
        out["picked"], out["picked_because"], out["verdict"] = m["picked"], m["picked_because"], m["verdict"]
        out["models"]["label model"] = {"held_out": m["label_model"], "unseen": lm_unseen}
        out["models"][f"student kept ({m['picked']})"] = {
            "held_out": m["student"],
            "unseen": score(load_student(work / f"{name}-student").predict(texts), unseen, classes),
            "train_seconds": m["train"]["seconds"]}
        for other, c in m["candidates"].items():
            if other != m["picked"]:
                out["models"][f"student not kept ({other})"] = {
                    "held_out": {"accuracy": c["accuracy"], "agreement_with_labels": c["agreement_with_labels"]},
                    "unseen": score(load_student(work / f"{name}-others" / other).predict(texts), unseen, classes),
                    "train_seconds": c["train_seconds"]}
        if "accuracy" in m["clean_only"]:
            out["models"][f"clean-only ({m['clean_only']['train_rows']} gold rows, {m['clean_only']['student_type']})"] = {
                "held_out": m["clean_only"],
                "unseen": score(load_student(work / f"{name}-others" / "clean_only").predict(texts), unseen, classes),
                "train_seconds": m["clean_only"]["train_seconds"]}
    base = cfg.model_dump(mode="json")
    for v in variants:
        over = json.loads(json.dumps(VARIANTS[v]))
        data = {**base, **{k: val for k, val in over.items() if k != "student"}, "fallback": None, "clean_baseline": False}
        data["student"] = {**base["student"], **over.get("student", {})}
        vcfg = validate_model(DistillConfig, data, "distill")
        print(f"-- {name}: variant {v} ...", flush=True)
        vm = distill(rows, vcfg, work / f"{name}-{v}", classes, gold=gold_from_rows(rows), quiet=True)
        out["models"][f"variant {v}"] = {"held_out": vm["student"], "train_seconds": vm["train"]["seconds"],
                                         "unseen": score(load_student(work / f"{name}-{v}").predict(texts), unseen, classes)}
    return out


def sst2(args) -> tuple[dict, Path, dict]:
    """The shipped SST-2 recipe, and the same labelers on the dev.tsv sentences outside its rows."""
    from agentlab.config.sections import SourceConfig
    from agentlab.sources import load_rows

    path = REPO / "recipes" / "sst2_sentiment.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    src = raw["source"]
    data = args.data_dir / "sst2" / "dev.tsv"
    raw["source"]["path"] = str(data)
    used = {r["text"] for r in load_rows(SourceConfig(**src), data)}
    every = load_rows(SourceConfig(path=str(data), fields=src.get("fields", {})), data)
    rest = [{"sentence": r["text"], "label": r["gold_label"]} for r in every if r["text"] not in used]
    unseen_file = args.work / "sst2_unseen.jsonl"  # a temporary slice of the shared file, never committed
    unseen_file.write_text("".join(json.dumps(r) + "\n" for r in rest), encoding="utf-8")
    unseen = json.loads(json.dumps(raw))
    unseen["source"] = {"path": str(unseen_file), "fields": src.get("fields", {})}
    return raw, path, unseen


def youtube(args) -> tuple[dict, Path, dict]:
    """youtube_spam.yaml on the train split (precomputed LFs only unless --youtube-llm), unseen = the test split."""
    path = REPO / "recipes" / "youtube_spam.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    d = args.data_dir / "wrench" / "youtube"
    raw["source"]["path"] = str(d / "train.json")
    raw["task"]["seed"]["path"] = str(d / "valid.json")
    if not args.youtube_llm:
        raw["task"]["labelers"] = [lab for lab in raw["task"]["labelers"] if lab["type"] == "precomputed"]
        raw.pop("models", None)
    unseen = json.loads(json.dumps(raw))
    unseen["source"]["path"] = str(d / "test.json")
    return raw, path, unseen


def print_table(results: dict[str, Any]) -> None:
    """One markdown table: every set, every model, held-out split and unseen rows."""
    print("\n| set | model | run's held-out split: accuracy (n) | unseen rows: accuracy (n) | unseen, on the rows the "
          "label model labels | train s |\n|---|---|---|---|---|---|")
    f = lambda v: "–" if v is None else f"{v:.4f}"
    for name, r in results["sets"].items():
        for model, s in r["models"].items():
            h, u = s.get("held_out") or {}, s.get("unseen") or {}
            hacc = h.get("accuracy_all", h.get("accuracy")) if model != "label model" else h.get("accuracy")
            print(f"| {name} | {model} | {f(hacc)} ({h.get('n', '–')}) | {f(u.get('accuracy'))} ({u.get('n', '–')}) | "
                  f"{f(u.get('accuracy_on_label_model_rows'))} | {s.get('train_seconds', '') or ''} |")
    for name, r in results["sets"].items():
        print(f"\n{name}: {r['rows']} rows labeled ({r['label_seconds']}s with the unseen rows), distill {r['distill_seconds']}s; "
              f"kept {r['picked_because']}\n{r['verdict']}")
    print(f"\ntotal wall {results['wall_seconds']}s; {results['machine']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--sets", default="sst2,youtube")
    ap.add_argument("--variants", default="", help=f"comma list of: {', '.join(VARIANTS)}")
    ap.add_argument("--threads", type=int, help="torch and embedded-LLM CPU threads (1 is faster on a busy machine)")
    ap.add_argument("--youtube-llm", action="store_true", help="keep youtube_spam.yaml's embedded-LLM labelers (slow)")
    ap.add_argument("--work", type=Path, default=REPO / "outputs" / "bench_distill")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--skip-main", action="store_true", help="score only the label model and --variants (no recipe students)")
    ap.add_argument("--limit", type=int, help="label only this many (seeded, shuffled) training rows of each set")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)
    t0 = time.perf_counter()
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                           "cuda": torch.cuda.is_available()}, "sets": {}}
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        raw, path, unseen = {"sst2": sst2, "youtube": youtube}[name](args)
        if args.limit:
            raw["source"] = {**raw["source"], "shuffle": True, "seed": raw["source"].get("seed", 0), "limit": args.limit}
        print(f"-- {name} ...", flush=True)
        results["sets"][name] = bench_set(name, raw, path, unseen, args.work, variants, args.threads,
                                            args.skip_main)
        print(json.dumps(results["sets"][name]), flush=True)
    results["wall_seconds"] = round(time.perf_counter() - t0, 1)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
