"""The ``ray`` executor: a run's LLM calls on a Ray cluster, through Ray Data ``map_batches`` over an actor pool.

Each call the engine could not answer from the cache becomes one row of a Ray Dataset (the request as
JSON). ``map_batches`` runs a fixed pool of ``replicas`` actors; each actor builds **one** backend from
the model's config when it starts (so a model loads once per actor, e.g. one vLLM engine per GPU) and
answers one batch of ``batch_size`` requests at a time. Finished batches stream back to the driver
(``iter_batches``), where the engine commits every result to the call cache, counts it and advances
the one progress bar, exactly as for a local run: same cache keys, same outputs, same manifest.

Faults: a lost actor (process crash, node loss) is restarted by Ray and its batch retried, up to
``max_restarts`` times; results reach the engine once per request whatever the retries (the engine
ignores repeats). When Ray gives up, the batches not yet answered become error results, counted and
logged, never dropped. A killed driver loses only the batches in flight or not yet received (a few
per actor): every batch already returned is in the cache, and a re-run skips it.

Rate limits: a backend's requests/tokens-per-minute budget (the ``openai`` backend's) is one Ray actor
holding a token bucket, shared by every actor of the run, so the budget is global, not per actor.

``ray`` is imported only when a batch runs; without it the executor is a ``ConfigError`` naming the extra.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any

from agentlab.backends.aio import TokenBucket
from agentlab.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    ChatRequest,
    ChatResult,
    OnResult,
)
from agentlab.config.sections import ExecutorConfig
from agentlab.errors import BackendError, BackendUnavailable, ConfigError
from agentlab.executors import EXECUTORS, Executor

log = logging.getLogger("agentlab")
NOT_INSTALLED = "the ray executor needs Ray, which is not installed: pip install 'agentlab[ray]'"


def ray_installed() -> bool:
    """True when Ray Data and its dependencies are installed (checked without importing Ray: that takes seconds)."""
    spec = importlib.util.find_spec("ray")
    if spec is None or importlib.util.find_spec("pyarrow") is None:
        return False
    return any((Path(loc) / "data").is_dir() for loc in spec.submodule_search_locations or [])


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Answer the engine's cache misses with a Ray Data actor pool; see the module docstring."""

    name = "ray"

    def __init__(self, config: ExecutorConfig):
        super().__init__(config)
        if not ray_installed():
            raise ConfigError(NOT_INSTALLED)
        self._started = False  # we called ray.init, so close() shuts it down
        self._limiters: dict[str, dict[str, Any]] = {}
        self._nodes: int | None = None
        self._restarted: set[str] = set()  # actors Ray restarted after losing them (their batches were retried)

    # -- setup ---------------------------------------------------------------------------------------------
    def connect(self) -> Any:
        """Join the configured cluster (or start a local Ray) unless this process already did; return `ray`."""
        import ray

        if not ray.is_initialized():
            log.info("ray: %s", f"joining {self.config.address}" if self.config.address else "starting a local instance")
            try:
                ray.init(address=self.config.address, runtime_env=self.config.runtime_env or None, include_dashboard=False,
                         logging_level=logging.WARNING, namespace="agentlab")
            except Exception as exc:  # no cluster there, bad runtime_env, ...: a setting to fix, not per-row errors
                where = f"join the Ray cluster at {self.config.address!r}" if self.config.address else "start a local Ray instance"
                raise ConfigError(f"could not {where}: {_short(exc).rstrip('.')}. Fix executor.address / --address "
                                  "(`auto` needs `ray start` on this node)") from None
            self._started = True
        if self._nodes is None:
            self._nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        from ray.data import DataContext

        data = DataContext.get_current()
        data.enable_progress_bars = False  # the engine's bar counts rows from every worker
        data.print_on_execution_start = False
        _quiet_ray_data()
        return ray

    def make_backend(self, config: BackendConfig) -> Backend:
        """The backend here when it can be built here, else a stand-in described by a Ray worker.

        The driver needs only the backend's identity (cache keys) and capabilities; a head node without
        a GPU cannot build a vllm backend, but the GPU workers can.
        """
        try:
            return super().make_backend(config)
        except BackendUnavailable as here:
            ray = self.connect()
            probe = ray.remote(_describe).options(**self._resources(config))
            try:
                ident, caps, batch, limits = ray.get(probe.remote(_shippable(config, self.config.num_cpus)), timeout=900)
            except Exception as exc:
                raise BackendUnavailable(f"{here} (and on the Ray workers: {_short(exc)})") from None
            log.info("ray: %s backend unavailable here (%s); described by a worker", config.backend, here)
            return RemoteBackend(config, ident, frozenset(caps), batch, limits)

    def _resources(self, model: BackendConfig) -> dict[str, float]:
        """What each actor reserves; warns when the cluster has less right now (Ray waits, e.g. for an autoscaler)."""
        gpus = self.config.num_gpus
        if gpus is None:  # one engine per actor holds tensor_parallel_size GPUs
            gpus = float(getattr(model, "tensor_parallel_size", 0) or 0)
        import ray

        have = ray.cluster_resources()
        for kind, need in (("CPU", self.config.num_cpus), ("GPU", gpus)):
            if need > have.get(kind, 0):
                log.warning("ray: each actor needs %g %s but the cluster has %g now; Ray waits until a node can host it "
                            "(set executor.num_%ss)", need, kind, have.get(kind, 0), kind.lower())
        return {"num_cpus": self.config.num_cpus, "num_gpus": gpus}

    def _shared_limits(self, backend: Backend) -> dict[str, Any]:
        """One token-bucket actor per rate limit of this model, created once per run and shared by all its actors."""
        limits = backend.rate_limits()
        if not limits:
            return {}
        key = repr(sorted(backend.identity().items())) + repr(sorted(limits.items()))
        if key not in self._limiters:
            ray = self.connect()
            actor = ray.remote(num_cpus=0)(Limiter)
            self._limiters[key] = {kind: actor.remote(rate) for kind, rate in limits.items()}
        return self._limiters[key]

    # -- the work ------------------------------------------------------------------------------------------
    def generate(self, backend: Backend, requests: list[ChatRequest], on_result: OnResult) -> None:
        """Run the requests as a Ray Dataset through the actor pool; report each batch as it completes."""
        self.connect()
        from ray.data import ActorPoolStrategy

        batch = self.config.batch_size
        blocks = max(1, math.ceil(len(requests) / batch))
        items = [{"i": i, "request": r.model_dump_json()} for i, r in enumerate(requests)]
        ds = _from_items(items, blocks)
        shipped = _shippable(backend.config, self.config.num_cpus)
        kwargs = dict(fn_constructor_kwargs={"config": shipped, "limits": self._shared_limits(backend)},
                      batch_size=batch, batch_format="numpy", compute=ActorPoolStrategy(size=min(self.config.replicas, blocks)),
                      **self._resources(backend.config))
        with warnings.catch_warnings():  # Ray 2.5x deprecates **ray_remote_args; retries have no named parameter yet
            warnings.simplefilter("ignore")
            try:
                out = ds.map_batches(Worker, max_restarts=self.config.max_restarts,
                                     max_task_retries=self.config.max_restarts, **kwargs)
            except TypeError:  # a Ray without **ray_remote_args: its default retries lost actors without bound
                out = ds.map_batches(Worker, **kwargs)
        log.info("ray: %d calls in %d batches on %d actor(s)", len(requests), blocks, min(self.config.replicas, blocks))
        restarted = len(self._restarted)
        batches = iter(out.iter_batches(batch_size=None, batch_format="numpy"))
        while True:
            try:
                got = next(batches)
            except StopIteration:
                break
            except Exception as exc:  # Ray gave up (retries spent, cluster gone): the engine records the rest as errors
                raise BackendError(f"Ray could not finish the calls (after up to {self.config.max_restarts} restarts "
                                   f"per actor): {_short(exc)}") from exc
            self._restarted.update(a for a in got["restarted"] if a)
            for i, text in zip(got["i"], got["result"]):
                on_result(int(i), ChatResult.model_validate_json(text))
        if len(self._restarted) > restarted:
            log.warning("ray: %d actor(s) were lost and restarted; Ray retried their batches", len(self._restarted) - restarted)

    def describe(self) -> dict[str, Any]:
        from importlib import metadata

        out: dict[str, Any] = {"type": self.name, **self.config.model_dump(exclude={"type", "runtime_env"})}
        out["runtime_env"] = sorted(self.config.runtime_env)  # keys only: env_vars may hold secrets
        out["ray_version"] = metadata.version("ray")
        if self._nodes is not None:
            out["nodes"] = self._nodes
        out["restarted_actors"] = len(self._restarted)
        return out

    def close(self) -> None:
        limiters, self._limiters = self._limiters, {}
        if not (limiters or self._started):
            return
        import ray

        if self._started:
            ray.shutdown()
            self._started = False
        elif ray.is_initialized():
            for actors in limiters.values():
                for actor in actors.values():
                    ray.kill(actor)


