"""Label models: turn a label matrix of noisy votes into probabilistic labels, without gold.

Every model follows one small protocol (see `LabelModel`): ``fit(L, W=None) -> self``,
``predict_proba(L) -> (n, k)``, ``predict(L)`` (argmax with a seeded tie-break) and
``labeler_accuracy() -> (m,)``. ``L`` holds ``-1`` for an abstain and ``0..k-1`` for a class vote.
Built-ins register in `AGGREGATORS` like plugins: majority, weighted, dawid_skene, metal.

Defined behaviour on degenerate inputs (everything else raises ValueError naming the problem):
an all-abstain matrix fits and predicts the class prior (uniform unless given) for every row;
votes for a single class, a single labeler, or rows where every labeler abstains are all fine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agentlab.labeling.matrix import (
    blas_single_thread,
    break_ties,
    check_cardinality,
    check_matrix,
    check_prior,
    check_weights,
    dedupe_rows,
    indicator,
    loo_agreement,
    vote_counts,
)
from agentlab.registry import Registry

AGGREGATORS: Registry[type] = Registry("aggregator")
TIE_BREAKS = ("random", "prior", "abstain")


def _softmax(logits: np.ndarray) -> np.ndarray:
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

    Accuracies come from agreement with the majority of the other labelers (``accuracy="agreement"``)
    or from a quick Dawid–Skene fit (``accuracy="dawid_skene"``). A vote's confidence in W scales
    its weight. Labelers estimated at or below chance get weight 0; unknown ones count as 0.7.
    """

    name = "weighted"

    def __init__(self, cardinality: int, accuracy: str = "agreement", **kw: Any):
        if accuracy not in ("agreement", "dawid_skene"):
            raise ValueError(f"weighted: accuracy must be 'agreement' or 'dawid_skene' (got {accuracy!r})")
        self.accuracy = accuracy
        super().__init__(cardinality, **kw)

    def fit(self, L: Any, W: Any = None) -> WeightedVote:
        L, W = self._check(L, W, fitting=True)
        if self.accuracy == "dawid_skene":
            ds = DawidSkene(self.k, max_iter=min(self.max_iter, 20), tol=self.tol, class_prior=self.class_prior)
            acc = ds.fit(L).labeler_accuracy()
            self.class_balance_ = ds.class_balance_
        else:
            acc = loo_agreement(L, self.k)
        self._acc = acc
        a = np.clip(np.nan_to_num(acc, nan=0.7), 1e-3, 1 - 1e-3)  # unknown: a plausible 0.7
        self.weights_ = np.maximum(np.log(a * (self.k - 1) / (1 - a)), 0.0)
        if self.class_balance_ is None:
            self.class_balance_ = check_prior(self.predict_proba(L, W).sum(0) + 1.0, self.k)
        return self

    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        L, W = self._check(L, W)
        w = np.broadcast_to(self.weights_, L.shape) if W is None else W * self.weights_
        logits = vote_counts(L, self.k, np.ascontiguousarray(w))
        if self.class_prior is not None:
            logits = logits + np.log(np.maximum(self.class_prior, 1e-12))
        return self._fill_empty(_softmax(logits), L)


