"""SPTAR (METHODS.md §4) steps 1-2: soft prompt tuning of a causal LM and the example filter.

Every training input is the fixed example pair(s) followed by the document, as
``Document: {d}\\nRelevant Query:`` + `` {query}``; the loss covers the query tokens only
(`train_causal`). After tuning, the example filter scores candidate example sets by the mean
loss of the gold query on held-out labeled pairs and keeps the lowest. The tuned prompt is
stored in a folder named by the hash of its data and settings, so a re-run reuses it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlab.queries.cache import cached_folder, content_hash
from agentlab.queries.config import SoftPromptConfig

log = logging.getLogger("agentlab")
TEMPLATE = "Document: {document}\nRelevant Query:"
LabeledPair = tuple[str, str]  # (query text, doc id)


def render_prompt(examples: Sequence[LabeledPair], document: str, texts: Mapping[str, str], doc_chars: int) -> str:
    """The generator's input: each example as document + query, then the document and the open query slot."""
    shots = "".join(TEMPLATE.format(document=texts[d][:doc_chars]) + f" {q}\n\n" for q, d in examples)
    return shots + TEMPLATE.format(document=document[:doc_chars])


@dataclass
class TuningSplit:
    """The labeled pairs divided for tuning: the fixed example set, training targets, held-out pairs."""

    examples: list[LabeledPair]
    train: list[LabeledPair]
    held: list[LabeledPair]
    pool: list[LabeledPair] = field(default_factory=list)  # pairs the example filter may show


def split_pairs(pairs: Sequence[LabeledPair], k: int, val_fraction: float) -> TuningSplit:
    """Hold out the last `val_fraction` of the (already shuffled) pairs; the first `k` others are the examples.

    The example pairs are not also training targets (a pair would otherwise see its own answer);
    when nothing else is left they are.
    """
    pairs = list(pairs)
    n_held = min(len(pairs) - 1, max(1, round(len(pairs) * val_fraction))) if val_fraction > 0 else 0
    pool, held = pairs[: len(pairs) - n_held], pairs[len(pairs) - n_held :]
    return TuningSplit(examples=pool[:k], train=pool[k:] or pool, held=held, pool=pool)


def candidate_sets(split: TuningSplit, n: int, seed: int) -> list[list[LabeledPair]]:
    """Up to `n` distinct example sets from the pool, as large as the tuned set, which comes first."""
    k, out = len(split.examples), [list(split.examples)]
    if k == 0:
        return out
    rng, seen = random.Random(seed), {tuple(sorted(split.examples))}
    for _ in range(20 * n):
        if len(out) >= n:
            break
        cand = rng.sample(split.pool, k)
        if tuple(sorted(cand)) not in seen:
            seen.add(tuple(sorted(cand)))
            out.append(cand)
    return out


def example_filter(lm: Any, candidates: Sequence[Sequence[LabeledPair]], held: Sequence[LabeledPair],
                   texts: Mapping[str, str], doc_chars: int, max_length: int = 384) -> tuple[int, list[float]]:
    """SPTAR step 2: the candidate example set under which the held-out gold queries are likeliest.

    Args:
        lm: anything with `loss(pairs, max_length=...) -> [mean NLL per pair]` (a `CausalLM`).
        candidates: example sets to compare.
        held: held-out (query, doc id) pairs to score (a pair whose document is among a set's
            examples is skipped for that set).
        texts: doc id -> text.

    Returns:
        (index of the best set, mean loss per set); ties keep the earlier set.
    """
    from agentlab.distill.causal import Pair

    scores = []
    for cand in candidates:
        shown = {d for _, d in cand}
        pairs = [Pair(render_prompt(cand, texts[d], texts, doc_chars), f" {q}") for q, d in held if d not in shown]
        losses = lm.loss(pairs, max_length=max_length) if pairs else []
        scores.append(round(sum(losses) / len(losses), 4) if losses else float("inf"))
    best = min(range(len(scores)), key=lambda i: (scores[i], i))
    return best, scores


def training_pairs(split_part: Sequence[LabeledPair], examples: Sequence[LabeledPair], texts: Mapping[str, str],
                   doc_chars: int) -> list[Any]:
    """(prompt, " query") pairs for `train_causal`."""
    from agentlab.distill.causal import Pair

    return [Pair(render_prompt(examples, texts[d], texts, doc_chars), f" {q}") for q, d in split_part]


def tune(split: TuningSplit, texts: Mapping[str, str], cfg: SoftPromptConfig, doc_chars: int, seed: int,
         parent: Path, fresh: bool = False, quiet: bool = True, callbacks: list[Any] | None = None) -> tuple[Any, dict]:
    """Tune (or reuse) the soft prompt.

    Returns:
        (the tuned `CausalLM`, info): info holds `key`, `path`, `reused` and the training metrics.
    """
    from agentlab.distill.causal import CausalLM, train_causal

    train_p = training_pairs(split.train, split.examples, texts, doc_chars)
    val_p = training_pairs(split.held, split.examples, texts, doc_chars)
    settings = cfg.model_dump(exclude={"candidates", "generate_batch", "device"})  # what the prompt depends on
    key = content_hash({"v": 1, "settings": settings, "seed": seed,
                        "train": [(p.prompt, p.completion) for p in train_p], "val": [(p.prompt, p.completion) for p in val_p]})
    trained: dict[str, Any] = {}

    def build(tmp: Path) -> None:
        log.info("sptar: tuning a %d-token soft prompt on %s with %d pairs (%d held out)", cfg.num_virtual_tokens,
                 cfg.base, len(train_p), len(val_p))
        peft = {"method": "prompt_tuning", "num_virtual_tokens": cfg.num_virtual_tokens, "init_text": cfg.init_text}
        meta = {"key": key, "examples": split.examples, "template": TEMPLATE, "init_val_loss": None}
        first = [_initial_loss(val_p, cfg, meta)] if val_p else []
        trained["lm"] = train_causal(
            train_p, cfg.base, peft, tmp, eval_pairs=val_p or None, epochs=cfg.epochs, max_steps=cfg.max_steps,
            batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, max_length=cfg.max_length,
            early_stopping_patience=cfg.patience, seed=seed, device=cfg.device, quiet=quiet,
            callbacks=first + list(callbacks or []), meta={"sptar": meta})

    folder, reused = cached_folder(parent, f"soft-{key}", build, fresh=fresh)
    lm = CausalLM.load(folder) if reused else trained["lm"]
    if not reused:
        lm.meta["path"] = str(folder)
    info = {"key": key, "path": str(folder), "reused": reused, "train_pairs": len(train_p), "val_pairs": len(val_p),
            "init_val_loss": (lm.meta.get("sptar") or {}).get("init_val_loss"),
            **{k: v for k, v in lm.metrics.items() if k != "examples"}}
    return lm, info


def _initial_loss(pairs: list[Any], cfg: SoftPromptConfig, meta: dict[str, Any]):
    """A TrainerCallback writing the validation loss before the first step (the soft prompt's init text)
    into `meta["init_val_loss"]`, to show what tuning changed."""
    from transformers import TrainerCallback

    from agentlab.distill.bases import resolve_base
    from agentlab.distill.causal import CausalLM
    from agentlab.distill.classifier import load_tokenizer

    class InitialLoss(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, processing_class=None, **kw):
            tok = processing_class or load_tokenizer(resolve_base(cfg.base).path)
            losses = CausalLM(model, tok, {"peft": "prompt_tuning"}).loss(pairs, max_length=cfg.max_length)
            meta["init_val_loss"] = round(sum(losses) / len(losses), 4)

    return InitialLoss()