class Worker:
    """The Ray Data UDF: one backend per actor, built from the model config when the actor starts.

    Args:
        config: the model's backend config.
        limits: shared token buckets (``Limiter`` actor handles) by kind, for the backend's rate limits.
    """

    def __init__(self, config: BackendConfig, limits: dict[str, Any] | None = None):
        import ray

        here = ray.get_runtime_context()
        with warnings.catch_warnings():  # Ray's own property uses its deprecated `actor_id` inside
            warnings.simplefilter("ignore")
            self.restarted = here.get_actor_id() if here.was_current_actor_reconstructed else ""
        if self.restarted:
            log.warning("actor %s restarted after a loss; retrying its batch", self.restarted)
        self.backend = BACKENDS.get(config.backend)(config)
        if limits:
            self.backend.share_limits({kind: RemoteBucket(handle) for kind, handle in limits.items()})

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Answer one batch; a backend that raises turns into per-row error results, never lost rows."""
        import numpy as np

        requests = [ChatRequest.model_validate_json(text) for text in batch["request"]]
        try:
            out = self.backend.generate(requests)
        except Exception as exc:
            log.exception("backend %s failed on a batch", type(self.backend).__name__)
            out = [ChatResult(error=f"{type(exc).__name__}: {exc}") for _ in requests]
        return {"i": batch["i"], "result": np.array([r.model_dump_json() for r in out], dtype=object),
                "restarted": np.array([self.restarted] * len(out), dtype=object)}

    def __del__(self) -> None:
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()


class Limiter:
    """A token bucket in one Ray actor (async, so waiting callers do not block the others)."""

    def __init__(self, rate_per_minute: float):
        self.bucket = TokenBucket(rate_per_minute)

    async def take(self, n: float = 1.0) -> None:
        """Wait until `n` tokens are available in the shared budget."""
        await self.bucket.take(n)

    async def give(self, n: float) -> None:
        """Return unused tokens (negative: charge more)."""
        self.bucket.give(n)


class RemoteBucket:
    """The worker-side face of a ``Limiter`` actor, with TokenBucket's interface (``await take``, ``give``)."""

    def __init__(self, handle: Any):
        self.handle = handle

    async def take(self, n: float = 1.0) -> None:
        await self.handle.take.remote(n)

    def give(self, n: float) -> None:
        self.handle.give.remote(n)  # fire and forget: a refund need not hold up the call


