"""Dawid–Skene EM: the label task's default label model (METHODS.md §1).

Each labeler j has a confusion matrix P(vote = l | y); EM alternates posteriors over the true class
(E-step) with the class balance and confusions re-counted from them (M-step). What the model does
with abstains is the choice that matters for keyword-style labelers, which vote one class and
abstain on most rows (``abstains=``):

* ``"class"`` (default): one factor per *class* that got no vote in the row, P(no labeler voted
  c | y), learned like the confusions. "No NUM rule fired" is evidence against NUM, counted once
  however many NUM rules there are. Rules written for one class split it between them (given
  NUM, "how many" and "what year" rarely fire together), so this is the likelihood of such rules,
  while for labelers that fire independently it only drops the abstains of the other labelers of
  a class that did get a vote.
* ``"labeler"``: textbook Dawid–Skene, one factor P(labeler j abstains | y) per abstaining
  labeler. Right when labelers abstain independently given the class; with rules that split a
  class, the abstains of a class's other rules push a row away from the class one of them voted,
  and many small factors add up to overrule the votes.
* ``"none"``: abstains are missing data: only P(vote = l | voted, y). Fine for crowd-style
  labelers that vote every class; a labeler that always votes one class then carries no
  information.

Identical labeler columns count once (``dedupe_labelers``): each copy's factors are scaled by
1 / the number of copies, so a rule added twice is not twice as sure of itself. With
``dedupe_labelers="groups"`` (registered as `dawid_skene_groups`) this extends to *correlated* labelers: after a first
fit, pairs that vote the same class far more often than the fitted model explains (lift >= 2 on
>= 20 rows, `correlation.labeler_groups`: prompt variants of one LLM, near-copies of a rule) are
grouped; in the E-step a group's votes in a row count as one vote (each voting member 1 / the
members voting there; one voting alone counts fully), and the model is refitted. On spouse_llm (22 prompt
variants) this lifts covered-row accuracy from .17 to .85; on trec's train split it links
near-copies of keyword rules and costs 5 points, so it is a candidate of `auto`, not the default.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentlab.labeling.label_model import (
    AGGREGATORS,
    LabelModel,
    accuracy_from_mu,
    softmax,
)
from agentlab.labeling.matrix import (
    blas_single_thread,
    dedupe_rows,
    duplicate_share,
    indicator,
)

ABSTAIN_MODES = ("class", "labeler", "none")


@AGGREGATORS.register("dawid_skene")
class DawidSkene(LabelModel):
    """Dawid–Skene EM with one confusion matrix per labeler and an abstain model (`abstains`).

    Initialises posteriors from vote shares; M-step: class balance (fixed to `class_prior` when
    given), theta_[j, l, y] = P(vote = l | y) and the abstain factors; E-step: posterior ∝
    balance × ∏ factors. Stops when no parameter moves more than `tol`. Identical rows are merged
    and both steps are sparse products over the votes only, so 1M × 32 fits in seconds. Vote
    confidences W are ignored.

    Args:
        abstains: ``class`` (default), ``labeler`` or ``none``; see the module docstring.
        abstain_weight: exponent on the abstain factors in the E-step and in predictions
            (1 = the model as written, 0 = abstains are no evidence, only votes are).
        smoothing: pseudo-count added to every confusion and abstain cell (MAP M-step).
        accuracy_prior: pseudo-votes per labeler, spread over the classes like the rows (class y
            gets accuracy_prior × k × balance_y of them) as P(vote = y | voted, y) = `prec_init`
            (the rest evenly): negligible for labelers with many votes, it keeps rare ones from
            flipping classes. Spread evenly instead, a rare class's confusions were all prior: a
            keyword rule for a big class ("what" -> DESC on trec, 349 votes) then looked as if it
            would vote the rare class on the rare class's rows, so every such row went to the big
            class and the rare class's balance collapsed to 0. 0 = plain maximum likelihood.
        prior_spread: ``balance`` (default, as above) or ``even`` (accuracy_prior pseudo-votes for
            every class, the earlier prior).
        balance_shrink: the estimated class balance is shrunk this far toward uniform in every
            M-step (0 = the maximum-likelihood balance), so a rare class is not starved to 0 by EM.
        prec_init: the accuracy those pseudo-votes assume.
        dedupe_labelers: ``True`` (default): count identical columns once; ``"groups"``: also
            correlated groups (`groups_` lists them; the `dawid_skene_groups` model); ``False``: no.
        groups: preset groups of correlated labelers (column indices) instead of detecting them.

    The defaults (``abstain_weight=0.5``, ``accuracy_prior=50``) were chosen on the WRENCH *valid*
    splits of youtube and trec (benchmarks/label_models.py); below 0.5 the tempered abstains can
    let one class absorb every row (seen on synthetic keyword rules), so 0.5 is also the floor we
    trust. The prior spread by class balance and ``balance_shrink=0.5`` were chosen on the valid
    splits of all five shared sets (covered-row accuracy of plain / grouped Dawid–Skene, prior
    spread evenly -> by balance -> + shrink 0.5: trec .534 -> .590 -> .597, hausa .517 -> .556 ->
    .556, yoruba .503 -> .577 -> .577, youtube .924 throughout, spouse_llm grouped .868
    throughout). ``abstain_weight=1, accuracy_prior=0, balance_shrink=0`` is the textbook
    maximum-likelihood model.
    """

    name = "dawid_skene"

    def __init__(self, cardinality: int, abstains: str = "class", abstain_weight: float = 0.5,
                 smoothing: float = 0.01, accuracy_prior: float = 50.0, prec_init: float = 0.9,
                 dedupe_labelers: bool | str = True, groups: list[list[int]] | None = None,
                 balance_shrink: float = 0.5, prior_spread: str = "balance", **kw: Any):
        if abstains not in ABSTAIN_MODES:
            raise ValueError(f"dawid_skene: abstains must be one of {ABSTAIN_MODES} (got {abstains!r})")
        if not (smoothing >= 0 and accuracy_prior >= 0 and 0 < prec_init < 1 and 0 <= abstain_weight <= 1):
            raise ValueError("dawid_skene: need smoothing >= 0, accuracy_prior >= 0, 0 < prec_init < 1 and "
                             f"0 <= abstain_weight <= 1 (got {smoothing}, {accuracy_prior}, {prec_init}, {abstain_weight})")
        if not 0 <= balance_shrink <= 1:
            raise ValueError(f"dawid_skene: balance_shrink must be in [0, 1] (got {balance_shrink})")
        self.balance_shrink = float(balance_shrink)
        if prior_spread not in ("balance", "even"):
            raise ValueError(f"dawid_skene: prior_spread must be 'balance' or 'even' (got {prior_spread!r})")
        self.prior_spread = prior_spread
        self.abstains, self.abstain_weight = abstains, float(abstain_weight)
        self.smoothing, self.accuracy_prior, self.prec_init = float(smoothing), float(accuracy_prior), float(prec_init)
        if dedupe_labelers not in (True, False, "groups"):
            raise ValueError(f"dawid_skene: dedupe_labelers must be true, false or 'groups' (got {dedupe_labelers!r})")
        self.dedupe_labelers = dedupe_labelers
        self.groups_: list[list[int]] = [list(map(int, g)) for g in groups or []]
        self._preset_groups = groups is not None
        super().__init__(cardinality, **kw)

    def fit(self, L: Any, W: Any = None) -> DawidSkene:
        L, _ = self._check(L, W, fitting=True)
        U, _, cnt = dedupe_rows(L)
        self.share_ = duplicate_share(L) if self.dedupe_labelers else np.ones(self.m_)
        self._coverage = np.count_nonzero(L >= 0, axis=0) / len(L)
        X, cnt = indicator(U, self.k), cnt.astype(float)
        self._em(X, self._weighted(X, U), cnt)
        if self.dedupe_labelers == "groups" and self.m_ > 2 and not self._preset_groups:
            from agentlab.labeling.correlation import labeler_groups

            self.groups_ = labeler_groups(L, self.k, self.theta_, self.class_balance_)
            if self.groups_:
                self._em(X, self._weighted(X, U), cnt)
        return self

    def _weighted(self, X, U: np.ndarray):
        """X with each vote scaled by its weight in the E-step: the labeler's share among identical
        columns, and within a group of correlated labelers 1 / the members voting in that row (so
        a group's votes in a row count as one vote, and a member voting alone counts fully)."""
        if not self.groups_:
            if np.all(self.share_ == 1.0):
                return X
            Xw = X.copy()
            Xw.data = self.share_[X.indices // self.k]  # column j·k + l belongs to labeler j
            return Xw
        from agentlab.labeling.correlation import row_weights

        Xw = X.copy()
        Xw.data = row_weights(U, self.groups_, self.share_)[U >= 0]
        return Xw

    def _em(self, X, Xw, cnt: np.ndarray) -> None:
        """EM from the vote shares; sets class_balance_, theta_, absent_ and n_iter_."""
        counts = self._class_votes(Xw)
        total = counts.sum(axis=1, keepdims=True)
        start = self.class_prior if self.class_prior is not None else np.full(self.k, 1.0 / self.k)
        T = np.where(total > 0, counts / np.where(total > 0, total, 1.0), start)
        unvoted = (counts == 0).astype(float)
        prev = None
        with blas_single_thread():
            for it in range(1, self.max_iter + 1):
                params = self._m_step(X, unvoted, T, cnt)
                flat = np.concatenate([p.ravel() for p in params if p is not None])
                if prev is not None and np.abs(flat - prev).max() < self.tol:
                    break
                prev = flat
                T = self._posterior(Xw, unvoted, *params)
        self.n_iter_ = it
        self.class_balance_, self.theta_, self.absent_ = params

    def _class_votes(self, X) -> np.ndarray:
        """(n, k) votes per class from a weighted indicator matrix (`_weighted`)."""
        import scipy.sparse as sp  # lazy

        per_class = sp.kron(np.ones((self.m_, 1)), sp.identity(self.k), format="csr")  # column j·k+c -> c
        return (X @ per_class).toarray()

    def _m_step(self, X, unvoted: np.ndarray, T: np.ndarray, cnt: np.ndarray):
        """(balance, theta[j, l, y], abstain factors): P(vote = l | y) and, by mode, P(labeler j
        abstains | y) as (m, k), P(no vote for class c | y) as (k, k), or None; with ``none``
        theta is P(vote = l | voted, y)."""
        k, m, s = self.k, self.m_, self.smoothing
        weighted = T * cnt[:, None]
        mass = weighted.sum(axis=0)
        share = self.class_prior if self.class_prior is not None else np.maximum(mass, 1e-12) / max(mass.sum(), 1e-12)
        # the balance of the E-step: shrunk toward uniform (unless given), so EM cannot starve a rare class to 0
        pi = share if self.class_prior is not None else (1.0 - self.balance_shrink) * share + self.balance_shrink / k
        N = np.asarray(X.T @ weighted).reshape(m, k, k)  # [j, vote, class], votes only
        prior = np.full((k, k), (1.0 - self.prec_init) / (k - 1))
        np.fill_diagonal(prior, self.prec_init)
        voted = N.sum(axis=1)  # (m, k)
        # pseudo-votes per class: spread like the rows (a rare class gets few), or evenly (the textbook prior)
        a = self.accuracy_prior * (k * share if self.prior_spread == "balance" else np.ones(k))
        q = (N + s + a[None, None, :] * prior) / (voted[:, None, :] + k * s + a[None, None, :])
        if self.abstains == "none":
            return pi, q, None
        p_vote = (voted + s) / (np.maximum(mass[None, :], voted) + 2 * s)
        if self.abstains == "labeler":
            return pi, p_vote[:, None, :] * q, 1.0 - p_vote
        unvoted_mass = np.asarray(unvoted.T @ weighted)  # [class without votes, y]
        return pi, p_vote[:, None, :] * q, (unvoted_mass + s) / (mass[None, :] + 2 * s)

    def _posterior(self, Xw, unvoted: np.ndarray, pi: np.ndarray, theta: np.ndarray,
                   absent: np.ndarray | None) -> np.ndarray:
        """P(y | row) ∝ pi × ∏ vote factors^weight × abstain factors^abstain_weight (Xw: `_weighted`)."""
        share, g = self.share_[:, None, None], self.abstain_weight
        logt = self._log_theta(theta)
        base = np.log(np.maximum(pi, 1e-300))
        if self.abstains == "labeler":  # X holds votes only: start from "all abstain", swap in votes
            log_ab = np.log(np.maximum(absent, 1e-300)) * share[:, :, 0] * g
            base = base + log_ab.sum(axis=0)
            logt = logt - log_ab[:, None, :]
        logits = np.asarray(Xw @ logt.reshape(-1, self.k)) + base
        if self.abstains == "class":
            logits += unvoted @ (g * np.log(np.maximum(absent, 1e-300)))
        return softmax(logits)

    def _log_theta(self, theta: np.ndarray) -> np.ndarray:
        """log theta, cached for the fitted theta_ (predictions repeat it; with 77 classes × 209
        labelers the log of the 1.2M cells is most of a small prediction's cost)."""
        if theta is getattr(self, "theta_", None):
            if getattr(self, "_logt_for", None) is not theta:
                self._logt, self._logt_for = np.log(np.maximum(theta, 1e-300)), theta
            return self._logt
        return np.log(np.maximum(theta, 1e-300))

    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        L, _ = self._check(L, W)
        U, inv, _ = dedupe_rows(L)
        Xw = self._weighted(indicator(U, self.k), U)
        unvoted = (self._class_votes(Xw) == 0).astype(float)
        with blas_single_thread():
            P = self._posterior(Xw, unvoted, self.class_balance_, self.theta_, self.absent_)
        return self._fill_empty(P[inv], L)

    def labeler_accuracy(self) -> np.ndarray:
        """P(vote = y | voted), averaged over the estimated class balance."""
        self._require_fitted()
        return accuracy_from_mu(self.theta_, self.class_balance_, self._coverage)


@AGGREGATORS.register("dawid_skene_groups")
class GroupedDawidSkene(DawidSkene):
    """Dawid–Skene that finds groups of correlated labelers and counts each group's votes in a row
    as one vote (``dedupe_labelers="groups"``; module docstring)."""

    name = "dawid_skene_groups"

    def __init__(self, cardinality: int, **kw: Any):
        kw.setdefault("dedupe_labelers", "groups")
        super().__init__(cardinality, **kw)
