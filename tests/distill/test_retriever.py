"""The retriever student: MNRL / GISTEmbed on pairs, centroid classification on rows."""

from __future__ import annotations

import numpy as np
import pytest

from agentlab.distill.base import load_student, make_student
from agentlab.distill.data import build_examples
from agentlab.distill.retriever import (
    RetrievalPair,
    as_retrieval_pairs,
    pairs_from_examples,
)
from agentlab.errors import TrainingError
from tests.distill.distill_data import CLASSES, make_rows, run_snippet, tiny_config

PAIRS = [("capital of france", "Paris is the capital of France.", "Bananas are yellow."),
         ("what color are bananas", "Bananas are yellow.", "Paris is the capital of France."),
         ("largest planet", "Jupiter is the largest planet.", "Cats purr."),
         ("do cats purr", "Cats purr when content.", "Jupiter is the largest planet.")] * 2


def test_pair_forms():
    assert as_retrieval_pairs([("q", "p"), {"anchor": "q", "positive": "p", "negative": "n"}]) == [
        RetrievalPair("q", "p"), RetrievalPair("q", "p", "n")]


def test_rows_become_class_triplets():
    ex, _ = build_examples(make_rows(), CLASSES, tiny_config())
    label_of = {e.text: e.label for e in ex}
    trip = pairs_from_examples(ex, seed=0)
    assert len(trip) == len(ex)
    assert all(label_of[t.positive] == label_of[t.query] != label_of[t.negative] and t.positive != t.query for t in trip)


@pytest.mark.parametrize("loss", ["mnrl", "gist"])
def test_trains_on_pairs_and_saves_a_plain_sentence_transformer(tmp_path, loss):
    from sentence_transformers import SentenceTransformer

    student = make_student("retriever")
    cfg = tiny_config(max_steps=2, batch_size=4, eval_split=0, student={"type": "retriever", "loss": loss})
    metrics = student.train(PAIRS, cfg, tmp_path, eval_data=PAIRS[:4], quiet=True)
    assert metrics["steps"] == 2 and "val_loss" in metrics
    emb = student.encode(["capital of france", "Paris"])
    assert emb.shape == (2, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    plain = SentenceTransformer(str(tmp_path), device="cpu")  # LoRA merged: no peft needed to load
    assert np.allclose(plain.encode(["capital of france", "Paris"], normalize_embeddings=True), emb, atol=1e-4)
    with pytest.raises(TrainingError, match="trained on pairs and has no classes"):
        student.predict(["x"])


def test_trains_on_rows_and_classifies_by_centroids(tmp_path):
    student = make_student("retriever", CLASSES)
    rows = make_rows()
    student.train(rows, tiny_config(max_steps=2, student={"type": "retriever"}), tmp_path, quiet=True)
    P = student.predict(["great fun", "awful mess"])
    assert P.shape == (2, 2) and np.allclose(P.sum(1), 1)
    assert (tmp_path / "class_centroids.json").is_file()
    assert np.allclose(load_student(tmp_path).predict(["great fun", "awful mess"]), P, atol=1e-5)
    ns = run_snippet((tmp_path / "README.md").read_text())  # the card's plain sentence-transformers snippet
    assert np.allclose(ns["emb"], student.encode(["a query", "a document"]), atol=1e-4)


def test_cached_gist_uses_the_base_model_as_frozen_guide():
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses

    from agentlab.distill.bases import resolve_base
    from agentlab.distill.retriever import _loss

    base = resolve_base("minilm").path
    model = SentenceTransformer(str(base), device="cpu")
    loss = _loss("cached_gist", model, base, "cpu", batch=8)
    assert isinstance(loss, losses.CachedGISTEmbedLoss) and loss.guide is not model and loss.mini_batch_size == 4
    assert isinstance(_loss("mnrl", model, base, "cpu", 8), losses.MultipleNegativesRankingLoss)