@AGGREGATORS.register("dawid_skene")
class DawidSkene(LabelModel):
    """Dawid–Skene EM with one full confusion matrix per labeler, abstain column included.

    Initialises posteriors from vote shares; M-step: class priors (kept fixed to `class_prior`
    when given) and theta[j, vote, y] = P(vote | y) for vote in {abstain, 0..k-1}; E-step:
    posterior ∝ prior × ∏ theta. Stops when no parameter moves more than `tol`.
    The M-step is MAP: `smoothing` pseudo-counts everywhere, and `accuracy_prior` pseudo-votes per
    labeler and class spread as P(vote = y | voted, y) = `prec_init` (the rest evenly). The prior
    is negligible for labelers with many votes and keeps rare ones from flipping classes (set it
    to 0 for plain maximum-likelihood DS). Identical rows are merged first and both steps are
    sparse products over the votes only, so 1M × 32 fits in seconds. Vote confidences W are
    ignored. ``abstain_column=False`` models the votes only (then a labeler that votes a single
    class carries no information). ``abstain_weight`` < 1 tempers the abstain factors in the
    E-step (0 = abstains are no evidence, only votes are): abstain evidence assumes labelers
    abstain independently, which overlapping keyword rules break, and it is the first thing to go
    wrong when coverage shifts between the rows fitted and the rows predicted.
    """

    name = "dawid_skene"

    def __init__(self, cardinality: int, smoothing: float = 0.01, accuracy_prior: float = 10.0,
                 prec_init: float = 0.9, abstain_column: bool = True, abstain_weight: float = 1.0, **kw: Any):
        if not (smoothing >= 0 and accuracy_prior >= 0 and 0 < prec_init < 1 and 0 <= abstain_weight <= 1):
            raise ValueError("dawid_skene: need smoothing >= 0, accuracy_prior >= 0, 0 < prec_init < 1 and "
                             f"0 <= abstain_weight <= 1 (got {smoothing}, {accuracy_prior}, {prec_init}, {abstain_weight})")
        self.smoothing, self.accuracy_prior, self.prec_init = float(smoothing), float(accuracy_prior), float(prec_init)
        self.abstain_column, self.abstain_weight = bool(abstain_column), float(abstain_weight)
        super().__init__(cardinality, **kw)

    def fit(self, L: Any, W: Any = None) -> DawidSkene:
        L, _ = self._check(L, W, fitting=True)
        U, _, cnt = dedupe_rows(L)
        X = indicator(U, self.k)
        counts = vote_counts(U, self.k)
        total = counts.sum(axis=1, keepdims=True)
        start = self.class_prior if self.class_prior is not None else np.full(self.k, 1.0 / self.k)
        T = np.where(total > 0, counts / np.where(total > 0, total, 1.0), start)
        self._coverage = np.count_nonzero(L >= 0, axis=0) / len(L)
        prev = None
        for it in range(1, self.max_iter + 1):
            pi, theta = self._m_step(X, T, cnt.astype(float))
            flat = np.concatenate([pi, theta.ravel()])
            if prev is not None and np.abs(flat - prev).max() < self.tol:
                break
            prev = flat
            T = self._posterior(X, pi, theta)
        self.n_iter_ = it
        self.class_balance_, self.theta_ = pi, theta
        return self

    def _m_step(self, X, T: np.ndarray, cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class priors and theta[j, vote, class] (vote 0 = abstain when modelled, then classes)."""
        k, m = self.k, self.m_
        weighted = T * cnt[:, None]
        mass = weighted.sum(axis=0)
        if self.class_prior is not None:
            pi = self.class_prior
        else:
            pi = np.maximum(mass / mass.sum(), 1e-12)
            pi = pi / pi.sum()
        N = np.asarray(X.T @ weighted).reshape(m, k, k)  # [j, vote, class], votes only
        s, beta = self.smoothing, self.accuracy_prior
        prior = np.full((k, k), (1.0 - self.prec_init) / (k - 1))
        np.fill_diagonal(prior, self.prec_init)
        voted = N.sum(axis=1)  # (m, k)
        q = (N + s + beta * prior) / (voted[:, None, :] + k * s + beta)  # P(vote = l | voted, y)
        if not self.abstain_column:
            return pi, q
        p_vote = (voted + s) / (np.maximum(mass[None, :], voted) + 2 * s)
        return pi, np.concatenate([(1.0 - p_vote)[:, None, :], p_vote[:, None, :] * q], axis=1)

    def _posterior(self, X, pi: np.ndarray, theta: np.ndarray) -> np.ndarray:
        logt = np.log(np.maximum(theta, 1e-300))
        base = np.log(np.maximum(pi, 1e-300))
        if self.abstain_column:  # sparse X holds votes only: start from "all abstain", swap in votes
            g = self.abstain_weight
            base = base + g * logt[:, 0, :].sum(axis=0)
            logt = logt[:, 1:, :] - g * logt[:, :1, :]
        return _softmax(np.asarray(X @ logt.reshape(-1, self.k)) + base)

    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        L, _ = self._check(L, W)
        U, inv, _ = dedupe_rows(L)
        return self._fill_empty(self._posterior(indicator(U, self.k), self.class_balance_, self.theta_)[inv], L)

    def labeler_accuracy(self) -> np.ndarray:
        """P(vote = y | voted), averaged over the estimated class balance."""
        self._require_fitted()
        votes = self.theta_[:, 1:, :] if self.abstain_column else self.theta_
        return _accuracy_from_mu(votes, self.class_balance_, self._coverage)


def _accuracy_from_mu(mu: np.ndarray, p: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Accuracy of each labeler from mu[j, l, y] = P(vote l | y) over the votes only."""
    right = np.einsum("jyy,y->j", mu, p)
    voted = np.einsum("jly,y->j", mu, p)
    acc = right / np.maximum(voted, 1e-300)
    return np.where(coverage > 0, acc, np.nan)


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
        return self._fill_empty(_softmax(logits), L)

    def labeler_accuracy(self) -> np.ndarray:
        """P(vote = y | voted) from mu, averaged over the class balance."""
        self._require_fitted()
        mu = self.mu_.reshape(self.m_, self.k, self.k)
        return _accuracy_from_mu(mu, self.class_balance_, self._coverage)


def make_aggregator(name: str, cardinality: int, **options: Any) -> LabelModel:
    """Build the registered label model `name` (unknown names suggest the closest one)."""
    return AGGREGATORS.get(name)(cardinality, **options)


def fit_all(L: Any, k: int, W: Any = None, names: Sequence[str] | None = None,
            options: dict[str, dict[str, Any]] | None = None, **common: Any) -> dict[str, LabelModel]:
    """Fit every registered label model (or those in `names`) on L, for ``method: all``.

    Args:
        L: label matrix (n, m). k: number of classes. W: optional vote confidences.
        names: which models; default all registered.
        options: per-model extra options, e.g. ``{"dawid_skene": {"smoothing": 0.1}}``.
        **common: options every model takes (seed, max_iter, tol, class_prior, tie_break).

    Returns:
        {name: fitted model}, in name order.
    """
    options = options or {}
    out: dict[str, LabelModel] = {}
    for name in names or AGGREGATORS.names():
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
