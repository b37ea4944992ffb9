"""`auto`: the default label model. Fits several label models and picks one, saying why.

No label model wins everywhere (WRENCH's verdict, and ours: Dawid–Skene wins on youtube and trec,
loses to majority vote where every class has one rule, and runs away from the vote on spouse_llm,
where 22 prompt variants of one LLM vouch for each other). So `auto` fits the candidates and picks:

1. **With gold** (``fit(L, gold=y)``, y = class or -1 per row: dev-file rows or labeled seed rows
   appended to the matrix): each candidate is fitted as is and with the class prior calibrated on
   the gold rows (their class counts, shrunk toward the balance the votes imply); the one with the
   best accuracy on the gold rows wins; where several tie (a handful of gold rows often cannot
   separate them), the vote-only choice below decides. The caller must not score the rows it
   passed as gold.
2. **Without gold**:

   - groups of correlated labelers (found by Dawid–Skene, `correlation`) count as one labeler in
     both criteria below: prompt variants of one LLM must not vouch for each other here either.
   - *runaway guard*: a candidate whose labels agree with majority vote on fewer than `runaway`
     (0.5) of the rows where at least two labelers agree on a clear winner has run away from the
     vote (EM that locked onto a block of correlated or worse-than-chance labelers); it is dropped.
     Not higher: where correlated LLM labelers misfire together the clear vote itself is wrong,
     and the model that counts them once must disagree with it (synthetic: .58 agreement, .88
     accuracy vs the vote's .45).
   - *leave-one-labeler-out*: each remaining candidate predicts the rows from the other labelers'
     votes with one labeler masked, and is scored by how often it agrees with the masked labeler's
     votes (a better aggregate agrees more with any better-than-chance labeler). Only labelers
     whose classes some other labeler also votes take part: a rule that alone votes its class could
     only be "predicted" by a model that invents that class.
   - the first candidate (in `candidates` order) within 0.01 of the best score is picked: a
     difference that small is noise, and the order puts the better-tested models first.
   - if no labeler can take part (one rule per class), the votes cannot rank the models and the
     pick is `weighted`: each rule's vote weighted by its Dawid–Skene accuracy, so where two rules
     fire on one row (frequent there) the more accurate one wins instead of a coin. Chosen on the
     valid splits of the two such shared sets (hausa .556 vs majority .549, HyperLM-broken ties
     .556; yoruba .611 vs .577 and .594). If the runaway guard dropped it, majority vote, the floor
     every label model is judged against, with its ties broken by HyperLM when the optional
     `hyperlm` package is installed and the matrix is small enough (`majority+hyper_ties`).

The pick, the scores and the reason are in `selection_` (the run writes them to the manifest and
the report). `predict_proba` delegates to the picked model.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from agentlab.labeling.label_model import AGGREGATORS, LabelModel
from agentlab.labeling.matrix import check_matrix, vote_counts

DEFAULT_CANDIDATES = ("dawid_skene", "dawid_skene_groups", "weighted", "metal", "majority")
METAL_MAX_CELLS = 1500  # metal's overlap matrix is (m·k)², quadratic in labelers × classes
MAX_CRITERION_ROWS = 10_000  # the vote-only criteria are computed on a seeded sample of rows
MAX_HELD_OUT = 24  # labelers masked in turn (the most active ones)
SCORE_SLACK = 0.01  # a later candidate must beat an earlier one by more than this to be picked
HYPER_MAX_CELLS = 1500  # HyperLM runs one pass per class over every vote: skip past labelers × classes
PREDICT_CHUNK = 500_000  # rows labelled at a time by the picked model
HYPER_MAX_ROWS = 50_000  # larger matrices: only the tied rows, in chunks, each beside a fixed context sample


def hyper_available() -> bool:
    """True when the optional `hyperlm` package is importable (the `hyper` label model)."""
    return importlib.util.find_spec("hyperlm") is not None


def default_candidates(m: int, k: int) -> list[str]:
    """The built-in candidates that stay fast at this size (metal is skipped past METAL_MAX_CELLS)."""
    return [c for c in DEFAULT_CANDIDATES if c != "metal" or m * k <= METAL_MAX_CELLS]


def collapse(L: np.ndarray, k: int, groups: list[list[int]]) -> tuple[np.ndarray, list[list[int]]]:
    """Each group of correlated labelers becomes one column (its members' majority; ties abstain).

    Returns (collapsed matrix, the original columns behind each collapsed column)."""
    grouped = {j for g in groups for j in g}
    units = [[j] for j in range(L.shape[1]) if j not in grouped] + [list(g) for g in groups]
    cols = []
    for unit in units:
        if len(unit) == 1:
            cols.append(L[:, unit[0]])
            continue
        counts = vote_counts(L[:, unit], k)
        top = counts.max(axis=1, keepdims=True)
        unique = ((counts == top).sum(axis=1) == 1) & (top[:, 0] > 0)
        cols.append(np.where(unique, counts.argmax(axis=1), -1))
    return np.stack(cols, axis=1).astype(L.dtype), units


def clear_majority(C: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask of rows where at least two labelers agree on a unique winner, that winner)."""
    counts = vote_counts(C, k)
    top = counts.max(axis=1, keepdims=True)
    clear = ((counts == top).sum(axis=1) == 1) & (top[:, 0] >= 2)
    return clear, counts.argmax(axis=1)


def vote_agreement(P: np.ndarray, C: np.ndarray, k: int) -> float:
    """Share of the clear-majority rows of C where argmax P is the majority's class (1.0 if none)."""
    clear, winner = clear_majority(C, k)
    if not clear.any():
        return 1.0
    return float((P[clear].argmax(axis=1) == winner[clear]).mean())


def held_out_units(C: np.ndarray, limit: int = MAX_HELD_OUT) -> list[int]:
    """Columns of C whose every voted class is voted by at least one other column, most active first."""
    voted = C >= 0
    polarity = [set(np.unique(C[voted[:, j], j]).tolist()) for j in range(C.shape[1])]
    voters: dict[int, int] = {}
    for classes in polarity:
        for c in classes:
            voters[c] = voters.get(c, 0) + 1
    ok = [j for j, classes in enumerate(polarity) if classes and all(voters[c] >= 2 for c in classes)]
    return sorted(ok, key=lambda j: -int(voted[:, j].sum()))[:limit]


def leave_one_labeler_out(model: LabelModel, L: np.ndarray, C: np.ndarray, units: list[list[int]],
                          held: list[int]) -> float:
    """Mean over held-out units (a labeler, or a group of correlated ones) of: agreement of the
    model's argmax, computed with the unit's columns masked, with the unit's (collapsed) votes on
    rows where someone else voted too. NaN when `held` is empty."""
    scores = []
    for u in held:
        masked = L.copy()
        masked[:, units[u]] = -1
        rows = (C[:, u] >= 0) & (masked >= 0).any(axis=1)
        if rows.any():
            P = model.predict_proba(masked[rows])
            scores.append(float((P.argmax(axis=1) == C[rows, u]).mean()))
    return float(np.mean(scores)) if scores else float("nan")


@AGGREGATORS.register("auto")
class AutoLabelModel(LabelModel):
    """Fit several label models and use the one gold rows or the votes say is best (module docstring).

    Args:
        candidates: registered label-model names to choose from (default: dawid_skene, weighted,
            metal (skipped when labelers × classes > 1500: its cost is quadratic there), majority;
            plus hyper when `include_hyper` and the `hyperlm` package is installed).
        runaway: minimum agreement with the clear majority-vote decisions (no-gold selection).
            Known limit: three or more LLMs that misfire on the same rows still out-vote everything
            after grouping; no vote-only criterion sees it, gold rows (`aggregate.dev`) do.
        include_hyper: add the pretrained `hyper` label model to the candidates when installed.
        options: per-candidate constructor options, e.g. ``{"dawid_skene": {"smoothing": 0.1}}``.
        max_fit_rows: candidates are fitted on a seeded sample of this many rows when L has more
            (every row is still labelled).
    """

    name = "auto"

    def __init__(self, cardinality: int, candidates: list[str] | None = None, runaway: float = 0.5,
                 include_hyper: bool = False, options: dict[str, dict[str, Any]] | None = None,
                 max_fit_rows: int = 100_000, **kw: Any):
        if candidates is not None and (not candidates or "auto" in candidates):
            raise ValueError(f"auto: candidates must be a non-empty list of other label models (got {candidates!r})")
        if not 0 <= runaway <= 1:
            raise ValueError(f"auto: runaway must be in [0, 1] (got {runaway})")
        self.candidates, self.runaway, self.include_hyper = candidates, float(runaway), bool(include_hyper)
        self.options = dict(options or {})
        if int(max_fit_rows) < 1:
            raise ValueError(f"auto: max_fit_rows must be >= 1 (got {max_fit_rows})")
        self.max_fit_rows = int(max_fit_rows)
        self._common = {k: kw[k] for k in ("seed", "max_iter", "tol", "tie_break") if k in kw}
        super().__init__(cardinality, **kw)
        self.selection_: dict[str, Any] = {}

    # -- fitting ------------------------------------------------------------------------
    def _names(self, m: int) -> list[str]:
        names = list(self.candidates) if self.candidates else default_candidates(m, self.k)
        if self.include_hyper and self.candidates is None and hyper_available():
            names.append("hyper")
        return names

    def _make(self, name: str, prior: np.ndarray | None) -> LabelModel:
        return AGGREGATORS.get(name)(self.k, class_prior=prior, **self._common, **self.options.get(name, {}))

    def fit(self, L: Any, W: Any = None, gold: Any = None) -> AutoLabelModel:
        """Fit every candidate on L and pick one; `gold` (n,) holds a class or -1 per row."""
        L, W = self._check(L, W, fitting=True)
        y = self._check_gold(gold, len(L))
        F = self._fit_rows(L)
        WF = W if F is L else None
        self.models_ = {}
        for n in self._names(L.shape[1]):
            self.models_[n] = self._fit_candidate(n, self.class_prior, F, WF)
        self._select_by_votes(L)
        if y is not None and (y >= 0).any():
            self._select_with_gold(L, y, F, WF)
        self.chosen_ = self.models_[self.selection_["picked"]]
        self.class_balance_ = self.chosen_.class_balance_
        return self

    def _fit_rows(self, L: np.ndarray) -> np.ndarray:
        """All rows, or a seeded sample of `max_fit_rows` of them: parameters are estimated well
        from far fewer rows than 1M, and every row is still labelled by the picked model."""
        if len(L) <= self.max_fit_rows:
            return L
        rows = np.random.default_rng(self.seed).choice(len(L), self.max_fit_rows, replace=False)
        return L[np.sort(rows)]

    def _fit_candidate(self, name: str, prior: np.ndarray | None, L: np.ndarray, W: np.ndarray | None) -> LabelModel:
        """Fit one candidate, reusing the plain Dawid–Skene fit where a candidate builds on it."""
        base = next((m for m in self.models_.values() if m.name == "dawid_skene"
                     and _same_prior(m.class_prior, prior)), None)
        if base is not None and name == "dawid_skene_groups" and "dawid_skene_groups" not in self.options:
            from agentlab.labeling.correlation import labeler_groups

            groups = labeler_groups(L, self.k, base.theta_, base.class_balance_, pairs=self._pairs(L, base)) if L.shape[1] > 2 else []
            if not groups:
                return base  # no correlated groups: the same model
            return self._fit_one(AGGREGATORS.get(name)(self.k, class_prior=prior, groups=groups, **self._common), L, W)
        if base is not None and name == "weighted" and "weighted" not in self.options:
            acc = base.labeler_accuracy()
            return self._fit_one(AGGREGATORS.get(name)(self.k, class_prior=prior, accuracy=acc, **self._common), L, W)
        return self._fit_one(self._make(name, prior), L, W)

    @staticmethod
    def _fit_one(model: LabelModel, L: np.ndarray, W: np.ndarray | None) -> LabelModel:
        return model.fit(L, W) if model.name == "weighted" and W is not None else model.fit(L)

    def _check_gold(self, gold: Any, n: int) -> np.ndarray | None:
        if gold is None:
            return None
        y = np.asarray(gold)
        if y.shape != (n,) or (y.size and y.dtype.kind not in "iu"):
            raise ValueError(f"auto: gold must be ({n},) integer classes, -1 = unknown (got shape {y.shape}, dtype {y.dtype})")
        if y.min() < -1 or y.max() >= self.k:
            raise ValueError(f"auto: gold classes must be -1 or in 0..{self.k - 1}")
        return y

    def _sample(self, L: np.ndarray) -> np.ndarray:
        if len(L) <= MAX_CRITERION_ROWS:
            return L
        rows = np.random.default_rng(self.seed).choice(len(L), MAX_CRITERION_ROWS, replace=False)
        return L[np.sort(rows)]

    def _select_by_votes(self, L: np.ndarray) -> None:
        S = self._sample(L)
        self.groups_ = self._criterion_groups(S)
        C, units = collapse(S, self.k, self.groups_)
        agree = {n: vote_agreement(m.predict_proba(S), C, self.k) for n, m in self.models_.items()}
        kept = [n for n in self.models_ if n == "majority" or agree[n] >= self.runaway]
        dropped = [n for n in self.models_ if n not in kept]
        held = held_out_units(C)
        scores: dict[str, float] = {}
        for n in kept if held else []:
            same = next((o for o in scores if self.models_[o] is self.models_[n]), None)  # an alias: same model
            scores[n] = scores[same] if same else leave_one_labeler_out(self.models_[n], S, C, units, held)
        fallback = "majority" if "majority" in kept else kept[0] if kept else next(iter(self.models_))
        if scores:
            best = max(v for v in scores.values() if np.isfinite(v))
            picked = next(n for n in kept if np.isfinite(scores[n]) and scores[n] >= best - SCORE_SLACK)
            reason = (f"leave-one-labeler-out agreement {scores[picked]:.3f} over {len(held)} held-out labelers, "
                      f"within {SCORE_SLACK} of the best of {', '.join(kept)} and first in the order of preference")
            if self.groups_:
                reason += f" (each of {len(self.groups_)} groups of correlated labelers held out and counted as one)"
        elif "weighted" in kept:
            picked = "weighted"
            reason = ("no labeler votes a class that another labeler also votes, so the votes cannot rank the "
                      "label models; a vote weighted by each rule's Dawid–Skene accuracy (the floor of majority "
                      "vote, with ties broken by the more accurate rule)")
        else:
            picked = fallback
            reason = ("no labeler votes a class that another labeler also votes, so the votes cannot rank the "
                      "label models; majority vote is the floor")
            if picked == "majority":
                picked, note = self._hyper_ties(S)
                reason += note
        if dropped:
            reason += (f"; dropped for running away from the vote (agree with the clear majority on "
                       f"< {self.runaway:.0%} of rows): " + ", ".join(f"{n} {agree[n]:.2f}" for n in dropped))
        self.selection_ = {"picked": picked, "by": "votes", "reason": reason, "groups": self.groups_,
                           "vote_agreement": _rounded(agree), "leave_one_labeler_out": _rounded(scores)}

    def _hyper_ties(self, S: np.ndarray) -> tuple[str, str]:
        """Majority vote with ties broken by HyperLM, when installed and small enough; else majority."""
        m = S.shape[1]
        if not hyper_available():
            return "majority", " (ties broken at random: the optional hyperlm package is not installed)"
        if m * self.k > HYPER_MAX_CELLS:
            return "majority", f" (ties broken at random: labelers × classes {m * self.k} > {HYPER_MAX_CELLS})"
        try:
            model = TieBrokenMajority(self.models_["majority"], self.k).fit(S)
        except Exception as e:  # an optional peer's failure must never fail the run
            return "majority", f" (ties broken at random: HyperLM failed: {type(e).__name__}: {e})"
        self.models_[model.name] = model
        return model.name, " (its ties broken by HyperLM's probabilities instead of a coin)"

    def _criterion_groups(self, S: np.ndarray) -> list[list[int]]:
        """Correlated groups for the criteria: any pair with lift >= 2 on >= 20 shared votes (no
        near-copy test: for judging the models, over-grouping only costs a held-out labeler)."""
        ds = next((m for m in self.models_.values() if hasattr(m, "theta_")), None)
        if ds is None or S.shape[1] < 3:
            return []
        from agentlab.labeling.correlation import labeler_groups

        return labeler_groups(S, self.k, ds.theta_, ds.class_balance_, min_jaccard=0.0, pairs=self._pairs(S, ds))

    def _pairs(self, L: np.ndarray, ds: LabelModel) -> tuple[np.ndarray, np.ndarray]:
        """`correlation.pair_lift` of L under `ds`, computed once per (rows, model)."""
        from agentlab.labeling.correlation import pair_lift

        key = (len(L), L.shape[1], id(ds))
        if getattr(self, "_pairs_key", None) != key:
            self._pairs_key, self._pairs_val = key, pair_lift(L, self.k, ds.theta_, ds.class_balance_)
        return self._pairs_val

    def _select_with_gold(self, L: np.ndarray, y: np.ndarray, F: np.ndarray, WF: np.ndarray | None) -> None:
        known = y >= 0
        calibrated = None
        if self.class_prior is None:
            base = self.models_.get("dawid_skene", next(iter(self.models_)))._balance()
            strength = 2.0 * self.k  # pseudo-rows: a handful of gold rows moves the prior only so far
            calibrated = (np.bincount(y[known], minlength=self.k) + strength * base) / (known.sum() + strength)
            for n in list(self.models_):
                if n not in ("majority", "hyper", TieBrokenMajority.name):
                    self.models_[f"{n}+gold_prior"] = self._fit_candidate(n, calibrated, F, WF)
        covered = known & (L >= 0).any(axis=1)
        rows = covered if covered.any() else known
        acc = {n: float((m.predict(L)[rows] == y[rows]).mean()) for n, m in self.models_.items()}
        best = max(acc.values())
        tied = [n for n in acc if acc[n] >= best - 1e-12]
        by_votes = self.selection_
        # gold rows too few to separate the best: the vote-only pick (or its calibrated twin) breaks the tie
        picked = next((n for n in (by_votes["picked"], f"{by_votes['picked']}+gold_prior") if n in tied), tied[0])
        runner = max((n for n in acc if n not in tied), key=lambda n: acc[n], default=None)
        reason = f"best accuracy on {int(rows.sum())} gold rows ({acc[picked]:.3f}"
        reason += f"; next {runner} {acc[runner]:.3f})" if runner else ")"
        if len(tied) > 1:
            reason += f"; {len(tied)} models tie there, so the vote-only choice ({by_votes['picked']}) decides"
        self.selection_ = {"picked": picked, "by": "gold", "reason": reason, "gold_rows": int(rows.sum()),
                           "gold_accuracy": _rounded(acc), "votes_choice": by_votes, "groups": by_votes.get("groups", []),
                           "calibrated_prior": None if calibrated is None else [round(float(p), 4) for p in calibrated]}

    # -- protocol -----------------------------------------------------------------------
    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        """The picked model's probabilities, PREDICT_CHUNK rows at a time (rows are labelled independently, so
        memory stays that of one chunk however many rows there are)."""
        self._require_fitted()
        L = check_matrix(L, self.k, self.m_)
        # only `weighted` reads vote confidences
        W = None if W is None or self.chosen_.name != "weighted" else np.asarray(W, dtype=float)
        if len(L) <= PREDICT_CHUNK:
            return self.chosen_.predict_proba(L, W)
        out = np.empty((len(L), self.k))
        for i in range(0, len(L), PREDICT_CHUNK):
            part = slice(i, i + PREDICT_CHUNK)
            out[part] = self.chosen_.predict_proba(L[part], None if W is None else W[part])
        return out

    def labeler_accuracy(self) -> np.ndarray:
        """The picked model's estimates."""
        self._require_fitted()
        return self.chosen_.labeler_accuracy()


class TieBrokenMajority(LabelModel):
    """A fitted majority vote whose exactly tied top classes are ordered by HyperLM. Untied rows are
    majority's. HyperLM is transductive: up to HYPER_MAX_ROWS rows it runs on the matrix being
    labelled; past that, on the tied rows only, in chunks of HYPER_MAX_ROWS / 2, each beside the same
    seeded context sample of HYPER_MAX_ROWS / 2 fitting rows (cost grows with the tied rows only)."""

    name = "majority+hyper_ties"

    def __init__(self, majority: LabelModel, cardinality: int):
        super().__init__(cardinality, seed=majority.seed, tie_break=majority.tie_break)
        self.majority = majority

    def fit(self, L: Any, W: Any = None) -> TieBrokenMajority:
        from agentlab.labeling.hyper import HyperLM

        L, _ = self._check(L, W, fitting=True)
        half = HYPER_MAX_ROWS // 2
        rows = np.random.default_rng(self.seed).choice(len(L), min(len(L), half), replace=False)
        self.context_ = L[np.sort(rows)]
        self.hyper = HyperLM(self.k).fit(self.context_)
        self.class_balance_ = self.majority.class_balance_
        return self

    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        L, W = self._check(L, W)
        P = self.majority.predict_proba(L, W).copy()
        top = P >= P.max(axis=1, keepdims=True) - 1e-12
        tied = (top.sum(axis=1) > 1) & (L >= 0).any(axis=1)
        if tied.any():
            if len(L) <= HYPER_MAX_ROWS:
                H = self.hyper.predict_proba(L)[tied]
            else:
                T, half = L[tied], HYPER_MAX_ROWS // 2
                H = np.concatenate([self.hyper.predict_proba(np.concatenate([self.context_, T[i:i + half]]))
                                    [len(self.context_):] for i in range(0, len(T), half)])
            P[tied] += 1e-6 * np.where(top[tied], H, 0.0)
            P[tied] /= P[tied].sum(axis=1, keepdims=True)
        return P

    def labeler_accuracy(self) -> np.ndarray:
        return self.majority.labeler_accuracy()


def _rounded(d: dict[str, float]) -> dict[str, float | None]:
    return {n: (round(v, 4) if np.isfinite(v) else None) for n, v in d.items()}


def _same_prior(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.allclose(a, b))
