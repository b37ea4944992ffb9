"""Run a recipe end to end: load -> task -> (distill) -> eval -> outputs."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from agentlab.engine import RunContext, close_backends
from agentlab.errors import AgentlabError, ConfigError
from agentlab.preflight import preflight
from agentlab.progress import Progress
from agentlab.recipe import Recipe
from agentlab.sources import load_rows
from agentlab.store import CallCache, RunDir, user_cache_dir

log = logging.getLogger("agentlab")


def run_dir_for(recipe: Recipe, out: str | None) -> Path:
    """`-o` if given, else `output.dir`, else `outputs/<name>`."""
    return Path(out or recipe.output.dir or Path("outputs") / recipe.name)


def _setup_logging(run: RunDir, quiet: bool) -> logging.Handler:
    handler = logging.FileHandler(run.path("run.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _cache_for(recipe: Recipe, run: RunDir) -> CallCache:
    if recipe.output.cache == "none":
        return CallCache(None)
    if recipe.output.cache == "user":
        return CallCache(user_cache_dir() / "calls.sqlite")
    return CallCache(run.path("cache.sqlite"))


def run_recipe(recipe: Recipe, out: str | None = None, limit: int | None = None, fresh: bool = False,
               quiet: bool = False, executor: str | None = None, address: str | None = None) -> Path:
    """Run `recipe`; return the run directory. Nothing is written before the inputs load cleanly."""
    from agentlab.tasks.base import TASKS

    runner = _executor_for(recipe, executor, address)
    task = TASKS.get(recipe.task_config.type)(recipe.task_config)
    from agentlab.stream.run import run_streaming, streams

    if streams(task, recipe):  # rows read in chunks and written to data.jsonl as they finish
        return run_streaming(recipe, task, runner, out=out, limit=limit, fresh=fresh, quiet=quiet)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rows = load_rows(recipe.source, recipe.resolve(recipe.source.path), limit)
    timings["load"] = time.perf_counter() - t0
    gold = _split_gold(recipe, rows)
    ctx = RunContext(model_configs=recipe.model_configs, cache=CallCache(None), fresh=fresh, seed=recipe.seed, recipe=recipe)
    preflight(recipe, task, ctx, rows)  # everything that can fail on the inputs fails here, before anything is written
    created = not run_dir_for(recipe, out).exists()
    run = RunDir(run_dir_for(recipe, out))
    handler = _setup_logging(run, quiet)
    cache = _cache_for(recipe, run)
    ctx.cache, ctx.run_dir, ctx.gold, ctx.executor = cache, run, gold, runner
    discard, in_task = False, True
    log.info("run %s: %d rows -> %s", recipe.name, len(rows), run.root)
    try:
        with Progress(quiet=quiet) as progress:
            ctx.progress = progress
            t = time.perf_counter()
            out_rows = task.run(ctx, rows)
            in_task = False
            timings["task"] = time.perf_counter() - t
            if not task.changes_rows and len(out_rows) != len(rows):  # a task must never drop or add rows silently
                raise ConfigError(f"task {recipe.task_config.type} returned {len(out_rows)} rows for {len(rows)}")
            if not task.changes_rows:  # rows no longer line up with gold: such a task writes its own `gold`
                for row, g in zip(out_rows, gold or []):
                    row["gold"] = g
            if gold is not None:
                t = time.perf_counter()
                ctx.metrics.update(task.evaluate(ctx, out_rows))
                timings["eval"] = time.perf_counter() - t
            from agentlab.outputs import write_outputs

            if recipe.distill is not None and not task.handles_distill:  # e.g. queries trains its own retrievers
                from agentlab.distill.stage import run_distill

                timings["total"] = time.perf_counter() - t0
                write_outputs(ctx, recipe, task, out_rows, timings)  # labels are safe even if training fails
                t = time.perf_counter()
                run_distill(ctx, recipe, out_rows, timings)
                timings["distill"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        write_outputs(ctx, recipe, task, out_rows, timings)
        log.info("done in %.1fs", timings["total"])
        return run.root
    except AgentlabError:
        # an input problem the task found only once it ran (e.g. in a debate template): when no call was made,
        # the run directory this command created holds only a log and an empty cache, so leave nothing behind
        discard = in_task and created and not any(s.llm_calls for s in ctx.stats.values())
        raise
    finally:
        cache.close()
        close_backends()
        runner.close()
        log.removeHandler(handler)
        handler.close()
        if discard:
            shutil.rmtree(run.root, ignore_errors=True)


def _executor_for(recipe: Recipe, name: str | None, address: str | None):
    """The recipe's executor with the command line's `--executor` / `--address` applied (Ray is checked here)."""
    from agentlab.executors import make_executor

    cfg = recipe.executor.model_copy(update={k: v for k, v in (("type", name), ("address", address)) if v})
    if cfg.type == "local" and cfg.address:
        raise ConfigError(f"--address {cfg.address} is a Ray cluster address; add --executor ray")
    return make_executor(cfg)


def _split_gold(recipe: Recipe, rows: list[dict[str, Any]]) -> list[Any] | None:
    """Move the gold column out of the rows so no task (or prompt) can see it."""
    if recipe.eval is None or not recipe.eval.gold:
        return None
    field = recipe.eval.gold
    if field not in rows[0]:
        from agentlab.errors import RecipeError, RecipeErrors

        raise RecipeErrors([RecipeError("eval.gold", f"column not in {Path(recipe.source.path).name}", field,
                                        f"use one of: {', '.join(sorted(rows[0]))}")])
    return [r.pop(field) for r in rows]
