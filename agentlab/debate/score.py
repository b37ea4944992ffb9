"""Agreement with gold (accuracy, precision, recall, F1, Cohen's kappa) and position bias."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from agentlab.eval.metrics import cohen_kappa, prf1


def _clean(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


def agreement(gold: list[str | None], pred: list[str | None], choices: list[str], positive: str) -> dict[str, Any]:
    """Decisions vs gold over the rows whose gold is one of `choices`.

    An undecided row (None: failed or unparsable) counts as wrong for accuracy and never as
    positive; kappa is over decided rows only (`coverage` says how many). Binary choices give
    precision/recall/F1 of `positive`; more choices give their macro average.

    Returns:
        accuracy, precision, recall, f1, kappa, coverage, n (rows with usable gold), undecided.
    """
    idx = {c: i for i, c in enumerate(choices)}
    y = np.array([idx.get(g, -1) if g is not None else -1 for g in gold], dtype=np.int64)
    p = np.array([idx.get(d, -1) if d is not None else -1 for d in pred], dtype=np.int64)
    known = y >= 0
    y, p = y[known], p[known]
    n = len(y)
    if n == 0:
        return {"accuracy": None, "precision": None, "recall": None, "f1": None, "kappa": None, "coverage": None, "n": 0, "undecided": 0}
    if len(choices) == 2:
        pr = prf1(y, p, positive=idx[positive])
    else:
        per = [prf1(y, p, positive=k) for k in range(len(choices))]
        pr = {m: float(np.mean([x[m] for x in per])) for m in ("precision", "recall", "f1")}
    return {
        "accuracy": _clean(float(np.mean(p == y))),
        "precision": _clean(pr["precision"]),
        "recall": _clean(pr["recall"]),
        "f1": _clean(pr["f1"]),
        "kappa": _clean(cohen_kappa(y, p)),
        "coverage": _clean(float(np.mean(p >= 0))),
        "n": n,
        "undecided": int(np.sum(p < 0)),
    }


def position_bias(first: list[str | None], swapped: list[str | None]) -> dict[str, Any]:
    """How often reversing the speaking order changed the decision (rows decided both times)."""
    pairs = [(a, b) for a, b in zip(first, swapped) if a is not None and b is not None]
    changed = sum(a != b for a, b in pairs)
    return {"rate": _clean(changed / len(pairs)) if pairs else None, "changed": changed, "n": len(pairs),
            "consistency": _clean(1 - changed / len(pairs)) if pairs else None}


def consistent(a: str | None, b: str | None) -> bool | None:
    """Whether two decisions agree (None when either is missing)."""
    return None if a is None or b is None else a == b


def combine(choices: list[str], orders: list[Any], prior: Any = None, weight: float = 0.0) -> tuple[str | None, float | None]:
    """One decision from the judge's choice scores over speaking orders, with the single judge as a prior.

    Args:
        choices: the choices, in the order of each verdict's `scores`.
        orders: the debate judge's verdicts (one per speaking order; None or unscored ones are skipped).
        prior: the single judge's verdict (no debate), or None.
        weight: how much of the prior's scores is added to the mean of the orders' scores.

    Returns:
        (decision, confidence); (None, None) when no order was scored.
    """
    scored = [v.scores for v in orders if v is not None and v.scores is not None]
    if not scored:
        return None, None
    total = [sum(s[k] for s in scored) / len(scored) for k in range(len(choices))]
    if weight and prior is not None and prior.scores is not None:
        total = [t + weight * p for t, p in zip(total, prior.scores)]
    top = max(total)
    probs = [math.exp(t - top) for t in total]
    best = max(range(len(choices)), key=lambda k: probs[k])
    return choices[best], round(probs[best] / sum(probs), 6)


def logsumexp(xs: list[float]) -> float:
    """log(sum(exp(x))), stable."""
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def recentered(outcomes: list[Any], prior: list[Any]) -> list[Any]:
    """Outcomes whose judge scores lose the mean, over rows, of (their scores - the single judge's).

    Rows decided by a refusal, or without scores on either side, neither count in the mean nor change.
    """
    both = [(o, p) for o, p in zip(outcomes, prior)
            if o.source != "refusal" and o.verdict.scores is not None and p is not None and p.scores is not None]
    if not both:
        return outcomes
    k = len(both[0][0].verdict.scores)
    shift = [sum(o.verdict.scores[j] - p.scores[j] for o, p in both) / len(both) for j in range(k)]
    out = []
    for o in outcomes:
        if o.source == "refusal" or o.verdict.scores is None:
            out.append(o)
            continue
        scores = [round(x - d, 6) for x, d in zip(o.verdict.scores, shift)]
        out.append(replace(o, verdict=replace(o.verdict, scores=scores)))
    return out
