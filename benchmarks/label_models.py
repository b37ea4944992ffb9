"""Benchmark agentlab's label models against Snorkel's LabelModel on WRENCH data.

Every model is fitted on the TRAIN split's votes without gold and scored on the TEST split
(``--eval-split valid`` for choices, ``--eval-split valid test`` for both from one fit). Two settings:

- ``no-gold``: nothing but the votes (Snorkel gets its default uniform class balance);
- ``valid-balance``: the class balance counted on the VALID split's labels is given to every
  model (our ``class_prior``, Snorkel's ``class_balance``), as WRENCH does for its label models.

Hard labels for every model, Snorkel included, are the argmax of its probabilities with the same
seeded random tie-break, over all test rows (rows where every labeler abstains included).
Snorkel runs in-process when importable, else through ``--snorkel-python`` (a separate venv whose
numpy/torch may differ from ours). A synthetic 1M × 32 matrix times the Dawid–Skene fit.

    .venv/bin/python benchmarks/label_models.py [--data-dir ../shared/data/wrench] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agentlab.eval.metrics import classification_metrics
from agentlab.labeling.aggregators import AGGREGATORS, make_aggregator
from agentlab.labeling.matrix import break_ties

SNORKEL_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch
torch.set_num_threads(int(sys.argv[4]))
from snorkel.labeling.model import LabelModel
d = np.load(sys.argv[1])
bal = d["balance"] if d["balance"].size else None
t = time.perf_counter()
lm = LabelModel(cardinality=int(d["k"]), verbose=False)
lm.fit(d["train"], n_epochs=int(sys.argv[3]), seed=int(d["seed"]), class_balance=bal, progress_bar=False)
fit_s = time.perf_counter() - t
np.save(sys.argv[2], lm.predict_proba(d["test"]))
print(json.dumps({"fit_s": fit_s}))
"""


def load_split(data_dir: Path, name: str, split: str) -> tuple[np.ndarray, np.ndarray, int]:
    """WRENCH split json -> (L, y, k)."""
    rows = json.loads((data_dir / name / f"{split}.json").read_text())
    labels = json.loads((data_dir / name / "label.json").read_text())
    L = np.array([r["weak_labels"] for r in rows.values()], dtype=np.int64)
    y = np.array([r["label"] for r in rows.values()], dtype=np.int64)
    return L, y, len(labels)


def default_snorkel_python() -> str | None:
    """'' = in-process; a path = that interpreter; None = Snorkel unavailable."""
    try:
        import snorkel.labeling.model  # noqa: F401

        return ""
    except ImportError:
        pass  # not in this venv: look for a separate one
    for cand in [os.environ.get("AGENTLAB_SNORKEL_PYTHON"), "/work/snorkel-venv/bin/python"]:
        if cand and Path(cand).exists():
            return cand
    return None


def run_snorkel(python: str, train: np.ndarray, test: np.ndarray, k: int, balance, seed: int,
                epochs: int, threads: int) -> tuple[np.ndarray, float]:
    """Fit Snorkel's LabelModel (500 epochs by default) and return (test probs, fit seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npy"
        np.savez(inp, train=train, test=test, k=k, seed=seed,
                 balance=np.asarray(balance if balance is not None else [], dtype=float))
        script = Path(tmp) / "fit.py"
        script.write_text(SNORKEL_SCRIPT)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        res = subprocess.run([python or sys.executable, str(script), str(inp), str(out), str(epochs), str(threads)],
                             capture_output=True, text=True, env=env, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"snorkel failed:\n{res.stderr[-2000:]}")
        fit_s = json.loads(res.stdout.strip().splitlines()[-1])["fit_s"]
        return np.load(out), fit_s


def score(y: np.ndarray, P: np.ndarray, seed: int) -> dict[str, float]:
    """Accuracy / macro-F1 of the tie-broken argmax over all rows."""
    pred = break_ties(P, "random", seed)
    m = classification_metrics(y, np.eye(P.shape[1])[pred])
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def parse_variant(text: str) -> tuple[str, str, dict]:
    """``dawid_skene:abstain_weight=0,smoothing=0.1`` -> (label, model name, options)."""
    name, _, rest = text.partition(":")
    opts = {}
    for item in filter(None, rest.split(",")):
        key, _, val = item.partition("=")
        opts[key] = json.loads(val) if val[:1] in "-0123456789[{tf" else val
    return f"{name}[{rest}]", name, opts


def bench_dataset(args, name: str, snorkel_python: str | None) -> list[dict]:
    """All models × both settings on one dataset; each model is fitted once and scored on every
    split in ``--eval-split`` (Snorkel predicts them all from one fit too)."""
    L_tr, _, k = load_split(args.data_dir, name, "train")
    evals = {split: load_split(args.data_dir, name, split)[:2] for split in args.eval_split}
    _, y_va, _ = load_split(args.data_dir, name, "valid")
    balance = np.bincount(y_va, minlength=k) / len(y_va)
    out = []
    for setting, prior in [("no-gold", None), ("valid-balance", balance)]:
        fitted = []  # (model label, {split: probabilities}, fit seconds)
        for label, model_name, opts in [(n, n, {}) for n in AGGREGATORS.names()] + args.variant:
            t = time.perf_counter()
            model = make_aggregator(model_name, k, seed=args.seed, class_prior=prior, **opts).fit(L_tr)
            fit_s = time.perf_counter() - t
            fitted.append((label, {split: model.predict_proba(L) for split, (L, _) in evals.items()}, fit_s))
        if snorkel_python is not None:
            L_all = np.concatenate([L for L, _ in evals.values()])
            P_all, fit_s = run_snorkel(snorkel_python, L_tr, L_all, k, prior, args.seed, args.epochs, args.snorkel_threads)
            cuts = np.cumsum([len(L) for L, _ in evals.values()])[:-1]
            fitted.append(("snorkel", dict(zip(evals, np.split(P_all, cuts))), fit_s))
        for label, probs, fit_s in fitted:
            for split, (_, y_ev) in evals.items():
                out.append({"dataset": name, "setting": setting, "split": split, "model": label, "fit_s": fit_s,
                            **score(y_ev, probs[split], args.seed)})
    return out


def synthetic(n: int, m: int, k: int, seed: int = 0, coverage: float = 0.7):
    """Labelers right with probability U(0.55, 0.9), else a random wrong class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n).astype(np.int8)
    acc = rng.uniform(0.55, 0.9, m)
    L = np.where(rng.random((n, m)) < acc, y[:, None], (y[:, None] + rng.integers(1, k, (n, m))) % k)
    L = np.where(rng.random((n, m)) < coverage, L, -1).astype(np.int8)
    return L, y, acc


