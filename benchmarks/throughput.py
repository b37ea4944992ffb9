"""Throughput of the `openai` backend against a local server that answers every call after 100 ms.

Prints rows/s at 1, 16, 64 and 256 requests in flight for:

* ideal               in-flight / latency
* plain asyncio       the `openai` AsyncOpenAI client with a semaphore (what a careful script does)
* sequential          the sync `openai` client in a loop (one in flight, whatever the level)
* agentlab no cache   `RunContext.call` with `CallCache(None)`
* agentlab sqlite     `RunContext.call` with the SQLite call cache (every result committed)

The server is a minimal asyncio HTTP/1.1 server in its own process, so it does not share the
client's GIL. On a small machine the client's CPU is the ceiling (the `openai` client costs a few
ms of CPU per request), so compare agentlab with the plain loop, not with the ideal.

    python benchmarks/throughput.py [--levels 1,16,64,256] [--seconds 3] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# -- the server (run with --serve) -------------------------------------------------------------------------------
def _response_bytes() -> bytes:
    body = json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "positive"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21},
    }).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _serve(port: int, latency: float) -> None:
    reply = _response_bytes()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                await asyncio.sleep(latency)
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    """Start the server process; return it and its base_url."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--latency", str(latency)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the benchmark server did not start")


# -- the clients -----------------------------------------------------------------------------------------------------
def messages(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Is review #{i} positive or negative? It was great."}]


def plain_asyncio(url: str, n: int, in_flight: int) -> tuple[float, float]:
    """(rows/s, client CPU ms per row) of AsyncOpenAI + a semaphore."""
    import openai

    async def main() -> float:
        client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        sem = asyncio.Semaphore(in_flight)

        async def one(i: int) -> None:
            async with sem:
                await client.chat.completions.create(model="bench", messages=messages(i), max_tokens=4, temperature=0.0)

        await asyncio.gather(*(one(i) for i in range(min(n, in_flight))))  # warm the connections
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(n)))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        await client.close()
        return n / dt, 1000 * cpu / n

    return asyncio.run(main())


