"""The Hub's metadata rules, checked offline."""

from __future__ import annotations

import pytest

from agentlab.hub.metadata import (
    language_problem,
    license_problem,
    metadata_problems,
    size_category,
)


@pytest.mark.parametrize(("n", "bucket"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (54_321, "10K<n<100K"),
                                           (2_000_000, "1M<n<10M"), (10**13, "n>1T")])
def test_size_category(n, bucket):
    assert size_category(n) == bucket


def test_license_and_language_checks_name_the_fix():
    assert license_problem("cc-by-4.0") is None
    assert "did you mean" in license_problem("cc-by-4")
    assert "cc-by-4.0" in license_problem("cc-by-4")
    assert "not a Hugging Face license identifier" in license_problem("GPL v3")
    assert language_problem("en") is None and language_problem("pt-BR") is None
    assert "ISO 639" in language_problem("English")


def test_metadata_problems_lists_every_bad_field():
    good = {"task_categories": ["text-classification"], "size_categories": ["n<1K"], "license": "mit", "language": ["en"],
            "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]}
    assert metadata_problems(good) == []
    bad = {"task_categories": ["labeling"], "size_categories": "n<1K", "license": "my-license", "language": "english",
           "configs": [{"data_files": [{"split": "train"}]}]}
    problems = metadata_problems(bad)
    assert len(problems) == 6, problems
    assert any("'labeling' is not one of the Hub's values" in p for p in problems)
