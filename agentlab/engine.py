"""The run context: backends (loaded once per process), cached calls, structured answers, accounting."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel

from agentlab.backends.base import Backend, ChatRequest, ChatResult, image_error
from agentlab.errors import ConfigError
from agentlab.progress import Progress
from agentlab.store import CallCache
from agentlab.structured import json_schema_of, parse_structured, retry_messages

log = logging.getLogger("agentlab")
_BACKENDS: dict[str, Backend] = {}  # one instance per identity per process
_BLOCK = threading.Lock()


@dataclass
class ModelStats:
    """Per-model counts written to the manifest."""

    llm_calls: int = 0
    cache_hits: int = 0
    repaired: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    #: what the answers served from the cache cost when they were made (so a resumed run can count its spend)
    cached_cost_usd: float = 0.0


@dataclass
class Answer:
    """A parsed answer: `value` (schema instance or text) or None with `error`; `raw` is what the model said."""

    value: Any
    raw: str | None
    error: str | None = None
    result: ChatResult | None = None
    repaired: bool = False


@dataclass
class RunConfig:
    """The run's static configuration: what was asked for, fixed before the first call."""

    model_configs: dict[str, Any]
    recipe: Any = None
    seed: int = 0
    fresh: bool = False  # ignore the call cache (answers are still written to it)
    budget_usd: float | None = None
    gold: list[Any] | None = None  # the gold column, split off the rows so no task or prompt sees it


@dataclass
class OutputsSink:
    """What the run reports besides its rows: the run directory and what goes into the manifest and report."""

    run_dir: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)
    classes: list[str] | None = None  # the label task's class names (for report views)


