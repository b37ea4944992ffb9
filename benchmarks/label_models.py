"""Label models side by side on WRENCH-format sets: agentlab's models vs MV, Snorkel and HyperLM.

For each set and setting, every model is fitted without gold and scored on the TEST split's
covered rows (at least one vote), hard labels = argmax with the same seeded random tie-break:

- ``transductive``: fitted on the test split's own votes (what a run does);
- ``train``: fitted on the train split's votes, then applied to the test votes (where a train
  split exists; HyperLM has no fit and is always transductive).

Peers: MV (majority vote, random ties), Snorkel's ``LabelModel`` (500 epochs) and HyperLM (pip
``hyperlm``), from the optional extra ``pip install 'agentlab[bench]'``; a missing one is skipped
with a line saying so. Each fit runs in a forked child, so its peak memory (growth of the resident
set over the fit) and its seconds are its own. Two synthetic matrices time the default (``auto``):
77 classes × 209 labelers × 1,000 rows (like the held-out intents set) and 1M rows × 32 labelers.

    .venv/bin/python benchmarks/label_models.py [--data-dir ../shared/data/wrench] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agentlab.labeling.aggregators import available_names, make_aggregator
from agentlab.labeling.matrix import break_ties, vote_counts

SETS = ["youtube", "trec", "hausa", "yoruba", "spouse_llm"]
DEFAULT = "auto"
PEERS = ["MV", "snorkel", "HyperLM"]


def load_split(data_dir: Path, name: str, split: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """WRENCH split json -> (L, y, k), or None when the split does not exist."""
    path = data_dir / name / f"{split}.json"
    if not path.exists():
        return None
    rows = json.loads(path.read_text())
    k = len(json.loads((data_dir / name / "label.json").read_text()))
    L = np.array([r["weak_labels"] for r in rows.values()], dtype=np.int64)
    return L, np.array([r["label"] for r in rows.values()], dtype=np.int64), k


def peer_status() -> dict[str, str | None]:
    """Peer name -> None when usable, else why not."""
    out: dict[str, str | None] = {"MV": None}
    for name, module in (("snorkel", "snorkel.labeling.model"), ("HyperLM", "hyperlm")):
        try:
            __import__(module)
            out[name] = None
        except Exception as e:
            out[name] = f"{type(e).__name__}: {e} (pip install 'agentlab[bench]')"
    return out


def _fit_predict(model: str, k: int, L_fit: np.ndarray, L_test: np.ndarray, seed: int, epochs: int) -> np.ndarray:
    if model == "MV":
        return vote_counts(L_test, k) + 1e-12
    if model == "snorkel":
        import torch
        from snorkel.labeling.model import LabelModel

        torch.set_num_threads(1)
        lm = LabelModel(cardinality=k, verbose=False)
        lm.fit(L_fit, n_epochs=epochs, seed=seed, progress_bar=False)
        return lm.predict_proba(L_test)
    if model == "HyperLM":  # no fitting: one forward pass over the matrix it labels
        return make_aggregator("hyper", k).fit(L_test).predict_proba(L_test)
    return make_aggregator(model, k, seed=seed).fit(L_fit).predict_proba(L_test)


def _child(conn, *args) -> None:
    try:
        with open("/proc/self/statm") as f:
            start = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        t = time.perf_counter()
        P = _fit_predict(*args)
        secs = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start
        conn.send(("ok", P, secs, max(peak, 0)))
    except Exception as e:
        conn.send(("error", f"{type(e).__name__}: {e}", 0.0, 0))
    conn.close()


def measured(*args) -> tuple[np.ndarray | None, float, int, str | None]:
    """Run one fit+predict in a forked child: (probabilities, seconds, peak bytes, error)."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, *args))
    proc.start()
    status, P, secs, peak = parent.recv()
    proc.join()
    return (P, secs, peak, None) if status == "ok" else (None, 0.0, 0, P)


def score(P: np.ndarray, L: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float]:
    """Accuracy and macro-F1 on covered rows (argmax, seeded random ties)."""
    covered = (L >= 0).any(axis=1)
    pred, gold = break_ties(P, "random", seed)[covered], y[covered]
    f1 = []
    for c in np.unique(gold):
        tp = np.sum((pred == c) & (gold == c))
        denom = np.sum(pred == c) + np.sum(gold == c)
        f1.append(2 * tp / denom if denom else 0.0)
    return {"accuracy": float((pred == gold).mean()), "macro_f1": float(np.mean(f1))}


def bench_set(args, name: str, peers: dict[str, str | None], ours: list[str]) -> list[dict]:
    test = load_split(args.data_dir, name, "test")
    if test is None:
        print(f"{name}: no test split in {args.data_dir / name}; skipped", file=sys.stderr)
        return []
    L_te, y_te, k = test
    train = load_split(args.data_dir, name, "train")
    settings = {"transductive": L_te, **({"train": train[0]} if train is not None else {})}
    out = []
    for setting, L_fit in settings.items():
        if setting not in args.settings:
            continue
        for model in ours + [p for p in PEERS if peers[p] is None]:
            if model == "HyperLM" and setting == "train":
                continue
            P, secs, peak, err = measured(model, k, L_fit, L_te, args.seed, args.epochs)
            row = {"dataset": name, "setting": setting, "model": model, "peer": model in PEERS,
                   "fit_s": secs, "peak_mb": peak / 2**20, "error": err}
            row.update(score(P, L_te, y_te, args.seed) if P is not None else {"accuracy": float("nan"), "macro_f1": float("nan")})
            out.append(row)
    return out


