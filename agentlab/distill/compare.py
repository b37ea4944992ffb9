"""Students side by side: the fallback student the run keeps when the main one is worse on validation,
the clean-only baseline (the same student trained only on the user's gold rows), and the verdict
"did the student beat its teacher, and did the weak labels help" in plain words.

Selection reads only the validation rows' labels (the label model's `label_probs`, never gold). Gold is
read afterwards, to score every candidate on the same held-out rows.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from agentlab.config.sections import DistillConfig
    from agentlab.distill.data import Example

log = logging.getLogger("agentlab")


def fallback_config(config: DistillConfig) -> DistillConfig | None:
    """The config of the fallback student (`distill.fallback` on MiniLM), or None when there is none to train
    (no fallback, or the fallback is the student itself: same type, on MiniLM)."""
    if not config.fallback or (config.fallback == config.student.type and config.student.base == "minilm"):
        return None
    student = config.student.model_copy(update={"type": config.fallback, "base": "minilm"})
    return config.model_copy(update={"student": student})


def fallback_name(fallback: DistillConfig, primary: DistillConfig) -> str:
    """The fallback's name among the candidates: its type, or `<type>_minilm` when the student has that type too
    (e.g. an `embedding` student on `minilm+smollm2` with the `embedding` fallback on MiniLM)."""
    kind = fallback.student.type
    return f"{kind}_minilm" if kind == primary.student.type else kind


def val_loss(P: np.ndarray, rows: list[dict[str, Any]], classes: list[str]) -> float | None:
    """Mean cross-entropy of a student's predictions against the rows' `label_probs`, over rows with a label.

    If the label model's probabilities are calibrated, this is the student's expected log-loss on the
    true labels: a proper score that ranks students far more stably on a few dozen rows than agreement
    with the argmax labels does. None when no row has a label.
    """
    keep = [i for i, r in enumerate(rows) if r.get("label") is not None and r.get("label_probs")]
    if not keep:
        return None
    Q = np.array([[float(rows[i]["label_probs"].get(c, 0.0)) for c in classes] for i in keep])
    Q = Q / np.clip(Q.sum(1, keepdims=True), 1e-12, None)
    return float(-(Q * np.log(np.clip(P[keep], 1e-12, 1.0))).sum(1).mean())


def pick(losses: dict[str, float | None], primary: str) -> tuple[str, str]:
    """(name, why): the candidate with the lowest validation loss; the primary one on a tie or without validation."""
    scored = {n: v for n, v in losses.items() if v is not None}
    if primary not in scored or len(scored) < 2:
        return primary, f"`{primary}` (no validation rows with labels to compare students on)"
    best = min(scored, key=lambda n: (round(scored[n], 4), n != primary))
    table = ", ".join(f"`{n}` {v:.4f}" for n, v in scored.items())
    what = "cross-entropy against the validation rows' label_probs"
    if best == primary:
        return best, f"`{best}`: its {what} is the lowest or tied ({table})"
    return best, f"`{best}`: `{primary}` has a higher {what} ({table})"


def discard(path: Path, keep_in: Path | None, name: str) -> None:
    """Delete a student folder that was not kept, or move it under `keep_in/name` (benchmarks score them)."""
    if keep_in is None:
        shutil.rmtree(path, ignore_errors=True)
        return
    dest = Path(keep_in) / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(dest))


def clean_examples(clean_rows: list[dict[str, Any]], classes: list[str], text_field: str) -> list[Example]:
    """One-hot examples from gold rows ({text_field, label}); rows whose label is not a class are dropped."""
    from agentlab.distill.data import Example
    from agentlab.distill.evaluate import gold_index

    out = []
    for r in clean_rows:
        g = gold_index(r.get("label"), classes)
        if g >= 0 and str(r.get(text_field) or "").strip():
            out.append(Example(str(r[text_field]), [float(i == g) for i in range(len(classes))]))
    return out


def clean_rows_from_recipe(recipe: Any, text_field: str = "text") -> list[dict[str, Any]]:
    """The gold rows a recipe gives besides its source: `aggregate.dev` and `task.seed`, as {text, label}."""
    from agentlab.config.sections import SourceConfig
    from agentlab.sources import load_rows

    out: list[dict[str, Any]] = []
    if recipe is None:
        return out
    dev = getattr(getattr(recipe, "aggregate", None), "dev", None)
    seed = getattr(getattr(recipe, "task_config", None), "seed", None)
    for cfg, gold_field in ((dev, "gold"), (seed, "label_field")):
        if cfg is None:
            continue
        label = getattr(cfg, gold_field)
        rows = load_rows(SourceConfig(**cfg.model_dump(include=set(SourceConfig.model_fields))), recipe.resolve(cfg.path))
        out += [{text_field: r.get(text_field, r.get("text")), "label": r.get(label)} for r in rows]
    return out


def verdict(m: dict[str, Any]) -> str:
    """One plain paragraph: the student vs the label model on the same held-out rows, and vs the clean-only baseline."""
    s, lm, clean = m.get("student") or {}, m.get("label_model") or {}, m.get("clean_only") or {}
    if s.get("accuracy") is None:
        return ""
    parts = []
    if lm.get("accuracy") is not None and s.get("accuracy_on_label_model_rows") is not None:
        n, acc = int(lm.get("n_covered") or 0), s["accuracy_on_label_model_rows"]
        gap, se = acc - lm["accuracy"], _se(acc, n)
        head = (f"On the {n} held-out rows the label model labels, the student scores {acc:.1%} and the label model "
                f"{lm['accuracy']:.1%}" + (f" (the student also labels the {int(s['n']) - n} rows where every labeler "
                                            f"abstained: {s['accuracy']:.1%} on all {s['n']})" if s["n"] > n else "") + ".")
        if gap >= 0:
            parts.append(f"{head} The student matches or beats its teacher.")
        elif -gap <= 2 * se:
            parts.append(f"{head} The student is {-gap:.1%} below its teacher, within the noise of {n} rows "
                         f"(two standard errors: {2 * se:.1%}).")
        else:
            parts.append(f"{head} **The student is {-gap:.1%} below its teacher.** The label model sees the labelers' "
                         "votes on each of these rows; the student sees only the text and learned from labels that are "
                         "themselves wrong on some rows. More rows, `fallback: embedding` or a stronger base may close the gap.")
    if clean.get("accuracy") is not None:
        gap, se = s["accuracy"] - clean["accuracy"], _se(s["accuracy"], int(s.get("n") or 0))
        how = "helped" if gap > 2 * se else "hurt" if gap < -2 * se else "made no clear difference"
        parts.append(f"Trained only on the {clean.get('train_rows', '?')} gold rows you gave, the same student scores "
                     f"{clean['accuracy']:.1%} against {s['accuracy']:.1%}: the weak labels {how} ({gap:+.1%}).")
    elif clean.get("skipped"):
        parts.append(f"No clean-only baseline: {clean['skipped']}.")
    return " ".join(parts)


def _se(acc: float, n: int) -> float:
    """Standard error of an accuracy on n rows (floored so that 100% on a few rows is not 'certain')."""
    return math.sqrt(max(acc * (1 - acc), 0.05) / max(n, 1))