def sequential(url: str, n: int) -> float:
    """rows/s of the sync client, one call after another."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
    client.chat.completions.create(model="bench", messages=messages(-1), max_tokens=4)
    t0 = time.perf_counter()
    for i in range(n):
        client.chat.completions.create(model="bench", messages=messages(i), max_tokens=4, temperature=0.0)
    dt = time.perf_counter() - t0
    client.close()
    return n / dt


def agentlab(url: str, n: int, in_flight: int, cache_path: Path | None, offset: int) -> tuple[float, float]:
    """(rows/s, CPU ms per row) of RunContext.call over the openai backend (distinct prompts: no cache hits)."""
    from agentlab.backends.base import ChatRequest
    from agentlab.backends.openai import OpenAIConfig
    from agentlab.engine import RunContext, close_backends
    from agentlab.store import CallCache

    cache = CallCache(cache_path)
    ctx = RunContext(model_configs={"m": OpenAIConfig(model="bench", base_url=url, max_in_flight=in_flight)}, cache=cache)
    warm = [ChatRequest(messages=messages(-1 - i), max_tokens=4) for i in range(min(n, in_flight))]
    ctx.call("m", warm)
    reqs = [ChatRequest(messages=messages(offset + i), max_tokens=4) for i in range(n)]
    t0, c0 = time.perf_counter(), time.process_time()
    results = ctx.call("m", reqs)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(r.ok for r in results), next(r.error for r in results if not r.ok)
    close_backends()
    cache.close()
    return n / dt, 1000 * cpu / n


def end_to_end(url: str, n: int, in_flight: int, workdir: Path, offset: int, cli: bool = False) -> tuple[float, float]:
    """(rows/s, CPU ms per row) of a whole `agentlab generate` run on `n` new rows: read the source, render,
    call (SQLite cache on), parse, write data.jsonl chunk by chunk, dataset/, manifest and report.

    In-process by default (`run_recipe`, imports already paid); with `cli`, the `agentlab` command as a
    child process, interpreter start and imports included.
    """
    import yaml

    rows = workdir / f"rows{offset}.jsonl"
    rows.write_text("".join(json.dumps({"text": f"review #{offset + i}: it was great."}) + "\n" for i in range(n)))
    (workdir / "p.jinja").write_text("Is this review positive or negative? {{ text }}")
    recipe = {"name": "e2e", "source": {"path": rows.name},
              "models": {"m": {"backend": "openai", "base_url": url, "model": "bench", "api_key": "x",
                               "max_in_flight": in_flight}},
              "task": {"type": "generate", "prompt": "p.jinja", "model": "m", "max_tokens": 4}}
    path = workdir / f"r{offset}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = workdir / f"out{offset}"
    if cli:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "agentlab", "generate", str(path), "-q", "-o", str(out)],
                              capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stderr[-2000:]
        cpu = float("nan")
    else:
        from agentlab.recipe import load_recipe
        from agentlab.runner import run_recipe

        rec = load_recipe(str(path))
        t0, c0 = time.perf_counter(), time.process_time()
        run_recipe(rec, out=str(out), quiet=True)
        dt, cpu = time.perf_counter() - t0, 1000 * (time.process_time() - c0) / n
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["rows"] == n and manifest["counts"]["failed_rows"] == 0, manifest["counts"]
    return n / dt, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--latency", type=float, default=0.1, help="server latency in seconds")
    ap.add_argument("--levels", default="1,16,64,256", help="in-flight levels")
    ap.add_argument("--seconds", type=float, default=3.0, help="rough seconds per measurement")
    ap.add_argument("--repeat", type=int, default=1, help="measure each client this many times, interleaved; keep the best")
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--rows-cap", type=float, default=600.0, help="rows per measurement = min(ideal, this) x seconds")
    ap.add_argument("--cli", action="store_true", help="also time the `agentlab generate` command as a child process")
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.latency))
        return
    proc, url = start_server(args.latency)
    rows = []
    try:
        seq = sequential(url, max(5, int(args.seconds / args.latency)))
        for level in [int(x) for x in args.levels.split(",")]:
            ideal = level / args.latency
            n = max(10, int(min(ideal, args.rows_cap) * args.seconds))  # the client CPU is the ceiling on 2 cores
            row: dict = {"in_flight": level, "rows": n, "ideal": ideal, "sequential": seq}
            for _ in range(args.repeat):  # interleaved, so a busy moment on a shared machine hits every client
                with tempfile.TemporaryDirectory() as tmp:
                    runs = {"plain_asyncio": plain_asyncio(url, n, level),
                            "agentlab_nocache": agentlab(url, n, level, None, 0),
                            "agentlab_sqlite": agentlab(url, n, level, Path(tmp) / "cache.sqlite", 10**6),
                            "agentlab_e2e": end_to_end(url, n, level, Path(tmp), 2 * 10**6)}
                    if args.cli:
                        runs["agentlab_cli"] = end_to_end(url, n, level, Path(tmp), 3 * 10**6, cli=True)
                for k, (rate, cpu) in runs.items():  # keep the best of the repeats
                    row[k] = max(row.get(k, 0.0), rate)
                    row[k + "_cpu_ms"] = min(row.get(k + "_cpu_ms", float("inf")), cpu)
            rows.append(row)
            print_row(row, header=len(rows) == 1)
    finally:
        proc.terminate()
        proc.wait(5)
    print("\nclient CPU per row (ms; all threads of the client process, so load on the machine matters less):")
    print(f"{'in flight':>9} {'plain asyncio':>13} {'agentlab nocache':>16} {'agentlab sqlite':>15} {'generate e2e':>12}")
    for row in rows:
        print(f"{row['in_flight']:>9} {row['plain_asyncio_cpu_ms']:>13.2f} {row['agentlab_nocache_cpu_ms']:>16.2f} "
              f"{row['agentlab_sqlite_cpu_ms']:>15.2f} {row['agentlab_e2e_cpu_ms']:>12.2f}")
    print(f"\nload average now: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def print_row(row: dict, header: bool) -> None:
    cli = "agentlab_cli" in row
    if header:
        print(f"{'in flight':>9} {'rows':>5} {'ideal':>7} {'plain asyncio':>13} {'sequential':>10} "
              f"{'agentlab nocache':>16} {'agentlab sqlite':>15} {'generate e2e':>12} {'nocache/plain':>13} "
              f"{'sqlite/plain':>12} {'e2e/plain':>9}" + (f" {'cli':>7} {'cli/plain':>9}" if cli else ""))
    plain = row["plain_asyncio"]
    print(f"{row['in_flight']:>9} {row['rows']:>5} {row['ideal']:>7.0f} {plain:>13.1f} {row['sequential']:>10.1f} "
          f"{row['agentlab_nocache']:>16.1f} {row['agentlab_sqlite']:>15.1f} {row['agentlab_e2e']:>12.1f} "
          f"{row['agentlab_nocache'] / plain:>13.2f} {row['agentlab_sqlite'] / plain:>12.2f} {row['agentlab_e2e'] / plain:>9.2f}"
          + (f" {row['agentlab_cli']:>7.1f} {row['agentlab_cli'] / plain:>9.2f}" if cli else ""), flush=True)


if __name__ == "__main__":
    main()
