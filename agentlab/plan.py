"""`agentlab plan`: what a recipe will cost before it runs, with no backend call and nothing written to the run.

The task reports the calls it would make (:meth:`agentlab.tasks.base.Task.planned_calls`); the
planner looks them up in the run's call cache (read-only), counts their tokens with each model's
tokenizer where one is available (:mod:`agentlab.tokens`), prices them with the recipe's prices and
estimates the wall time under the backend's concurrency and rate limits.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlab.engine import RunContext
from agentlab.errors import AgentlabError, BackendUnavailable, ConfigError
from agentlab.store import CallCache, user_cache_dir
from agentlab.tokens import TokenCounter, completion_estimate, counter_for

# Wall-time assumptions (no call is made to measure them); written into plan.json.
ASSUME = {
    "embedded_prompt_tokens_per_s": 1500.0,  # SmolLM2-135M Q4 on 2 CPU cores; scaled down by GGUF size for other models
    "embedded_completion_tokens_per_s": 60.0,
    "embedded_reference_bytes": 104_000_000,
    "server_first_token_s": 0.5,  # per call on an OpenAI-compatible or other server
    "server_completion_tokens_per_s": 50.0,
}


class PlanContext(RunContext):
    """A run context that builds backends (for capabilities and cache identity) but refuses every call."""

    def backend(self, name):
        name = self.resolve_model(name)
        made = self.__dict__.setdefault("_made", {})
        if name not in made:
            from agentlab.backends.base import BACKENDS

            cfg = self.model_configs[name]
            cls = BACKENDS.get(cfg.backend)
            try:
                made[name] = cls(cfg)
            except BackendUnavailable as exc:  # e.g. no API key yet: plan anyway, without a cache identity
                made[name] = _Unbuilt(cls, cfg, str(exc))
        return made[name]

    def call(self, *args, **kwargs):  # pragma: no cover - a task's planned_calls must not call
        raise AgentlabError("internal error: a task made an LLM call while planning")

    complete = call

    def close(self) -> None:
        """Close the backends built for planning (none was called)."""
        for b in self.__dict__.get("_made", {}).values():
            b.close()


class _Unbuilt:
    """Stands in for a backend that cannot be built here: its class's capabilities, no identity."""

    def __init__(self, cls, config, why: str):
        self.capabilities, self.config, self.why = cls.capabilities, config, why

    def identity(self):
        return None

    def close(self) -> None:
        pass


@dataclass
class _ModelTally:
    calls: int = 0
    cached: float = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tpm_tokens: int = 0
    all_prompt_tokens: int = 0
    all_completion_tokens: int = 0
    estimated_cache: bool = False
    upper_bound: bool = False
    completion_from: set[str] = field(default_factory=set)
    exact_calls: int = 0
    exact_cached: int = 0


def cache_path(recipe, run_dir: Path) -> Path | None:
    """Where the run's call cache lives (None when caching is off)."""
    if recipe.output.cache == "none":
        return None
    if recipe.output.cache == "user":
        return user_cache_dir() / "calls.sqlite"
    return run_dir / "cache.sqlite"


def _cached_keys(path: Path | None, keys: list[str]) -> set[str]:
    """Keys present in the cache file, read without writing anything (immutable unless a WAL is pending)."""
    if path is None or not path.is_file() or not keys:
        return set()
    mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
    db = sqlite3.connect(f"file:{path}?{mode}", uri=True)
    try:
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            q = f"SELECT key FROM calls WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(k for (k,) in db.execute(q, chunk))
        return found
    except sqlite3.DatabaseError:  # not a cache file (or no table yet): nothing cached
        return set()
    finally:
        db.close()


