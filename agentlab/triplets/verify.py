"""The model's part of the hybrid path: keep, reject and choose rule-proposed triplets by log-likelihood.

Every option of every slot (:mod:`~agentlab.triplets.propose`) becomes one short yes/no question:
"Caption: ... Fact: couch is leather" -> the backend scores "Yes" and "No" (exact log-likelihood on the
embedded model; the few-shot prefix and the caption are shared, so each option costs a few tokens). The
margin log P(yes) − log P(no) then decides:

- a slot the rules emit keeps its best option (the rule's pick unless another beats it by `switch_margin`)
  and is dropped only when that margin is below `keep_margin`;
- a slot the rules cannot decide (a modifier that may be part of a compound) is kept when its margin
  reaches `accept_margin`.

A rule triplet with no alternative is not scored at all when `keep_margin` is null (nothing could change it).

A failed call is data: its slot falls back to what the rules alone do, and the row says so in `_error`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentlab.backends.base import ChatRequest
from agentlab.triplets.propose import Slot
from agentlab.triplets.text import Triplet, unique

if TYPE_CHECKING:
    from agentlab.engine import RunContext

YES, NO = ("Yes", "yes"), ("No", "no")


def verbalise(t: Triplet) -> str:
    """The fact as the model reads it: `couch is leather`, `toilet has seat`, `man riding horse`."""
    s, p, o = t
    return f"{s} {'has' if p == 'have' else p} {o}"


@dataclass
class Verdicts:
    """Per row: the chosen triplets, each slot's options with their margins, and errors."""

    triplets: list[list[Triplet]]
    candidates: list[list[dict[str, Any]]]
    errors: list[str | None]
    stats: dict[str, int] = field(default_factory=dict)


class Verifier:
    """Scores slot options with one model and picks the triplets.

    Args:
        ctx: the run context (cached, counted calls). model: model name under `models:`.
        prompt: the verification template (`prompts/triplets/verify.jinja`).
        keep_margin: a rule triplet whose best margin is below this is dropped (None: never dropped).
        accept_margin: a model-only slot is kept at or above this margin.
        switch_margin: another option replaces the rule's pick when its margin is higher by at least this.
        seed: the request seed.
    """

    def __init__(self, ctx: RunContext, model: str, prompt: Any, keep_margin: float | None, accept_margin: float,
                 switch_margin: float, seed: int = 0):
        self.ctx, self.model, self.prompt, self.seed = ctx, model, prompt, seed
        self.keep, self.accept, self.switch = keep_margin, accept_margin, switch_margin

    def needs_scores(self, slot: Slot) -> bool:
        """Whether any threshold can act on this slot: a rule triplet with no alternative and no `keep_margin` stays
        whatever the model says, so its option is not scored (no call)."""
        return not slot.default or len(slot.options) > 1 or self.keep is not None

    def run(self, captions: list[str], slots: list[list[Slot]]) -> Verdicts:
        """Score every option of every row's slots that a threshold can act on, in one batched call; choose per slot."""
        jobs = [(i, k, t) for i, row in enumerate(slots) for k, s in enumerate(row) if self.needs_scores(s) for t in s.options]
        reqs = [ChatRequest(messages=self.prompt.messages(caption=captions[i], fact=verbalise(t)),
                            options=[*YES, *NO], max_tokens=1, seed=self.seed) for i, _, t in jobs]
        margins: dict[tuple[int, int, Triplet], float | None] = {}
        failed: dict[int, int] = {}
        for (i, k, t), res in zip(jobs, self.ctx.call(self.model, reqs, desc="triplets: verify") if reqs else []):
            margins[(i, k, t)] = _margin(res.option_logprobs) if res.ok and res.option_logprobs else None
            if margins[(i, k, t)] is None:
                failed[i] = failed.get(i, 0) + 1
        out = Verdicts([], [], [], {"options": len(jobs), "failed": sum(failed.values()), "kept": 0, "dropped": 0,
                                    "switched": 0, "accepted": 0, "rule_fallback": 0, "unscored": 0})
        for i, row in enumerate(slots):
            chosen, cands = [], []
            for k, slot in enumerate(row):
                m = [margins.get((i, k, t)) for t in slot.options]
                if self.needs_scores(slot):
                    pick = self._choose(slot, m, out.stats)
                else:  # nothing the model says could change it
                    pick = slot.options[0]
                    out.stats["unscored"] += 1
                if pick is not None:
                    chosen.append(pick)
                cands.append({"options": [{"triplet": list(t), "margin": None if x is None else round(x, 4)}
                                          for t, x in zip(slot.options, m)],
                              "rules": slot.default, "kind": slot.kind, "chosen": list(pick) if pick else None})
            out.triplets.append(unique(chosen))
            out.candidates.append(cands)
            out.errors.append(f"verify: {failed[i]} option score(s) failed; those slots kept the rule's decision"
                              if failed.get(i) else None)
        return out

    def _choose(self, slot: Slot, margins: list[float | None], stats: dict[str, int]) -> Triplet | None:
        if any(x is None for x in margins):  # a failed score: the rules decide this slot
            stats["rule_fallback"] += 1
            return slot.options[0] if slot.default else None
        if not slot.default:
            keep = margins[0] >= self.accept
            stats["accepted"] += keep
            return slot.options[0] if keep else None
        best = max(range(len(margins)), key=lambda j: margins[j])
        pick = best if margins[best] - margins[0] >= self.switch else 0
        stats["switched"] += pick != 0
        if self.keep is not None and margins[pick] < self.keep:
            stats["dropped"] += 1
            return None
        stats["kept"] += 1
        return slot.options[pick]


def _margin(scores: dict[str, float]) -> float:
    """log P(yes) − log P(no), each summed over its spellings."""
    def lse(words: tuple[str, ...]) -> float:
        xs = [scores[w] for w in words if w in scores]
        top = max(xs)
        return top + math.log(sum(math.exp(x - top) for x in xs))
    return lse(YES) - lse(NO)
