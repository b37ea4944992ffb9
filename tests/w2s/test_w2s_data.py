"""Proposed answers from gold (paired and flipped), the stratified three-way split, input texts with transcripts, config checks."""

from __future__ import annotations

import pytest

from agentlab.errors import ConfigError
from agentlab.w2s.config import W2sConfig
from agentlab.w2s.data import (
    build_data,
    proposed_answers,
    split_examples,
    split_rows,
    with_transcript,
)


def cfg(**kw):
    base = {"type": "w2s", "question": "Is this review positive?", "answers_from_gold": {1: "yes", 0: "no"}}
    return W2sConfig.model_validate({**base, **kw})


def test_paired_answers_give_every_row_its_true_and_its_flipped_answer():
    gold = [1, 0, "1", 0.0, None, 7]
    source, answers, targets = proposed_answers(cfg(), [{}] * len(gold), gold)
    # rows with usable gold: (true answer, correct) then (flipped answer, incorrect); others keep one empty example
    assert source == [0, 0, 1, 1, 2, 2, 3, 3, 4, 5]
    assert answers == ["yes", "no", "no", "yes", "yes", "no", "no", "yes", None, None]
    assert targets == [0, 1, 0, 1, 0, 1, 0, 1, None, None]
    assert cfg().paired and not cfg(pair_answers=False).paired


def test_paired_split_keeps_both_examples_of_a_row_together_and_balances_classes():
    gold = [1] * 24 + [0] * 16
    c = cfg(test_fraction=0.25)
    d = build_data(c, [{"text": f"r{j}"} for j in range(len(gold))], gold)
    assert len(d.source) == 80 and sorted(i for idx in d.splits.values() for i in idx) == list(range(80))
    where = {}
    for name, idx in d.splits.items():
        assert sum(d.targets[i] == 0 for i in idx) == sum(d.targets[i] == 1 for i in idx)  # one correct + one flipped per row
        for i in idx:
            assert where.setdefault(d.source[i], name) == name       # both examples of a row: the same split
    rows_in = {name: {d.source[i] for i in idx} for name, idx in d.splits.items()}
    assert len(rows_in["test"]) == 10 and abs(len(rows_in["half1"]) - len(rows_in["half2"])) <= 1
    for name, rows in rows_in.items():  # stratified by the row's true answer (3:2 positive)
        assert sum(gold[j] for j in rows) / len(rows) == pytest.approx(0.6, abs=0.1), name
    assert split_examples(d, True, 0.25, seed=0) == d.splits and split_examples(d, True, 0.25, seed=1) != d.splits


def test_flipped_answers_are_seeded_balanced_and_targets_follow():
    gold = [1, 0, "1", 0.0, None, 7] + [1, 0] * 7
    source, answers, targets = proposed_answers(cfg(pair_answers=False), [{}] * len(gold), gold)
    assert source == list(range(len(gold)))
    assert answers[4] is None and targets[4] is None      # no gold
    assert answers[5] is None and targets[5] is None      # a gold value the mapping does not know
    usable = [i for i, t in enumerate(targets) if t is not None]
    assert len(usable) == 18 and sum(targets[i] for i in usable) == 9  # exactly half flipped
    truth = {1: "yes", 0: "no"}
    for i in usable:
        true = truth[int(float(gold[i]))]
        assert (answers[i] == true) == (targets[i] == 0)   # target 0 = the proposed answer is correct
    assert proposed_answers(cfg(pair_answers=False), [{}] * len(gold), gold)[1:] == (answers, targets)  # seeded
    assert proposed_answers(cfg(pair_answers=False, seed=1), [{}] * len(gold), gold)[1:] != (answers, targets)


def test_answer_field_mode_reads_gold_as_correctness():
    c = cfg(answers_from_gold=None, answer_field="answer", gold_map={"right": "yes", "wrong": "no"})
    rows = [{"answer": "Paris"}, {"answer": "Rome"}, {"answer": None}, {"answer": "Oslo"}]
    source, answers, targets = proposed_answers(c, rows, ["right", "wrong", "right", "unknown"])
    assert source == [0, 1, 2, 3] and not c.paired and answers == ["Paris", "Rome", None, None] and targets == [0, 1, None, None]


def test_split_is_stratified_disjoint_and_seeded():
    targets = [0] * 30 + [1] * 10 + [None] * 3
    usable = [i for i, t in enumerate(targets) if t is not None]
    s = split_rows(usable, targets, 0.25, seed=0)
    assert sorted(s["half1"] + s["half2"] + s["test"]) == usable
    assert len(s["test"]) == 10 and abs(len(s["half1"]) - len(s["half2"])) <= 1
    for part in s.values():  # each split keeps the 3:1 class ratio
        assert sum(targets[i] for i in part) / len(part) == pytest.approx(0.25, abs=0.07)
    assert split_rows(usable, targets, 0.25, seed=0) == s and split_rows(usable, targets, 0.25, seed=1) != s
    tiny = split_rows([0, 1, 2], [0, 1, 0], 0.01, seed=0)  # a tiny fraction still holds out one row
    assert all(tiny.values())
    with pytest.raises(ConfigError, match="at least one row with gold per split"):
        split_rows([0, 1], [0, 1], 0.3, seed=0)