class CallService:
    """Backends (one per identity per process), the call cache, the executor, progress and per-model counters.

    Args:
        config: the run's static configuration (models, fresh).
        cache: the call cache.
        progress: where call progress bars go.
        executor: an :class:`agentlab.executors.Executor`; None = the local one.
    """

    def __init__(self, config: RunConfig, cache: CallCache, progress: Progress | None = None, executor: Any = None):
        self.config, self.cache, self.executor = config, cache, executor
        self.progress = progress if progress is not None else Progress(quiet=True)
        self.stats: dict[str, ModelStats] = {}

    @property
    def model_configs(self) -> dict[str, Any]:
        return self.config.model_configs

    @property
    def fresh(self) -> bool:
        return self.config.fresh

    def resolve_model(self, name: str | None) -> str:
        """Map `default`/None to the single configured model."""
        if name and name != "default" or (name == "default" and "default" in self.model_configs):
            if name not in self.model_configs:
                raise ConfigError(f"unknown model {name!r}; known: {', '.join(self.model_configs)}")
            return name
        if len(self.model_configs) == 1:
            return next(iter(self.model_configs))
        raise ConfigError(f"name a model; known: {', '.join(self.model_configs)}")

    def get_executor(self):
        """The run's executor (the local one unless the recipe or CLI chose another)."""
        if self.executor is None:
            from agentlab.config.sections import ExecutorConfig
            from agentlab.executors.local import LocalExecutor

            self.executor = LocalExecutor(ExecutorConfig())
        return self.executor

    def runs_embedded(self, name: str | None, any_gguf: bool = False) -> bool:
        """True when model `name` is the embedded backend on its shipped SmolLM2-135M (with `any_gguf`:
        on any GGUF file); tasks use it to add the caveat about what the small model cannot do."""
        cfg = self.model_configs.get(self.resolve_model(name))
        if cfg is None or cfg.backend != "embedded":
            return False
        return any_gguf or getattr(cfg, "model_path", None) is None

    def backend(self, name: str | None) -> Backend:
        """The backend for a model name, created once per process (and executor) and reused."""
        name = self.resolve_model(name)
        cfg = self.model_configs[name]
        executor = self.get_executor()
        # in-process lookup key: includes secrets (so two keys never share a client); never written anywhere
        key = executor.name + json.dumps(cfg.model_dump(), sort_keys=True, default=lambda o: getattr(o, "get_secret_value", lambda: str(o))())
        with _BLOCK:
            if key not in _BACKENDS:
                _BACKENDS[key] = executor.make_backend(cfg)
            return _BACKENDS[key]

    def call(self, model: str | None, requests: list[ChatRequest], desc: str = "calls",
             count_failed: bool = True) -> list[ChatResult]:
        """Answer requests through the cache; misses go to the backend in batches, cached as they complete.

        Results that are errors count as `failed` in the model's stats (`count_failed=False` when the
        caller counts failures itself, as `complete` does after parsing and retrying).
        """
        name = self.resolve_model(model)
        backend = self.backend(name)
        stats = self.stats.setdefault(name, ModelStats())
        ident = backend.identity()
        keys = [r.cache_key(ident) for r in requests]
        hits = {} if self.fresh else self.cache.get_many(keys)
        results: list[ChatResult | None] = [None] * len(requests)
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            if k in hits:
                results[i] = ChatResult.model_validate({**hits[k], "cached": True})
            elif requests[i].has_images() and "images" not in backend.capabilities:
                results[i] = ChatResult(error=image_error(self.model_configs[name].backend))
            else:
                todo.setdefault(k, []).append(i)
        bar = self.progress.task(f"{desc} [{name}]", total=len(requests))
        n_cached = sum(1 for r in results if r is not None and r.cached)
        stats.cache_hits += n_cached
        stats.cached_cost_usd += sum(hits[k].get("cost_usd") or 0.0 for k in set(keys) if k in hits)
        bar.advance(len(requests) - sum(len(v) for v in todo.values()), cached=n_cached,
                    failed=sum(1 for r in results if r is not None and not r.cached))
        order = list(todo)
        if order:
            self._send(backend, stats, order, [requests[todo[k][0]] for k in order], todo, results, bar)
        bar.close()
        if count_failed:
            stats.failed += sum(1 for r in results if r is not None and not r.ok)
        return results  # type: ignore[return-value]

    def _send(self, backend, stats, keys, reqs, todo, results, bar) -> None:
        def done(j: int, res: ChatResult) -> None:
            k = keys[j]
            stats.llm_calls += 1
            stats.prompt_tokens += res.prompt_tokens
            stats.completion_tokens += res.completion_tokens
            stats.cost_usd += res.cost_usd
            if res.ok:
                self.cache.put(k, res.model_dump(mode="json", exclude={"cached"}))
            for i in todo[k]:
                results[i] = res
            bar.advance(len(todo[k]), failed=0 if res.ok else len(todo[k]),
                        tokens=res.prompt_tokens + res.completion_tokens, cost=res.cost_usd)

        seen: set[int] = set()

        def on_result(j: int, res: ChatResult) -> None:
            if j not in seen:
                seen.add(j)
                done(j, res)

        t0 = time.perf_counter()
        executor = self.get_executor()
        lost = "the executor reported no result for this call"
        try:  # the executor batches the misses (locally, or over Ray actors) and reports each result
            executor.generate(backend, reqs, on_result)
        except ConfigError:  # the executor cannot run at all (no Ray cluster at that address): stop the run
            raise
        except Exception as exc:  # an executor that cannot finish: the unanswered calls become error data
            log.exception("executor %s failed", executor.name)
            lost = f"{type(exc).__name__}: {exc}"
        for j in range(len(reqs)):
            if j not in seen:
                on_result(j, ChatResult(error=lost))
        log.debug("%d calls in %.2fs on the %s executor", len(reqs), time.perf_counter() - t0, executor.name)

    def complete(self, model: str | None, requests: list[ChatRequest], schema: type[BaseModel] | None = None,
                 desc: str = "calls") -> list[Answer]:
        """Call and parse. With a schema: constrain, repair, retry once with the error, else record the failure."""
        name = self.resolve_model(model)
        stats = self.stats.setdefault(name, ModelStats())
        if schema is not None:
            js = json_schema_of(schema)
            requests = [r.model_copy(update={"json_schema": js}) for r in requests]
        results = self.call(name, requests, desc, count_failed=False)
        answers = [self._parse(res, schema) for res in results]
        retry = [i for i, a in enumerate(answers) if schema is not None and a.value is None and a.result is not None and a.result.ok]
        if retry:
            again = [requests[i].model_copy(update={"messages": retry_messages(requests[i].messages, answers[i].raw, answers[i].error or "", schema)}) for i in retry]
            for i, res in zip(retry, self.call(name, again, f"{desc} (retry)", count_failed=False)):
                fixed = self._parse(res, schema)
                if fixed.value is not None:
                    fixed.repaired = True
                    answers[i] = fixed
                else:
                    answers[i].error = f"unparsable after retry: {fixed.error}"
        for a in answers:
            stats.repaired += int(a.repaired)
            stats.failed += int(a.value is None)
        return answers

    @staticmethod
    def _parse(res: ChatResult, schema: type[BaseModel] | None) -> Answer:
        if not res.ok:
            return Answer(None, res.text, res.error, res)
        if schema is None:
            return Answer(res.text, res.text, None, res)
        value, repaired, err = parse_structured(res.text, schema)
        return Answer(value, res.text, err, res, repaired)

    def totals(self) -> dict[str, Any]:
        """Summed counts over models."""
        tot = ModelStats()
        for s in self.stats.values():
            for k, v in asdict(s).items():
                setattr(tot, k, getattr(tot, k) + v)
        return asdict(tot)


