"""A small finished `label` run, made by the real pipeline (scripted LLM labeler + keyword rules), for the
dataset-card, push and review tests."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_recipe_cli

TEXTS = [("I loved this movie, wonderful", "positive"), ("Terrible acting, boring", "negative"),
         ("Great fun and a great cast", "positive"), ("Awful, a waste of time", "negative"),
         ("Delightful and clever", "positive"), ("Dull and far too long", "negative")]


def label_recipe(**source_extra) -> dict:
    """Two labelers that disagree on some rows: a scripted LLM and keywords; gold in `label`."""
    return {
        "name": "tiny_reviews",
        "description": "Six short movie reviews written for the tests.",
        "source": {"path": "data.jsonl", **source_extra},
        "models": {"m": {"backend": "fake", "rules": {"loved": "positive", "boring": "positive", "awful": "negative",
                                                       "dull": "negative"}, "default": "negative"}},
        "task": {"type": "label", "classes": {"positive": "the reviewer liked it", "negative": "the reviewer did not"},
                 "labelers": [{"type": "prompt", "model": "m", "prompt": "p.jinja"},
                              {"type": "keywords", "votes": {"positive": ["great", "loved", "delightful"],
                                                             "negative": ["terrible", "awful", "dull"]}}]},
        "aggregate": {"method": "majority"},
        "eval": {"gold": "label"},
    }


def make_label_run(workdir: Path, **source_extra) -> Path:
    """Run the tiny recipe into workdir/out and return that run directory."""
    run_recipe_cli(workdir, label_recipe(**source_extra))
    return workdir / "out"
