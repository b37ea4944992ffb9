"""What an autobench run writes besides data.jsonl: metrics, leaderboard, search trace, dataset card, plots."""

from __future__ import annotations

import csv
import io
import logging
from typing import TYPE_CHECKING, Any

from agentlab.autobench import scoring

if TYPE_CHECKING:
    from agentlab.autobench.config import AutobenchConfig
    from agentlab.autobench.search import Variant
    from agentlab.engine import RunContext

log = logging.getLogger("agentlab")


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def summary(v: Variant, names: list[str], minutes: float) -> dict[str, Any]:
    """A variant's headline numbers: mean novelty/difficulty over categories, counts, grounding, speed."""
    cats = [c for c in v.categories.values() if c.accuracy]
    with_doc = [p for p in v.pairs if p.get("doc_id") is not None and p.get("answer")]
    kept = v.kept
    rejected: dict[str, int] = {}
    for p in v.pairs:
        if p["rejected"]:
            reason = p["rejected"]
            rejected[reason] = rejected.get(reason, 0) + 1
    return {"novelty": _r(scoring.mean([c.novelty for c in cats])), "difficulty": _r(scoring.mean([c.difficulty for c in cats])),
            "objective": _r(scoring.mean([c.objective for c in cats])), "categories": len(v.categories),
            "categories_scored": len(cats), "questions": len(kept), "generated": len(v.pairs), "rejected": rejected,
            "grounded_fraction": _r(sum(bool(p.get("grounded")) for p in with_doc) / len(with_doc)) if with_doc else None,
            "accuracy": {n: _r(overall(kept, n)) for n in names}, "iterations": len(v.trace),
            "seconds": round(v.seconds, 1), "questions_per_min": round(len(kept) / minutes, 2) if minutes > 0 else None}


def overall(pairs: list[dict[str, Any]], name: str) -> float | None:
    """A candidate's accuracy over every graded question."""
    graded = [p["correct"][name] for p in pairs if p.get("correct", {}).get(name) is not None]
    return sum(graded) / len(graded) if graded else None


def leaderboard_rows(v: Variant, names: list[str]) -> list[list[Any]]:
    """[candidate, overall, accuracy per category...] sorted best first."""
    cats = list(v.categories)
    rows = [[n, _r(overall(v.kept, n)), *[_r(v.categories[c].accuracy.get(n)) for c in cats]] for n in names]
    return sorted(rows, key=lambda r: -(r[1] if r[1] is not None else -1))


def write_all(ctx: RunContext, cfg: AutobenchConfig, variants: dict[str, Variant], minutes: float) -> None:
    """Metrics into ctx.metrics, report sections into ctx.report, files into the run directory."""
    names = [c.name for c in cfg.candidates]
    main = variants["autobench"]
    s = summary(main, names, minutes)
    ctx.metrics["categories"] = {n: c.metrics(cfg.target_accuracy) for n, c in main.categories.items()}
    ctx.metrics.update(novelty=s["novelty"], difficulty=s["difficulty"])
    ctx.metrics["autobench"] = s
    ctx.metrics["leaderboard"] = {r[0]: r[1] for r in leaderboard_rows(main, names)}
    ctx.metrics["search"] = [_trace_summary(t) for t in main.trace]
    if len(variants) > 1:
        ctx.metrics["ablations"] = {k: summary(v, names, v.seconds / 60) for k, v in variants.items()}
    _report(ctx, cfg, variants, s, names)
    if ctx.run_dir is not None:
        _files(ctx, cfg, variants, names, s)


def _trace_summary(t: dict[str, Any]) -> dict[str, Any]:
    keys = ("iteration", "proposed", "repeats_dropped", "kept", "questions", "rejected", "best_objective", "mean_objective", "stopped")
    out = {k: t[k] for k in keys if k in t}
    out["best_accuracy"] = {c: max(m["accuracy"].values()) if m["accuracy"] else None for c, m in t.get("categories", {}).items()}
    return out


