"""The label-model protocol and registry, shared by every aggregator module.

A label model fits a label matrix ``L`` (n, m) of votes (``-1`` = abstain, ``0..k-1`` = class)
without gold and returns class probabilities: ``fit(L, W=None) -> self``,
``predict_proba(L) -> (n, k)``, ``predict(L)`` and ``labeler_accuracy() -> (m,)``. Models register
in `AGGREGATORS`; importing this module alone still finds the built-ins (the registry loads
`agentlab.labeling.aggregators` on first use).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from agentlab.labeling.matrix import (
    break_ties,
    check_cardinality,
    check_matrix,
    check_prior,
    check_weights,
)
from agentlab.registry import Registry


def _load_builtins() -> None:
    importlib.import_module("agentlab.labeling.aggregators")


AGGREGATORS: Registry[type] = Registry("aggregator", loader=_load_builtins)
TIE_BREAKS = ("random", "prior", "abstain")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise, numerically stable softmax of (n, k) logits (a new array)."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class LabelModel:
    """Base of the label models: option checks, tie-breaks and the all-abstain rule.

    Args:
        cardinality: number of classes k (>= 2).
        seed: seeds tie-breaks and any random initialisation.
        max_iter: EM / optimiser iterations (ignored by the vote models).
        tol: convergence tolerance on the parameter change.
        class_prior: k class-balance probabilities (PromptRE style). Models that estimate the class
            balance keep it fixed to this instead; rows where every labeler abstains get it.
        tie_break: how `predict` settles rows whose top probability is shared: ``random``
            (seeded), ``prior`` (highest class balance first) or ``abstain`` (predict -1).
    """

    name = "base"

    def __init__(self, cardinality: int, seed: int = 0, max_iter: int = 100, tol: float = 1e-5,
                 class_prior: Sequence[float] | None = None, tie_break: str = "random", **kw: Any):
        if kw:
            raise ValueError(f"{self.name}: unknown option(s) {sorted(kw)}")
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {TIE_BREAKS} (got {tie_break!r})")
        if int(max_iter) < 1 or not tol > 0:
            raise ValueError(f"max_iter must be >= 1 and tol > 0 (got {max_iter}, {tol})")
        self.k = check_cardinality(cardinality)
        self.seed, self.max_iter, self.tol, self.tie_break = int(seed), int(max_iter), float(tol), tie_break
        self.class_prior = check_prior(class_prior, self.k)
        self.m_: int | None = None
        self.class_balance_: np.ndarray | None = self.class_prior
        self.n_iter_ = 0

    # -- protocol -------------------------------------------------------------------------
    def fit(self, L: Any, W: Any = None) -> LabelModel:
        """Fit on the label matrix L (n, m); W (n, m) in [0, 1] are optional vote confidences."""
        raise NotImplementedError

    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        """(n, k) class probabilities for each row of L; all-abstain rows get the class prior."""
        raise NotImplementedError

    def labeler_accuracy(self) -> np.ndarray:
        """(m,) estimated P(vote is right | labeler voted); NaN where it cannot be estimated."""
        raise NotImplementedError

    def predict(self, L: Any, W: Any = None) -> np.ndarray:
        """Hard labels: argmax of `predict_proba`, ties settled by `tie_break` (-1 = abstain)."""
        return break_ties(self.predict_proba(L, W), self.tie_break, self.seed, self._balance())

    # -- helpers --------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if self.m_ is None:
            raise RuntimeError(f"{self.name} label model is not fitted; call fit(L) first")

    def _check(self, L: Any, W: Any = None, fitting: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        if not fitting:
            self._require_fitted()
        arr = check_matrix(L, self.k, None if fitting else self.m_)
        if fitting:
            self.m_ = arr.shape[1]
        return arr, check_weights(W, arr.shape)

    def _balance(self) -> np.ndarray:
        if self.class_balance_ is not None:
            return self.class_balance_
        return np.full(self.k, 1.0 / self.k)

    def _fill_empty(self, P: np.ndarray, L: np.ndarray) -> np.ndarray:
        empty = ~(L >= 0).any(axis=1)
        P[empty] = self.class_prior if self.class_prior is not None else self._balance()
        return P


def accuracy_from_mu(mu: np.ndarray, p: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Accuracy of each labeler from mu[j, l, y] = P(vote l | y) over the votes only."""
    right = np.einsum("jyy,y->j", mu, p)
    voted = np.einsum("jly,y->j", mu, p)
    acc = right / np.maximum(voted, 1e-300)
    return np.where(coverage > 0, acc, np.nan)
