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


def run_distill(ctx, recipe, rows: list[dict[str, Any]], timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Train `recipe.distill`'s student on `rows`; fill ctx.metrics["distill"] and ["student"], ctx.report, ctx.artifacts.

    Args:
        timings: the run's step timings so far; `task` (the labeling step's wall time) gives the teachers'
            seconds per 1,000 rows.
    """
    from agentlab.distill.compare import clean_rows_from_recipe

    raw = recipe.raw if recipe is not None else {}
    classes = list(getattr(ctx, "classes", None) or recipe_classes(raw) or [])
    gold = ctx.gold if ctx.gold is not None else gold_from_rows(rows)
    usage = {n: (asdict(s) if is_dataclass(s) else dict(s)) for n, s in (ctx.stats or {}).items()}
    provenance = {"recipe_hash": recipe.hash() if recipe is not None else None, "run_dir": str(ctx.run_dir.root),
                  "label_source": label_source(raw, rows)}
    config = recipe.distill
    clean = clean_rows_from_recipe(recipe, config.student.text_field) if config.clean_baseline else []
    metrics = distill(rows, config, ctx.run_dir.path("student"), classes, gold=gold, provenance=provenance,
                      usage=usage, task_seconds=(timings or {}).get("task"), progress=ctx.progress, clean_rows=clean)
    metrics["path"] = "student"
    ctx.metrics["distill"] = metrics
    ctx.metrics["student"] = head_to_head(metrics)
    ctx.artifacts["student"] = "student"
    from agentlab.distill.evaluate import render_section

    ctx.report.append(render_section(metrics))
    return metrics


def head_to_head(metrics: dict[str, Any]) -> dict[str, Any]:
    """`metrics.student`: the kept student, the label model and the clean-only baseline on the same held-out gold."""
    return {"student": metrics["student"], "label_model": metrics["label_model"], "clean_only": metrics.get("clean_only", {}),
            "student_type": metrics["student_type"], "verdict": metrics.get("verdict", "")}


def distill(rows: list[dict[str, Any]], config: DistillConfig, out_dir: Path, classes: list[str] | None = None, *,
            gold: list[Any] | None = None, provenance: dict[str, Any] | None = None,
            usage: dict[str, dict[str, Any]] | None = None, task_seconds: float | None = None,
            quiet: bool = False, progress: Any = None, clean_rows: list[dict[str, Any]] | None = None,
            keep_others: Path | None = None) -> dict[str, Any]:
    """Split rows, train the student (and the fallback) on the labeled training part, keep the better one on
    validation, train the clean-only baseline, score everything on the held-out part.

    Args:
        rows: label-task rows (`text`, `label`, `label_probs`, `confidence`, `votes`).
        config: the distill config.
        out_dir: the student folder (replaced if it exists); it holds the student that was kept.
        classes: class names (default: inferred from the rows).
        gold: gold labels aligned with `rows` (names or indices), used only to evaluate.
        provenance: recipe_hash, run_dir, label_source for the model card.
        usage: per-model LLM usage counters of the labeling run (for cost per 1,000).
        task_seconds: wall time of the labeling step (for cost per 1,000).
        quiet: no progress bar at all.
        progress: an agentlab `Progress`; when it is live, training advances a bar there instead of tqdm's.
        clean_rows: gold rows the user gave besides the source ({text field, label}) for the clean-only baseline.
        keep_others: a folder to keep the students that were not kept in (`<type>/`, `clean_only/`); default: deleted.

    Returns:
        The `metrics["distill"]` dict: student / label_model / teachers / clean_only metrics, candidates, picked,
        verdict, cost_per_1k, train.
    """
    from agentlab.distill.base import gpu_peak_memory_mb, peak_memory_mb, pick_device
    from agentlab.distill.card import finish_student
    from agentlab.distill.compare import (
        discard,
        fallback_config,
        fallback_name,
        pick,
        verdict,
    )
    from agentlab.distill.data import build_examples, infer_classes, split_indices
    from agentlab.distill.evaluate import cost_per_1k

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
    held_rows = [rows[i] for i in held_idx]
    texts = [str(r.get(text_field) or "") for r in held_rows] or [e.text for e in train_ex[:256]]
    held_gold = [gold[i] for i in held_idx] if gold is not None else None
    fit = lambda cfg, exs, where, val: _fit(cfg, classes, exs, val, where, quiet, progress)
    cands = {config.student.type: (config, out_dir, *fit(config, train_ex, out_dir, held_ex))}
    fb = fallback_config(config)
    if fb is not None:
        name = fallback_name(fb, config)
        where = out_dir.with_name(f".{out_dir.name}.{name}")
        cands[name] = (fb, where, *fit(fb, train_ex, where, held_ex))
    scored = {name: _score(c[2], texts, held_rows, classes, held_gold) for name, c in cands.items()}
    picked, why = pick({n: sc[0]["student"].get("val_loss") for n, sc in scored.items()}, config.student.type)
    cfg, _, student, train_metrics = cands[picked]
    for name, (_, where, _, _) in cands.items():
        if name != picked:
            discard(where, keep_others, name)
    if cands[picked][1] != out_dir:
        shutil.move(str(cands[picked][1]), str(out_dir))
    ev, (wall, cpu) = scored[picked]
    clean = _clean_only(cfg, classes, clean_rows, held_rows, texts, held_gold, out_dir, keep_others, quiet) \
        if config.clean_baseline else {"skipped": "distill.clean_baseline is off"}
    device, _ = pick_device(cfg)
    train = {"rows": counts["rows"], "skipped": counts["skipped"], "filtered": counts["filtered"] + held_counts["filtered"],
             "held_out": len(held_idx), "seconds": train_metrics.get("seconds", 0.0), "peak_memory_mb": peak_memory_mb(),
             "gpu_peak_memory_mb": gpu_peak_memory_mb(), **{k: v for k, v in train_metrics.items() if k != "seconds"}}
    candidates = {n: {"val_loss": sc[0]["student"].get("val_loss"),
                      "agreement_with_labels": sc[0]["student"].get("agreement_with_labels"),
                      "accuracy": sc[0]["student"].get("accuracy"), "train_seconds": cands[n][3].get("seconds"),
                      "predict_seconds_per_1k": round(sc[1][0] * 1000 / max(len(texts), 1), 3)} for n, sc in scored.items()}
    metrics = {**ev, "clean_only": clean, "candidates": candidates, "picked": picked, "picked_because": why,
               "cost_per_1k": cost_per_1k(len(texts), wall, cpu, device, usage or {}, len(rows), task_seconds),
               "train": train, "student_type": cfg.student.type, "base": cfg.student.base,
               "peft": student.meta.get("peft", cfg.student.peft.method), "classes": classes, "path": str(out_dir)}
    metrics["verdict"] = verdict(metrics)
    student.meta.update(provenance=provenance or {}, evaluation={"student": ev["student"], "label model": ev["label_model"],
                        **({"clean-only baseline": clean} if "accuracy" in clean else {}),
                        **{f"teacher {k}": v for k, v in ev["teachers"].items()}})
    finish_student(out_dir, student.meta)
    return metrics


def _fit(config: DistillConfig, classes: list[str], train_ex: list[Any], val_ex: list[Any], out_dir: Path,
         quiet: bool, progress: Any) -> tuple[Any, dict[str, Any]]:
    """(student, training metrics): a fresh student of `config.student.type` trained into `out_dir`."""
    from agentlab.distill.base import make_student

    student = make_student(config.student.type, classes)
    if progress is not None:  # one display: the run's rich bars, not tqdm's
        quiet = True
        if not getattr(progress, "quiet", True):
            from agentlab.distill.base import progress_callback

            student.callbacks.append(progress_callback(progress, f"distill [{config.student.type}]"))
    log.info("distill: %s student on %d rows (%d validation)", config.student.type, len(train_ex), len(val_ex))
    return student, student.train(train_ex, config, out_dir, eval_data=val_ex or None, quiet=quiet)


def _score(student, texts: list[str], held_rows: list[dict[str, Any]], classes: list[str],
           held_gold: list[Any] | None) -> tuple[dict[str, Any], tuple[float, float]]:
    """(held-out evaluation, (predict wall s, CPU s)) of one student."""
    from agentlab.distill.compare import val_loss
    from agentlab.distill.evaluate import evaluate_held_out, timed_predict

    P, wall, cpu = timed_predict(student, texts)
    ev = evaluate_held_out(P[: len(held_rows)], held_rows, classes, held_gold) if held_rows else {
        "student": {}, "label_model": {}, "teachers": {}}
    loss = val_loss(P[: len(held_rows)], held_rows, classes) if held_rows else None
    ev["student"]["val_loss"] = None if loss is None else round(loss, 4)
    return ev, (wall, cpu)


def _clean_only(config: DistillConfig, classes: list[str], clean_rows: list[dict[str, Any]] | None,
                held_rows: list[dict[str, Any]], texts: list[str], held_gold: list[Any] | None, out_dir: Path,
                keep_others: Path | None, quiet: bool) -> dict[str, Any]:
    """The same student trained only on the user's gold rows, scored on the same held-out rows (Zhu et al. 2023)."""
    from agentlab.distill.compare import clean_examples, discard

    if held_gold is None or not held_rows:
        return {"skipped": "no held-out gold rows to score it on"}
    held = {str(r.get(config.student.text_field) or "") for r in held_rows}
    examples = [e for e in clean_examples(clean_rows or [], classes, config.student.text_field) if e.text not in held]
    if not examples:
        return {"skipped": "no gold rows given besides the source (task.seed / aggregate.dev)"}
    where = out_dir.with_name(f".{out_dir.name}.clean_only")
    student, m = _fit(config, classes, examples, [], where, quiet, None)
    ev, _ = _score(student, texts, held_rows, classes, held_gold)
    discard(where, keep_others, "clean_only")
    return {**{k: v for k, v in ev["student"].items() if k not in ("agreement_with_labels", "val_loss")}, "train_rows": len(examples),
            "student_type": config.student.type, "train_seconds": m.get("seconds")}


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
    method = agg.get("use") or (agg.get("method") if agg.get("method") != "all" else None) or "auto"  # the default label model
    names = sorted({n for r in rows for n in (r.get("votes") or {})})
    models = sorted(n for n, m in (raw.get("models") or {}).items())
    who = f" over {len(names)} labelers ({', '.join(f'`{n}`' for n in names)})" if names else ""
    via = f"; LLMs: {', '.join(models)}" if models else ""
    return f"label model `{method}`{who}{via}; soft labels = its `label_probs`"
