"""Retriever training and evaluation: cached folders, the corpus-embedding cache, the evaluation subset."""

from __future__ import annotations

import numpy as np
import pytest

from agentlab.config.sections import DistillConfig
from agentlab.queries.cache import (
    EmbeddingCache,
    cached_folder,
    content_hash,
    corpus_hash,
)
from agentlab.queries.retrieval import (
    Evaluator,
    eval_subset,
    load_model,
    train_retriever,
)
from tests.queries.conftest import DOCS, PAIRS

QUERIES = {"q1": "aspirin heart attack", "q4": "smoking lung cancer"}
QRELS = {"q1": {"d1": 1}, "q4": {"d4": 1}}


def test_eval_subset_keeps_relevant_documents():
    ids = [f"d{i}" for i in range(1, 7)]
    assert eval_subset(ids, QRELS, None, 0) == ids and eval_subset(ids, QRELS, 10, 0) == ids
    sub = eval_subset(ids, QRELS, 3, 0)
    assert len(sub) == 3 and {"d1", "d4"} <= set(sub) and sub == sorted(sub, key=ids.index)
    assert eval_subset(ids, QRELS, 3, 0) == sub  # seeded


def test_cached_folder_builds_once_and_never_trusts_a_half_written_one(tmp_path):
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "agentlab_student.json").write_text("{}")

    def crash(folder):
        (folder / "weights").write_text("half")
        raise KeyboardInterrupt  # a run killed while training

    with pytest.raises(KeyboardInterrupt):
        cached_folder(tmp_path, "m-1", crash)
    assert not (tmp_path / "m-1").exists() and not list(tmp_path.iterdir())
    assert cached_folder(tmp_path, "m-1", build) == (tmp_path / "m-1", False)
    assert cached_folder(tmp_path, "m-1", build) == (tmp_path / "m-1", True) and len(calls) == 1
    assert cached_folder(tmp_path, "m-1", build, fresh=True)[1] is False and len(calls) == 2


def test_embedding_cache_computes_once(tmp_path):
    cache, calls = EmbeddingCache(tmp_path), []

    def compute():
        calls.append(1)
        return np.eye(3)

    a, b = cache.get("k", compute), EmbeddingCache(tmp_path).get("k", compute)
    assert np.array_equal(a, b) and len(calls) == 1 and (tmp_path / "k.npy").is_file()
    assert EmbeddingCache(None).get("k", compute) is not None and len(calls) == 2
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert corpus_hash(["a"], ["x"]) != corpus_hash(["a"], ["y"])


def _config(loss: str = "mnrl", **kw) -> DistillConfig:
    """A recipe's `distill:` section for the queries task: the retriever student, full fine-tune."""
    return DistillConfig.model_validate({"student": {"type": "retriever", "base": "minilm", "loss": loss,
                                                     "peft": {"method": "none"}}, "batch_size": 4, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A MiniLM retriever trained for two steps on the six pairs (and its folder's parent)."""
    parent = tmp_path_factory.mktemp("retrievers")
    cfg = _config(max_steps=2)
    folder, info = train_retriever(PAIRS, DOCS, cfg, parent, "labeled_only")
    return folder, info, cfg, parent


def test_retriever_trains_is_reused_and_evaluates(trained, tmp_path):
    folder, info, cfg, parent = trained
    assert not info["reused"] and info["pairs"] == 6 and info["steps"] == 2 and (folder / "agentlab_student.json").is_file()
    again, info2 = train_retriever(PAIRS, DOCS, cfg, parent, "weak_hard")
    assert again == folder and info2["reused"]
    ev = Evaluator(list(DOCS), list(DOCS.values()), QUERIES, QRELS, base_cache=None, run_cache=tmp_path)
    first = ev.dense(load_model(folder, "cpu"), folder)
    assert set(first) == {"ndcg@10", "mrr@10", "recall@100", "queries"} and first["recall@100"] == 1.0
    assert ev.dense(load_model(folder, "cpu"), folder) == first
    assert ev.embedding_cache == {"hits": 1, "misses": 1} and len(list(tmp_path.glob("*.npy"))) == 1
    assert ev.bm25()["mrr@10"] == 1.0


def test_gist_guided_negatives_train(tmp_path):
    folder, info = train_retriever(PAIRS, DOCS, _config("gist", max_steps=1), tmp_path, "weak_soft")
    assert info["steps"] == 1 and not info["reused"]
    import json

    assert json.loads((folder / "agentlab_student.json").read_text())["loss"] == "gist"