def make_plan(recipe, out: str | None = None, limit: int | None = None, fresh: bool = False) -> dict[str, Any]:
    """The plan of `generate` with the same arguments: calls, cache hits, tokens, cost and wall time per model."""
    from agentlab.runner import _split_gold, run_dir_for
    from agentlab.sources import load_rows
    from agentlab.tasks.base import TASKS

    task = TASKS.get(recipe.task_config.type)(recipe.task_config)
    rows = load_rows(recipe.source, recipe.resolve(recipe.source.path), limit)
    if not rows:
        raise ConfigError(f"source {recipe.source.path!r} has no rows")
    gold = _split_gold(recipe, rows)
    run_dir = run_dir_for(recipe, out)
    ctx = PlanContext(model_configs=recipe.model_configs, cache=CallCache(None), seed=recipe.seed, recipe=recipe)
    ctx.gold = gold
    try:
        groups = task.planned_calls(ctx, rows)
        cpath = None if fresh else cache_path(recipe, run_dir)
        plan = {"recipe": recipe.name, "recipe_hash": recipe.hash(), "task": recipe.task_config.type, "rows": len(rows),
                "run_dir": str(run_dir), "cache": str(cpath) if cpath else None, "fresh": fresh}
        if groups is None:
            plan.update(planned=False, models={}, stages=[], totals=None,
                        notes=[f"task {recipe.task_config.type!r} does not report its calls ahead; run it with --limit to measure"])
            return plan
        plan.update(planned=True, **_tally(ctx, groups, cpath))
        return plan
    finally:
        ctx.close()


def _tally(ctx: PlanContext, groups: list, cpath: Path | None) -> dict[str, Any]:
    tallies: dict[str, _ModelTally] = {}
    counters: dict[str, TokenCounter] = {}
    seen: dict[str, set[str]] = {}
    stages = []
    for g in groups:
        name = ctx.resolve_model(g.model)
        t = tallies.setdefault(name, _ModelTally())
        counter = counters.get(name) or counters.setdefault(name, counter_for(ctx.model_configs[name]))
        ident = ctx.backend(name).identity()
        stage = {"model": name, "desc": g.desc, "calls": g.calls, "exact": g.exact, "upper_bound": g.upper_bound}
        if g.exact and ident is not None:
            todo = _exact(t, g, counter, ident, cpath, seen.setdefault(name, set()))
            stage["calls"] = g.calls  # deduplicated
            stage["cached"] = g.calls - todo
        else:
            _estimated(t, g, counter)
            stage["cached"] = None
        t.upper_bound |= g.upper_bound
        stages.append(stage)
    models = {name: _model_entry(ctx, name, t, counters[name]) for name, t in tallies.items()}
    keys = ("calls", "cached", "to_call", "prompt_tokens", "completion_tokens", "cost_usd", "wall_time_s")
    totals = {k: round(sum(m[k] for m in models.values()), 6) for k in keys}
    totals["all_calls_cost_usd"] = round(sum(m["all_calls"]["cost_usd"] for m in models.values()), 6)
    return {"models": models, "stages": stages, "totals": totals, "assumptions": ASSUME,
            "notes": _notes(models, stages)}


def _exact(t: _ModelTally, g, counter: TokenCounter, ident: dict, cpath: Path | None, seen: set[str]) -> int:
    """Tally exact requests (deduplicated as the engine does); returns how many are still to call."""
    distinct: dict[str, Any] = {}
    for r in g.requests:
        distinct.setdefault(r.cache_key(ident), r)
    hits = _cached_keys(cpath, [k for k in distinct if k not in seen])
    todo = 0
    for key, req in distinct.items():
        p = counter.count_prompt(req.messages)
        c, how = completion_estimate(req, counter)
        t.completion_from.add(how)
        t.all_prompt_tokens += p
        t.all_completion_tokens += c
        cached = key in seen or key in hits
        if not cached:
            todo += 1
            t.prompt_tokens += p
            t.completion_tokens += c
            t.tpm_tokens += p + req.max_tokens
        seen.add(key)
    n = len(distinct)
    g.requests = list(distinct.values())  # the stage's call count is the deduplicated one
    t.calls += n
    t.cached += n - todo
    t.exact_calls += n
    t.exact_cached += n - todo
    return todo


