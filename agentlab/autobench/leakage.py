"""The leakage guard: generated questions that overlap training data or prompt examples are flagged.

Two tests: word n-gram overlap (the share of a question's n-grams found in the data; a question shorter
than n is compared whole) and embedding near-duplicates (cosine similarity of MiniLM embeddings).
Flagged questions are reported and excluded from the benchmark; exact repeats within it are too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agentlab.autobench.text import normalize


def ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """The word n-grams of `words` (the whole sequence when shorter than n)."""
    if len(words) <= n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class LeakageGuard:
    """Checks questions against reference texts (training data, few-shot examples).

    Args:
        texts: the reference texts.
        ngram: n-gram length. ngram_overlap: flag at this share of a question's n-grams found.
        embedding_similarity: flag at this cosine (None = no embedding test). embedding_model: embedder name.
    """

    def __init__(self, texts: Iterable[str], ngram: int = 8, ngram_overlap: float = 0.5,
                 embedding_similarity: float | None = 0.92, embedding_model: str = "minilm"):
        self.texts = [t for t in dict.fromkeys(str(t) for t in texts) if normalize(t)]
        self.n, self.overlap, self.similarity, self.embedding_model = ngram, ngram_overlap, embedding_similarity, embedding_model
        self._words = [normalize(t).split() for t in self.texts]
        self._grams: dict[int, set[tuple[str, ...]]] = {}
        self._emb: Any = None

    def _reference_grams(self, n: int) -> set[tuple[str, ...]]:
        if n not in self._grams:  # n is lowered for short questions, so they match inside longer texts
            self._grams[n] = {g for w in self._words for g in ngrams(w, n)}
        return self._grams[n]

    def ngram_score(self, question: str) -> float:
        """Share of the question's n-grams that occur in the reference texts."""
        words = normalize(question).split()
        grams = ngrams(words, self.n)
        if not grams or not self.texts:
            return 0.0
        ref = self._reference_grams(min(self.n, len(words)))
        return sum(g in ref for g in grams) / len(grams)

    def similarity_scores(self, questions: Sequence[str]) -> list[float]:
        """Max cosine similarity of each question to any reference text (0.0 without the embedding test)."""
        if self.similarity is None or not self.texts or not questions:
            return [0.0] * len(questions)
        from agentlab.embedder import embed

        if self._emb is None:
            self._emb = embed(self.texts, self.embedding_model)
        sims = embed(list(questions), self.embedding_model) @ self._emb.T
        return [float(s) for s in sims.max(axis=1)]

    def check(self, questions: Sequence[str]) -> list[dict[str, Any]]:
        """Per question: {leaked: reason or None, ngram_overlap, similarity}; repeats of an earlier question are `duplicate`."""
        sims = self.similarity_scores(questions)
        seen: set[str] = set()
        out = []
        for q, sim in zip(questions, sims):
            score = self.ngram_score(q)
            key = normalize(q)
            reason = ("ngram overlap" if score >= self.overlap else
                      "embedding near-duplicate" if self.similarity is not None and sim >= self.similarity else
                      "duplicate" if key in seen else None)
            seen.add(key)
            out.append({"leaked": reason, "ngram_overlap": round(score, 4), "similarity": round(sim, 4)})
        return out


def reference_texts(ctx: Any, paths: Sequence[str], examples: Sequence[dict[str, Any]]) -> list[str]:
    """Every string value of the named data files' rows, plus the few-shot examples' questions and documents."""
    from agentlab.config.sections import SourceConfig
    from agentlab.sources import load_rows

    texts = [str(e[k]) for e in examples for k in ("question", "document") if e.get(k)]
    for rel in paths:
        path = ctx.recipe.resolve(rel) if ctx.recipe is not None else Path(rel)
        for row in load_rows(SourceConfig(path=str(path)), path):
            texts += [v for k, v in row.items() if isinstance(v, str) and k != "id"]
    return texts
