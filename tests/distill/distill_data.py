"""Tiny labeled rows and configs for the distill tests (written for these tests, not copied from any dataset)."""

from __future__ import annotations

import json
import random
from pathlib import Path

POS = ["great movie, loved it", "wonderful acting and story", "a joy to watch", "brilliant and moving",
       "I really enjoyed this film", "fantastic, would watch again", "superb direction", "delightful and funny",
       "loved the cast", "a wonderful surprise", "great fun", "beautiful and clever"]
NEG = ["terrible movie, hated it", "boring and too long", "awful acting", "a waste of time",
       "I fell asleep, dull", "worst film this year", "poorly written mess", "painful to sit through",
       "hated the ending", "a boring mess", "awful and dull", "terrible script"]
CLASSES = ["positive", "negative"]


def make_rows(n_unlabeled: int = 2, soft: float = 0.8, seed: int = 0) -> list[dict]:
    """Label-task style rows: label, label_probs, confidence, votes of two teachers, and gold."""
    rows = []
    for text, gold in [(t, "positive") for t in POS] + [(t, "negative") for t in NEG]:
        other = "negative" if gold == "positive" else "positive"
        rows.append({"text": text, "label": gold, "label_probs": {gold: soft, other: round(1 - soft, 6)},
                     "confidence": soft, "votes": {"kw": gold, "llm@small": gold if len(text) % 3 else other},
                     "gold": gold})
    random.Random(seed).shuffle(rows)
    for r in rows[:n_unlabeled]:
        r.update(label=None, label_probs={c: 0.5 for c in CLASSES}, confidence=0.0, votes={"kw": None, "llm@small": None})
    return rows


def tiny_config(**over):
    """A DistillConfig that trains for a handful of steps on short inputs."""
    from agentlab.config.sections import DistillConfig

    data = {"max_steps": 4, "batch_size": 8, "max_length": 32, "learning_rate": 5e-3, "eval_split": 0.25,
            "early_stopping_patience": 0}
    student = over.pop("student", {})
    data.update(over)
    data["student"] = {"type": "classifier", "base": "minilm", **student}
    return DistillConfig.model_validate(data)


def write_run(path: Path, rows: list[dict], distill: dict | None = None) -> Path:
    """A finished run folder: data.jsonl + manifest.json (recipe with task.classes, usage counters)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = {"name": "t", "task": {"type": "label", "classes": CLASSES}, "models": {"small": {"backend": "embedded"}}}
    if distill is not None:
        recipe["distill"] = distill
    manifest = {"recipe": recipe, "recipe_hash": "abc123", "timings": {"task": 12.0},
                "models": {"small": {"config": {"backend": "embedded"}, "llm_calls": 40, "cache_hits": 8,
                                     "prompt_tokens": 4000, "completion_tokens": 40, "cost_usd": 0.0}}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def run_snippet(card: str) -> dict:
    """Execute a model card's python block (stdout swallowed); return its namespace."""
    import contextlib
    import io

    from agentlab.distill.card import extract_snippet

    ns: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(extract_snippet(card), "<model card>", "exec"), ns)  # noqa: S102 - our own generated code
    return ns
