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
                                            ("beta cells", True), ("12", True), ("ab", False), ("glucose uptake", True)])
def test_well_formed(phrase, ok):
    assert well_formed(phrase) is ok


def test_distractors_have_the_answers_type_and_length():
    same = ["alpha cells", "usually", "IL-6", "40 mice", "liver tissue", "beta", "the"]
    out = distractors("beta cells", same, ["kidney cortex", "rapidly"], 3, random.Random(0))
    assert sorted(out) == ["kidney cortex", "liver tissue"]  # no shared word ("alpha cells"), no adverb, no symbol
    assert distractors("12 patients", same, [], 3, random.Random(0)) == ["40 mice"]  # only numbers for a number


def test_anchored_needs_the_answers_sentence():
    doc = "Insulin is made by beta cells of the islets. Glucagon raises blood glucose in fasting mice."
    assert anchored("Which cells of the islets make insulin?", "beta cells", doc)
    assert not anchored("What raises blood glucose during fasting?", "beta cells", doc)
