"""Write a run's outputs: data.jsonl, dataset/ (HF), manifest.json, report.md."""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from importlib import metadata
from typing import Any

from agentlab import __version__

log = logging.getLogger("agentlab")
_PACKAGES = ["datasets", "pydantic", "openai", "llama_cpp_python", "torch", "transformers", "peft",
             "sentence-transformers", "numpy", "vllm", "langchain-core", "ray"]


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results."""
    out = {"agentlab": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def build_manifest(ctx, recipe, task, rows: list[dict[str, Any]], timings: dict[str, float]) -> dict[str, Any]:
    """The manifest: recipe and hash, versions, models, prompts, counts, usage, timings, seed, metrics."""
    totals = ctx.totals()
    models = {}
    for name, cfg in recipe.model_configs.items():
        stats = ctx.stats.get(name)
        if stats is None:
            continue

        ident = cfg.model_dump(mode="json", exclude={"api_key"})
        models[name] = {"config": ident, **stats.__dict__}
    failed_rows = sum(1 for r in rows if r.get("_error"))
    return {
        "agentlab_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(_redact(sys.argv)),
        "recipe": redact_secrets(recipe.raw),
        "recipe_hash": recipe.hash(),
        "task": recipe.task_config.type,
        "seed": recipe.seed,
        "executor": ctx.get_executor().describe(),
        "packages": package_versions(),
        "models": models,
        "prompts": ctx.prompts,
        "counts": {
            "rows": len(rows),
            "llm_calls": totals["llm_calls"],
            "cache_hits": totals["cache_hits"],
            "repaired": totals["repaired"],
            "failed": totals["failed"],
            "failed_rows": failed_rows,
        },
        "usage": {k: totals[k] for k in ("prompt_tokens", "completion_tokens", "cost_usd")},
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "metrics": ctx.metrics,
        "artifacts": ctx.artifacts,
        "caveats": run_caveats(ctx, task),
    }


def run_caveats(ctx, task) -> list[str]:
    """The task's standing caveat (`Task.caveat`) first, then those the run added, each once."""
    found = [getattr(task, "caveat", None), *ctx.caveats]
    return list(dict.fromkeys(c for c in found if c))


_SECRET_KEYS = ("api_key", "apikey", "token", "password", "secret")


def redact_secrets(obj: Any) -> Any:
    """The recipe with literal secrets replaced (`${VAR}` references are kept: they are not secrets)."""
    if isinstance(obj, dict):
        return {k: ("***" if isinstance(v, str) and any(s in str(k).lower() for s in _SECRET_KEYS) and not v.startswith("${") and k != "max_tokens"
                    else redact_secrets(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_secrets(v) for v in obj]
    return obj


def _redact(argv: list[str]) -> list[str]:
    return ["***" if any(s in a.lower() for s in ("sk-", "key=", "token=")) else a for a in argv]


def write_outputs(ctx, recipe, task, rows: list[dict[str, Any]], timings: dict[str, float], streamed=None) -> None:
    """Write every output of the run into its run directory.

    `streamed` is the :class:`agentlab.stream.sink.ChunkSink` of a streaming run: its rows are already in
    `data.jsonl` (`rows` is then only the report's sample), and `dataset/` is converted from that file.
    """
    run = ctx.run_dir
    if streamed is None:
        run.write_jsonl("data.jsonl", rows)
        ds = _write_dataset(run, rows) if recipe.output.hf_dataset else None
    else:
        from agentlab.stream.outputs import dataset_from_jsonl

        ds = dataset_from_jsonl(run, streamed.path) if recipe.output.hf_dataset else None
    manifest = build_manifest(ctx, recipe, task, rows, timings)
    if streamed is not None:
        manifest["counts"].update(rows=streamed.rows, failed_rows=streamed.failed_rows)
        manifest["streaming"] = {"chunks": streamed.chunks, "resumed_at_row": streamed.resumed}
    run.write_json("manifest.json", manifest)
    if ds is not None:
        _write_card(run, manifest, ds)
    from agentlab.eval.report import render_report

    report_md = render_report(manifest, recipe, ctx, rows)
    run.write_text("report.md", report_md)
    _write_html(run, report_md, recipe, ctx, getattr(streamed, "page_rows", None))


def _write_html(run, report_md: str, recipe, ctx, sampled=None) -> None:
    """report.html beside report.md: the same report with plots inline and the rows to browse (from data.jsonl,
    or as a streaming run's sink sampled them while writing it)."""
    from agentlab.eval.html import write_html_report

    try:
        write_html_report(run.root, report_md, recipe.name, getattr(ctx, "classes", None), sampled)
    except Exception:  # a convenience view: the data, manifest and report.md are already written
        log.warning("could not write report.html", exc_info=True)


def _write_card(run, manifest: dict[str, Any], ds) -> None:
    """dataset/README.md: the dataset card (Hugging Face metadata + how the data was made)."""
    from agentlab.hub.card import feature_types, local_student, render_dataset_card

    card = render_dataset_card(manifest, feature_types(ds.features), len(ds), local_dir=run.path("dataset"),
                               student=local_student(manifest))
    run.path("dataset/README.md").write_text(card, encoding="utf-8")


def _write_dataset(run, rows: list[dict[str, Any]]):
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = datasets.Dataset.from_list(rows)
    except Exception:  # mixed types in a column: store complex values as JSON text
        log.info("dataset/: mixed column types, storing nested values as JSON strings")
        ds = datasets.Dataset.from_list([{k: _flat(v) for k, v in r.items()} for r in rows])
    ds.save_to_disk(str(run.path("dataset")))
    return ds


def _flat(v: Any) -> Any:
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else (None if v is None else str(v) if not isinstance(v, (int, float, bool)) else v)