def _report(ctx, cfg, variants, s, names) -> None:
    main = variants["autobench"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
    cats = list(main.categories)
    head = (f"{s['questions']} questions kept of {s['generated']} written, in {len(cats)} categories over "
            f"{s['iterations']} iteration(s); mean novelty {fmt(s['novelty'])}, mean difficulty {fmt(s['difficulty'])}; "
            f"answers found in their document: {fmt(s['grounded_fraction'])}. Rejected: {s['rejected'] or 'none'}.")
    lines = ["## AutoBencher", head, "",
             "### Categories", "| category | iteration | salience | novelty | difficulty | objective | questions | "
             + " | ".join(names) + " |", "|---|" + "---|" * (6 + len(names))]
    for n, c in main.categories.items():
        lines.append(f"| {n} | {c.iteration} | {fmt(c.salience)} | {fmt(c.novelty)} | {fmt(c.difficulty)} | {fmt(c.objective)} | "
                     f"{c.questions} | " + " | ".join(fmt(c.accuracy.get(x)) for x in names) + " |")
    lines += ["", "### Leaderboard", "| candidate | overall | " + " | ".join(cats) + " |", "|---|" + "---|" * (1 + len(cats))]
    lines += ["| " + " | ".join(fmt(x) for x in row) + " |" for row in leaderboard_rows(main, names)]
    lines += ["", "### Search trace"]
    for t in main.trace:
        lines.append(f"- iteration {t['iteration']}: proposed {t['proposed']}, kept {t['kept']}, repeats dropped "
                     f"{len(t['repeats_dropped'])}, best objective {fmt(t.get('best_objective'))}" + (f" — stopped: {t['stopped']}" if t.get("stopped") else ""))
    if len(variants) > 1:
        lines += ["", "### Ablations (same corpus and candidates)", "| variant | novelty | difficulty | questions | grounded | minutes |", "|---|---|---|---|---|---|"]
        for k, v in variants.items():
            a = ctx.metrics["ablations"][k]
            lines.append(f"| {k} | {fmt(a['novelty'])} | {fmt(a['difficulty'])} | {a['questions']} | {fmt(a['grounded_fraction'])} | {v.seconds / 60:.1f} |")
    ctx.report += [*lines, ""]


def _files(ctx, cfg, variants, names, s) -> None:
    run = ctx.run_dir
    main = variants["autobench"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["candidate", "overall", *main.categories])
    writer.writerows(leaderboard_rows(main, names))
    ctx.artifacts["leaderboard"] = str(run.write_text("leaderboard.csv", buf.getvalue()))
    ctx.artifacts["search_trace"] = str(run.write_jsonl("search_trace.jsonl", [t for v in variants.values() for t in v.trace]))
    rejected = [{**_public(p), "raw": p.get("_raw"), "error": p.get("_error")} for v in variants.values() for p in v.pairs if p["rejected"]]
    ctx.artifacts["rejected"] = str(run.write_jsonl("rejected.jsonl", rejected))
    for k, v in variants.items():
        if k != "autobench":
            ctx.artifacts[f"ablation_{k}"] = str(run.write_jsonl(f"ablation_{k}.jsonl", [_public(p) for p in v.kept]))
    ctx.artifacts["dataset_card"] = str(run.write_text("dataset_card.md", dataset_card(ctx, cfg, main, s, names)))
    _plots(ctx, main, variants, names)


def _public(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if not k.startswith("_")}


def _plots(ctx, main, variants, names) -> None:
    try:
        from agentlab.eval.plots import grouped_bars, line_plot

        cats = [n for n, c in main.categories.items() if c.accuracy]
        grouped_bars(cats, {n: [main.categories[c].accuracy.get(n, 0.0) for c in cats] for n in names},
                     ctx.run_dir.path("accuracy_by_category.png"), title="Accuracy per category", ylabel="accuracy")
        its = max(len(v.trace) for v in variants.values())
        series = {f"{k} best": [t.get("best_objective") for t in v.trace] + [None] * (its - len(v.trace)) for k, v in variants.items()}
        series.update({f"{k} mean": [t.get("mean_objective") for t in v.trace] + [None] * (its - len(v.trace)) for k, v in variants.items()})
        line_plot(list(range(its)), series, ctx.run_dir.path("objective_by_iteration.png"), title="Objective per iteration",
                  xlabel="iteration", ylabel="novelty + β·difficulty")
    except Exception:  # plots are a convenience; the numbers are in the manifest
        log.warning("could not draw autobench plots", exc_info=True)
        return
    ctx.artifacts.update(accuracy_plot="accuracy_by_category.png", objective_plot="objective_by_iteration.png")
    ctx.report += ["![accuracy per category](accuracy_by_category.png)", "", "![objective per iteration](objective_by_iteration.png)", ""]


def dataset_card(ctx, cfg: AutobenchConfig, v: Variant, s: dict[str, Any], names: list[str]) -> str:
    """A dataset card (markdown) for the benchmark in data.jsonl / dataset/."""
    name = getattr(ctx.recipe, "name", "autobench")
    source = getattr(getattr(ctx.recipe, "source", None), "path", "the source")
    cands = ", ".join(f"`{c.name}` (model `{c.model}`, temperature {c.temperature})" for c in cfg.candidates)
    return "\n".join([
        f"# {name}: an AutoBencher benchmark", "",
        (f"Questions generated by `{cfg.proposer}` from documents in `{source}` by an adaptive search for categories that are "
         "salient, novel and difficult for the candidates (METHODS.md §6, Li et al.)."), "",
        "## Fields", "- `question`, `answer` (short; a phrase of the source document when `answer_source` is `extracted`), `choices`",
        "- `category`, `requirement`, `iteration` (when it was proposed)",
        "- `doc_id`: provenance; `grounded`: the answer occurs in that document", "- `difficulty`: 1 − best candidate accuracy on the category",
        "- `answers`, `correct`, `grading`: each candidate's answer and how it was graded (exact, f1, grader, choice)", "",
        "## Numbers", f"- {s['questions']} questions in {s['categories_scored']} scored categories; format `{cfg.question_format}`",
        f"- mean novelty {s['novelty']}, mean difficulty {s['difficulty']}", f"- candidates: {cands}",
        f"- overall accuracy: {s['accuracy']}", "",
        "## Caveats", "- Difficulty and novelty are relative to these candidates only; with few questions per category they are noisy.",
        ("- Leaked questions (n-gram overlap or embedding near-duplicates of the data the recipe names) and ungrounded "
         "answers were excluded; see rejected.jsonl."),
        *[f"- {c}" for c in ctx.caveats], ""])
