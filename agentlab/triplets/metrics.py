"""Triplet metrics: micro precision / recall / F1 over rows, and the predicate distribution."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from agentlab.triplets.text import Triplet, triplet_key, unique


def triplet_prf(predicted: list[Iterable[Triplet]], gold: list[Iterable[Triplet]], lemmatise: bool = True) -> dict[str, Any]:
    """Micro P/R/F1 of per-row triplet sets (exact match; after lemmatising each part when asked).

    Each row's predictions and gold are sets (duplicates count once). Empty predictions give
    precision 0 by convention only when nothing at all was predicted.
    """
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted rows for {len(gold)} gold rows")
    norm = triplet_key if lemmatise else (lambda t: t)
    tp = n_pred = n_gold = 0
    for p, g in zip(predicted, gold):
        ps, gs = {norm(t) for t in p}, {norm(t) for t in g}
        tp += len(ps & gs)
        n_pred += len(ps)
        n_gold += len(gs)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "true_positives": tp, "predicted": n_pred, "gold": n_gold, "rows": len(gold)}


def predicate_distribution(triplet_lists: Iterable[Iterable[Triplet]], vocabulary: list[str] | None = None) -> dict[str, Any]:
    """How many triplets each predicate got and how many vocabulary predicates got any."""
    counts = Counter(p for ts in triplet_lists for _, p, _ in ts)
    out: dict[str, Any] = {"triplets": sum(counts.values()), "predicates_used": len(counts),
                           "counts": dict(counts.most_common())}
    if vocabulary is not None:
        out["vocabulary_size"] = len(vocabulary)
        out["vocabulary_covered"] = sum(1 for v in vocabulary if counts[v])
    return out


def prf_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: one row per named P/R/F1 result."""
    lines = ["| | precision | recall | F1 | predicted | gold | matched |", "|---|---|---|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | "
                     f"{m['predicted']} | {m['gold']} | {m['true_positives']} |")
    return lines


def score_against_gold(extracted: list[list[Triplet]], aligned: list[list[Triplet]], gold: list[list[Triplet]],
                       vocabs: dict[str, Any], embedding_threshold: float | None = None,
                       embedding_model: str = "minilm") -> dict[str, Any]:
    """`triplets` (extracted vs gold, lemmatised) and `triplets_aligned` (aligned vs gold aligned).

    Gold is aligned by the rule pass and the embedding fallback only, never an LLM, so the
    aligned score does not depend on the model under test; `gold_alignable` is the share of
    gold triplets that survive that alignment.
    """
    from agentlab.triplets.align import Aligner

    gold_aligner = Aligner(vocabs, None, embedding_threshold, embedding_model)
    gold_aligner.align_all(gold)
    gold_aligned = [unique(gold_aligner.map(g)) for g in gold]
    out = {"triplets": triplet_prf(extracted, gold), "triplets_aligned": triplet_prf(aligned, gold_aligned)}
    out["triplets_aligned"]["gold_alignable"] = round(sum(map(len, gold_aligned)) / max(1, sum(map(len, gold))), 4)
    return out
