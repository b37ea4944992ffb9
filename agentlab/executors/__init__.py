"""Executors: where a batch of LLM calls runs once the engine has taken the cache hits out.

The engine (:meth:`agentlab.engine.RunContext.call`) looks every request up in the call cache and
hands the misses to the run's executor; the executor answers them and reports each result through
``on_result(i, result)`` on the engine's thread, where it is committed to the cache at once. So
cache keys, outputs and counters are the engine's, whatever the executor:

* ``local`` runs the backend in this process (its own threads/asyncio), batch by batch;
* ``ray`` runs Ray Data ``map_batches`` over an actor pool, one backend instance per actor, and
  streams each finished batch back to the driver.

Executors register like backends; a third-party package adds one through the ``agentlab.executors``
entry-point group.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agentlab.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    ChatRequest,
    OnResult,
)
from agentlab.config.sections import ExecutorConfig
from agentlab.errors import ConfigError
from agentlab.registry import Registry, UnknownKey


class Executor:
    """Base class of executors. Subclasses implement :meth:`generate`.

    Args:
        config: the recipe's ``executor:`` section (after command-line overrides).
    """

    name: ClassVar[str] = "local"

    def __init__(self, config: ExecutorConfig):
        self.config = config

    def make_backend(self, config: BackendConfig) -> Backend:
        """The driver's backend for a model: it gives the cache identity and capabilities (and answers, locally)."""
        return BACKENDS.get(config.backend)(config)

    def generate(self, backend: Backend, requests: list[ChatRequest], on_result: OnResult) -> None:
        """Answer every request, calling ``on_result(i, result)`` on this thread as each one completes.

        A request without a reported result becomes an error result in the engine, so an executor
        never loses a row silently; it may raise when it cannot run at all.
        """
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the manifest records about how the calls ran."""
        return {"type": self.name}

    def close(self) -> None:
        """Release what the executor started (a Ray instance it launched). Safe to call twice."""


def _load_builtins() -> None:
    from agentlab.executors import local, ray  # noqa: F401


EXECUTORS: Registry[type[Executor]] = Registry("executor", _load_builtins)


def make_executor(config: ExecutorConfig) -> Executor:
    """Build the executor a recipe's ``executor:`` section names (checks optional dependencies now).

    Raises:
        ConfigError: no executor of that name is registered (a name from ``--executor``; the recipe's is
            checked when it is validated), with the closest known name.
    """
    try:
        cls = EXECUTORS.get(config.type)
    except UnknownKey as exc:
        raise ConfigError(f"--executor: {exc}") from None
    return cls(config)
