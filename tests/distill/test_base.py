"""The student registry, saved-student metadata and shared helpers."""

from __future__ import annotations

import pytest

from agentlab.config import validate_model
from agentlab.config.sections import DistillConfig
from agentlab.distill.base import (
    STUDENTS,
    load_student,
    make_student,
    peak_memory_mb,
    read_meta,
    training_args,
    write_meta,
)
from agentlab.errors import RecipeErrors, TrainingError


def test_builtins_register_like_plugins():
    assert STUDENTS.names() == ["causal", "classifier", "embedding", "retriever"]
    for name in STUDENTS.names():
        assert STUDENTS.get(name).name == name


def test_unknown_student_suggests_a_name():
    with pytest.raises(TrainingError, match="unknown student 'clasifier'; did you mean 'classifier'"):
        make_student("clasifier")


def test_a_folder_that_is_not_a_student(tmp_path):
    with pytest.raises(TrainingError, match="is not a saved student .no agentlab_student.json."):
        load_student(tmp_path)


def test_meta_round_trip(tmp_path):
    write_meta(tmp_path, {"type": "classifier", "classes": ["a", "b"]})
    assert read_meta(tmp_path) == {"type": "classifier", "classes": ["a", "b"]}


def test_config_defaults_keep_the_recipe_shape():
    cfg = DistillConfig()
    assert (cfg.student.type, cfg.student.base, cfg.student.peft.method, cfg.student.peft.r, cfg.student.peft.alpha) == (
        "classifier", "minilm", "lora", 8, 16)
    assert cfg.soft_labels and cfg.eval_split == 0.2 and cfg.epochs == 3


@pytest.mark.parametrize("data, message", [
    ({"student": {"type": "teacher"}}, "unknown student 'teacher'"),
    ({"student": {"peft": {"method": "prompt_tuning"}}}, "prompt_tuning needs student.type causal"),
    ({"student": {"peft": {"method": "qlora"}}}, "distill.student.peft.method"),
    ({"epochs": 3, "lerning_rate": 1}, "did you mean 'learning_rate'"),
])
def test_config_errors_point_at_the_recipe_path(data, message):
    with pytest.raises(RecipeErrors, match=message):
        validate_model(DistillConfig, data, "distill")


def test_training_args_evaluate_each_epoch_and_keep_the_best(tmp_path):
    cfg = DistillConfig(batch_size=4, early_stopping_metric="accuracy", device="cpu")
    kw = training_args(cfg, tmp_path, n_train=10, has_eval=True)
    assert kw["eval_steps"] == kw["save_steps"] == 3  # ceil(10 / 4) steps per epoch
    assert kw["load_best_model_at_end"] and kw["metric_for_best_model"] == "eval_accuracy" and kw["greater_is_better"]
    assert kw["learning_rate"] == 1e-3 and kw["use_cpu"]
    none = training_args(DistillConfig(max_steps=6, student={"peft": {"method": "none"}}), tmp_path, 10, has_eval=False)
    assert none["eval_strategy"] == "no" and not none["load_best_model_at_end"] and none["learning_rate"] == 5e-5
    assert none["max_steps"] == 6


def test_peak_memory_is_measured():
    assert peak_memory_mb() > 10


def test_best_in_memory_stops_and_restores_the_best_weights():
    import torch
    from transformers import TrainerControl

    from agentlab.distill.base import best_in_memory

    model = torch.nn.Linear(2, 1)
    cb = best_in_memory(model, patience=2)
    control = TrainerControl()
    for loss, w in [(1.0, 1.0), (0.5, 2.0), (0.7, 3.0), (0.6, 4.0)]:
        model.weight.data.fill_(w)
        cb.on_evaluate(None, None, control, metrics={"eval_loss": loss})
    assert control.should_training_stop
    cb.on_train_end(None, None, control)
    assert torch.all(model.weight == 2.0)
