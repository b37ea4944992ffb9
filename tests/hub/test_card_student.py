"""A run with `distill:`: the dataset card links the student, the student's card links back, and push takes both."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import DatasetCard

from agentlab.hub.metadata import metadata_problems
from agentlab.hub.push import plan_push
from tests.conftest import run_recipe_cli
from tests.distill.distill_data import CLASSES, make_rows


@pytest.mark.slow  # trains a MiniLM student (~20 s CPU); the links are unit-tested in test_dataset_card.py / test_push.py
def test_distilled_run_links_dataset_and_student_both_ways(workdir, tmp_path):
    rows = make_rows(n_unlabeled=0)
    (workdir / "rows.jsonl").write_text("".join(json.dumps({"text": r["text"], "gold": r["gold"]}) + "\n" for r in rows))
    recipe = {
        "name": "distilled", "source": {"path": "rows.jsonl", "license": "other", "language": "en"},
        "task": {"type": "label", "classes": CLASSES, "labelers": [
            {"type": "keywords", "votes": {"positive": ["loved", "great", "wonderful", "joy", "fun"],
                                           "negative": ["awful", "boring", "terrible", "hated", "dull"]}}]},
        "aggregate": {"method": "majority"}, "eval": {"gold": "gold"},
        "distill": {"max_steps": 1, "batch_size": 8, "max_length": 32, "eval_split": 0.25, "fallback": None},
    }
    run_recipe_cli(workdir, recipe)
    run = workdir / "out"
    card = (run / "dataset" / "README.md").read_text()
    assert metadata_problems(DatasetCard(card).data.to_dict()) == []
    assert "## Student model" in card and "[its model card](../student/README.md)" in card
    student_card = (run / "student" / "README.md").read_text()
    assert f"`{run.resolve() / 'dataset' / 'README.md'}`" in student_card
    _, model = plan_push(run, "me/distilled", tmp_path / "stage", student=True)
    assert model.repo_id == "me/distilled-student" and "README.md" in model.files
    assert "datasets: [me/distilled]" in (tmp_path / "stage" / "student" / "README.md").read_text()
    assert "https://huggingface.co/me/distilled-student" in (tmp_path / "stage" / "dataset" / "README.md").read_text()
