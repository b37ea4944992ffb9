"""`agentlab train` and `agentlab predict` (distill students)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from agentlab.cli import handle_errors, main
from agentlab.errors import ConfigError
from agentlab.sources import read_jsonl


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--student", "student_type", help="Student type: classifier, causal, retriever (default: the recipe's, else classifier).")
@click.option("--base", help="Base model: minilm, smollm2 or a local HF model directory.")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), help="Training epochs.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimiser steps.")
@click.option("--peft", type=click.Choice(["lora", "prompt_tuning", "none"]), help="PEFT method.")
@click.option("--hard-labels", is_flag=True, help="Train on the argmax label instead of label_probs.")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False), help="Student folder (default: RUN_DIR/students/<type>-<base>).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def train(run_dir, student_type, base, epochs, max_steps, peft, hard_labels, out, quiet):
    """Re-distill the finished run RUN_DIR (its data.jsonl + manifest.json) into a student."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agentlab.distill.stage import (
        check_labeled,
        distill,
        gold_from_rows,
        label_source,
        recipe_classes,
    )

    rows, manifest = read_run(Path(run_dir))
    check_labeled(rows, where=f"run {run_dir}")
    raw = manifest.get("recipe") or {}
    config = distill_config(raw.get("distill"), student_type, base, epochs, max_steps, peft, hard_labels)
    out_dir = Path(out) if out else Path(run_dir) / "students" / f"{config.student.type}-{Path(config.student.base).name}"
    usage = {n: m for n, m in (manifest.get("models") or {}).items() if isinstance(m, dict)}
    provenance = {"recipe_hash": manifest.get("recipe_hash"), "run_dir": str(Path(run_dir).resolve()),
                  "label_source": label_source(raw, rows)}
    metrics = distill(rows, config, out_dir, recipe_classes(raw), gold=gold_from_rows(rows), provenance=provenance,
                      usage=usage, task_seconds=(manifest.get("timings") or {}).get("task"), quiet=quiet)
    (out_dir / "distill_metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n", encoding="utf-8")
    click.echo(summary(metrics, out_dir))


def read_run(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows (data.jsonl) and manifest.json of a finished run."""
    data, man = run_dir / "data.jsonl", run_dir / "manifest.json"
    if not data.is_file():
        raise ConfigError(f"{run_dir} is not a finished run: no data.jsonl (run `agentlab generate RECIPE` first)")
    rows = list(read_jsonl(data))
    manifest = json.loads(man.read_text(encoding="utf-8")) if man.is_file() else {}
    return rows, manifest


def distill_config(section: dict[str, Any] | None, student_type: str | None, base: str | None,
                   epochs: float | None, max_steps: int | None, peft: str | None, hard_labels: bool):
    """The run's `distill:` section (or defaults) with the command-line overrides applied."""
    from agentlab.config import validate_model
    from agentlab.config.sections import DistillConfig

    data = json.loads(json.dumps(section or {}))
    student = data.setdefault("student", {})
    if student_type:
        student["type"] = student_type
    if base:
        student["base"] = base
    if peft:
        student.setdefault("peft", {})["method"] = peft
    for key, value in (("epochs", epochs), ("max_steps", max_steps)):
        if value is not None:
            data[key] = value
    if hard_labels:
        data["soft_labels"] = False
    return validate_model(DistillConfig, data, "distill")


def summary(metrics: dict[str, Any], out_dir: Path) -> str:
    """A few lines for the terminal: where the student is and how it scores."""
    tr = metrics["train"]
    lines = [(f"Wrote {out_dir}/ ({metrics['student_type']} on {metrics['base']}; trained on {tr['rows']} rows, "
              f"{tr['skipped']} unlabeled skipped, {tr['seconds']:.1f}s)")]
    for name, m in [("student", metrics["student"]), ("label model", metrics["label_model"])]:
        if m.get("accuracy") is not None:
            lines.append(f"  {name:<12} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  ECE {m['ece']:.4f}  "
                         f"coverage {m['coverage']:.2f}")
    return "\n".join(lines)


@main.command()
@click.argument("student_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="Output JSONL.")
@click.option("--text-field", help="Input field holding the text (default: the student's, usually `text`).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1), help="Rows per predict call.")
@handle_errors
def predict(student_dir, input_path, out, text_field, batch_size):
    """Label INPUT_PATH (JSONL) with a trained student: one output row per input row, plus label and label_probs."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agentlab.distill.base import load_student

    student = load_student(student_dir)
    field = text_field or student.meta.get("text_field", "text")
    tmp = Path(out).with_name(f".{Path(out).name}.tmp")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for batch in _batches(read_jsonl(Path(input_path)), batch_size):
                texts = [_text(r, field, n + i + 1) for i, r in enumerate(batch)]
                f.writelines(json.dumps({**row, **prediction(student.classes, p)}, ensure_ascii=False) + "\n" for row, p in zip(batch, student.predict(texts)))
                n += len(batch)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"Wrote {n} rows to {out}")


def prediction(classes: list[str], probs) -> dict[str, Any]:
    """`label`, `label_probs` and `confidence` for one row's probabilities."""
    k = max(range(len(classes)), key=lambda i: probs[i])
    return {"label": classes[k], "label_probs": {c: round(float(p), 6) for c, p in zip(classes, probs)},
            "confidence": round(float(probs[k]), 6)}


def _text(row: dict[str, Any], field: str, line: int) -> str:
    if field not in row:
        raise ConfigError(f"row {line} has no field {field!r} (it has: {', '.join(sorted(row)) or 'nothing'}); "
                          "use --text-field")
    return str(row[field] if row[field] is not None else "")


def _batches(it: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in it:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