class RemoteBackend(Backend):
    """The driver's stand-in for a backend only the Ray workers can build: identity and capabilities, no answers."""

    def __init__(self, config: BackendConfig, identity: dict[str, Any], capabilities: frozenset[str], batch_size: int,
                 limits: dict[str, float]):
        super().__init__(config)
        self._identity, self.capabilities, self.batch_size, self._limits = identity, capabilities, batch_size, limits

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def rate_limits(self) -> dict[str, float]:
        return dict(self._limits)

    def generate(self, requests: list[ChatRequest], on_result: OnResult | None = None) -> list[ChatResult]:
        raise BackendError(f"the {self.config.backend} backend runs only on the Ray workers")


def _describe(config: BackendConfig) -> tuple[dict[str, Any], list[str], int, dict[str, float]]:
    """(identity, capabilities, batch size, rate limits) of a backend built on a Ray worker."""
    backend = BACKENDS.get(config.backend)(config)
    try:
        return backend.identity(), sorted(backend.capabilities), backend.batch_size, backend.rate_limits()
    finally:
        backend.close()


def _shippable(config: BackendConfig, cpus: float = 0) -> BackendConfig:
    """The config as the workers need it.

    An API key read from the driver's environment travels with it (a worker on another node may not
    have that environment; the key is never part of an identity or an output). A backend with CPU
    threads left at their default (`n_threads`: all cores) uses the CPUs its actor reserved instead, so
    actors sharing a node do not oversubscribe it.
    """
    update: dict[str, Any] = {}
    env = getattr(config, "api_key_env", None)
    if env and getattr(config, "api_key", "unset") is None and os.environ.get(env):
        from pydantic import SecretStr

        update["api_key"] = SecretStr(os.environ[env])
    if "n_threads" in type(config).model_fields and config.n_threads is None and cpus >= 1:
        update["n_threads"] = int(cpus)
    return config.model_copy(update=update) if update else config


def _from_items(items: list[dict[str, Any]], blocks: int) -> Any:
    """A Dataset of `items` in `blocks` blocks, so each block is one batch and actors share the work."""
    import ray.data

    try:
        return ray.data.from_items(items, override_num_blocks=blocks)
    except TypeError:  # Ray < 2.10
        return ray.data.from_items(items, parallelism=blocks)


def _quiet_ray_data() -> None:
    """Ray Data's console chatter (progress-bar notice, per-dataset INFO lines) off; warnings stay, its log file keeps all."""
    for handler in logging.getLogger("ray.data").handlers:
        if type(handler).__name__ == "PlainRayHandler" and handler.level < logging.WARNING:
            handler.setLevel(logging.WARNING)
    progress = logging.getLogger("ray.data._internal.progress")
    if _drop_progress_notice not in progress.filters:
        progress.addFilter(_drop_progress_notice)


def _drop_progress_notice(record: logging.LogRecord) -> bool:
    return "Progress bars disabled" not in record.getMessage()


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:400] + " ..."
