"""IR evaluation with `pytrec_eval` (trec_eval's measures): nDCG@10, MRR@10, Recall@100; dense search with numpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, int]]
METRICS = ("ndcg@10", "mrr@10", "recall@100")


def _scored(run: Run, qids: Sequence[str], depth: int | None = None) -> dict[str, dict[str, float]]:
    """A ranked run as trec_eval scores: strictly decreasing by rank, so its tie-breaking never reorders."""
    out = {}
    for q in qids:
        ranked = list(dict.fromkeys(run.get(q, [])))[:depth]
        if ranked:
            out[q] = {d: float(len(ranked) - i) for i, d in enumerate(ranked)}
    return out


def evaluate_run(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, MRR@10 and Recall@100 over the queries in `qrels` with a relevant document.

    nDCG@10 is trec_eval's `ndcg_cut_10` (graded gains, log2 discount, as in BEIR), Recall@100
    `recall_100`, and MRR@10 `recip_rank` on the run cut to its first 10 documents. A query missing
    from `run` (or with an empty ranking) scores 0: trec_eval skips it, the mean here does not.
    """
    import pytrec_eval

    gold = {q: {d: int(g) for d, g in rels.items()} for q, rels in qrels.items() if any(g > 0 for g in rels.values())}
    if not gold:
        return {**dict.fromkeys(METRICS, 0.0), "queries": 0}
    full = pytrec_eval.RelevanceEvaluator(gold, {"ndcg_cut.10", "recall.100"}).evaluate(_scored(run, list(gold)))
    top10 = pytrec_eval.RelevanceEvaluator(gold, {"recip_rank"}).evaluate(_scored(run, list(gold), 10))
    sums = dict.fromkeys(METRICS, 0.0)
    for q in gold:
        sums["ndcg@10"] += full.get(q, {}).get("ndcg_cut_10", 0.0)
        sums["recall@100"] += full.get(q, {}).get("recall_100", 0.0)
        sums["mrr@10"] += top10.get(q, {}).get("recip_rank", 0.0)
    return {**{k: round(v / len(gold), 4) for k, v in sums.items()}, "queries": len(gold)}


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
