"""Run a streaming task end to end: read chunks -> task -> data.jsonl chunk by chunk -> eval -> outputs.

`generate` always streams; `label` streams when every labeler votes row by row (prompt, keywords,
regex, precomputed, python) and the recipe has no `escalate:` or `distill:` (those need every row
in memory and take the in-memory path of :func:`agentlab.runner.run_recipe`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from agentlab.engine import ModelStats, RunContext, close_backends
from agentlab.errors import DataError, RecipeError, RecipeErrors
from agentlab.progress import Progress, rows_bar
from agentlab.store import RunDir
from agentlab.stream.sink import ChunkSink
from agentlab.stream.source import ChunkedSource

log = logging.getLogger("agentlab")
_ROW_LABELERS = {"prompt", "keywords", "regex", "precomputed", "python"}


def streams(task: Any, recipe: Any) -> bool:
    """True when this task runs streaming for this recipe (see the module docstring)."""
    kind = recipe.task_config.type
    if kind == "generate":
        return True
    if kind == "label":
        return (recipe.escalate is None and recipe.distill is None
                and all(lab.config.type in _ROW_LABELERS for lab in task.labelers))
    return False


def _gold_field(recipe: Any, first: dict[str, Any], path: Path) -> str | None:
    if recipe.eval is None or not recipe.eval.gold:
        return None
    field = recipe.eval.gold
    if field not in first:
        raise RecipeErrors([RecipeError("eval.gold", f"column not in {path.name}", field, f"use one of: {', '.join(sorted(first))}")])
    return field


def _preflight(recipe: Any, task: Any, source: ChunkedSource, gold_field: str | None) -> None:
    """Before the run directory exists: read the whole first chunk (a bad line there fails now; a bad line further
    on fails when its chunk is read, and the run resumes after the fix), then check column names against the
    templates and render the first row's prompts, on a scratch context."""
    from agentlab.preflight import preflight
    from agentlab.store import CallCache

    rows = next(source.chunks(recipe.output.chunk_size), [])
    scratch = RunContext(model_configs=recipe.model_configs, cache=CallCache(None), seed=recipe.seed, recipe=recipe)
    preflight(recipe, task, scratch, [{k: v for k, v in r.items() if k != gold_field} for r in rows])


def run_streaming(recipe: Any, task: Any, executor: Any, out: str | None = None, limit: int | None = None,
                  fresh: bool = False, quiet: bool = False) -> Path:
    """Run `recipe`'s streaming `task`; return the run directory. Nothing is written before the source's
    first rows load cleanly; a killed run resumes from its last committed chunk (see :mod:`agentlab.stream.sink`)."""
    from agentlab.runner import _cache_for, _setup_logging, run_dir_for

    t0 = time.perf_counter()
    path = recipe.resolve(recipe.source.path)
    source = ChunkedSource(recipe.source, path, limit)
    first = source.peek()
    if first is None:
        raise DataError(path, "no rows", field="source.path", fix="point to a file with at least one row")
    gold_field = _gold_field(recipe, first, path)
    _preflight(recipe, task, source, gold_field)
    timings: dict[str, float] = {"load": time.perf_counter() - t0}
    run = RunDir(run_dir_for(recipe, out))
    handler = _setup_logging(run, quiet)
    cache = _cache_for(recipe, run)
    ctx = RunContext(model_configs=recipe.model_configs, cache=cache, fresh=fresh, seed=recipe.seed, recipe=recipe)
    ctx.run_dir, ctx.executor = run, executor
    opts = recipe.output
    signature = {"recipe_hash": recipe.hash(), "limit": source.limit, "task": recipe.task_config.type}
    sink = ChunkSink(run, signature, fresh=fresh)
    for name, counts in sink.stats.items():  # counters of the rows already committed by a killed run
        ctx.stats[name] = ModelStats(**counts)
    total = source.count()
    log.info("run %s: %s rows streaming -> %s (chunks of %d)", recipe.name, total if total is not None else "?", run.root,
             opts.chunk_size)
    try:
        with Progress(quiet=quiet) as progress:
            bar = rows_bar(progress, f"{recipe.task_config.type} -> {sink.name}", total, sink.rows)
            t = time.perf_counter()
            if recipe.task_config.type == "label":
                from agentlab.stream.label import stream_label

                stream_label(ctx, task, source, sink, bar, gold_field, opts.chunk_size, opts.commit_seconds)
            else:
                from agentlab.stream.generate import LLMStream

                task.prepare(ctx)
                LLMStream(ctx, task, sink, bar, opts.chunk_size, opts.commit_seconds).run(
                    source.chunks(opts.chunk_size, skip=sink.rows), gold_field)
            bar.close()
            timings["task"] = time.perf_counter() - t
            cache.flush()
            sink.finish()
            if gold_field is not None and recipe.task_config.type == "label":
                t = time.perf_counter()
                ctx.metrics.update(task.evaluate(ctx, None))
                timings["eval"] = time.perf_counter() - t
        from agentlab.outputs import write_outputs

        timings["total"] = time.perf_counter() - t0
        write_outputs(ctx, recipe, task, sink.sample, timings, streamed=sink)
        log.info("done in %.1fs: %d rows in %d chunks", timings["total"], sink.rows, sink.chunks)
        return run.root
    finally:
        sink.close()
        cache.close()
        close_backends()
        executor.close()
        log.removeHandler(handler)
        handler.close()

