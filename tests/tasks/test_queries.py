"""The queries task: fake-backend orchestration, the BM25 consistency filter, IR metrics (pytrec_eval), query cleaning,
recipe contracts (`distill:` retriever student, `eval: {queries, qrels}`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import agentlab.tasks.queries  # noqa: F401  (registers the task even before it is a built-in)
from agentlab.cli import main
from agentlab.queries.bm25 import BM25Index
from agentlab.queries.ireval import dense_search, evaluate_run
from agentlab.queries.text import clean_query
from tests.conftest import REPO
from tests.queries.conftest import DOCS  # the same six hand-written abstracts

# labeled documents never carry a fake-backend rule: every prompt shows some of them as examples
LABELED = {"q2": ("vitamin d and bone fractures", "d2"), "q5": ("coffee and the liver", "d5"),
           "q6": ("does sleep loss hurt memory", "d6")}


def test_bm25_filter_keeps_and_drops():
    index = BM25Index(list(DOCS), list(DOCS.values()))
    queries = ["aspirin heart attack", "aspirin heart attack", "memory and sleep", "quantum chromodynamics"]
    assert index.consistent(queries, ["d1", "d5", "d6", "d6"], k=1) == [True, False, True, False]
    assert index.search(["coffee liver"], k=3)[0][0] == "d5"


TEN = [f"x{i}" for i in range(10)]


@pytest.mark.parametrize("ranked, rels, ndcg, mrr, rec", [
    (["a", "b", "c"], {"a": 1}, 1.0, 1.0, 1.0),
    (["x", "a"], {"a": 1}, 1 / np.log2(3), 0.5, 1.0),
    (["x", "a", "y", "b"], {"a": 1, "b": 1}, (1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3)), 0.5, 1.0),
    (["x", "a", "y", "b"], {"a": 2, "b": 1, "z": 0}, (2 / np.log2(3) + 1 / np.log2(5)) / (2 + 1 / np.log2(3)), 0.5, 1.0),
    (["x", "y"], {"a": 1, "b": 1}, 0.0, 0.0, 0.0),
    (TEN + ["a"], {"a": 1, "b": 1}, 0.0, 0.0, 0.5),  # rank 11: outside @10, inside @100
    (TEN * 10 + ["b"], {"b": 1}, 0.0, 0.0, 1.0),  # a repeated id counts once: b is at rank 11
])
def test_ir_metrics_hand_computed(ranked, rels, ndcg, mrr, rec):
    m = evaluate_run({"q": ranked}, {"q": rels})
    assert (m["ndcg@10"], m["mrr@10"], m["recall@100"], m["queries"]) == (
        pytest.approx(ndcg, abs=1e-4), pytest.approx(mrr, abs=1e-4), pytest.approx(rec, abs=1e-4), 1)


def _ref(ranked, rels):
    """An independent plain-Python nDCG@10 / MRR@10 / Recall@100 (linear gains, log2 discount) to cross-check."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:10]
    mrr = next((1 / (i + 1) for i, d in enumerate(ranked[:10]) if rels.get(d, 0) > 0), 0.0)
    relevant = {d for d, r in rels.items() if r > 0}
    return dcg / sum(r / math.log2(i + 2) for i, r in enumerate(ideal)), mrr, len(relevant & set(ranked[:100])) / len(relevant)


def test_pytrec_eval_agrees_with_a_reference_on_a_hand_made_collection():
    rng = np.random.default_rng(0)
    docs = [f"d{i}" for i in range(150)]
    qrels = {f"q{j}": {d: int(rng.integers(1, 3)) for d in rng.choice(docs, 3, replace=False)} for j in range(20)}
    qrels["q0"]["d149"] = 0  # a judged non-relevant document
    run = {q: list(rng.permutation(docs)[:120]) for q in qrels}
    run["q1"] = list(qrels["q1"]) + run["q1"]  # a perfect start
    run["q1"] = list(dict.fromkeys(run["q1"]))
    ref = np.mean([_ref(run[q], qrels[q]) for q in qrels], axis=0)
    m = evaluate_run(run, qrels)
    assert [m["ndcg@10"], m["mrr@10"], m["recall@100"]] == pytest.approx(list(ref), abs=1e-4)
    assert m["queries"] == 20 and 0 < m["ndcg@10"] < 1

