"""Labeled queries vs the recipe's test set: the test queries never become labeled pairs."""

from __future__ import annotations

import json

import pytest

from agentlab.errors import ConfigError
from agentlab.queries.labeled import read_test, split_labeled

QUERIES = {"a": "Aspirin and the heart", "b": "coffee and the liver", "c": "sleep and memory", "d": "smoking"}
QRELS = {q: {f"doc-{q}": 1} for q in QUERIES}
CORPUS = {f"doc-{q}" for q in QUERIES}


@pytest.fixture
def test_set(tmp_path):
    """Test queries: `a` (a labeled id), `t` (a labeled query's text, another id), `x` (no corpus document)."""
    (tmp_path / "q.jsonl").write_text("".join(json.dumps({"_id": k, "text": t}) + "\n" for k, t in
                                              {"a": "aspirin and the heart", "t": "  aspirin AND the heart",
                                               "x": "unknown", "u": "coffee and THE  liver"}.items()))
    (tmp_path / "r.tsv").write_text("query-id\tcorpus-id\tscore\na\tdoc-a\t1\nt\tdoc-a\t2\nx\tnowhere\t1\nu\tdoc-b\t1\n")
    return read_test(tmp_path / "q.jsonl", tmp_path / "r.tsv", CORPUS)


def test_read_test_keeps_queries_with_a_corpus_document(test_set):
    assert test_set.eval_source == "eval.queries" and set(test_set.eval_qrels) == {"a", "t", "u"}
    assert test_set.eval_qrels["t"] == {"doc-a": 2}


def test_labeled_pool_drops_test_ids_and_texts(test_set):
    lab = split_labeled(QUERIES, QRELS, CORPUS, 2, seed=0, max_eval=None, test=test_set)
    assert lab.excluded == 2  # `a` by id (and text), `b` by text (case and spacing aside)
    assert {q for q, _ in lab.pairs} == {"sleep and memory", "smoking"}
    assert lab.eval_queries == test_set.eval_queries and lab.eval_source == "eval.queries"
    with pytest.raises(ConfigError, match="after leaving out 2 that are also test queries"):
        split_labeled(QUERIES, QRELS, CORPUS, 3, seed=0, max_eval=None, test=test_set)


def test_without_a_test_set_labeled_queries_are_held_out():
    lab = split_labeled(QUERIES, QRELS, CORPUS, 2, seed=0, max_eval=1)
    assert lab.excluded == 0 and len(lab.pairs) == 2 and len(lab.eval_queries) == 1 and lab.eval_source == "labeled"
    assert not {QUERIES[q] for q in lab.eval_queries} & {q for q, _ in lab.pairs}
