"""Category proposals (structured JSON, never repeating) and their salience."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, create_model

from agentlab.autobench.text import content_words, normalize
from agentlab.backends.base import ChatRequest

if TYPE_CHECKING:
    from agentlab.autobench.config import AutobenchConfig
    from agentlab.autobench.corpus import Corpus
    from agentlab.engine import RunContext

RETRIES = 2  # extra proposal calls (new seeds) when too few categories are new
ODD_WORD_LEN = 10  # a category word this long that no document holds is made up (run-together words), not a topic
RETRY_HEAT = 0.3  # each retry samples hotter: a model that repeats itself at one temperature often does at the next seed too


class Proposal(BaseModel):
    """One proposed category."""

    category: str = Field(description="Short topic name.", json_schema_extra={"maxLength": 48})
    parent: str = Field("", description="A broader category, or empty.", json_schema_extra={"maxLength": 48})
    requirement: str = Field("", description="An extra constraint on the questions, or empty.", json_schema_extra={"maxLength": 64})


def proposals_schema(n: int) -> type[BaseModel]:
    """`{"categories": [Proposal × n]}` with the count constrained where the backend can."""
    return create_model("Proposals", categories=(list[Proposal], Field(json_schema_extra={"minItems": 1, "maxItems": n})))


@dataclass
class ProposalRound:
    """What one proposal step produced: new categories, what was dropped as a repeat, and errors."""

    new: list[Proposal] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    odd: list[str] = field(default_factory=list)  # names with a long made-up word no document has ("GENESETSUBRANGER")
    errors: list[str] = field(default_factory=list)
    calls: int = 0


def tidy_category(name: str) -> str:
    """Whitespace collapsed; an all-capitals name with a word longer than an acronym in sentence case
    ("GENE EXPRESSION" -> "Gene expression"; "DNA" stays)."""
    name = " ".join(str(name).split())
    letters = [c for c in name if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and any(len(w) > 5 for w in name.split()):
        return name[:1] + name[1:].lower()
    return name


def category_key(name: str) -> str:
    """Identity of a category for "never repeat": its sorted content words (else the normalised name)."""
    words = content_words(name)
    return " ".join(sorted(words)) if words else normalize(name)


class Proposer:
    """Asks the proposer model for new categories given the history; rates salience.

    Args:
        cfg: the task config. ctx: the run context. corpus: the documents (topic hints, corpus salience).
    """

    def __init__(self, cfg: AutobenchConfig, ctx: RunContext, corpus: Corpus):
        self.cfg, self.ctx, self.corpus = cfg, ctx, corpus
        self.prompt = ctx.load_prompt(cfg.propose_prompt)
        self.salience_prompt = ctx.load_prompt(cfg.salience_prompt) if cfg.salience == "llm" else None
        self.seed = cfg.seed if cfg.seed is not None else ctx.seed
        self.topics = corpus.topics(24)

    def propose(self, n: int, history: list[dict[str, Any]], seen: set[str], step: int, need: int = 1,
                all_at_once: bool = False) -> ProposalRound:
        """Up to `n` categories not in `seen` (keys), asking again (new seed) while fewer than `need` are new."""
        out = ProposalRound()
        schema = proposals_schema(n)
        avoid = [h["category"] for h in history] or []
        for attempt in range(RETRIES + 1):
            variables = dict(n=n, target_low=self.cfg.target_accuracy[0], target_high=self.cfg.target_accuracy[1],
                             history=history, topics=self._hints(step, attempt), avoid=avoid, all_at_once=all_at_once)
            req = ChatRequest(messages=self.prompt.messages(**variables), max_tokens=48 * n + 32,
                              temperature=self.cfg.temperature + RETRY_HEAT * attempt, seed=self.seed + 1000 * step + attempt)
            ans = self.ctx.complete(self.cfg.proposer, [req], schema=schema, desc=f"autobench propose #{step}")[0]
            out.calls += 1
            if ans.value is None:
                out.errors.append(ans.error or "no answer")
            for p in (ans.value.categories if ans.value is not None else []):
                p.category, p.parent = tidy_category(p.category), tidy_category(p.parent)
                if self.corpus.unknown_words(p.category, min_len=ODD_WORD_LEN):
                    out.odd.append(p.category)
                    continue
                key = category_key(p.category)
                if not key or key in seen:
                    out.repeats.append(p.category)
                    continue
                seen.add(key)
                avoid.append(p.category)
                out.new.append(p)
            if len(out.new) >= need:
                break
        out.new = out.new[:n]
        return out

    def _hints(self, step: int, attempt: int) -> list[str]:
        """A rotating window of the corpus's frequent phrases, so retries and steps see different hints."""
        if not self.topics:
            return []
        start = (3 * step + 5 * attempt) % len(self.topics)
        return (self.topics[start:] + self.topics[:start])[:12]

    def salience(self, proposals: list[Proposal]) -> list[float | None]:
        """Salience per proposal in [0, 1] (corpus document frequency or an LLM rating); None with `salience: none`."""
        if self.cfg.salience == "none":
            return [None] * len(proposals)
        if self.cfg.salience == "corpus":
            return [round(self.corpus.salience(p.category), 4) for p in proposals]
        return self._llm_salience(proposals)

    def _llm_salience(self, proposals: list[Proposal]) -> list[float | None]:
        scored = "options" in self.ctx.backend(self.cfg.proposer).capabilities
        reqs = [ChatRequest(messages=self.salience_prompt.messages(category=p.category, topics=self.topics[:12]), max_tokens=4,
                            options=list("12345") if scored else None, seed=self.seed) for p in proposals]
        if scored:
            results = self.ctx.call(self.cfg.proposer, reqs, desc="autobench salience")
            return [_expected_rating(r.option_logprobs) if r.ok else None for r in results]
        rating = create_model("Rating", rating=(int, Field(ge=1, le=5)))
        answers = self.ctx.complete(self.cfg.proposer, reqs, schema=rating, desc="autobench salience")
        return [None if a.value is None else (a.value.rating - 1) / 4 for a in answers]


def _expected_rating(logprobs: dict[str, float] | None) -> float | None:
    """Expected rating under the softmax of the option log-probs, scaled to [0, 1]."""
    if not logprobs:
        return None
    top = max(logprobs.values())
    weights = {k: math.exp(v - top) for k, v in logprobs.items()}
    total = sum(weights.values())
    return round((sum(int(k) * w for k, w in weights.items()) / total - 1) / 4, 4)
