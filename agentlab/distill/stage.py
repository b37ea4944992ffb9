"""The distill stage: train the recipe's student on the run's labels, evaluate it, save it.

`run_distill(ctx, recipe, rows)` is what the runner calls; `distill(...)` is the same work
without a run context (used by `agentlab train RUN_DIR` to re-distill a finished run).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.errors import TrainingError

if TYPE_CHECKING:
    from agentlab.config.sections import DistillConfig

log = logging.getLogger("agentlab")


def run_distill(ctx, recipe, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Train `recipe.distill`'s student on `rows`; fill ctx.metrics["distill"], ctx.report, ctx.artifacts."""
    raw = recipe.raw if recipe is not None else {}
    classes = list(getattr(ctx, "classes", None) or recipe_classes(raw) or [])
    gold = ctx.gold if ctx.gold is not None else gold_from_rows(rows)
    usage = {n: (asdict(s) if is_dataclass(s) else dict(s)) for n, s in (ctx.stats or {}).items()}
    provenance = {"recipe_hash": recipe.hash() if recipe is not None else None, "run_dir": str(ctx.run_dir.root),
                  "label_source": label_source(raw, rows)}
    metrics = distill(rows, recipe.distill, ctx.run_dir.path("student"), classes, gold=gold, provenance=provenance,
                      usage=usage, task_seconds=(getattr(ctx, "timings", None) or {}).get("task"), progress=ctx.progress)
    metrics["path"] = "student"
    ctx.metrics["distill"] = metrics
    ctx.artifacts["student"] = "student"
    from agentlab.distill.evaluate import render_section

    ctx.report.append(render_section(metrics))
    return metrics


def distill(rows: list[dict[str, Any]], config: DistillConfig, out_dir: Path, classes: list[str] | None = None, *,
            gold: list[Any] | None = None, provenance: dict[str, Any] | None = None,
            usage: dict[str, dict[str, Any]] | None = None, task_seconds: float | None = None,
            quiet: bool = False, progress: Any = None) -> dict[str, Any]:
    """Split rows, train the student on the labeled training part, score the held-out part.

    Args:
        rows: label-task rows (`text`, `label`, `label_probs`, `confidence`, `votes`).
        config: the distill config.
        out_dir: the student folder (replaced if it exists).
        classes: class names (default: inferred from the rows).
        gold: gold labels aligned with `rows` (names or indices), used only to evaluate.
        provenance: recipe_hash, run_dir, label_source for the model card.
        usage: per-model LLM usage counters of the labeling run (for cost per 1,000).
        task_seconds: wall time of the labeling step (for cost per 1,000).
        quiet: no progress bar at all.
        progress: an agentlab `Progress`; when it is live, training advances a bar there instead of tqdm's.

    Returns:
        The `metrics["distill"]` dict: student / label_model / teachers metrics, cost_per_1k, train.
    """
    from agentlab.distill.base import (
        gpu_peak_memory_mb,
        make_student,
        peak_memory_mb,
        pick_device,
    )
    from agentlab.distill.card import finish_student
    from agentlab.distill.data import build_examples, infer_classes, split_indices
    from agentlab.distill.evaluate import cost_per_1k, evaluate_held_out, timed_predict

    check_labeled(rows)
    classes = list(classes or infer_classes(rows))
    train_idx, held_idx = split_indices(len(rows), config.eval_split, config.seed)
    text_field = config.student.text_field
    train_ex, counts = build_examples([rows[i] for i in train_idx], classes, config, text_field)
    held_ex, held_counts = build_examples([rows[i] for i in held_idx], classes, config, text_field)
    counts["skipped"] += held_counts["skipped"]
    if not train_ex:
        raise TrainingError(f"no rows left to train on: {counts['skipped']} have no label, {counts['filtered']} are below "
                            f"min_confidence {config.min_confidence}; lower distill.min_confidence or label more rows")
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    student = make_student(config.student.type, classes)
    if progress is not None:  # one display: the run's rich bars, not tqdm's
        quiet = True
        if not getattr(progress, "quiet", True):
            from agentlab.distill.base import progress_callback

            student.callbacks.append(progress_callback(progress, f"distill [{config.student.type}]"))
    log.info("distill: %s student on %d rows (%d held out)", config.student.type, len(train_ex), len(held_idx))
    train_metrics = student.train(train_ex, config, out_dir, eval_data=held_ex or None, quiet=quiet)
    held_rows = [rows[i] for i in held_idx]
    device, _ = pick_device(config)
    texts = [str(r.get(text_field) or "") for r in held_rows] or [e.text for e in train_ex[:256]]
    P, wall, cpu = timed_predict(student, texts)
    held_gold = [gold[i] for i in held_idx] if gold is not None else None
    ev = evaluate_held_out(P[: len(held_rows)], held_rows, classes, held_gold) if held_rows else {
        "student": {}, "label_model": {}, "teachers": {}}
    train = {"rows": counts["rows"], "skipped": counts["skipped"], "filtered": counts["filtered"] + held_counts["filtered"],
             "held_out": len(held_idx), "seconds": train_metrics.get("seconds", 0.0), "peak_memory_mb": peak_memory_mb(),
             "gpu_peak_memory_mb": gpu_peak_memory_mb(), **{k: v for k, v in train_metrics.items() if k != "seconds"}}
    metrics = {**ev, "cost_per_1k": cost_per_1k(len(texts), wall, cpu, device, usage or {}, len(rows), task_seconds),
               "train": train, "student_type": config.student.type, "base": config.student.base,
               "peft": config.student.peft.method, "classes": classes, "path": str(out_dir)}
    student.meta.update(provenance=provenance or {}, evaluation={"student": ev["student"], "label model": ev["label_model"],
                        **{f"teacher {k}": v for k, v in ev["teachers"].items()}})
    finish_student(out_dir, student.meta)
    return metrics


def check_labeled(rows: list[dict[str, Any]], where: str = "the rows") -> None:
    """Raise a TrainingError when no row carries a label from the label task."""
    if not rows:
        raise TrainingError(f"no rows to distill in {where}")
    if not any("label_probs" in r or "label" in r for r in rows):
        raise TrainingError(f"no labels in {where} (no `label` / `label_probs` columns): distill needs a run of the "
                            "`label` task (task.type: label)")
    if all(r.get("label") is None for r in rows):
        raise TrainingError(f"no labels in {where}: every row's `label` is None (all labelers abstained)")


def recipe_classes(raw: dict[str, Any]) -> list[str] | None:
    """`task.classes` of a raw recipe dict (list, or mapping name -> description)."""
    c = (raw.get("task") or {}).get("classes")
    if isinstance(c, dict):
        return [str(k) for k in c]
    if isinstance(c, list):
        return [str(k) for k in c]
    return None


def gold_from_rows(rows: list[dict[str, Any]]) -> list[Any] | None:
    """The rows' `gold` column (written by the runner when the recipe has `eval.gold`), or None."""
    if not any("gold" in r for r in rows):
        return None
    return [r.get("gold") for r in rows]


def label_source(raw: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """A one-line description of where the labels came from, for the model card."""
    agg = raw.get("aggregate") or {}
    method = agg.get("use") or (agg.get("method") if agg.get("method") != "all" else None) or "dawid_skene"
    names = sorted({n for r in rows for n in (r.get("votes") or {})})
    models = sorted(n for n, m in (raw.get("models") or {}).items())
    who = f" over {len(names)} labelers ({', '.join(f'`{n}`' for n in names)})" if names else ""
    via = f"; LLMs: {', '.join(models)}" if models else ""
    return f"label model `{method}`{who}{via}; soft labels = its `label_probs`"
