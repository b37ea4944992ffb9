"""Answer text: matching, F1, grounding (answer in document), answer phrases, parsing; choices."""

from __future__ import annotations

import random

import pytest

from agentlab.autobench.evaluate import match_choice
from agentlab.autobench.questions import make_choices, pick_span
from agentlab.autobench.text import (
    answer_spans,
    clean_answer,
    exact_match,
    grounded,
    grounding_overlap,
    normalize,
    parse_qa,
    token_f1,
)

DOC = "Insulin is a peptide hormone produced by beta cells of the pancreatic islets. It regulates glucose (blood sugar)."


def test_normalize_and_exact_match():
    assert normalize("The  Beta-Cells!") == "beta cells"
    assert exact_match("beta cells.", "the Beta cells") and not exact_match("", "")
    assert token_f1("beta cells of the islets", "beta cells") == pytest.approx(2 * 1 * (2 / 4) / (1 + 2 / 4))
    assert token_f1("alpha", "beta") == 0.0 and token_f1("", "beta") == 0.0


@pytest.mark.parametrize("answer, ok, overlap", [
    ("beta cells", True, 1.0),
    ("The pancreatic islets", True, 1.0),
    ("blood sugar", True, 1.0),
    ("beta islets", False, 1.0),          # every word present, but not as a phrase
    ("alpha cells", False, 0.5),
    ("cell", False, 0.0),                 # whole words only: "cell" is not "cells"
    ("", False, 0.0),
])
def test_grounding(answer, ok, overlap):
    assert grounded(answer, DOC) is ok
    assert grounding_overlap(answer, DOC) == pytest.approx(overlap)


def test_answer_spans_are_document_phrases_not_in_the_question():
    spans = answer_spans(DOC, exclude="What hormone is produced by beta cells?")
    assert "Insulin" in spans and "pancreatic islets" in spans and "blood sugar" in spans
    assert "beta cells" not in spans                        # its words are all in the question
    assert all(grounded(s, DOC) for s in spans)
    assert all(len(s.split()) <= 4 for s in spans)


@pytest.mark.parametrize("raw, question, answer", [
    ("Question: Which cells make insulin?\nAnswer: beta cells", "Which cells make insulin?", "beta cells"),
    ("question:  Which cells?  \n\nanswer: \"beta cells\"\nmore text", "Which cells?", "beta cells"),
    ("Question: Which cells make insulin?", "Which cells make insulin?", ""),
    ("Which cells make insulin?", "Which cells make insulin?", ""),
    ("I cannot help with that.", "", ""),
    (None, "", ""),
])
def test_parse_qa(raw, question, answer):
    assert parse_qa(raw) == (question, answer)


def test_clean_answer():
    assert clean_answer("Answer: beta cells\nBecause ...") == "beta cells"
    assert clean_answer("  \n Final answer - 42 ") == "42"
    assert clean_answer(None) == ""


def test_pick_span_normalises_length():
    assert pick_span({"a": -3.0, "beta cells of islets": -4.0}) == "beta cells of islets"   # -2.0 per sqrt(word)
    assert pick_span({"a": -1.0, "beta cells": -4.0}) == "a"


def test_choices_hold_the_answer_and_unrelated_distractors():
    choices = make_choices("beta cells", ["beta cells", "Insulin", "pancreatic islets", "beta", "glucose", "Insulin"], 4, random.Random(0))
    assert len(choices) == 4 and "beta cells" in choices and "beta" not in choices and len(set(choices)) == 4
    assert match_choice("it is insulin", choices) == "Insulin"
    assert match_choice("zebra", choices) is None
