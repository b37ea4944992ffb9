"""Fixtures for the distill tests: tiny labeled rows, a finished run folder (the tiny causal LM is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.distill.distill_data import CLASSES, make_rows, tiny_config


@pytest.fixture
def rows() -> list[dict]:
    """24 sentiment rows, 2 of them unlabeled (every labeler abstained)."""
    return make_rows()


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory):
    """(student, folder): a MiniLM LoRA classifier trained for 4 steps with validation, shared by the tests."""
    from agentlab.distill.base import make_student

    out = tmp_path_factory.mktemp("classifier")
    rows = make_rows()
    student = make_student("classifier", CLASSES)
    student.train(rows[:18], tiny_config(), out, eval_data=rows[18:], quiet=True)
    return student, out
