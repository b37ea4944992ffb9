"""Smoke test of the `vllm` backend on a GPU machine: chat, JSON schema, options, log-probs, throughput.

    python benchmarks/vllm_smoke.py [--model ID_OR_DIR_OR_GGUF] [--n 64] [--json out.json]

`--model` takes a Hugging Face id, a local model folder, or a `.gguf` file; a GGUF is first turned
into a bf16 safetensors folder with transformers (needs the `gguf` package), since vLLM's own GGUF
loading wants a separate tokenizer. Prints one JSON object; exits 1 when a check fails, 2 when the
backend cannot run here (no vLLM, no GPU). docs/vllm.md says how to run it on a machine without internet.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_MODEL = os.environ.get("AGENTLAB_VLLM_MODEL", "HuggingFaceTB/SmolLM2-135M-Instruct")
REVIEWS = [("The battery died after two days and support never answered.", "negative"),
           ("Wonderful little phone, fast and the screen is gorgeous.", "positive")]
SCHEMA = {"type": "object", "properties": {"label": {"type": "string", "enum": ["positive", "negative"]},
                                          "reason": {"type": "string", "maxLength": 80}},
          "required": ["label", "reason"], "additionalProperties": False}


def hf_folder(model: str) -> str:
    """`model` itself, or for a .gguf file a bf16 safetensors folder converted from it (cached in /tmp)."""
    path = Path(model)
    if path.suffix != ".gguf":
        return model
    out = Path(tempfile.gettempdir()) / f"agentlab-{path.stem}"
    if not (out / "config.json").is_file():
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        t0 = time.perf_counter()
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(out)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.bfloat16)
        # the weights are dequantised already; transformers 5 still marks the model "gguf-quantized"
        # and refuses to save it until that marker is gone
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(out)
        print(f"converted {path.name} -> {out} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return str(out)


def chat(text: str) -> list[dict[str, str]]:
    """A one-turn conversation."""
    return [{"role": "user", "content": text}]


def run(backend: Any, n: int) -> dict[str, Any]:
    """The checks, in order; each adds its numbers and a pass flag."""
    from agentlab.backends.base import ChatRequest

    out: dict[str, Any] = {"checks": {}}
    t0 = time.perf_counter()
    backend.llm  # noqa: B018 - load now, so the load is timed on its own
    out["load_s"] = round(time.perf_counter() - t0, 1)

    few = [ChatRequest(messages=chat(q), max_tokens=48) for q in
           ("What is the capital of France?", "Name three colours.", "Say hello in Spanish.", "What is 2 + 2?")]
    res = backend.generate(few)
    out["chat"] = [{"text": r.text, "error": r.error, "tokens": [r.prompt_tokens, r.completion_tokens]} for r in res]
    out["checks"]["chat"] = all(r.ok and r.text for r in res)

    topics = ["the sea", "a city at night", "autumn", "a robot", "coffee", "mountains", "rain", "a library"]
    many = [ChatRequest(messages=chat(f"Write a short paragraph about {topics[i % len(topics)]}."), max_tokens=128,
                        temperature=0.7, seed=i) for i in range(n)]
    t0 = time.perf_counter()
    res = backend.generate(many)
    dt = time.perf_counter() - t0
    p, c = sum(r.prompt_tokens for r in res), sum(r.completion_tokens for r in res)
    out["throughput"] = {"requests": n, "seconds": round(dt, 3), "prompt_tokens": p, "completion_tokens": c,
                         "completion_tok_s": round(c / dt, 1), "total_tok_s": round((p + c) / dt, 1),
                         "failed": sum(not r.ok for r in res)}
    out["checks"]["throughput"] = out["throughput"]["failed"] == 0 and c > 0

    js = backend.generate([ChatRequest(messages=chat(f"Classify the sentiment of this review: {t}"), max_tokens=96,
                                       json_schema=SCHEMA) for t, _ in REVIEWS])
    parsed = [_json(r.text) for r in js]
    out["json_schema"] = [{"text": r.text, "error": r.error, "parsed": v is not None} for r, v in zip(js, parsed)]
    out["checks"]["json_schema"] = all(isinstance(v, dict) and v.get("label") in ("positive", "negative") for v in parsed)

    opts = backend.generate([ChatRequest(messages=chat(f"Is this review positive or negative? {t}"),
                                         options=["positive", "negative"]) for t, _ in REVIEWS])
    out["options"] = [{"gold": g, "chosen": r.text, "logprobs": r.option_logprobs, "error": r.error}
                      for r, (_, g) in zip(opts, REVIEWS)]
    out["checks"]["options"] = all(r.ok and all(math.isfinite(v) and v < 0 for v in r.option_logprobs.values())
                                   for r in opts)
    out["options_correct"] = sum(r.text == g for r, (_, g) in zip(opts, REVIEWS))

    lp = backend.generate([ChatRequest(messages=chat("Answer yes or no: is water wet?"), max_tokens=3, logprobs=3)])[0]
    out["logprobs"] = {"text": lp.text, "top": lp.top_logprobs, "error": lp.error}
    out["checks"]["logprobs"] = bool(lp.ok and lp.top_logprobs and 0 < len(lp.top_logprobs[0]) <= 3)
    return out


def _json(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Build the backend, run the checks, print JSON. Exit 0 ok, 1 a check failed, 2 unusable here."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="HF id, local folder or .gguf file")
    ap.add_argument("--n", type=int, default=64, help="requests in the throughput batch")
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    ap.add_argument("--enforce-eager", action="store_true", help="skip CUDA graphs (faster start)")
    ap.add_argument("--json", default=None, help="also write the result here")
    args = ap.parse_args(argv)

    from agentlab.backends.vllm import VLLMBackend, VLLMConfig
    from agentlab.errors import BackendUnavailable

    model = hf_folder(args.model)
    cfg = VLLMConfig(model=model, max_model_len=args.max_model_len, enforce_eager=args.enforce_eager,
                     gpu_memory_utilization=args.gpu_memory_utilization)
    try:
        backend = VLLMBackend(cfg)
    except BackendUnavailable as exc:
        print(json.dumps({"model": args.model, "unavailable": str(exc)}))
        return 2
    import vllm

    result = {"model": args.model, "vllm": getattr(vllm, "__version__", "?"), **run(backend, args.n)}
    result["ok"] = all(result["checks"].values())
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    backend.close()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