def test_score_answers_reads_no_answer_and_knows_both_answers():
    rows = [{"text": f"review {i}", "a": "pos" if i % 2 else "neg"} for i in range(10)]
    c = cfg(score_answers=True)
    assert c.input_template == "{{ text }}\nQuestion: {{ question }}" and "{{ answer }}" in cfg().input_template
    d = build_data(c, rows, [1, 0] * 5)
    assert d.answer_classes == ["yes", "no"] and d.texts[0] == d.texts[1] == "review 0\nQuestion: Is this review positive?"
    d = build_data(cfg(answers_from_gold=None, answer_field="a", score_answers=True), rows, ["yes", "no"] * 5)
    assert d.answer_classes == ["neg", "pos"]
    with pytest.raises(ConfigError, match="exactly two distinct proposed answers"):
        build_data(cfg(answers_from_gold=None, answer_field="a", score_answers=True), [{"text": "t", "a": "pos"}] * 4, ["yes"] * 4)


def test_build_data_texts_and_errors():
    rows = [{"text": f"review {i}"} for i in range(10)]
    d = build_data(cfg(input_template="R: {{ text }} | {{ question }} | {{ answer }}"), rows, [1, 0] * 5)
    assert d.classes == ["yes", "no"] and len(d.texts) == 20
    assert d.texts[:2] == ["R: review 0 | Is this review positive? | yes", "R: review 0 | Is this review positive? | no"]
    assert d.texts[2] == "R: review 1 | Is this review positive? | no"
    d = build_data(cfg(pair_answers=False, input_template="R: {{ text }} | {{ answer }}"), rows, [1, 0] * 5)
    assert len(d.texts) == 10 and d.texts[3] == f"R: review 3 | {d.answers[3]}"
    assert d.split_of(d.splits["test"][0]) == "test"
    with pytest.raises(ConfigError, match="needs gold labels"):
        build_data(cfg(), rows, None)
    with pytest.raises(ConfigError, match="column 'body'"):
        build_data(cfg(text_field="body"), rows, [1, 0] * 5)
    with pytest.raises(ConfigError, match="answers_from_gold"):
        build_data(cfg(), rows, ["pos"] * 10)


def test_with_transcript():
    turns = [{"speaker": "affirmative", "text": "- it praises the film"}, {"speaker": "negative", "text": "- it is sarcastic"}]
    assert with_transcript("T", turns) == "T\n\nDebate:\nAffirmative: - it praises the film\nNegative: - it is sarcastic"
    assert with_transcript("T", []) == "T"


@pytest.mark.parametrize("bad, message", [
    ({"answers_from_gold": None}, "exactly one of `answer_field`"),
    ({"answer_field": "a"}, "exactly one of `answer_field`"),
    ({"answers_from_gold": {1: "yes", 0: "yes"}}, "exactly two answers"),
    ({"answers_from_gold": None, "answer_field": "a", "pair_answers": True}, "pair_answers needs `answers_from_gold`"),
    ({"flip_fraction": 0.3}, "flip_fraction applies only with `pair_answers: false`"),
    ({"debate": {"answer": {"choices": ["a", "b", "c"]}}}, "w2s is binary"),
    ({"variants": ["w2s_debate_ensemble_aux"]}, "needs `aux_loss.weight`"),
    ({"strong": {"student": {"type": "retriever"}}}, "must be `classifier` or `causal`"),
    ({"strong": {"student": {"type": "causal"}}, "aux_loss": {"weight": 0.5}}, "aux_loss needs a `classifier` strong student"),
    ({"score_answers": True, "input_template": "{{ text }} -> {{ answer|upper }}"}, "must not show the proposed answer"),
    ({"ensembel": 2}, "Extra inputs"),
])
def test_config_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        cfg(**bad)


def test_config_defaults():
    c = cfg(text_field="body", aux_loss={"weight": 0.5})
    assert c.debate.text_field == "body" and c.ensemble == 4 and c.debate.rounds == 1
    assert c.weak.student.base == "minilm" and c.strong.student.base == "smollm2"
    assert c.strong_variants() == ["w2s_weak", "w2s_ensemble", "w2s_debate_ensemble", "w2s_debate_ensemble_aux"]
    assert cfg().strong_variants() == ["w2s_weak", "w2s_ensemble", "w2s_debate_ensemble"]
    assert c.choices == ["yes", "no"]