_PARTS = {"config": ("model_configs", "recipe", "seed", "fresh", "budget_usd", "gold"),
          "calls": ("cache", "executor", "progress", "stats"),
          "outputs": ("run_dir", "metrics", "report", "artifacts", "prompts", "caveats", "classes")}


def _delegate(part: str, name: str) -> property:
    return property(lambda self: getattr(getattr(self, part), name), lambda self, v: setattr(getattr(self, part), name, v),
                    doc=f"`{part}.{name}`")


class RunContext:
    """What tasks and stages use, in three parts: `config` (:class:`RunConfig`, static), `calls`
    (:class:`CallService`: backends, cache, executor, progress, counters) and `outputs` (:class:`OutputsSink`:
    run directory, metrics, report, artifacts, prompt hashes, caveats).

    The flat attributes of earlier versions (`ctx.cache`, `ctx.run_dir`, `ctx.metrics`, ...) read and write
    the part that owns them, and the call methods (`call`, `complete`, `backend`, ...) are the call service's.
    """

    def __init__(self, model_configs: dict[str, Any], cache: CallCache, progress: Progress | None = None,
                 fresh: bool = False, seed: int = 0, recipe: Any = None, stats: dict[str, ModelStats] | None = None,
                 budget_usd: float | None = None, run_dir: Any = None, gold: list[Any] | None = None, executor: Any = None,
                 metrics: dict[str, Any] | None = None, report: list[str] | None = None,
                 artifacts: dict[str, str] | None = None, prompts: dict[str, str] | None = None,
                 caveats: list[str] | None = None):
        self.config = RunConfig(model_configs, recipe, seed, fresh, budget_usd, gold)
        self.calls = CallService(self.config, cache, progress, executor)
        if stats:
            self.calls.stats.update(stats)
        self.outputs = OutputsSink(run_dir, metrics or {}, report or [], artifacts or {}, prompts or {}, caveats or [])

    def __repr__(self) -> str:
        return f"RunContext(config={self.config!r}, outputs={self.outputs!r})"

    def with_seed(self, seed: int) -> RunContext:
        """The same run under another seed (e.g. one of several samples): the call service and outputs are shared."""
        import dataclasses

        other = object.__new__(RunContext)
        other.__dict__.update(self.__dict__)
        other.config = dataclasses.replace(self.config, seed=seed)
        return other

    def load_prompt(self, path: str):
        """Load a template named in the recipe and record its hash for the manifest."""
        from agentlab.prompts import load_prompt

        resolved = self.recipe.resolve(path) if self.recipe is not None else path
        prompt = load_prompt(resolved)
        self.prompts[str(path)] = prompt.hash
        return prompt

    def __getattr__(self, name: str) -> Any:  # call methods (call, complete, backend, totals, ...) are the service's
        if name in ("calls", "config", "outputs"):
            raise AttributeError(name)
        return getattr(self.calls, name)


for _part, _names in _PARTS.items():
    for _name in _names:
        setattr(RunContext, _name, _delegate(_part, _name))
RunContext._parse = staticmethod(CallService._parse)


def close_backends() -> None:
    """Close every backend created in this process."""
    with _BLOCK:
        for b in _BACKENDS.values():
            try:
                b.close()
            except Exception:  # pragma: no cover
                log.debug("close failed", exc_info=True)
        _BACKENDS.clear()