def _estimated(t: _ModelTally, g, counter: TokenCounter) -> None:
    """Tally calls built from earlier answers: prompts counted on stand-ins plus `added_prompt_tokens`;
    assumed cached in the same proportion as this model's exact calls so far."""
    n = g.calls
    prompt = sum(counter.count_prompt(r.messages) for r in g.requests) * g.repeat + g.added_prompt_tokens * n
    comps = [completion_estimate(r, counter) for r in g.requests]
    completion = sum(c for c, _ in comps) * g.repeat
    t.completion_from.update(how for _, how in comps)
    frac = t.exact_cached / t.exact_calls if t.exact_calls else 0.0
    t.calls += n
    t.cached += n * frac
    t.estimated_cache = True
    t.all_prompt_tokens += prompt
    t.all_completion_tokens += completion
    t.prompt_tokens += round(prompt * (1 - frac))
    t.completion_tokens += round(completion * (1 - frac))
    t.tpm_tokens += round((prompt + sum(r.max_tokens for r in g.requests) * g.repeat) * (1 - frac))


def _cost(cfg, prompt: int, completion: int) -> float:
    return round((prompt * cfg.price_per_1k_input + completion * cfg.price_per_1k_output) / 1000, 6)


def _model_entry(ctx: PlanContext, name: str, t: _ModelTally, counter: TokenCounter) -> dict[str, Any]:
    cfg = ctx.model_configs[name]
    cached = round(t.cached)
    to_call = t.calls - cached
    wall, bound = wall_time(cfg, to_call, t.prompt_tokens, t.completion_tokens, t.tpm_tokens)
    backend = ctx.backend(name)
    entry = {
        "backend": cfg.backend, "model": getattr(cfg, "model", None) or getattr(cfg, "model_path", None) or "SmolLM2-135M-Instruct",
        "calls": t.calls, "cached": cached, "to_call": to_call,
        "cache_lookup": "unavailable" if isinstance(backend, _Unbuilt) else "estimated for calls built from earlier answers" if t.estimated_cache else "exact",
        "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
        "tokenizer": counter.method, "completion_tokens_from": sorted(t.completion_from),
        "price_per_1k_input": cfg.price_per_1k_input, "price_per_1k_output": cfg.price_per_1k_output,
        "cost_usd": _cost(cfg, t.prompt_tokens, t.completion_tokens),
        "wall_time_s": round(wall, 1), "wall_time_bound": bound, "upper_bound": t.upper_bound,
        "all_calls": {"prompt_tokens": t.all_prompt_tokens, "completion_tokens": t.all_completion_tokens,
                      "cost_usd": _cost(cfg, t.all_prompt_tokens, t.all_completion_tokens)},
    }
    if isinstance(backend, _Unbuilt):
        entry["unavailable"] = backend.why
    return entry


def wall_time(cfg, calls: int, prompt: int, completion: int, tpm_tokens: int) -> tuple[float, str]:
    """(seconds, what bounds it) for `calls` calls on one model under its concurrency and rate limits."""
    if calls == 0:
        return 0.0, "nothing to call"
    if cfg.backend == "embedded":  # in-process and one call at a time: compute-bound
        scale = 1.0
        path = getattr(cfg, "model_path", None)
        if path and Path(path).expanduser().is_file():
            scale = max(1.0, Path(path).expanduser().stat().st_size / ASSUME["embedded_reference_bytes"])
        secs = (prompt / ASSUME["embedded_prompt_tokens_per_s"] + completion / ASSUME["embedded_completion_tokens_per_s"]) * scale
        return secs, "embedded compute (one call at a time)"
    latency = calls * ASSUME["server_first_token_s"] + completion / ASSUME["server_completion_tokens_per_s"]
    in_flight = getattr(cfg, "max_in_flight", None) or getattr(cfg, "max_concurrency", None) or getattr(cfg, "batch_size", None) or 1
    bounds = {f"max_in_flight={in_flight}": latency / in_flight}
    rpm, tpm = getattr(cfg, "requests_per_minute", None), getattr(cfg, "tokens_per_minute", None)
    if rpm:
        bounds[f"requests_per_minute={rpm:g}"] = calls / rpm * 60
    if tpm:
        bounds[f"tokens_per_minute={tpm:g}"] = tpm_tokens / tpm * 60
    bound = max(bounds, key=bounds.get)
    return bounds[bound], bound


