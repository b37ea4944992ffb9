"""How agentlab scales with rows: rows/s and peak RSS of whole runs at 10k, 100k and 1M rows; Ray vs local.

Default (`--sizes 10000,100000,1000000`): for each size, in a child process of its own (so its peak RSS
is its own, `ru_maxrss`), time

* `generate`  a whole `agentlab generate` run (`run_recipe`, in-process in the child) on N distinct rows
              against the fixed-latency OpenAI-compatible server of `benchmarks/throughput.py`
              (`--in-flight` calls in flight, SQLite call cache on, `dataset/` written);
* `label`     a whole `label` run over N rows x `--votes` precomputed votes (`--method`: the label model, default
              `auto`, what a recipe that names none gets), no LLM calls;
* `label, no dataset/` the same with `output.hf_dataset: false` (data.jsonl only).

and print rows/s, peak RSS and the cost per extra 100k rows (seconds and MB, from the two largest sizes).

`--ray`: the earlier comparison of the local executor with the ray executor (1, 2 actors) on the same server:

* ideal         requests in flight / latency (64 per process by default)
* local         the openai backend in this process (`executor: {type: local}`)
* ray xN        Ray Data over N actors, one openai client each (`executor: {type: ray, replicas: N}`)
* ray ceiling   2 actors of the `fake` backend (no latency): what the driver + Ray Data can ingest per second

Each configuration runs twice (`--small` and `--big` rows): `rows/s` is the big run end to end; `marginal`
= (big - small) / (t_big - t_small), the steady rate without the fixed cost of a call (starting the actor
pool: Ray Data starts actors per call), which is `overhead`. Then a projection for N actors (N GPUs with
one vLLM engine each) from the measured per-actor figure.

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--kinds generate,label,label_nods] [--votes 32] [--method auto]
    python benchmarks/scale.py --ray [--latency 0.1] [--in-flight 64] [--small 256] [--big 1280] [--replicas 1,2]

Every number printed comes from this run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import messages, start_server


def timed_call(model_cfg, executor, n: int, offset: int) -> float:
    """Seconds for `RunContext.call` to answer `n` distinct prompts (SQLite cache, every result committed)."""
    from agentlab.backends.base import ChatRequest
    from agentlab.engine import RunContext, close_backends
    from agentlab.store import CallCache

    with tempfile.TemporaryDirectory() as tmp:
        cache = CallCache(Path(tmp) / "cache.sqlite")
        ctx = RunContext(model_configs={"m": model_cfg}, cache=cache, executor=executor)
        reqs = [ChatRequest(messages=messages(offset + i), max_tokens=4) for i in range(n)]
        t0 = time.perf_counter()
        results = ctx.call("m", reqs)
        dt = time.perf_counter() - t0
        bad = [r.error for r in results if not r.ok]
        assert not bad, f"{len(bad)} failed calls, e.g. {bad[0]}"
        assert len(cache) == n
        close_backends()
        cache.close()
    return dt


def measure(model_cfg, executor, small: int, big: int, offset: int) -> dict:
    """rows/s (big run), marginal rows/s and fixed overhead per call, from a small and a big run."""
    timed_call(model_cfg, executor, min(small, 32), offset - 10**5)  # warm: imports, connections, Ray workers
    t_small = timed_call(model_cfg, executor, small, offset)
    t_big = timed_call(model_cfg, executor, big, offset + small)
    marginal = (big - small) / max(t_big - t_small, 1e-6)
    return {"rows": big, "seconds": t_big, "rows_s": big / t_big, "marginal_rows_s": marginal,
            "overhead_s": max(0.0, t_small - small / marginal)}


def main() -> None:
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--child") + 1:])
        return
    if "--ray" not in sys.argv:
        rows_table()
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ray", action="store_true", help="compare the local and ray executors")
    ap.add_argument("--latency", type=float, default=0.1, help="server latency in seconds")
    ap.add_argument("--in-flight", type=int, default=64, help="requests in flight per process (max_in_flight)")
    ap.add_argument("--small", type=int, default=256, help="rows in the small run")
    ap.add_argument("--big", type=int, default=1280, help="rows in the big run")
    ap.add_argument("--replicas", default="1,2", help="Ray actor counts to measure")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()

    import ray

    from agentlab.backends.fake import FakeConfig
    from agentlab.backends.openai import OpenAIConfig
    from agentlab.config.sections import ExecutorConfig
    from agentlab.executors.local import LocalExecutor
    from agentlab.executors.ray import RayExecutor

    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
    ray_init_s = time.perf_counter() - t0
    proc, url = start_server(args.latency)
    cfg = OpenAIConfig(model="bench", base_url=url, max_in_flight=args.in_flight)
    ideal = args.in_flight / args.latency
    rows: dict[str, dict] = {}
    try:
        rows["local"] = {"ideal": ideal, **measure(cfg, LocalExecutor(ExecutorConfig()), args.small, args.big, 0)}
        print_row("local", rows["local"], header=True)
        for i, n in enumerate(int(x) for x in args.replicas.split(",")):
            ex = RayExecutor(ExecutorConfig(type="ray", replicas=n, batch_size=2 * args.in_flight, num_cpus=0.5))
            rows[f"ray x{n}"] = {"ideal": n * ideal, **measure(cfg, ex, args.small, args.big, 10**7 * (i + 1))}
            print_row(f"ray x{n}", rows[f"ray x{n}"])
        fake = FakeConfig(default="positive")
        ex = RayExecutor(ExecutorConfig(type="ray", replicas=2, batch_size=512, num_cpus=0.5))
        rows["ray ceiling"] = {"ideal": float("inf"), **measure(fake, ex, 4 * args.small, 4 * args.big, 10**8)}
        print_row("ray ceiling", rows["ray ceiling"])
    finally:
        proc.terminate()
        proc.wait(5)
        ray.shutdown()
    project(rows, ray_init_s, args)
    print(f"\nload average now: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps({"ray_init_s": ray_init_s, "rows": rows}, indent=2))


def print_row(name: str, row: dict, header: bool = False) -> None:
    if header:
        print(f"{'executor':>12} {'ideal':>7} {'rows':>6} {'rows/s':>8} {'marginal':>9} {'overhead s':>10}")
    print(f"{name:>12} {row['ideal']:>7.0f} {row['rows']:>6} {row['rows_s']:>8.1f} {row['marginal_rows_s']:>9.1f} "
          f"{row['overhead_s']:>10.2f}", flush=True)


def project(rows: dict[str, dict], ray_init_s: float, args: argparse.Namespace) -> None:
    """N actors scale data-parallel until the driver (journaling, Ray Data) is the ceiling."""
    per_actor = rows["ray x1"]["marginal_rows_s"] if "ray x1" in rows else None
    ceiling = rows["ray ceiling"]["marginal_rows_s"]
    print(f"\nray.init: {ray_init_s:.1f}s; starting the actor pool costs the per-call overhead above.")
    if per_actor is None:
        return
    print(f"Projection from this run: per actor {per_actor:.0f} rows/s (one openai client, {args.in_flight} in flight, "
          f"{1000 * args.latency:.0f} ms server); driver + Ray Data ceiling {ceiling:.0f} rows/s.")
    print("rows/s(N) = min(N x per-actor, ceiling); with vLLM, per-actor is one GPU's rows/s "
          "(run benchmarks/vllm_smoke.py on the GPU) and the same formula holds for data-parallel engines.")
    print(f"{'N actors/GPUs':>14} {'projected rows/s':>17} {'bound by':>9}")
    for n in (1, 2, 4, 8, 16, 32, 64):
        rate = min(n * per_actor, ceiling)
        print(f"{n:>14} {rate:>17.0f} {'driver' if rate == ceiling else 'actors':>9}")


# -- rows/s and peak RSS by number of rows -------------------------------------------------------------------------
def write_source(path: Path, kind: str, n: int, votes: int) -> None:
    """N synthetic rows: distinct short texts (generate), or texts with `votes` precomputed votes and a gold label."""
    import random

    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            row: dict = {"text": f"review #{i}: it was great."}
            if kind != "generate":
                gold = i % 2
                row["weak"] = [gold if rng.random() < 0.7 else (-1 if rng.random() < 0.5 else 1 - gold) for _ in range(votes)]
                row["label"] = ["ham", "spam"][gold]
            f.write(json.dumps(row) + "\n")


def child(argv: list[str]) -> None:
    """Run one measurement in this process and print it as JSON (seconds, rows/s, peak RSS)."""
    import resource

    import yaml

    kind, n, url, in_flight, votes, workdir = argv[0], int(argv[1]), argv[2], int(argv[3]), int(argv[4]), Path(argv[5])
    method = argv[6] if len(argv) > 6 else "auto"
    src = workdir / f"{kind}-{n}.jsonl"
    write_source(src, kind, n, votes)
    (workdir / "p.jinja").write_text("Is this review positive or negative? {{ text }}")
    if kind == "generate":
        models = {"m": {"backend": "openai", "base_url": url, "model": "bench", "api_key": "x", "max_in_flight": in_flight}}
        task = {"type": "generate", "prompt": "p.jinja", "model": "m", "max_tokens": 4}
        extra: dict = {}
    else:
        models = {"m": {"backend": "fake"}}
        task = {"type": "label", "classes": ["ham", "spam"], "labelers": [{"type": "precomputed", "field": "weak"}]}
        extra = {"aggregate": {"method": method}, "eval": {"gold": "label"}}
    recipe = {"name": f"{kind}-{n}", "source": {"path": src.name}, "models": models, "task": task, **extra,
              "output": {"hf_dataset": kind != "label_nods"}}
    path = workdir / f"{kind}-{n}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    from agentlab.recipe import load_recipe
    from agentlab.runner import run_recipe

    rec = load_recipe(str(path))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    out = run_recipe(rec, out=str(workdir / f"out-{kind}-{n}"), quiet=True)
    dt = time.perf_counter() - t0
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["rows"] == n and counts["failed_rows"] == 0, counts
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "rows": n, "seconds": dt, "rows_s": n / dt, "peak_rss_mb": peak,
                      "rss_before_run_mb": base}))


def rows_table() -> None:
    """Measure every (kind, size) in its own child process; print the table and the cost per extra 100k rows."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="row counts")
    ap.add_argument("--kinds", default="generate,label,label_nods", help="generate, label, label_nods (label without dataset/)")
    ap.add_argument("--latency", type=float, default=0.1, help="server latency in seconds (generate)")
    ap.add_argument("--in-flight", type=int, default=256, help="max_in_flight of the generate runs")
    ap.add_argument("--votes", type=int, default=32, help="precomputed votes per row (label)")
    ap.add_argument("--method", default="auto", help="label model of the label runs (default: auto, the recipe default)")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    proc, url = start_server(args.latency)
    results: list[dict] = []
    print(f"{'run':>18} {'rows':>9} {'seconds':>9} {'rows/s':>9} {'peak RSS MB':>12} {'RSS before run':>15} {'load 1m':>8}",
          flush=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in args.kinds.split(","):
                for n in sizes:
                    cmd = [sys.executable, __file__, "--child", kind, str(n), url, str(args.in_flight), str(args.votes), tmp, args.method]
                    got = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    if got.returncode != 0:
                        print(f"{kind:>18} {n:>9} failed: {got.stderr[-800:]}", flush=True)
                        continue
                    r = json.loads(got.stdout.strip().splitlines()[-1])
                    r["load_1m"] = os.getloadavg()[0]  # the machine's load when the run ended (others share it)
                    results.append(r)
                    print(f"{kind:>18} {n:>9} {r['seconds']:>9.1f} {r['rows_s']:>9.0f} {r['peak_rss_mb']:>12.0f} "
                          f"{r['rss_before_run_mb']:>15.0f} {r['load_1m']:>8.2f}", flush=True)
                    for f in Path(tmp).glob(f"{kind}-{n}.jsonl"):
                        f.unlink()
                    import shutil

                    shutil.rmtree(Path(tmp) / f"out-{kind}-{n}", ignore_errors=True)
    finally:
        proc.terminate()
        proc.wait(5)
    print("\ncost per extra 100k rows (between the two largest sizes measured):")
    print(f"{'run':>18} {'seconds':>9} {'RSS MB':>8}")
    for kind in args.kinds.split(","):
        got = sorted((r for r in results if r["kind"] == kind), key=lambda r: r["rows"])
        if len(got) >= 2:
            a, b = got[-2], got[-1]
            per = 100_000 / (b["rows"] - a["rows"])
            print(f"{kind:>18} {(b['seconds'] - a['seconds']) * per:>9.2f} {(b['peak_rss_mb'] - a['peak_rss_mb']) * per:>8.1f}")
    print(f"\nload average now: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          f"(generate: {args.in_flight} in flight, {1000 * args.latency:.0f} ms server; label: {args.votes} votes a row, label model {args.method})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
