"""The LLM pass of alignment: pick the closest vocabulary item for each term, or "none".

Two ways, chosen per backend (`mode: auto`):

- ``options``: one request per term, every vocabulary item (or the `shortlist` nearest by MiniLM) and "none"
  scored by log-likelihood (exact on embedded/vllm). Small models choose far better than they write.
- ``choice``: batches of terms (default 10) in one JSON answer, each field constrained to the
  vocabulary or "none" (any backend with structured output, or json-repair).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import create_model

from agentlab.backends.base import ChatRequest
from agentlab.triplets.align import Alignment, Vocabulary

if TYPE_CHECKING:
    from agentlab.engine import RunContext

NONE = "none"
#: few-shot pairs (term, target); an example is shown only when its target is in the vocabulary (or none)
EXAMPLES = {
    "entity": [("pigeon", "bird"), ("puppy", "dog"), ("t-shirt", "shirt"), ("sky", NONE), ("automobile", "car"),
               ("young boy", "boy")],
    "predicate": [("next to", "near"), ("is sitting on", "sitting on"), ("atop", "on"), ("puts on", "wearing"),
                  ("inside", "in"), ("is", NONE)],
}


class LLMChooser:
    """Ask a model to map terms to a vocabulary.

    Args:
        ctx: the run context (cached, counted calls).
        model: model name under `models:`.
        prompt: the alignment template (see `prompts/triplets/align.jinja`).
        mode: ``auto`` | ``options`` | ``choice``.
        batch_size: terms per request in choice mode.
    """

    def __init__(self, ctx: RunContext, model: str | None, prompt: Any, mode: str = "auto", batch_size: int = 10,
                 max_tokens: int = 256, seed: int = 0, shortlist: int | None = None, embedding_model: str = "minilm"):
        self.ctx, self.model, self.prompt = ctx, model, prompt
        self.batch_size, self.max_tokens, self.seed = batch_size, max_tokens, seed
        self.shortlist, self.embedding_model = shortlist, embedding_model
        caps = ctx.backend(model).capabilities
        self.mode = mode if mode != "auto" else ("options" if "options" in caps else "choice")

    def choose(self, vocab: Vocabulary, terms: list[str]) -> dict[str, Alignment]:
        """term -> Alignment (by ``llm``, ``llm_none`` or ``llm_failed``) for every term."""
        if self.mode == "options":
            return self._by_options(vocab, terms)
        return self._by_choice(vocab, terms)

    def _messages(self, vocab: Vocabulary, terms: list[str]) -> list[dict[str, Any]]:
        examples = [{"term": t, "target": g} for t, g in EXAMPLES[vocab.kind] if g == NONE or g in vocab.names]
        return self.prompt.messages(kind=vocab.kind, vocabulary=vocab.names, terms=terms, examples=examples,
                                    mode=self.mode)

    def _options(self, vocab: Vocabulary, terms: list[str]) -> list[list[str]]:
        """Per term: the vocabulary items scored (all, or the `shortlist` nearest by MiniLM cosine) and "none"."""
        if not self.shortlist or self.shortlist >= len(vocab.names):
            return [[*vocab.names, NONE] for _ in terms]
        from agentlab.embedder import embed

        sims = embed(terms, self.embedding_model) @ embed(vocab.names, self.embedding_model).T
        return [[*(vocab.names[j] for j in row.argsort()[::-1][: self.shortlist]), NONE] for row in sims]

    def _by_options(self, vocab: Vocabulary, terms: list[str]) -> dict[str, Alignment]:
        options = self._options(vocab, terms)
        reqs = [ChatRequest(messages=self._messages(vocab, [t]), options=o, max_tokens=1, seed=self.seed)
                for t, o in zip(terms, options)]
        out = {}
        for term, res in zip(terms, self.ctx.call(self.model, reqs, desc=f"align {vocab.kind}s")):
            if not res.ok or not res.option_logprobs:
                out[term] = Alignment(None, "llm_failed")
                continue
            best = max(res.option_logprobs, key=res.option_logprobs.get)
            score = round(float(res.option_logprobs[best]), 4)
            out[term] = Alignment(None, "llm_none", score) if best == NONE else Alignment(best, "llm", score)
        return out

    def _by_choice(self, vocab: Vocabulary, terms: list[str]) -> dict[str, Alignment]:
        batches = [terms[i:i + self.batch_size] for i in range(0, len(terms), self.batch_size)]
        choice = Literal[(*vocab.names, NONE)]  # type: ignore[misc]
        reqs, schemas = [], {}
        for batch in batches:
            n = len(batch)
            schemas.setdefault(n, create_model(f"Alignment{n}", **{f"t{i + 1}": (choice, ...) for i in range(n)}))
            reqs.append(ChatRequest(messages=self._messages(vocab, batch), max_tokens=self.max_tokens, seed=self.seed))
        out: dict[str, Alignment] = {}
        for n, schema in schemas.items():  # one schema per batch length (the last batch may be short)
            idx = [i for i, b in enumerate(batches) if len(b) == n]
            answers = self.ctx.complete(self.model, [reqs[i] for i in idx], schema=schema, desc=f"align {vocab.kind}s")
            for i, ans in zip(idx, answers):
                for j, term in enumerate(batches[i]):
                    pick = getattr(ans.value, f"t{j + 1}", None) if ans.value is not None else None
                    if pick is None:
                        out[term] = Alignment(None, "llm_failed")
                    else:
                        out[term] = Alignment(None, "llm_none") if pick == NONE else Alignment(pick, "llm")
        return out
