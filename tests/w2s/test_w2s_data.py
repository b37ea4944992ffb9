"""Proposed answers from gold, the stratified three-way split, input texts with transcripts, config checks."""

from __future__ import annotations

import pytest

from agentlab.errors import ConfigError
from agentlab.w2s.config import W2sConfig
from agentlab.w2s.data import build_data, proposed_answers, split_rows, with_transcript


def cfg(**kw):
    base = {"type": "w2s", "question": "Is this review positive?", "answers_from_gold": {1: "yes", 0: "no"}}
    return W2sConfig.model_validate({**base, **kw})


def test_flipped_answers_are_seeded_balanced_and_targets_follow():
    gold = [1, 0, "1", 0.0, None, 7] + [1, 0] * 7
    answers, targets = proposed_answers(cfg(), [{}] * len(gold), gold)
    assert answers[4] is None and targets[4] is None      # no gold
    assert answers[5] is None and targets[5] is None      # a gold value the mapping does not know
    usable = [i for i, t in enumerate(targets) if t is not None]
    assert len(usable) == 18 and sum(targets[i] for i in usable) == 9  # exactly half flipped
    truth = {1: "yes", 0: "no"}
    for i in usable:
        true = truth[int(float(gold[i]))]
        assert (answers[i] == true) == (targets[i] == 0)   # target 0 = the proposed answer is correct
    assert proposed_answers(cfg(), [{}] * len(gold), gold) == (answers, targets)  # seeded
    assert proposed_answers(cfg(seed=1), [{}] * len(gold), gold) != (answers, targets)


def test_answer_field_mode_reads_gold_as_correctness():
    c = cfg(answers_from_gold=None, answer_field="answer", gold_map={"right": "yes", "wrong": "no"})
    rows = [{"answer": "Paris"}, {"answer": "Rome"}, {"answer": None}, {"answer": "Oslo"}]
    answers, targets = proposed_answers(c, rows, ["right", "wrong", "right", "unknown"])
    assert answers == ["Paris", "Rome", None, None] and targets == [0, 1, None, None]


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


def test_build_data_texts_and_errors():
    rows = [{"text": f"review {i}"} for i in range(10)]
    d = build_data(cfg(input_template="R: {{ text }} | {{ question }} | {{ answer }}"), rows, [1, 0] * 5)
    assert d.classes == ["yes", "no"] and len(d.texts) == 10
    assert d.texts[0] == f"R: review 0 | Is this review positive? | {d.answers[0]}"
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
    ({"debate": {"answer": {"choices": ["a", "b", "c"]}}}, "w2s is binary"),
    ({"variants": ["w2s_debate_ensemble_aux"]}, "needs `aux_loss.weight`"),
    ({"strong": {"student": {"type": "causal"}}}, "must be `classifier`"),
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