def test_evaluate_run_means_and_missing_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}  # q3 has no relevant document: not counted
    assert evaluate_run({"q1": ["a"], "q2": ["x", "b"]}, qrels) == {
        "ndcg@10": round((1 + 1 / np.log2(3)) / 2, 4), "mrr@10": 0.75, "recall@100": 1.0, "queries": 2}
    assert evaluate_run({"q1": ["a"]}, qrels)["mrr@10"] == 0.5  # a query missing from the run scores 0
    assert evaluate_run({"q1": ["a"], "q2": []}, qrels)["recall@100"] == 0.5


def test_dense_search_orders_by_similarity():
    docs = np.array([[1, 0], [0, 1], [0.7, 0.7]], dtype=np.float32)
    assert dense_search(np.array([[1, 0.1]]), docs, ["a", "b", "c"], k=2) == [["a", "c"]]


@pytest.mark.parametrize("raw, query", [
    ("Relevant Query: what is aspirin?\nDocument: more", "what is aspirin?"),
    ('\n  "does coffee help the liver"  ', "does coffee help the liver"),
    ("sleep and memory sleep and memory sleep and memory", "sleep and memory"),
    ("Document: Aspirin reduces", ""),
    ("   \n  ", ""),
    (None, ""),
])
def test_clean_query(raw, query):
    assert clean_query(raw) == query


