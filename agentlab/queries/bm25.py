"""BM25 over a corpus (`bm25s`): search, and the consistency filter of SPTAR step 4."""

from __future__ import annotations

from collections.abc import Sequence


class BM25Index:
    """A BM25 index over `texts`, returning document ids.

    Args:
        ids: document ids, one per text.
        texts: document texts.
    """

    def __init__(self, ids: Sequence[str], texts: Sequence[str]):
        import bm25s

        self.ids = [str(i) for i in ids]
        self._bm25s = bm25s
        self._index = bm25s.BM25()
        self._index.index(bm25s.tokenize(list(texts), stopwords="en", show_progress=False), show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> list[list[str]]:
        """Top-`k` document ids per query, best first (fewer when the corpus is smaller)."""
        if not queries:
            return []
        k = min(k, len(self.ids))
        tokens = self._bm25s.tokenize(list(queries), stopwords="en", show_progress=False)
        docs, scores = self._index.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        # bm25s pads with arbitrary documents when fewer than k score > 0: a zero score is no match
        return [[self.ids[d] for d, s in zip(row, srow) if s > 0] for row, srow in zip(docs, scores)]

    def consistent(self, queries: Sequence[str], doc_ids: Sequence[str], k: int) -> list[bool]:
        """For each (query, doc id): does BM25 rank that document in the query's top `k`?"""
        hits = self.search(queries, k)
        return [str(d) in h for d, h in zip(doc_ids, hits)]
