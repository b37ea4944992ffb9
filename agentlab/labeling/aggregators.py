"""Label models: turn a label matrix of noisy votes into probabilistic labels, without gold.

Every model follows one small protocol (see `LabelModel`): ``fit(L, W=None) -> self``,
``predict_proba(L) -> (n, k)``, ``predict(L)`` (argmax with a seeded tie-break) and
``labeler_accuracy() -> (m,)``. ``L`` holds ``-1`` for an abstain and ``0..k-1`` for a class vote.
Built-ins register in `AGGREGATORS` like plugins: majority, weighted, dawid_skene, metal, auto
(the default: picks among the others, `selection`) and hyper (HyperLM, optional package). The
protocol and registry live in `label_model`, Dawid–Skene (the default) in `dawid_skene`; this
module re-exports both, so ``from agentlab.labeling.aggregators import ...`` keeps working.

Defined behaviour on degenerate inputs (everything else raises ValueError naming the problem):
an all-abstain matrix fits and predicts the class prior (uniform unless given) for every row;
votes for a single class, a single labeler, or rows where every labeler abstains are all fine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agentlab.labeling.dawid_skene import DawidSkene
from agentlab.labeling.label_model import (
    AGGREGATORS,
    TIE_BREAKS,
    LabelModel,
    accuracy_from_mu,
    softmax,
)
from agentlab.labeling.matrix import (
    blas_single_thread,
    check_prior,
    indicator,
    loo_agreement,
    vote_counts,
)

__all__ = ["AGGREGATORS", "TIE_BREAKS", "DawidSkene", "LabelModel", "MajorityVote", "MeTaL", "WeightedVote",
           "available_names", "fit_all", "make_aggregator", "options_from_config"]


@AGGREGATORS.register("majority")
class MajorityVote(LabelModel):
    """Majority vote. Probabilities are vote shares (confidence-weighted when W is given).

    With ``tie_break="abstain"`` a tied row's probabilities are uniform and `predict` gives -1;
    ``prior`` uses `class_prior`, or else the class balance of the untied majority labels.
    Rows where every labeler abstains get `class_prior` (uniform when none is given).
    """

    name = "majority"

    def fit(self, L: Any, W: Any = None) -> MajorityVote:
        L, W = self._check(L, W, fitting=True)
        self._acc = loo_agreement(L, self.k)
        if self.class_prior is None:
            counts = vote_counts(L, self.k, W)
            top = counts.max(axis=1, keepdims=True)
            clear = ((counts >= top - 1e-12).sum(axis=1) == 1) & (top[:, 0] > 0)
            hard = np.bincount(counts[clear].argmax(axis=1), minlength=self.k)
            self.class_balance_ = check_prior(hard + 1.0, self.k)
        return self

    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        L, W = self._check(L, W)
        counts = vote_counts(L, self.k, W)
        total = counts.sum(axis=1, keepdims=True)
        P = counts / np.where(total > 0, total, 1.0)
        if self.tie_break == "abstain":
            top = P.max(axis=1, keepdims=True)
            tied = (P >= top - 1e-12).sum(axis=1) > 1
            P[tied] = 1.0 / self.k
        P[total[:, 0] == 0] = self.class_prior if self.class_prior is not None else 1.0 / self.k
        return P

    def labeler_accuracy(self) -> np.ndarray:
        """Agreement of each labeler with the majority of the others (smoothed toward 0.5)."""
        self._require_fitted()
        return self._acc.copy()


@AGGREGATORS.register("weighted")
class WeightedVote(MajorityVote):
    """Weighted vote: each vote counts log(acc·(k-1)/(1-acc)), the Bayes weight of a labeler
    that is right with probability acc and otherwise picks a wrong class at random.

    Accuracies come from a quick Dawid–Skene fit (``accuracy="dawid_skene"``, the default) or from
    agreement with the majority of the other labelers (``accuracy="agreement"``). A vote's confidence
    in W scales its weight. Unknown accuracies count as 0.7. Every vote keeps at least `min_weight`
    (times its confidence), so a voted class always beats an unvoted one: a labeler estimated at or
    below chance breaks ties last instead of being dropped. (Agreement with the other labelers'
    majority is near 0 for a labeler that votes one class when every other labeler votes another,
    as on hausa/yoruba, where one rule per class made every weight 0 and the vote collapse to a
    coin flip over all classes; that is why agreement is no longer the default.)
    """

    name = "weighted"

    def __init__(self, cardinality: int, accuracy: str | Sequence[float] = "dawid_skene", min_weight: float = 0.05,
                 **kw: Any):
        if isinstance(accuracy, str) and accuracy not in ("agreement", "dawid_skene"):
            raise ValueError(f"weighted: accuracy must be 'agreement', 'dawid_skene' or one accuracy per labeler (got {accuracy!r})")
        if not min_weight > 0:
            raise ValueError(f"weighted: min_weight must be > 0 (got {min_weight})")
        self.accuracy, self.min_weight = accuracy, float(min_weight)
        super().__init__(cardinality, **kw)

    def fit(self, L: Any, W: Any = None) -> WeightedVote:
        L, W = self._check(L, W, fitting=True)
        if not isinstance(self.accuracy, str):  # given (e.g. by `auto`, from its Dawid–Skene fit)
            acc = np.asarray(self.accuracy, dtype=float)
            if acc.shape != (self.m_,):
                raise ValueError(f"weighted: got {acc.shape[0]} accuracies for {self.m_} labelers")
        elif self.accuracy == "dawid_skene":
            ds = DawidSkene(self.k, max_iter=min(self.max_iter, 20), tol=self.tol, class_prior=self.class_prior)
            acc = ds.fit(L).labeler_accuracy()
            self.class_balance_ = ds.class_balance_
        else:
            acc = loo_agreement(L, self.k)
        self._acc = acc
        a = np.clip(np.nan_to_num(acc, nan=0.7), 1e-3, 1 - 1e-3)  # unknown: a plausible 0.7
        self.weights_ = np.maximum(np.log(a * (self.k - 1) / (1 - a)), self.min_weight)
        if self.class_balance_ is None:
            self.class_balance_ = check_prior(self.predict_proba(L, W).sum(0) + 1.0, self.k)
        return self

    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        L, W = self._check(L, W)
        w = np.broadcast_to(self.weights_, L.shape) if W is None else W * self.weights_
        logits = vote_counts(L, self.k, np.ascontiguousarray(w))
        if self.class_prior is not None:
            logits = logits + np.log(np.maximum(self.class_prior, 1e-12))
        return self._fill_empty(softmax(logits), L)


@AGGREGATORS.register("metal")
class MeTaL(LabelModel):
    """Snorkel MeTaL-style matrix completion (no EM).

    From O = L_indᵀ L_ind / n over one-hot votes, learn mu[j·k + l, y] = P(λ_j = l | Y = y) by
    minimising ‖(O − mu P muᵀ)[off-labeler blocks]‖² + ‖mu p − diag(O)‖² + prior·‖mu − mu₀‖²
    (both parts normalised) with L-BFGS-B in [0, 1]; P = diag(p), mu₀ assumes accuracy
    `prec_init`. The prior pins what sparse overlaps leave undetermined (labelers that vote one
    class and rarely co-fire) but pulls estimated accuracies toward `prec_init`; use a small
    `prior_strength` (0.01) where overlaps are dense and accuracy estimates matter. The class
    balance p is `class_prior` when given, else uniform as in Snorkel (``class_balance="uniform"``)
    or a quick Dawid–Skene estimate (``"estimate"``). Predicts P(y | λ) ∝ exp(Σ log mu + log p).
    Vote confidences W are ignored.
    """

    name = "metal"

    def __init__(self, cardinality: int, prec_init: float = 0.7, prior_strength: float = 0.3,
                 class_balance: str = "uniform", **kw: Any):
        if not 0 < prec_init < 1 or prior_strength < 0:
            raise ValueError(f"metal: need 0 < prec_init < 1 and prior_strength >= 0 (got {prec_init}, {prior_strength})")
        if class_balance not in ("estimate", "uniform"):
            raise ValueError(f"metal: class_balance must be 'estimate' or 'uniform' (got {class_balance!r})")
        self.prec_init, self.prior_strength, self.balance_mode = float(prec_init), float(prior_strength), class_balance
        super().__init__(cardinality, **kw)

    def fit(self, L: Any, W: Any = None) -> MeTaL:
        L, _ = self._check(L, W, fitting=True)
        n, m = L.shape
        k = self.k
        X = indicator(L, k)
        O = np.asarray((X.T @ X).todense()) / n
        d = np.diag(O).copy()
        p = self._class_balance(L)
        block = np.kron(np.eye(m), np.ones((k, k))).astype(bool)
        mask = ~block
        mu0 = np.zeros((m * k, k))
        rows = np.arange(m * k)
        mu0[rows, rows % k] = np.clip(d * self.prec_init / p[rows % k], 0, 1)
        with blas_single_thread():
            mu = self._solve(O, d, p, mask, mu0)
        self.class_balance_, self.mu_ = p, mu
        self._coverage = np.count_nonzero(L >= 0, axis=0) / len(L)
        return self

    def _class_balance(self, L: np.ndarray) -> np.ndarray:
        if self.class_prior is not None:
            return self.class_prior
        if self.balance_mode == "uniform":
            return np.full(self.k, 1.0 / self.k)
        return DawidSkene(self.k, max_iter=50, tol=1e-4).fit(L).class_balance_

    def _solve(self, O, d, p, mask, mu0) -> np.ndarray:
        from scipy.optimize import minimize  # lazy

        shape = mu0.shape
        data_scale = 1.0 / max(float((O * O).sum()), 1e-300)  # keep both terms O(1) for L-BFGS
        lam = self.prior_strength / max(float((mu0 * mu0).sum()), 1e-300)

        def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
            mu = x.reshape(shape)
            R = np.where(mask, (mu * p) @ mu.T - O, 0.0)
            r2 = mu @ p - d
            diff = mu - mu0
            f = data_scale * ((R * R).sum() + r2 @ r2) + lam * (diff * diff).sum()
            g = data_scale * (4 * (R @ mu) * p + 2 * np.outer(r2, p)) + 2 * lam * diff
            return float(f), g.ravel()

        res = minimize(loss, mu0.ravel(), jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * mu0.size,
                       options={"maxiter": self.max_iter * 10, "ftol": self.tol * 1e-3, "gtol": 1e-9})
        self.nfev_ = int(res.nfev)
        self.n_iter_ = int(res.nit)
        return res.x.reshape(shape)

    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        L, _ = self._check(L, W)
        X = indicator(L, self.k)
        logits = np.asarray(X @ np.log(np.clip(self.mu_, 0.01, 0.99))) + np.log(np.maximum(self.class_balance_, 1e-300))
        return self._fill_empty(softmax(logits), L)

    def labeler_accuracy(self) -> np.ndarray:
        """P(vote = y | voted) from mu, averaged over the class balance."""
        self._require_fitted()
        mu = self.mu_.reshape(self.m_, self.k, self.k)
        return accuracy_from_mu(mu, self.class_balance_, self._coverage)


# registered like the built-ins above; imported here so the registry's loader finds them
from agentlab.labeling import hyper as _hyper  # noqa: F401
from agentlab.labeling import selection as _selection  # noqa: F401


def make_aggregator(name: str, cardinality: int, **options: Any) -> LabelModel:
    """Build the registered label model `name` (unknown names suggest the closest one)."""
    return AGGREGATORS.get(name)(cardinality, **options)


def available_names() -> list[str]:
    """Every registered label model that can run here (`hyper` only when `hyperlm` is installed)."""
    from agentlab.labeling.selection import hyper_available

    return [n for n in AGGREGATORS.names() if n != "hyper" or hyper_available()]


def fit_all(L: Any, k: int, W: Any = None, names: Sequence[str] | None = None,
            options: dict[str, dict[str, Any]] | None = None, **common: Any) -> dict[str, LabelModel]:
    """Fit every registered label model (or those in `names`) on L, for ``method: all``.

    Args:
        L: label matrix (n, m). k: number of classes. W: optional vote confidences.
        names: which models; default every available one (`available_names`).
        options: per-model extra options, e.g. ``{"dawid_skene": {"smoothing": 0.1}}``.
        **common: options every model takes (seed, max_iter, tol, class_prior, tie_break).

    Returns:
        {name: fitted model}, in name order.
    """
    options = options or {}
    out: dict[str, LabelModel] = {}
    for name in names or available_names():
        out[name] = make_aggregator(name, k, **common, **options.get(name, {})).fit(L, W)
    return out


def options_from_config(cfg: Any, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Turn an `AggregateConfig` into the common constructor options, mapping a class-prior dict
    keyed by class name onto class indices (`class_names` order)."""
    prior = cfg.class_prior
    if isinstance(prior, dict):
        names = list(class_names or [])
        unknown = [c for c in prior if c not in names]
        if unknown:
            raise ValueError(f"aggregate.class_prior names {unknown} are not classes; known: {names}")
        prior = [float(prior.get(c, 0.0)) for c in names]
    return {"seed": cfg.seed, "max_iter": cfg.max_iter, "tol": cfg.tol, "class_prior": prior, "tie_break": cfg.tie_break}