def synthetic(n: int, m: int, k: int, coverage: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labelers right with probability U(0.4, 0.9), else a random wrong class; abstain 1 - coverage."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    acc = rng.uniform(0.4, 0.9, m)
    L = np.where(rng.random((n, m)) < acc, y[:, None], (y[:, None] + rng.integers(1, k, (n, m))) % k)
    dtype = np.int8 if k < 127 else np.int16
    return np.where(rng.random((n, m)) < coverage, L, -1).astype(dtype), y


def bench_synthetic(args) -> list[dict]:
    out = []
    for n, m, k, cov in [(1000, 209, 77, 0.02), (args.synthetic_rows, 32, 2, 0.7)]:
        L, y = synthetic(n, m, k, cov, args.seed)
        P, secs, peak, err = measured(DEFAULT, k, L, L, args.seed, args.epochs)
        out.append({"shape": f"{n:,} x {m} x {k} classes", "fit_s": secs, "peak_mb": peak / 2**20, "error": err,
                    "accuracy": float("nan") if P is None else score(P, L, y, args.seed)["accuracy"]})
    return out


def print_tables(rows: list[dict]) -> None:
    for setting in ("transductive", "train"):
        part = [r for r in rows if r["setting"] == setting]
        if not part:
            continue
        models = list(dict.fromkeys(r["model"] for r in part))
        sets = list(dict.fromkeys(r["dataset"] for r in part))
        get = {(r["dataset"], r["model"]): r for r in part}
        print(f"\n### {setting}: accuracy on covered test rows / macro-F1 / fit s / peak MB\n")
        print("| model | " + " | ".join(sets) + " |")
        print("|---|" + "---|" * len(sets))
        for model in models:
            cells = []
            for s in sets:
                r = get.get((s, model))
                if r is None:
                    cells.append("–")
                elif r["error"]:
                    cells.append("fails")
                else:
                    cells.append(f"{r['accuracy']:.3f} / {r['macro_f1']:.3f} / {r['fit_s']:.2f} / {r['peak_mb']:.0f}")
            label = f"**{model}** (default)" if model == DEFAULT else (f"{model} (peer)" if model in PEERS else model)
            print(f"| {label} | " + " | ".join(cells) + " |")


def goal_lines(rows: list[dict], syn: list[dict]) -> list[str]:
    """The default vs max(MV, Snorkel, HyperLM) per set, the average margin, and the speed goals."""
    lines = []
    for setting in ("transductive", "train"):
        get = {(r["dataset"], r["model"]): r["accuracy"] for r in rows if r["setting"] == setting and not r["error"]}
        sets = list(dict.fromkeys(d for d, _ in get))
        margins = []
        for s in sets:
            bar = max((get[(s, p)] for p in PEERS if (s, p) in get), default=float("nan"))
            if setting == "train" and (s, "HyperLM") not in get:
                tr = [r["accuracy"] for r in rows if r["dataset"] == s and r["model"] == "HyperLM" and not r["error"]]
                bar = max([bar, *tr])  # HyperLM cannot be fitted on train: its transductive score is the bar
            ours = get.get((s, DEFAULT), float("nan"))
            margins.append(ours - bar)
            lines.append(f"{setting} {s}: {DEFAULT} {ours:.3f} vs best peer {bar:.3f} -> "
                         f"{'OK' if ours >= bar else 'MISSED'} ({ours - bar:+.3f})")
        if margins:
            avg = float(np.mean(margins))
            lines.append(f"{setting} average margin over the best peer: {avg:+.3f} -> {'OK' if avg >= 0.01 else 'MISSED'} (goal +0.010)")
    for s in syn:
        ok = not s["error"] and s["fit_s"] <= 10 and s["peak_mb"] <= 2048
        lines.append(f"synthetic {s['shape']}: {DEFAULT} {s['fit_s']:.1f} s, peak {s['peak_mb']:.0f} MB, accuracy "
                     f"{s['accuracy']:.3f} -> {'OK' if ok else 'MISSED'} (goal <= 10 s, <= 2 GB)" + (f" [{s['error']}]" if s["error"] else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "wrench")
    p.add_argument("--datasets", nargs="+", default=SETS)
    p.add_argument("--settings", nargs="+", default=["transductive", "train"], choices=["transductive", "train"])
    p.add_argument("--models", nargs="+", default=None, help="agentlab models (default: every available one but hyper)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=500, help="Snorkel LabelModel epochs")
    p.add_argument("--no-peers", action="store_true", help="skip Snorkel and HyperLM")
    p.add_argument("--synthetic-rows", type=int, default=1_000_000, help="rows of the 2-class synthetic matrix (0: skip both)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)

    peers = peer_status()
    if args.no_peers:
        peers.update(snorkel="--no-peers", HyperLM="--no-peers")
    for name, why in peers.items():
        if why:
            print(f"peer {name} skipped: {why}")
    ours = args.models or [n for n in available_names() if n != "hyper"]
    rows = [r for name in args.datasets for r in bench_set(args, name, peers, ours)]
    syn = bench_synthetic(args) if args.synthetic_rows > 0 else []
    print(f"WRENCH {', '.join(args.datasets)}: scored on the test split's covered rows; seed {args.seed}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (times are noisy when others use the CPU)")
    print_tables(rows)
    print()
    for line in goal_lines(rows, syn):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "synthetic": syn}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
