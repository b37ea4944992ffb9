"""The labeler protocol: each labeler votes a class (or abstains, -1) on every row."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from agentlab.config import StrictModel
from agentlab.registry import Registry

if TYPE_CHECKING:
    from agentlab.engine import RunContext

ABSTAIN = -1


class LabelerConfig(StrictModel):
    """Fields every labeler has."""

    type: str = Field(description="Registered labeler type.")
    name: str | None = Field(None, description="Column name in the label matrix (default: derived from type and settings).")


@dataclass
class Votes:
    """One or more label-matrix columns from one labeler.

    Attributes:
        names: column names (one per column).
        votes: int array (n, c), -1 = abstain.
        confidence: float array (n, c), NaN where unknown.
        raw: per column, per row: the raw answer/error text where useful (else None).
        faults: per column, how many rows failed (exceptions, failed calls, unparsable answers).
    """

    names: list[str]
    votes: np.ndarray
    confidence: np.ndarray
    raw: list[list[str | None]] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)

    @classmethod
    def single(cls, name: str, n: int) -> Votes:
        """An all-abstain single column to fill in."""
        return cls([name], np.full((n, 1), ABSTAIN, dtype=np.int64), np.full((n, 1), np.nan), [[None] * n], [0])


@dataclass
class LabelSpace:
    """The task's classes: names in order, optional descriptions, and name lookup."""

    names: list[str]
    descriptions: dict[str, str]

    def index(self, value: Any) -> int:
        """Class index for a name (case-insensitive), an int index, or -1 for None/abstain/unknown."""
        if value is None:
            return ABSTAIN
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value) if 0 <= int(value) < len(self.names) else ABSTAIN
        lookup = self._lookup
        hit = lookup.get(value) if isinstance(value, str) else None  # exact name: the common case, one dict lookup
        return hit if hit is not None else lookup.get(str(value).strip().lower(), ABSTAIN)

    @cached_property
    def _lookup(self) -> dict[str, int]:
        """Name (as written, and lower-cased) -> index; built once, names are fixed after construction."""
        lookup: dict[str, int] = {}
        for i, name in enumerate(self.names):
            lookup.setdefault(name, i)
            lookup.setdefault(name.lower(), i)
        return lookup

    def as_list(self) -> list[dict[str, str]]:
        """[{name, description}] for prompt templates."""
        return [{"name": n, "description": self.descriptions.get(n, "")} for n in self.names]


class Labeler:
    """Base class: `label(ctx, rows) -> Votes`. A labeler that fails on a row abstains there and counts a fault."""

    config_cls: ClassVar[type[LabelerConfig]] = LabelerConfig

    def __init__(self, config: LabelerConfig, space: LabelSpace, index: int, task: Any = None):
        self.config, self.space, self.index, self.task = config, space, index, task

    @property
    def name(self) -> str:
        """Column name."""
        return self.config.name or f"{self.config.type}_{self.index}"

    def label(self, ctx: RunContext, rows: list[dict[str, Any]]) -> Votes:
        """Vote on every row."""
        raise NotImplementedError

    def preflight(self, ctx: RunContext, rows: list[dict[str, Any]]) -> None:
        """Fail before the run starts on what `label` would fail on (render the first row's prompt). Default: nothing."""

    def planned_calls(self, ctx: RunContext, rows: list[dict[str, Any]]) -> list:
        """The LLM calls `label` would make (a list of `agentlab.tasks.base.PlannedCalls`). Default: none."""
        return []


def _load_builtins() -> None:
    from agentlab.labeling import (  # noqa: F401
        debate,
        embedding,
        labelers,
    )


LABELERS: Registry[type[Labeler]] = Registry("labeler", _load_builtins)
