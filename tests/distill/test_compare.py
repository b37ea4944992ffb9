"""Choosing between students, the clean-only baseline's inputs, and the plain-words verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agentlab.distill.compare import (
    clean_examples,
    clean_rows_from_recipe,
    fallback_config,
    fallback_name,
    pick,
    val_loss,
    verdict,
)
from tests.distill.distill_data import CLASSES, tiny_config


def test_pick_keeps_the_main_student_unless_the_fallback_has_a_lower_validation_loss():
    assert pick({"classifier": 0.6, "embedding": 0.5}, "classifier")[0] == "embedding"
    name, why = pick({"classifier": 0.5, "embedding": 0.50001}, "classifier")  # a tie keeps the main one
    assert name == "classifier" and "lowest or tied" in why
    name, why = pick({"classifier": None, "embedding": None}, "classifier")
    assert name == "classifier" and "no validation rows" in why
    assert pick({"classifier": 0.7}, "classifier")[0] == "classifier"


def test_val_loss_is_the_cross_entropy_against_label_probs_over_labeled_rows():
    rows = [{"label": "positive", "label_probs": {"positive": 0.8, "negative": 0.2}},
            {"label": None, "label_probs": {"positive": 0.5, "negative": 0.5}}]
    P = np.array([[0.5, 0.5], [0.99, 0.01]])
    assert val_loss(P, rows, CLASSES) == pytest.approx(-np.log(0.5))
    sharp = val_loss(np.array([[0.8, 0.2], [0.5, 0.5]]), rows, CLASSES)
    assert sharp < val_loss(P, rows, CLASSES) and sharp < val_loss(np.array([[1.0, 0.0], [0.5, 0.5]]), rows, CLASSES)
    assert val_loss(P, [{"label": None}, {"label": None}], CLASSES) is None


def test_fallback_config_is_minilm_and_absent_when_off_or_the_same_type():
    fb = fallback_config(tiny_config(student={"type": "causal", "base": "smollm2"}))
    assert fb.student.type == "embedding" and fb.student.base == "minilm" and fb.max_length == 32
    assert fallback_config(tiny_config(fallback=None)) is None
    assert fallback_config(tiny_config(student={"type": "embedding"})) is None
    # the same type on another base is a different student: the MiniLM fallback is trained, under its own name
    main = tiny_config(student={"type": "embedding", "base": "minilm+smollm2"})
    fb = fallback_config(main)
    assert fb.student.base == "minilm" and fallback_name(fb, main) == "embedding_minilm"
    assert fallback_name(fallback_config(tiny_config(student={"type": "causal", "base": "smollm2"})),
                         tiny_config(student={"type": "causal", "base": "smollm2"})) == "embedding"


def test_an_unknown_fallback_is_a_config_error():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown fallback 'svm'; use one of: .*embedding"):
        tiny_config(fallback="svm")


def test_clean_examples_are_one_hot_and_skip_unknown_labels():
    ex = clean_examples([{"text": "a", "label": "negative"}, {"text": "b", "label": 0}, {"text": "c", "label": "meh"},
                         {"text": "", "label": "positive"}], CLASSES, "text")
    assert [(e.text, e.target) for e in ex] == [("a", [0.0, 1.0]), ("b", [1.0, 0.0])]


def test_clean_rows_come_from_task_seed_and_aggregate_dev(tmp_path):
    from agentlab.recipe import parse_recipe

    (tmp_path / "rows.jsonl").write_text(json.dumps({"text": "hello"}) + "\n")
    (tmp_path / "seed.jsonl").write_text(json.dumps({"text": "so good", "label": "positive"}) + "\n")
    (tmp_path / "dev.tsv").write_text("sentence\tgold\nso bad\t1\n")
    raw = {"name": "t", "source": {"path": str(tmp_path / "rows.jsonl")},
           "task": {"type": "label", "classes": CLASSES, "seed": {"path": str(tmp_path / "seed.jsonl")},
                    "labelers": [{"type": "keywords", "votes": {"positive": ["good"]}}]},
           "aggregate": {"dev": {"path": str(tmp_path / "dev.tsv"), "fields": {"text": "sentence"}, "gold": "gold"}}}
    rows = clean_rows_from_recipe(parse_recipe(raw, tmp_path / "r.yaml"))
    assert [(r["text"], str(r["label"])) for r in rows] == [("so bad", "1"), ("so good", "positive")]
    assert clean_rows_from_recipe(None) == []


def _m(student, lm, n=100, lm_n=None, clean=None):
    return {"student": {"accuracy": student, "accuracy_on_label_model_rows": student, "n": n},
            "label_model": {"accuracy": lm, "n_covered": lm_n or n}, "clean_only": clean or {}}


def test_verdict_says_plainly_whether_the_student_beat_its_teacher():
    assert "The student matches or beats its teacher." in verdict(_m(0.80, 0.75))
    assert "within the noise of 100 rows" in verdict(_m(0.74, 0.75))
    below = verdict(_m(0.60, 0.75))
    assert "**The student is 15.0% below its teacher.**" in below and "sees only the text" in below
    assert verdict({"student": {}, "label_model": {}}) == ""


def test_verdict_says_whether_the_weak_labels_helped():
    helped = verdict(_m(0.80, 0.75, clean={"accuracy": 0.55, "train_rows": 6}))
    assert "Trained only on the 6 gold rows you gave, the same student scores 55.0% against 80.0%: the weak labels helped" in helped
    assert "the weak labels hurt" in verdict(_m(0.60, 0.75, clean={"accuracy": 0.85, "train_rows": 200}))
    assert "No clean-only baseline: no held-out gold" in verdict(_m(0.8, 0.7, clean={"skipped": "no held-out gold"}))
