"""Held-out evaluation of a student against the label model and each teacher, and cost per 1,000.

Everything is scored on the same held-out rows (never trained on): the student's predictions,
the label model's `label_probs` (abstains where `label` is None) and every labeler's `votes`
(one-hot; abstains where None). Gold is read only here, to measure.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

HOW_COST = (
    "student: wall-clock and CPU time of `predict` over the held-out texts (batch 64, {device}) on this machine, "
    "scaled to 1,000 rows; no API cost. teachers: LLM calls needed per row (calls made + cache hits) times the "
    "tokens and USD per call actually made, from the run's usage counters, scaled to 1,000 rows{timing}."
)


def gold_index(g: Any, classes: list[str]) -> int:
    """Gold as a class index: a class name, or an int index into `classes`; -1 when unknown."""
    if g is None:
        return -1
    if isinstance(g, str) and g in classes:
        return classes.index(g)
    if isinstance(g, (int, np.integer)) and not isinstance(g, bool) and 0 <= int(g) < len(classes):
        return int(g)
    if isinstance(g, str) and g.strip().lstrip("-").isdigit():
        return gold_index(int(g), classes)
    return -1


def _one_hot(names: list[str | None], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    P = np.zeros((len(names), len(classes)))
    abstained = np.ones(len(names), dtype=bool)
    for i, n in enumerate(names):
        if n is not None and str(n) in classes:
            P[i, classes.index(str(n))] = 1.0
            abstained[i] = False
    P[abstained] = 1.0 / len(classes)
    return P, abstained


def _label_model_probs(rows: list[dict[str, Any]], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    P = np.array([[float((r.get("label_probs") or {}).get(c, 0.0)) for c in classes] for r in rows]).reshape(len(rows), len(classes))
    abstained = np.array([r.get("label") is None for r in rows], dtype=bool)
    empty = P.sum(1) <= 0
    P[empty] = 1.0 / len(classes)
    return P / P.sum(1, keepdims=True), abstained


def _metrics(y: np.ndarray, P: np.ndarray, abstained: np.ndarray | None = None) -> dict[str, Any]:
    from agentlab.eval.metrics import classification_metrics

    m = classification_metrics(y, P, abstained=abstained)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}


def timed_predict(student, texts: list[str]) -> tuple[np.ndarray, float, float]:
    """(probs, wall seconds, process CPU seconds) of one `predict` call (after a one-row warm-up)."""
    student.predict(texts[:1])
    w, c = time.perf_counter(), time.process_time()
    P = student.predict(texts)
    return np.asarray(P), time.perf_counter() - w, time.process_time() - c


def evaluate_held_out(P_student: np.ndarray, rows: list[dict[str, Any]], classes: list[str],
                      gold: list[Any] | None) -> dict[str, Any]:
    """Student vs label model vs teachers on held-out rows (with gold), plus agreement with the labels.

    Returns:
        {student: {...}, label_model: {...}, teachers: {name: {...}}}; metric dicts are
        `classification_metrics` output. Without gold only `student.agreement_with_labels`.
    """
    labels = [r.get("label") for r in rows]
    known = [i for i, lab in enumerate(labels) if lab is not None and str(lab) in classes]
    agree = float(np.mean([P_student[i].argmax() == classes.index(str(labels[i])) for i in known])) if known else None
    out: dict[str, Any] = {"student": {"agreement_with_labels": None if agree is None else round(agree, 4)},
                           "label_model": {}, "teachers": {}}
    if gold is None:
        return out
    y = np.array([gold_index(g, classes) for g in gold], dtype=np.int64)
    if not (y >= 0).any():
        return out
    out["student"].update(_metrics(y, P_student))
    P_lm, lm_abstained = _label_model_probs(rows, classes)
    out["label_model"] = _metrics(y, P_lm, lm_abstained)
    # the head-to-head on the same rows: the student's accuracy where the label model gives a label
    covered = ~lm_abstained & (y >= 0)
    if covered.any():
        out["student"]["accuracy_on_label_model_rows"] = round(float((P_student[covered].argmax(1) == y[covered]).mean()), 4)
    names = sorted({n for r in rows for n in (r.get("votes") or {})})
    for n in names:
        out["teachers"][n] = _metrics(y, *_one_hot([(r.get("votes") or {}).get(n) for r in rows], classes))
    return out


def cost_per_1k(n_pred: int, wall: float, cpu: float, device: str, usage: dict[str, dict[str, Any]],
                n_rows: int, task_seconds: float | None = None) -> dict[str, Any]:
    """Cost per 1,000 predictions: the student (measured) vs the teachers (from usage counters).

    Args:
        n_pred, wall, cpu: how many texts the timed `predict` call covered and its wall/CPU seconds.
        usage: per model name: {llm_calls, cache_hits, prompt_tokens, completion_tokens, cost_usd}.
        n_rows: rows the teachers labeled.
        task_seconds: wall time of the labeling step, when known.
    """
    scale = 1000.0 / max(n_pred, 1)
    student = {"seconds": round(wall * scale, 3), "cpu_seconds": round(cpu * scale, 3), "usd": 0.0, "device": device}
    teachers: dict[str, Any] = {}
    for name, s in usage.items():
        made = int(s.get("llm_calls", 0))
        needed = made + int(s.get("cache_hits", 0))
        calls_1k = needed * 1000.0 / max(n_rows, 1)
        per_1k = {k: float(s.get(k, 0)) / made * calls_1k if made else 0.0
                  for k in ("prompt_tokens", "completion_tokens", "cost_usd")}
        teachers[name] = {"llm_calls": round(calls_1k, 1), "prompt_tokens": round(per_1k["prompt_tokens"]),
                          "completion_tokens": round(per_1k["completion_tokens"]), "usd": round(per_1k["cost_usd"], 6)}
    total = {k: round(sum(t[k] for t in teachers.values()), 6) for k in ("llm_calls", "prompt_tokens", "completion_tokens", "usd")}
    if task_seconds is not None:
        total["seconds"] = round(task_seconds * 1000.0 / max(n_rows, 1), 3)
    timing = "; teacher seconds = the labeling step's wall time per row (cache hits make it an underestimate)" if task_seconds is not None else ""
    return {"student": student, "teachers": teachers, "teachers_total": total,
            "how": HOW_COST.format(device=device, timing=timing)}


def render_section(m: dict[str, Any]) -> str:
    """The report.md section for `ctx.metrics["distill"]`."""
    from agentlab.distill.card import _metrics_table

    tr, cost = m["train"], m.get("cost_per_1k") or {}
    lines = ["## Distillation", "",
             (f"Student **{m['student_type']}** on `{m['base']}` ({m['peft']}): trained on {tr['rows']} rows "
              f"({tr['skipped']} without a label skipped, {tr['filtered']} below min_confidence), {tr['held_out']} held out; "
              f"{tr['seconds']:.1f}s, peak memory {tr['peak_memory_mb']:.0f} MB. Saved in `{m['path']}`."), ""]
    clean = m.get("clean_only") or {}
    table = {f"student ({m['student_type']})": m["student"], "label model": m["label_model"],
             **({f"clean-only baseline ({clean.get('train_rows')} gold rows)": clean} if "accuracy" in clean else {}),
             **{f"teacher {k}": v for k, v in m["teachers"].items()}}
    if m.get("picked_because") and len(m.get("candidates") or {}) > 1:
        lines += [f"Kept {m['picked_because']}.", ""]
    rows = _metrics_table(table)
    if rows:
        lines += ["Held-out rows scored against gold (nobody trained on them):", "", *rows, ""]
    if m.get("verdict"):
        lines += [m["verdict"], ""]
    elif m["student"].get("agreement_with_labels") is not None:
        lines += [f"No gold: the student agrees with the held-out labels on {m['student']['agreement_with_labels']:.1%} of rows.", ""]
    if cost:
        s, t = cost["student"], cost["teachers_total"]
        lines += [f"Cost per 1,000 predictions: student {s['seconds']:.2f}s wall / {s['cpu_seconds']:.2f}s CPU ({s['device']}); "
                  f"teachers {t['llm_calls']:.0f} LLM calls, {t['prompt_tokens'] + t['completion_tokens']:,} tokens, ${t['usd']:.4f}"
                  + (f", {t['seconds']:.1f}s" if "seconds" in t else "") + ".", "", f"_How: {cost['how']}_", ""]
    return "\n".join(lines)