@pytest.fixture
def qdir(workdir, monkeypatch):
    monkeypatch.setattr("agentlab.store.user_cache_dir", lambda: workdir / "user_cache")  # corpus embeddings
    (workdir / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in DOCS.items()))
    (workdir / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": q}) + "\n" for k, (q, _) in LABELED.items()))
    (workdir / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{k}\t{d}\t1\n" for k, (_, d) in LABELED.items()))
    return workdir


def _recipe(task=None, rules=None, **sections):
    return {**sections,
        "name": "q",
        "source": {"path": "corpus.jsonl", "id_field": "_id", "text_fields": ["title", "text"], "limit": 4},
        "models": {"small": {"backend": "fake", "default": "", "rules": rules or {
            # rules match the last user message; keys are unique to the document being asked about
            "Document: Smoking": "smoking and lung cancer\nmore text",
            "Document: Regular exercise": "exercise blood pressure exercise blood pressure exercise blood pressure",
        }}},
        "task": {"type": "queries", "model": "small", "labeled": {"queries": "queries.jsonl", "qrels": "qrels.tsv", "n": 2,
                 "eval_queries": 0}, "examples": 1, "filter": {"bm25_top_k": 1}, **(task or {})},
    }


def _run(workdir, recipe):
    from tests.conftest import run_recipe_cli

    return run_recipe_cli(workdir, recipe)


def test_queries_end_to_end_fake(qdir):
    rows, man = _run(qdir, _recipe())
    by_id = {r["id"]: r for r in rows}
    assert list(by_id) == ["d1", "d2", "d3", "d4"]  # source.limit: 4 of 6 documents
    assert by_id["d4"]["queries"] == ["smoking and lung cancer"] and by_id["d4"]["kept"] == [True]
    assert by_id["d3"]["queries"] == ["exercise blood pressure"] and by_id["d3"]["kept"] == [True]
    assert by_id["d1"]["queries"] == [] and by_id["d1"]["kept"] == []  # empty twice (answer + retry)
    m = man["metrics"]["queries"]["hard"]
    assert (m["documents"], m["generated"], m["kept"], m["empty"], m["retried"]) == (4, 2, 2, 2, 2)
    pairs = [json.loads(l) for l in (qdir / "out" / "pairs.jsonl").read_text().splitlines()]
    assert sum(p["source"] == "labeled" for p in pairs) == 2 and sum(p["source"] == "hard" for p in pairs) == 2


def test_filter_uses_whole_corpus_and_drops(qdir):
    # d5 is outside source.limit but in the corpus: a query about d5 written for d1 ranks d5 first -> dropped
    rows, man = _run(qdir, _recipe(rules={"Document: Aspirin": "coffee and liver disease"}))
    assert rows[0]["queries"] == ["coffee and liver disease"] and rows[0]["kept"] == [False]
    assert man["metrics"]["queries"]["hard"]["kept"] == 0


def test_prompt_shows_examples_as_turns(qdir):
    log = qdir / "calls.log"
    recipe = _recipe()
    recipe["models"]["small"]["call_log"] = str(log)
    _run(qdir, recipe)
    last = [json.loads(l) for l in log.read_text().splitlines()]
    assert last[0] == "Document: " + DOCS["d1"]  # the last user turn is the document alone
    from agentlab.prompts import load_prompt

    msgs = load_prompt(str(REPO / "prompts/queries/hard.jinja")).messages(
        examples=[{"document": "D1", "query": "Q1"}, {"document": "D2", "query": "Q2"}], document="D3")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in msgs[1:]] == ["Document: D1", "Q1", "Document: D2", "Q2", "Document: D3"]


def test_retrieval_eval_bm25_and_base(qdir):
    recipe = _recipe({"labeled": {"queries": "queries.jsonl", "qrels": "qrels.tsv", "n": 1, "eval_queries": None}})
    _, man = _run(qdir, recipe)
    ret = man["metrics"]["retrieval"]
    assert set(ret) == {"bm25", "base"}
    for name in ("bm25", "base"):
        assert ret[name]["queries"] == 2 and set(ret[name]) == {"ndcg@10", "mrr@10", "recall@100", "queries"}
        assert ret[name]["recall@100"] == 1.0
    assert ret["bm25"]["mrr@10"] == 1.0


RETRIEVER = {"student": {"type": "retriever", "base": "minilm", "peft": {"method": "none"}}, "max_steps": 1, "batch_size": 4}
TEST = {"queries": "queries.jsonl", "qrels": "qrels.tsv"}


@pytest.mark.parametrize("change, sections, message", [
    ({"prompt": "soft", "examples": 1}, {}, "prompt 'soft' tunes a soft prompt on labeled.n - examples pairs"),
    ({"soft": {"num_virtual_tokens": 0}}, {}, "task.soft.num_virtual_tokens"),
    ({"soft": {"bogus": 1}}, {}, "bogus"),
    ({"per_doc": 3}, {}, "per_doc is 3 but temperature is 0"),
    ({"bogus": 1}, {}, "bogus"),
    ({"retriever": {"loss": "gist"}}, {}, "task: `task.retriever` moved to the recipe's top-level `distill:` section"),
    ({}, {"distill": {"student": {"type": "classifier"}}},
     ("distill.student.type: the queries task trains a dense retriever (got 'classifier'). Fix: use `distill: "
      "{student: {type: retriever, base: minilm}}` (or remove `distill:`)")),
    ({}, {"distill": {"student": {"type": "retriever", "loss": "triplet"}}}, "distill.student.loss"),
    ({}, {"distill": {"student": {"type": "retriever"}, "eval_split": 0.1}},
     ("distill.eval_split: is a label-distillation field; the queries task trains retrievers on query-document pairs "
      "and evaluates them on the evaluation queries (got 0.1). Fix: remove it")),
    ({}, {"distill": {"student": {"type": "retriever", "prompt": "x {text}"}}}, "distill.student.prompt: is a label-distillation field"),
    ({}, {"distill": RETRIEVER}, ("distill: the retrievers are evaluated on held-out labeled queries, but "
     "task.labeled.eval_queries is 0. Fix: set task.labeled.eval_queries (e.g. 200), give `eval: {queries: ..., "
     "qrels: ...}`, or remove `distill:`")),
    ({}, {"eval": {"queries": "queries.jsonl"}}, "eval: `queries` is set but `qrels` is not; give both test files"),
    ({}, {"eval": {"queries": "queries.jsonl", "qrels": "nope.tsv"}}, "eval.qrels: file not found (got 'nope.tsv')"),
    ({}, {"eval": TEST}, ("task.labeled.eval_queries: holds out labeled queries for evaluation, but `eval.queries` "
     "already gives the test queries (got 0). Fix: remove task.labeled.eval_queries (or eval.queries / eval.qrels)")),
])
def test_config_errors(qdir, change, sections, message):
    from tests.conftest import write_recipe

    path = write_recipe(qdir / "r.yaml", _recipe(change, **sections))
    res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out"])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (qdir / "out").exists()


@pytest.fixture
def sdir(qdir):
    """qdir with six labeled queries (four for pairs, two held out)."""
    more = {"q1": ("aspirin and heart attacks", "d1"), "q3": ("does exercise lower blood pressure", "d3"),
            "q4": ("smoking and lung cancer", "d4")}
    with (qdir / "queries.jsonl").open("a") as f:
        f.write("".join(json.dumps({"_id": k, "text": q}) + "\n" for k, (q, _) in more.items()))
    with (qdir / "qrels.tsv").open("a") as f:
        f.write("".join(f"{k}\t{d}\t1\n" for k, (_, d) in more.items()))
    return qdir


def _sptar_recipe(tiny):
    return _recipe({"prompt": "both", "labeled": {"queries": "queries.jsonl", "qrels": "qrels.tsv", "n": 4, "eval_queries": 2},
                    "soft": {"base": str(tiny), "num_virtual_tokens": 4, "max_steps": 2, "batch_size": 2, "max_length": 96,
                             "candidates": 2, "val_fraction": 0.25, "generate_batch": 2},
                    "max_tokens": 8, "threads": 1}, distill=RETRIEVER)


def test_soft_prompt_and_retrievers_end_to_end_and_resume(sdir, tiny_llama):
    rows, man = _run(sdir, _sptar_recipe(tiny_llama))
    assert all({"queries", "kept", "soft_queries", "soft_kept", "_soft_raw"} <= set(r) for r in rows)
    assert all(len(r["soft_kept"]) == len(r["soft_queries"]) for r in rows)
    m = man["metrics"]
    assert set(m["queries"]) == {"hard", "soft"} and m["queries"]["soft"]["documents"] == 4
    sp = m["sptar"]
    assert not sp["soft_prompt"]["reused"] and sp["soft_prompt"]["steps"] == 2 and sp["soft_prompt"]["val_pairs"] == 1
    assert sp["soft_prompt"]["init_val_loss"] != sp["soft_prompt"]["val_loss"]
    filt = sp["example_filter"]
    losses = [c["mean_loss"] for c in filt["candidates"]]
    assert len(losses) == 2 and filt["chosen"] == losses.index(min(losses))
    assert sp["generation"]["generated"] >= 4 and sp["generation"]["resumed"] == 0
    ret = m["retrieval"]
    assert set(ret) == {"bm25", "base", "labeled_only", "weak_hard", "weak_soft"}
    assert all(set(v) == {"ndcg@10", "mrr@10", "recall@100", "queries"} and v["queries"] == 2 for v in ret.values())
    assert m["retriever"]["labeled_only"]["pairs"] == 4 and not m["retriever"]["labeled_only"]["reused"]
    assert m["retriever"]["weak_hard"]["pairs"] == 4 + m["queries"]["hard"]["kept"]
    report = (sdir / "out" / "report.md").read_text()
    assert "## Retrieval" in report and "| `weak_soft`: trained on labeled + soft-prompt queries |" in report
    assert "example filter: 2 candidate sets" in report
    sources = {json.loads(l)["source"] for l in (sdir / "out" / "pairs.jsonl").read_text().splitlines()}
    assert "labeled" in sources

    rows2, man2 = _run(sdir, _sptar_recipe(tiny_llama))  # resume: nothing is tuned, generated or trained again
    sp2 = man2["metrics"]["sptar"]
    assert sp2["soft_prompt"]["reused"] and sp2["generation"]["generated"] == 0 and sp2["generation"]["resumed"] >= 4
    assert all(v["reused"] or "same_as" in v for v in man2["metrics"]["retriever"].values())
    assert [r["soft_queries"] for r in rows2] == [r["soft_queries"] for r in rows]
    assert man2["metrics"]["retrieval"] == ret and man2["metrics"]["retrieval_eval"]["embedding_cache"]["misses"] == 0
    assert "distill" not in m and "student" not in man.get("artifacts", {})  # the label distill stage never ran


def _labeled_file(qdir, name, items):
    with (qdir / f"{name}.jsonl").open("w") as f:
        f.write("".join(json.dumps({"_id": k, "text": q}) + "\n" for k, (q, _) in items.items()))
    (qdir / f"{name}.tsv").write_text("".join(f"{k}\t{d}\t1\n" for k, (_, d) in items.items()))


def test_eval_queries_test_set_never_leaks_into_labeled_pairs(sdir):
    # the test set shares q2 (same id) and q5's text (another id) with the labeled queries
    test = {"q2": LABELED["q2"], "t5": LABELED["q5"], "t1": ("aspirin heart attack risk", "d1")}
    _labeled_file(sdir, "test", test)
    lab = {"queries": "queries.jsonl", "qrels": "qrels.tsv", "n": 4}
    recipe = _recipe({"labeled": lab, "labeled_only": False}, distill=RETRIEVER,
                     eval={"queries": "test.jsonl", "qrels": "test.tsv"})
    _, man = _run(sdir, recipe)
    m = man["metrics"]
    assert set(m["retrieval"]) == {"bm25", "base", "weak_hard"} and set(m["retriever"]) == {"weak_hard"}
    assert all(v["queries"] == 3 for v in m["retrieval"].values())
    assert m["retrieval_eval"]["source"] == "eval.queries" and m["retrieval_eval"]["labeled_excluded"] == 2
    pairs = [json.loads(l) for l in (sdir / "out" / "pairs.jsonl").read_text().splitlines()]
    labeled = {p["query"] for p in pairs if p["source"] == "labeled"}
    assert len(labeled) == 4 and not labeled & {q for q, _ in test.values()}
    assert m["retriever"]["weak_hard"]["pairs"] == 4 + m["queries"]["hard"]["kept"]
    assert "distill" not in m  # the queries task trained its retriever; the label distill stage never ran
    report = (sdir / "out" / "report.md").read_text()
    assert "3 test queries (`eval.queries`)" in report and "2 labeled queries that are also test queries" in report


def test_embedded_model_gets_a_caveat():
    from agentlab.backends.embedded import EmbeddedConfig
    from agentlab.engine import RunContext
    from agentlab.store import CallCache
    from agentlab.tasks.queries import EMBEDDED_CAVEAT, QueriesConfig, QueriesTask

    cfg = QueriesConfig(type="queries", model="small", labeled={"queries": "q.jsonl", "qrels": "r.tsv"})
    ctx = RunContext(model_configs={"small": EmbeddedConfig(backend="embedded")}, cache=CallCache(None))
    QueriesTask(cfg)._caveats(ctx)
    QueriesTask(cfg)._caveats(ctx)
    assert ctx.caveats == [EMBEDDED_CAVEAT]