def bench_synthetic(args) -> dict:
    L, y, acc = synthetic(args.synthetic_rows, args.synthetic_labelers, 2, args.seed)
    t = time.perf_counter()
    model = make_aggregator("dawid_skene", 2, seed=args.seed).fit(L)
    fit_s = time.perf_counter() - t
    return {"rows": len(L), "labelers": L.shape[1], "fit_s": fit_s, "iterations": model.n_iter_,
            "accuracy": float((model.predict(L) == y).mean()),
            "max_accuracy_error": float(np.abs(model.labeler_accuracy() - acc).max())}


def print_table(rows: list[dict]) -> None:
    print("| dataset | split | setting | model | accuracy | macro-F1 | fit s |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["dataset"] != "youtube", r["dataset"], r["split"] != "valid", r["setting"])):
        print(f"| {r['dataset']} | {r['split']} | {r['setting']} | {r['model']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['fit_s']:.3f} |")


def check_goals(rows: list[dict], syn: dict | None) -> list[str]:
    """Goal lines: DS accuracy >= max(majority, snorkel); >= 20x faster than snorkel; 1M x 32 <= 10 s."""
    lines = []
    for (ds, split, setting) in sorted({(r["dataset"], r["split"], r["setting"]) for r in rows}):
        get = {r["model"]: r for r in rows if (r["dataset"], r["split"], r["setting"]) == (ds, split, setting)}
        bar = max(get["majority"]["accuracy"], get.get("snorkel", {"accuracy": 0})["accuracy"])
        best = max((r for n, r in get.items() if n != "snorkel"), key=lambda r: r["accuracy"])
        ok = get["dawid_skene"]["accuracy"] >= bar
        line = f"{ds}/{split}/{setting}: dawid_skene {get['dawid_skene']['accuracy']:.4f} vs bar {bar:.4f} -> {'OK' if ok else 'MISSED'}"
        line += f"; best ours {best['model']} {best['accuracy']:.4f}"
        if "snorkel" in get:
            line += f"; speed-up vs snorkel {get['snorkel']['fit_s'] / max(get['dawid_skene']['fit_s'], 1e-9):.0f}x"
        lines.append(line)
    if syn:
        lines.append(f"synthetic {syn['rows']}x{syn['labelers']}: dawid_skene fit {syn['fit_s']:.2f}s "
                     f"({syn['iterations']} iterations) -> {'OK' if syn['fit_s'] <= 10 else 'MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "wrench")
    p.add_argument("--datasets", nargs="+", default=["youtube", "trec"])
    p.add_argument("--eval-split", nargs="+", default=["test"], choices=["test", "valid"],
                   help="splits to score on (make choices on valid; `valid test` reports both from one fit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=500, help="Snorkel LabelModel epochs")
    p.add_argument("--snorkel-python", default=None, help="interpreter with snorkel installed")
    p.add_argument("--snorkel-threads", type=int, default=1, help="torch threads for Snorkel (1 is fastest here)")
    p.add_argument("--no-snorkel", action="store_true")
    p.add_argument("--synthetic-rows", type=int, default=1_000_000)
    p.add_argument("--synthetic-labelers", type=int, default=32)
    p.add_argument("--variant", type=parse_variant, action="append", default=[],
                   help="extra model with options, e.g. dawid_skene:abstain_weight=0 (repeatable)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)

    snorkel = None if args.no_snorkel else (args.snorkel_python if args.snorkel_python is not None else default_snorkel_python())
    if snorkel is None and not args.no_snorkel:
        print("snorkel not found (pip install snorkel, or --snorkel-python PATH); running without it", file=sys.stderr)
    warm, _, _ = synthetic(500, 5, 3)  # import scipy & co. before anything is timed
    for model_name in AGGREGATORS.names():
        make_aggregator(model_name, 3).fit(warm)
    rows = [r for name in args.datasets for r in bench_dataset(args, name, snorkel)]
    syn = bench_synthetic(args) if args.synthetic_rows > 0 else None
    print(f"WRENCH {', '.join(args.datasets)}: fit on train votes, scored on {' and '.join(args.eval_split)}\n")
    print_table(rows)
    print()
    for line in check_goals(rows, syn):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "synthetic": syn}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
