"""Vocabulary alignment: the rule pass table-driven; the LLM pass and the per-term cache with a stub chooser."""

from __future__ import annotations

import pytest

from agentlab.errors import ConfigError
from agentlab.triplets.align import (
    Aligner,
    Alignment,
    Vocabulary,
    open_align,
    rule_align,
)

ENTITIES = Vocabulary(["man", "men", "tree", "bird", "glass", "racket", "shirt", "jean", "table", "street"], "entity")
PREDICATES = Vocabulary(["on", "in", "growing on", "sitting on", "wearing", "wears", "has", "and", "parked on"], "predicate")


@pytest.mark.parametrize("term,target,by", [
    ("man", "man", "exact"), ("Men", "men", "exact"), ("the table", "table", "exact"),
    ("trees", "tree", "lemma"), ("glasses", "glass", "lemma"), ("jeans", "jean", "lemma"),
    ("trees and bushes", "tree", "and"), ("white shirt", "shirt", "head"), ("tennis racket", "racket", "head"),
    ("old wooden tables", "table", "head"), ("42", None, "digits"), ("3 4", None, "digits"), ("", None, "empty"),
])
def test_rule_align_entities(term, target, by):
    assert rule_align(term, ENTITIES) == Alignment(target, by)


@pytest.mark.parametrize("term,target,by", [
    ("on", "on", "exact"), ("grow on", "growing on", "lemma"), ("sit on", "sitting on", "lemma"),
    ("is sitting on", "sitting on", "auxiliary"), ("are growing on", "growing on", "auxiliary"),
    ("wear", "wearing", "lemma"),  # first listed wins a shared lemma
    ("wears", "wears", "exact"), ("have", "has", "lemma"), ("and", "and", "exact"),
    ("sitting on and eating", "sitting on", "and"), ("was parked on", "parked on", "auxiliary"),
])
def test_rule_align_predicates(term, target, by):
    assert rule_align(term, PREDICATES) == Alignment(target, by)


@pytest.mark.parametrize("term,vocab", [("pigeon", ENTITIES), ("next to", PREDICATES), ("is", PREDICATES),
                                        ("standing near", PREDICATES)])
def test_rule_align_leaves_the_rest_open(term, vocab):
    assert rule_align(term, vocab) is None  # head-noun rule is for entities only: "standing near" stays open


def test_open_align_cleans_without_vocabulary():
    assert open_align("is sitting on", "predicate") == Alignment("sitting on", "open")
    assert open_align("The Dog", "entity") == Alignment("dog", "open")


def test_vocabulary_from_file(tmp_path):
    f = tmp_path / "v.txt"
    f.write_text("# classes\nMan\n\nman\ntree\n")
    assert Vocabulary.from_file(f, "entity").names == ["man", "tree"]
    with pytest.raises(ConfigError, match="entity vocabulary file .* not found"):
        Vocabulary.from_file(tmp_path / "missing.txt", "entity")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ConfigError, match="the predicate vocabulary is empty"):
        Vocabulary.from_file(tmp_path / "empty.txt", "predicate")


class StubChooser:
    """Records what reaches the LLM pass."""

    def __init__(self, answers):
        self.answers, self.seen = answers, []

    def choose(self, vocab, terms):
        self.seen.append((vocab.kind, list(terms)))
        return {t: Alignment(self.answers.get(t), "llm" if self.answers.get(t) else "llm_none") for t in terms}


def test_aligner_sends_each_open_term_once():
    chooser = StubChooser({"pigeon": "bird", "next to": None})
    al = Aligner({"entity": ENTITIES, "predicate": PREDICATES}, chooser)
    first = al.align_triplets([("pigeon", "on", "table"), ("a pigeon", "next to", "man")])
    second = al.align_triplets([("pigeon", "sitting on", "trees"), ("Pigeon", "next to", "tree")])
    assert first == [("bird", "on", "table")] and second == [("bird", "sitting on", "tree")]
    assert chooser.seen == [("predicate", ["next to"]), ("entity", ["pigeon"])]  # rules decided the rest
    stats = al.stats()
    # predicates go first: "man" and "tree" only occur with "next to" (none), so they are never aligned
    assert stats["entity"] == {"terms": 3, "aligned": 3, "exact": 1, "lemma": 1, "llm": 1}
    assert "man" not in al.table["entity"]
    assert stats["predicate"]["llm_none"] == 1
    table = al.as_json()
    assert table["entities"]["pigeon"] == {"target": "bird", "by": "llm", "score": None}


def test_aligner_without_llm_marks_unaligned():
    al = Aligner({"entity": ENTITIES})  # predicates open
    assert al.align_triplets([("pigeon", "is perched on", "table"), ("man", "is perched on", "table")]) == [
        ("man", "perched on", "table")]
    assert al.table["entity"]["pigeon"] == Alignment(None, "unaligned")
