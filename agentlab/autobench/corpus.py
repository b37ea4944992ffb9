"""The document collection: retrieval for a category, corpus salience, topic hints for the proposer."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from agentlab.autobench.text import STOPWORDS, content_words, tokens


class Corpus:
    """Documents with ids, searchable by BM25 (or embeddings) and counted for salience.

    Args:
        rows: source rows with `id` and `text`.
        retrieval: `bm25` or `embedding`.
        embedding_model: embedder for `embedding` retrieval.
    """

    def __init__(self, rows: Sequence[dict[str, Any]], retrieval: str = "bm25", embedding_model: str = "minilm"):
        self.ids = [str(r["id"]) for r in rows]
        self.texts = {str(r["id"]): str(r.get("text") or "") for r in rows}
        self.retrieval, self.embedding_model = retrieval, embedding_model
        self._words = [set(tokens(t)) for t in self.texts.values()]
        self._bm25: Any = None
        self._dense: Any = None
        self._vocab: set[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int, exclude: Sequence[str] = ()) -> list[str]:
        """Up to `k` document ids for `query`, best first, leaving out `exclude` (documents already used)."""
        skip = set(exclude)
        hits = self._bm25_search(query, k + len(skip)) if self.retrieval == "bm25" else self._dense_search(query, k + len(skip))
        return [d for d in hits if d not in skip][:k]

    def _bm25_search(self, query: str, k: int) -> list[str]:
        from agentlab.queries.bm25 import BM25Index

        if self._bm25 is None:
            self._bm25 = BM25Index(self.ids, list(self.texts.values()))
        return self._bm25.search([query], k)[0] if query.strip() else []

    def _dense_search(self, query: str, k: int) -> list[str]:
        from agentlab.embedder import embed
        from agentlab.queries.ireval import dense_search

        if self._dense is None:
            self._dense = embed(list(self.texts.values()), self.embedding_model)
        return dense_search(embed([query], self.embedding_model), self._dense, self.ids, k)[0]

    def document_frequency(self, phrase: str) -> int:
        """Documents holding at least half (rounded up) of the phrase's content words."""
        words = content_words(phrase)
        if not words:
            return 0
        need = math.ceil(len(words) / 2)
        return sum(sum(w in doc for w in words) >= need for doc in self._words)

    def unknown_words(self, phrase: str, min_len: int = 1) -> list[str]:
        """The phrase's content words of at least `min_len` characters that no document holds."""
        if self._vocab is None:
            self._vocab = set().union(*self._words) if self._words else set()
        return [w for w in content_words(phrase) if len(w) >= min_len and w not in self._vocab]

    def salience(self, phrase: str) -> float:
        """log(1 + document frequency) / log(1 + corpus size), in [0, 1]."""
        if len(self) == 0:
            return 0.0
        return math.log1p(self.document_frequency(phrase)) / math.log1p(len(self))

    def topics(self, n: int = 30, max_share: float = 0.2) -> list[str]:
        """Frequent two-word phrases (adjacent content words) by document frequency: hints for the proposer."""
        df: Counter[str] = Counter()
        for text in self.texts.values():
            words = tokens(text)
            pairs = {f"{a} {b}" for a, b in itertools.pairwise(words)
                     if a not in STOPWORDS and b not in STOPWORDS and len(a) > 2 and len(b) > 2 and not (a.isdigit() or b.isdigit())}
            df.update(pairs)
        cap = max(2, int(max_share * len(self)))
        return [p for p, c in df.most_common() if c <= cap][:n]

    def text(self, doc_id: str | None) -> str:
        """A document's text ("" for None or an unknown id)."""
        return self.texts.get(str(doc_id), "") if doc_id is not None else ""
