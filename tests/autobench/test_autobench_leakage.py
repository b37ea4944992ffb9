"""The leakage guard on planted duplicates: copied, lightly edited and paraphrased questions are flagged."""

from __future__ import annotations

import pytest

from agentlab.autobench.leakage import LeakageGuard, ngrams

TRAIN = [
    "Which enzyme unwinds the DNA double helix during replication in bacteria?",
    "What is the half-life of carbon-14 used in radiocarbon dating?",
    "Which organelle produces most of the ATP in eukaryotic cells?",
]


def test_ngrams_short_sequences_are_whole():
    assert ngrams(["a", "b"], 3) == {("a", "b")}
    assert ngrams(["a", "b", "c", "d"], 3) == {("a", "b", "c"), ("b", "c", "d")}
    assert ngrams([], 3) == set()


def test_ngram_overlap_flags_copies_and_edits_only():
    guard = LeakageGuard(TRAIN, ngram=4, ngram_overlap=0.5, embedding_similarity=None)
    questions = [
        "Which enzyme unwinds the DNA double helix during replication in bacteria?",        # planted copy
        "which enzyme unwinds the DNA double helix during replication in yeast cells?",     # planted light edit
        "Radiocarbon dating?",                                                              # short, inside a training text
        "What protein transports oxygen in red blood cells?",                               # new
        "What protein transports oxygen in red blood cells?",                               # repeat of the previous
    ]
    got = guard.check(questions)
    assert [g["leaked"] for g in got] == ["ngram overlap", "ngram overlap", "ngram overlap", None, "duplicate"]
    assert got[0]["ngram_overlap"] == 1.0 and got[3]["ngram_overlap"] == 0.0


def test_embedding_flags_a_paraphrase():
    guard = LeakageGuard(TRAIN, ngram=8, ngram_overlap=0.5, embedding_similarity=0.8)
    questions = ["In bacterial DNA replication, which enzyme unwinds the double helix?",   # planted paraphrase
                 "How tall is the Eiffel Tower?"]
    got = guard.check(questions)
    assert got[0]["leaked"] == "embedding near-duplicate" and got[0]["ngram_overlap"] < 0.5
    assert got[1]["leaked"] is None and got[1]["similarity"] < 0.5


def test_no_reference_data_flags_nothing_but_repeats():
    guard = LeakageGuard([], embedding_similarity=0.9)
    assert [g["leaked"] for g in guard.check(["a question?", "A question"])] == [None, "duplicate"]


@pytest.mark.parametrize("text", ["", "   ", "!!!"])
def test_empty_reference_texts_are_ignored(text):
    assert LeakageGuard([text]).texts == []
