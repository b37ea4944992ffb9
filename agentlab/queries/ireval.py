"""IR metrics (nDCG@10, MRR@10, Recall@100) over ranked runs, and dense search with numpy."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, int]]


def ndcg_at(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with graded gains `rel` (linear gain, log2 discount, as in trec_eval/BEIR)."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr_at(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top k (0 if none)."""
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def recall_at(ranked: Sequence[str], rels: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def evaluate_run(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, MRR@10 and Recall@100 over the queries in `qrels` (a query missing from `run` scores 0)."""
    qids = [q for q, rels in qrels.items() if any(r > 0 for r in rels.values())]
    if not qids:
        return {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@100": 0.0, "queries": 0}
    out = {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@100": 0.0}
    for q in qids:
        ranked = list(run.get(q, []))
        out["ndcg@10"] += ndcg_at(ranked, qrels[q])
        out["mrr@10"] += mrr_at(ranked, qrels[q])
        out["recall@100"] += recall_at(ranked, qrels[q])
    return {**{k: round(v / len(qids), 4) for k, v in out.items()}, "queries": len(qids)}


def dense_search(query_vecs: np.ndarray, doc_vecs: np.ndarray, doc_ids: Sequence[str], k: int = 100) -> list[list[str]]:
    """Top-k doc ids per query by dot product (cosine for normalised vectors)."""
    scores = np.asarray(query_vecs, dtype=np.float32) @ np.asarray(doc_vecs, dtype=np.float32).T
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    out = []
    for row, idx in zip(scores, top):
        idx = idx[np.argsort(-row[idx], kind="stable")]
        out.append([doc_ids[i] for i in idx])
    return out
