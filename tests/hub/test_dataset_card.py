"""dataset/README.md: Hugging Face metadata that parses and validates, how the data was made, a snippet that runs."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import DatasetCard

from agentlab.hub.card import StudentLink, code_blocks, render_dataset_card
from agentlab.hub.metadata import metadata_problems
from tests.conftest import run_recipe_cli
from tests.helpers.label_run import label_recipe, make_label_run


def _card(run):
    return (run / "dataset" / "README.md").read_text(encoding="utf-8")


def test_every_label_run_gets_a_card_that_parses_validates_and_loads(workdir):
    run = make_label_run(workdir, license="cc-by-4.0", language="en")
    text = _card(run)
    card = DatasetCard(text)  # raises on malformed front matter
    data = card.data.to_dict()
    assert metadata_problems(data) == []
    assert data["task_categories"] == ["text-classification"] and data["size_categories"] == ["n<1K"]
    assert data["license"] == "cc-by-4.0" and data["language"] == ["en"]
    assert data["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    from datasets.utils.metadata import MetadataConfigs

    assert "default" in MetadataConfigs.from_dataset_card_data(card.data)
    manifest = json.loads((run / "manifest.json").read_text())
    for needle in ("## How the data was made", "`p.jinja`", manifest["prompts"]["p.jinja"], "Labeler 1: `keywords`",
                   "Label model: `majority`", "| majority (written) |", "## Caveats", "| `votes` |", "tiny_reviews"):
        assert needle in text, needle
    ns: dict = {}
    exec(code_blocks(text)[-1], ns)  # noqa: S102 - the load_from_disk snippet, as written in the card
    assert len(ns["ds"]) == 6 and "label_probs" in ns["ds"].column_names


def test_card_without_gold_license_or_language_says_so(workdir):
    recipe = label_recipe()
    recipe.pop("eval")
    run_recipe_cli(workdir, recipe)
    text = _card(workdir / "out")
    data = DatasetCard(text).data.to_dict()
    assert "license" not in data and "language" not in data
    assert "the labels' accuracy was not measured" in text


@pytest.mark.parametrize(("field", "value", "message"), [
    ("license", "cc-by-4", "did you mean"), ("language", ["en", "English"], "ISO 639")])
def test_bad_license_or_language_is_a_recipe_error(workdir, field, value, message):
    recipe = label_recipe(**{field: value})
    out = run_recipe_cli(workdir, recipe, code=2)
    assert f"source.{field}" in out and message in out
    assert not (workdir / "out").exists()


def test_card_links_student_locally_and_on_the_hub():
    manifest = {"task": "label", "recipe": {"name": "r", "task": {"type": "label"}}, "recipe_hash": "ab" * 32}
    local = render_dataset_card(manifest, {"text": "string"}, 3, student=StudentLink(local="student", summary="Acc 0.9."))
    assert "[its model card](../student/README.md)" in local and "Acc 0.9." in local
    hub = render_dataset_card(manifest, {"text": "string"}, 3, repo_id="me/r", student=StudentLink(repo_id="me/r-student"))
    assert "https://huggingface.co/me/r-student" in hub and "load_dataset('me/r', split='train')" in hub
    assert metadata_problems(DatasetCard(hub).data.to_dict()) == []
