"""SPTAR steps 5-6: train dense retrievers on (query, document) pairs and evaluate retrieval systems.

Retrievers are the `retriever` student (sentence-transformers, MultipleNegativesRankingLoss with
in-batch negatives, or GISTEmbed guided negatives), stored in folders named by the hash of their
training data and settings, so a re-run reuses them. Corpus embeddings are cached by model
weights + corpus content: the untrained base's in the user cache (shared by runs), trained
models' in the run directory.
"""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.queries.cache import (
    EmbeddingCache,
    cached_folder,
    content_hash,
    corpus_hash,
    folder_fingerprint,
)

if TYPE_CHECKING:
    from agentlab.config.sections import DistillConfig

log = logging.getLogger("agentlab")
SYSTEMS = ("bm25", "base", "labeled_only", "weak_hard", "weak_soft")


def retriever_config(distill: DistillConfig) -> DistillConfig:
    """The recipe's `distill:` section as the queries task trains with it: no validation split, no early stopping.

    The retrievers are judged on the evaluation queries instead; `agentlab.tasks.queries` rejects the
    label-only fields (`eval_split`, `soft_labels`, ...) when a recipe sets them.
    """
    return distill.model_copy(update={"eval_split": 0.0, "early_stopping_patience": 0})


def train_retriever(pairs: Sequence[tuple[str, str]], texts: Mapping[str, str], distill: DistillConfig, parent: Path,
                    name: str, fresh: bool = False, quiet: bool = True,
                    callbacks: list[Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """Train (or reuse) the `retriever` student of `distill` on (query, doc id) pairs; returns (folder, info).

    The folder is `parent/retriever-<hash of data + settings>`: systems with the same pairs share it.
    `name` (the system) is only logged.
    """
    from agentlab.distill.base import make_student, read_meta

    data = [(q, texts[d]) for q, d in pairs]
    config = retriever_config(distill)
    key = content_hash({"v": 2, "config": config.model_dump(), "pairs": data})

    def build(tmp: Path) -> None:
        log.info("retriever %s: training %s (%s) on %d pairs", name, config.student.base, config.student.loss, len(data))
        student = make_student("retriever")
        student.callbacks = list(callbacks or [])
        student.train(data, config, tmp, quiet=quiet)
        shutil.rmtree(tmp / "_checkpoints", ignore_errors=True)  # the Trainer's empty output_dir

    folder, reused = cached_folder(parent, f"retriever-{key}", build, fresh=fresh)
    train = read_meta(folder).get("train", {})
    return folder, {"pairs": len(data), "reused": reused, "path": str(folder), **train}


def eval_subset(corpus_ids: Sequence[str], qrels: Mapping[str, Mapping[str, int]], n: int | None, seed: int) -> list[str]:
    """Doc ids to evaluate over: all when `n` is None, else every relevant doc plus seeded random others up to `n`."""
    if n is None or n >= len(corpus_ids):
        return list(corpus_ids)
    relevant = {d for rels in qrels.values() for d in rels}
    others = [d for d in corpus_ids if d not in relevant]
    random.Random(seed).shuffle(others)
    keep = relevant | set(others[: max(0, n - len(relevant))])
    return [d for d in corpus_ids if d in keep]


class Evaluator:
    """Held-out queries against one corpus: BM25 and dense systems, with cached corpus embeddings.

    Args:
        ids, texts: the evaluation corpus.
        queries: query id -> text; qrels: query id -> {doc id: grade}.
        base_cache: folder for the untrained model's corpus embeddings (None = no cache).
        run_cache: folder for trained models' corpus embeddings (None = no cache).
    """

    def __init__(self, ids: Sequence[str], texts: Sequence[str], queries: Mapping[str, str],
                 qrels: Mapping[str, Mapping[str, int]], base_cache: Path | None, run_cache: Path | None):
        self.ids, self.texts = list(ids), list(texts)
        self.qids, self.qtexts = list(queries), list(queries.values())
        self.qrels = qrels
        self.corpus_key = corpus_hash(self.ids, self.texts)
        self.caches = {"base": EmbeddingCache(base_cache), "run": EmbeddingCache(run_cache)}

    def bm25(self, index: Any = None) -> dict[str, Any]:
        """BM25 (`bm25s`) over the evaluation corpus."""
        from agentlab.queries.bm25 import BM25Index
        from agentlab.queries.ireval import evaluate_run

        index = index or BM25Index(self.ids, self.texts)
        return evaluate_run(dict(zip(self.qids, index.search(self.qtexts, 100))), self.qrels)

    def dense(self, model: Any, folder: Path, cache: str = "run") -> dict[str, Any]:
        """A sentence-transformers model (loaded from `folder`) over the evaluation corpus."""
        from agentlab.queries.ireval import dense_search, evaluate_run

        key = content_hash({"model": folder_fingerprint(folder), "max_seq_length": model.max_seq_length,
                            "corpus": self.corpus_key}, 32)
        docs = self.caches[cache].get(key, lambda: _encode(model, self.texts))
        run = dict(zip(self.qids, dense_search(_encode(model, self.qtexts), docs, self.ids, 100)))
        return evaluate_run(run, self.qrels)

    @property
    def embedding_cache(self) -> dict[str, int]:
        """Cache hits and misses so far (corpus embeddings reused vs computed)."""
        c = self.caches.values()
        return {"hits": sum(x.hits for x in c), "misses": sum(x.misses for x in c)}


def load_model(folder: Path, device: str = "auto"):
    """A SentenceTransformer from a local folder."""
    import torch
    from sentence_transformers import SentenceTransformer

    dev = "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"
    return SentenceTransformer(str(folder), device=dev)


def _encode(model: Any, texts: list[str]):
    return model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)
