"""Distillation benchmark on WRENCH youtube: label model -> MiniLM LoRA student vs a gold-trained ceiling.

1. A label model (Dawid–Skene from `agentlab.labeling.aggregators`) is fitted on the TRAIN split's
   labeling-function votes, without gold; its probabilities become the rows' `label_probs`
   (rows where every function abstains get `label: None` and are skipped by the student).
2. The student (`classifier`, MiniLM + LoRA r=8, soft labels) is trained on those rows with
   `agentlab.distill.stage.distill` (10% of the train rows held out for early stopping on
   their *labels*, never gold).
3. Ceiling: the same student trained on the TRAIN split's gold labels (one-hot).
4. Everything is scored on the TEST split: the label model's argmax over all test rows (seeded
   random tie-break, all-abstain rows included, as in benchmarks/label_models.py) and each student's
   argmax over all test rows.

Reports wall time and peak resident memory (resource.getrusage: the process peak so far) per step.

    .venv/bin/python benchmarks/distill.py [--data-dir ../shared/data/wrench] [--threads 1] [--variants soft,gold,hard] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from agentlab.config.sections import DistillConfig
from agentlab.distill.base import load_student, peak_memory_mb
from agentlab.distill.stage import distill
from agentlab.eval.metrics import classification_metrics
from agentlab.labeling.matrix import break_ties


def load_split(data_dir: Path, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """WRENCH youtube split -> (texts, L votes with -1 = abstain, gold y)."""
    rows = json.loads((data_dir / "youtube" / f"{split}.json").read_text())
    texts = [r["data"]["text"] for r in rows.values()]
    L = np.array([r["weak_labels"] for r in rows.values()], dtype=np.int64)
    y = np.array([r["label"] for r in rows.values()], dtype=np.int64)
    return texts, L, y


def label_model(name: str, k: int, seed: int):
    """A label model from agentlab's aggregators (dawid_skene, majority, weighted, metal)."""
    from agentlab.labeling.aggregators import make_aggregator

    return make_aggregator(name, k, seed=seed)


def rows_from(texts: list[str], P: np.ndarray, L: np.ndarray, classes: list[str]) -> list[dict]:
    """Label-task style rows from label-model probabilities (label None where every LF abstained)."""
    covered = (L != -1).any(1)
    return [{"text": t, "label": classes[int(p.argmax())] if c else None,
             "label_probs": {n: float(x) for n, x in zip(classes, p)}, "confidence": float(p.max()) if c else 0.0}
            for t, p, c in zip(texts, P, covered)]


def gold_rows(texts: list[str], y: np.ndarray, classes: list[str]) -> list[dict]:
    """Rows whose label is the gold class (the ceiling: the only place gold is trained on)."""
    return [{"text": t, "label": classes[g], "label_probs": {n: float(i == g) for i, n in enumerate(classes)},
             "confidence": 1.0} for t, g in zip(texts, y)]


def train_and_score(name: str, rows: list[dict], cfg: DistillConfig, classes: list[str], test_texts: list[str],
                    y_test: np.ndarray, work: Path) -> dict:
    """Distill `rows`, reload the saved student, score it on the test split; time and memory."""
    t0 = time.perf_counter()
    m = distill(rows, cfg, work / name, classes, quiet=True)
    train_s = time.perf_counter() - t0
    student = load_student(work / name)
    t1 = time.perf_counter()
    P = student.predict(test_texts)
    pred_s = time.perf_counter() - t1
    scores = classification_metrics(y_test, P)
    return {"test_accuracy": round(scores["accuracy"], 4), "test_macro_f1": round(scores["macro_f1"], 4),
            "test_ece": round(scores["ece"], 4), "train_rows": m["train"]["rows"], "skipped": m["train"]["skipped"],
            "steps": m["train"].get("steps"), "epochs_run": m["train"].get("epochs"),
            "val_loss": m["train"].get("val_loss"), "train_seconds": round(train_s, 1),
            "predict_seconds_per_1k": round(pred_s / len(test_texts) * 1000, 2), "peak_memory_mb": peak_memory_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "wrench")
    ap.add_argument("--label-model", default="dawid_skene")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--variants", default="soft,gold", help="comma list of: soft, hard, gold")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 is faster on a busy machine)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    t_start = time.perf_counter()
    classes = [v for _, v in sorted(json.loads((args.data_dir / "youtube" / "label.json").read_text()).items(),
                                    key=lambda kv: int(kv[0]))]
    tr_texts, L_tr, y_tr = load_split(args.data_dir, "train")
    te_texts, L_te, y_te = load_split(args.data_dir, "test")
    t0 = time.perf_counter()
    lm = label_model(args.label_model, len(classes), args.seed).fit(L_tr)
    P_tr, P_te = lm.predict_proba(L_tr), lm.predict_proba(L_te)
    lm_pred = break_ties(P_te, "random", seed=args.seed)
    lm_scores = classification_metrics(y_te, np.eye(len(classes))[lm_pred])
    train_label_acc = float((P_tr.argmax(1) == y_tr)[(L_tr != -1).any(1)].mean())
    results: dict = {
        "data": {"train": len(tr_texts), "test": len(te_texts), "classes": classes},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()},
        "label_model": {"name": args.label_model, "code_sha256": _sha256(REPO / "agentlab" / "labeling" / "aggregators.py"),
                        "test_accuracy": round(lm_scores["accuracy"], 4),
                        "test_macro_f1": round(lm_scores["macro_f1"], 4),
                        "train_label_accuracy_covered": round(train_label_acc, 4),
                        "seconds": round(time.perf_counter() - t0, 2)},
        "students": {},
    }
    base_cfg = {"epochs": args.epochs, "batch_size": args.batch_size, "max_length": args.max_length, "eval_split": 0.1,
                "seed": args.seed, "student": {"type": "classifier", "base": "minilm", "peft": {"method": "lora", "r": 8, "alpha": 16}}}
    variants = {
        "soft": (rows_from(tr_texts, P_tr, L_tr, classes), {"soft_labels": True}),
        "hard": (rows_from(tr_texts, P_tr, L_tr, classes), {"soft_labels": False}),
        "gold": (gold_rows(tr_texts, y_tr, classes), {"soft_labels": False}),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
            rows, over = variants[name]
            cfg = DistillConfig.model_validate({**base_cfg, **over})
            print(f"-- student on {name} labels ...", flush=True)
            results["students"][name] = train_and_score(name, rows, cfg, classes, te_texts, y_te, Path(tmp))
            print(json.dumps(results["students"][name]), flush=True)
    results["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    results["peak_memory_mb"] = peak_memory_mb()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _sha256(path: Path) -> str:
    """First 12 hex digits of a file's sha256 (which label-model code produced the labels)."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def print_table(r: dict) -> None:
    """A markdown summary of the results."""
    print(f"\nWRENCH youtube: train {r['data']['train']}, test {r['data']['test']}; {r['machine']}")
    print("| model | test accuracy | macro-F1 | train s | peak MB |\n|---|---|---|---|---|")
    lm = r["label_model"]
    print(f"| label model ({lm['name']}) | {lm['test_accuracy']:.4f} | {lm['test_macro_f1']:.4f} | {lm['seconds']} | |")
    for name, s in r["students"].items():
        print(f"| MiniLM LoRA student ({name} labels) | {s['test_accuracy']:.4f} | {s['test_macro_f1']:.4f} | "
              f"{s['train_seconds']} | {s['peak_memory_mb']:.0f} |")
    print(f"total wall {r['wall_seconds']}s, peak memory {r['peak_memory_mb']:.0f} MB")


if __name__ == "__main__":
    main()
