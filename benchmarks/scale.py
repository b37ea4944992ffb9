"""Rows/s of the local executor vs the ray executor (1, 2 actors) against a fixed-latency OpenAI-compatible server.

The server is the one from `benchmarks/throughput.py` (every call answered after `--latency` s, in its own
process). Every configuration answers distinct prompts through `RunContext.call` with the SQLite call
cache (every result committed on the driver), so the numbers include journaling:

* ideal         requests in flight / latency (64 per process by default)
* local         the openai backend in this process (`executor: {type: local}`)
* ray xN        Ray Data over N actors, one openai client each (`executor: {type: ray, replicas: N}`)
* ray ceiling   2 actors of the `fake` backend (no latency): what the driver + Ray Data can ingest per second

Each configuration runs twice (`--small` and `--big` rows): `rows/s` is the big run end to end; `marginal`
= (big - small) / (t_big - t_small), the steady rate without the fixed cost of a call (starting the actor
pool: Ray Data starts actors per call), which is `overhead`. Then a projection for N actors (N GPUs with
one vLLM engine each) from the measured per-actor figure.

    python benchmarks/scale.py [--latency 0.1] [--in-flight 64] [--small 256] [--big 1280] [--replicas 1,2] [--json FILE]

Every number printed comes from this run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


if __name__ == "__main__":
    main()
