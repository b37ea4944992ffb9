"""SPTAR step 3: weak queries for unlabeled documents from the tuned soft prompt, journaled.

Each answer is committed to the run's call cache (key: the soft prompt's hash, the chosen
examples, the document, the sampling settings) as soon as its batch finishes, so a killed run
resumes without generating a document twice. The text is cleaned like hard-prompt answers (first
line, repetitions cut); an empty answer is retried once, sampled, with another seed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentlab.queries.cache import content_hash
from agentlab.queries.sptar import LabeledPair, render_prompt
from agentlab.queries.text import clean_query

RETRY_TEMPERATURE = 0.7
RETRY_SEED_OFFSET = 1000
#: decoding stops when the model starts another example (only the first line is kept anyway)
STOP = ["Document:"]


@dataclass
class Slot:
    """One query to write: row index, its per-doc number, sampling settings, journal key."""

    row: int
    prompt: str
    temperature: float
    seed: int
    key: str = ""


@dataclass
class SoftGeneration:
    """Per row: cleaned queries (empties dropped, duplicates merged), raw answers; counters."""

    queries: list[list[str]]
    raws: list[list[str]]
    retried: int = 0
    resumed: int = 0
    generated_calls: int = 0
    seconds: float = 0.0


def generate_soft(lm: Any, rows: Sequence[Mapping[str, Any]], examples: Sequence[LabeledPair], texts: Mapping[str, str],
                  *, soft_key: str, doc_chars: int, per_doc: int, max_tokens: int, temperature: float, seed: int,
                  batch_size: int, cache: Any, fresh: bool = False, progress: Any = None) -> SoftGeneration:
    """Write `per_doc` queries per row with the tuned `lm` (a `CausalLM`), resuming from `cache`.

    Args:
        cache: a `CallCache` (the run's): answers are read from and committed to it.
        fresh: ignore answers already in the cache (they are still overwritten).
    """
    t0 = time.perf_counter()
    prompts = [render_prompt(examples, str(r["text"]), texts, doc_chars) for r in rows]
    base = {"soft": soft_key, "examples": [list(e) for e in examples], "max_tokens": max_tokens, "stop": STOP}
    slots = [Slot(i, prompts[i], temperature, seed + j) for i in range(len(rows)) for j in range(per_doc)]
    bar = progress.task("queries [soft prompt]", total=len(slots)) if progress is not None else None
    raw, resumed, calls = _run_slots(lm, slots, base, max_tokens, batch_size, cache, fresh, bar)
    texts_out = [clean_query(t) for t in raw]
    retry = [k for k, t in enumerate(texts_out) if not t]
    if retry:
        again = [Slot(slots[k].row, slots[k].prompt, max(temperature, RETRY_TEMPERATURE), slots[k].seed + RETRY_SEED_OFFSET)
                 for k in retry]
        raw2, resumed2, calls2 = _run_slots(lm, again, base, max_tokens, batch_size, cache, fresh, None)
        for k, text in zip(retry, raw2):
            raw[k], texts_out[k] = text, clean_query(text)
        resumed, calls = resumed + resumed2, calls + calls2
    if bar is not None:
        bar.close()
    out = SoftGeneration([[] for _ in rows], [[] for _ in rows], retried=len(retry), resumed=resumed, generated_calls=calls)
    for slot, r, text in zip(slots, raw, texts_out):
        out.raws[slot.row].append(r)
        if text and text not in out.queries[slot.row]:
            out.queries[slot.row].append(text)
    out.seconds = round(time.perf_counter() - t0, 2)
    return out


def _run_slots(lm: Any, slots: list[Slot], base: dict[str, Any], max_tokens: int, batch_size: int, cache: Any,
               fresh: bool, bar: Any) -> tuple[list[str], int, int]:
    """Raw answers for the slots: from the journal, else generated and committed batch by batch."""
    for s in slots:
        s.key = "sptar-gen:" + content_hash({**base, "prompt": s.prompt, "temperature": s.temperature, "seed": s.seed}, 32)
    done = {} if fresh else cache.get_many(s.key for s in slots)
    raw = [done[s.key]["text"] if s.key in done else None for s in slots]
    resumed = sum(r is not None for r in raw)
    if bar is not None and resumed:
        bar.advance(resumed, cached=resumed)
    todo = [k for k, r in enumerate(raw) if r is None]
    groups: dict[tuple[float, int], list[int]] = {}
    for k in todo:  # one batch shares sampling settings; seeds differ by per-doc number only
        groups.setdefault((slots[k].temperature, slots[k].seed), []).append(k)
    for (temp, seed), ks in groups.items():
        for i in range(0, len(ks), batch_size):
            batch = ks[i : i + batch_size]
            answers = _generate(lm, [slots[k].prompt for k in batch], max_tokens, temp, seed + i)
            for k, text in zip(batch, answers):
                raw[k] = text
                cache.put(slots[k].key, {"text": text})
            if bar is not None:
                bar.advance(len(batch))
    return [r or "" for r in raw], resumed, len(todo)


def _generate(lm: Any, prompts: list[str], max_tokens: int, temperature: float, seed: int) -> list[str]:
    """One batch from the tuned model: greedy at temperature 0, else sampled with a fixed torch seed."""
    import torch

    kwargs: dict[str, Any] = {"stop_strings": STOP, "tokenizer": lm.tokenizer}
    if temperature > 0:
        torch.manual_seed(seed)
        kwargs.update(do_sample=True, temperature=temperature, top_p=1.0)
    return lm.generate(prompts, max_new_tokens=max_tokens, batch_size=len(prompts), **kwargs)