def _notes(models: dict[str, Any], stages: list[dict[str, Any]]) -> list[str]:
    notes = ["Retries (unparsable answers, transport errors) are not counted.",
             "Wall time is an estimate from the assumptions below; no call was made to measure it."]
    if any(not s["exact"] for s in stages):
        notes.append("Some calls are built from earlier answers (debate turns, escalation): their prompt tokens include "
                     "max_tokens for each earlier turn (an upper bound), and whether they are cached is estimated.")
    if any(m["upper_bound"] for m in models.values()):
        notes.append("Escalation and follow-up calls are counted at their maximum.")
    for name, m in models.items():
        if "unavailable" in m:
            notes.append(f"model {name}: {m['unavailable']} (cache not checked)")
    return notes


def default_plan_path(run_dir: Path) -> Path:
    """Beside the run directory, never inside it: `outputs/<name>.plan.json`."""
    return run_dir.with_name(run_dir.name + ".plan.json")


def write_plan(plan: dict[str, Any], path: Path) -> Path:
    """Write plan.json (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    return path


def render_plan(plan: dict[str, Any]) -> str:
    """A plain-text table of the plan for the terminal."""
    lines = [f"Plan for {plan['recipe']} (task {plan['task']}): {plan['rows']} rows; cache: {plan['cache'] or 'none'}"]
    if not plan["planned"]:
        return "\n".join(lines + plan["notes"])
    head = f"{'model':<14} {'calls':>7} {'cached':>7} {'to call':>8} {'prompt tok':>11} {'compl tok':>10} {'cost $':>9} {'time':>9}  tokenizer"
    lines += ["", head, "-" * len(head)]
    for name, m in plan["models"].items():
        more = "≤" if m["upper_bound"] else ""
        lines.append(f"{name:<14} {more + str(m['calls']):>7} {m['cached']:>7} {m['to_call']:>8} {m['prompt_tokens']:>11} "
                     f"{m['completion_tokens']:>10} {m['cost_usd']:>9.4f} {_dur(m['wall_time_s']):>9}  {m['tokenizer']}")
    t = plan["totals"]
    lines.append(f"{'total':<14} {t['calls']:>7} {t['cached']:>7} {t['to_call']:>8} {t['prompt_tokens']:>11} "
                 f"{t['completion_tokens']:>10} {t['cost_usd']:>9.4f} {_dur(t['wall_time_s']):>9}")
    return "\n".join(lines + [""] + [f"- {n}" for n in plan["notes"]])


def _dur(s: float) -> str:
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.1f}min" if s < 7200 else f"{s / 3600:.1f}h"


def check_cost(recipe, max_cost_usd: float, out: str | None = None, limit: int | None = None, fresh: bool = False) -> dict[str, Any]:
    """Plan the run and raise ConfigError (nothing written) when its estimated cost exceeds `max_cost_usd`."""
    plan = make_plan(recipe, out=out, limit=limit, fresh=fresh)
    if not plan["planned"]:
        raise ConfigError(f"--max-cost-usd: task {plan['task']!r} cannot estimate its calls ahead, so the cost cannot be "
                          "checked; run without --max-cost-usd (try --limit first)")
    cost = plan["totals"]["cost_usd"]
    if cost > max_cost_usd:
        per = ", ".join(f"{n}: {m['to_call']} calls, ${m['cost_usd']:.4f}" for n, m in plan["models"].items() if m["to_call"])
        raise ConfigError(f"the plan estimates ${cost:.4f}, more than --max-cost-usd {max_cost_usd:g} ({per}); "
                          "nothing was run. See `agentlab plan` for the details, or raise the limit")
    return plan
