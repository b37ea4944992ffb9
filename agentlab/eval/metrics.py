"""Classification metrics for probabilistic labels: accuracy, macro-F1, coverage, calibration
(ECE), risk–coverage, Cohen's kappa, precision/recall/F1. Pure numpy.

Conventions: gold labels are ints with ``-1`` = unknown (such rows are left out); predictions are
ints with ``-1`` = abstain; ``probs`` is (n, k) and its argmax is the prediction (ties go to the
lowest class index, so metrics are deterministic).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _as_labels(y: Any, what: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D; got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integer classes; got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _as_probs(probs: Any, n: int) -> np.ndarray:
    P = np.asarray(probs, dtype=float)
    if P.ndim != 2 or P.shape[0] != n:
        raise ValueError(f"probs must have shape (n={n}, k); got {P.shape}")
    return P


def _macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Macro-F1 over the classes present in y or pred (pred -1 = abstain counts as a miss)."""
    classes = np.union1d(y, pred[pred >= 0])
    if classes.size == 0:
        return float("nan")
    f1 = []
    for c in classes:
        tp = np.sum((pred == c) & (y == c))
        denom = np.sum(pred == c) + np.sum(y == c)
        f1.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(f1))


def classification_metrics(y_true: Any, probs: Any, abstained: Any = None) -> dict[str, float]:
    """Accuracy, macro-F1, coverage and ECE of probabilistic labels against gold.

    Args:
        y_true: (n,) gold classes, -1 = unknown (left out everywhere).
        probs: (n, k) class probabilities.
        abstained: optional (n,) bool mask of rows the labeler/model abstained on; rows whose
            probabilities are not finite count as abstained too.

    Returns:
        ``accuracy``, ``macro_f1`` and ``ece`` over the covered (non-abstained) rows;
        ``coverage`` = covered / n; ``accuracy_all`` and ``macro_f1_all`` over all rows with an
        abstain counted as wrong; ``n`` rows with gold and ``n_covered``.
    """
    y = _as_labels(y_true, "y_true")
    P = _as_probs(probs, len(y))
    abst = np.zeros(len(y), bool) if abstained is None else np.asarray(abstained, bool).ravel()
    if abst.shape != y.shape:
        raise ValueError(f"abstained must have one entry per row ({len(y)}); got {abst.shape}")
    abst = abst | ~np.isfinite(P).all(axis=1)
    keep = y >= 0
    y, P, abst = y[keep], P[keep], abst[keep]
    n = len(y)
    pred = np.where(abst, -1, np.nan_to_num(P).argmax(axis=1))
    cov = ~abst
    nan = float("nan")
    return {
        "accuracy": float(np.mean(pred[cov] == y[cov])) if cov.any() else nan,
        "macro_f1": _macro_f1(y[cov], pred[cov]) if cov.any() else nan,
        "coverage": float(cov.mean()) if n else nan,
        "ece": expected_calibration_error(y[cov], P[cov]) if cov.any() else nan,
        "accuracy_all": float(np.mean(pred == y)) if n else nan,
        "macro_f1_all": _macro_f1(y, pred) if n else nan,
        "n": int(n),
        "n_covered": int(cov.sum()),
    }


def expected_calibration_error(y: Any, probs: Any, bins: int = 10) -> float:
    """ECE: Σ_b |B_b|/n · |accuracy(B_b) − mean confidence(B_b)| over equal-width confidence bins
    (confidence = top probability; bins are (lo, hi], the first also holds 0)."""
    y = _as_labels(y, "y")
    P = _as_probs(probs, len(y))
    if bins < 1:
        raise ValueError(f"bins must be >= 1 (got {bins})")
    if len(y) == 0:
        return float("nan")
    conf = P.max(axis=1)
    right = (P.argmax(axis=1) == y).astype(float)
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    gap = np.abs(np.bincount(idx, right, bins) - np.bincount(idx, conf, bins))
    return float(gap.sum() / len(y))


def risk_coverage(y: Any, probs: Any) -> dict[str, Any]:
    """Selective-prediction curve: keep the most confident rows first.

    Returns ``coverage`` (i/n for i = 1..n), ``risk`` (error rate among the kept rows),
    ``threshold`` (confidence of the last kept row) as arrays, and ``aurc`` (mean risk over the
    curve, lower is better).
    """
    y = _as_labels(y, "y")
    P = _as_probs(probs, len(y))
    if len(y) == 0:
        empty = np.zeros(0)
        return {"coverage": empty, "risk": empty, "threshold": empty, "aurc": float("nan")}
    conf = P.max(axis=1)
    order = np.argsort(-conf, kind="stable")
    wrong = (P.argmax(axis=1) != y)[order].astype(float)
    kept = np.arange(1, len(y) + 1)
    risk = np.cumsum(wrong) / kept
    return {"coverage": kept / len(y), "risk": risk, "threshold": conf[order], "aurc": float(risk.mean())}


def cohen_kappa(a: Any, b: Any) -> float:
    """Cohen's kappa between two label arrays; pairs where either is -1 are dropped.

    Returns NaN when no pair is left, and 1.0 / 0.0 when chance agreement is 1 (both raters use
    a single, identical / different class).
    """
    a, b = _as_labels(a, "a"), _as_labels(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same length; got {len(a)} and {len(b)}")
    keep = (a >= 0) & (b >= 0)
    a, b = a[keep], b[keep]
    if len(a) == 0:
        return float("nan")
    classes = np.union1d(a, b)
    po = float(np.mean(a == b))
    pa = np.array([np.mean(a == c) for c in classes])
    pb = np.array([np.mean(b == c) for c in classes])
    pe = float(pa @ pb)
    if pe >= 1.0:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1.0 - pe)


def prf1(y_true: Any, y_pred: Any, positive: int = 1) -> dict[str, float]:
    """Precision, recall and F1 of class `positive` (0 where undefined) and its support.

    Predictions of -1 (abstain) are never positive, so they only cost recall.
    """
    y, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length; got {len(y)} and {len(p)}")
    keep = y >= 0
    y, p = y[keep], p[keep]
    tp = int(np.sum((p == positive) & (y == positive)))
    n_pred, n_true = int(np.sum(p == positive)), int(np.sum(y == positive))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": n_true}


def reliability_bins(y: Any, probs: Any, bins: int = 10) -> dict[str, np.ndarray]:
    """Per-bin count, mean confidence and accuracy (NaN for empty bins), for reliability plots."""
    y = _as_labels(y, "y")
    P = _as_probs(probs, len(y))
    conf = P.max(axis=1)
    right = (P.argmax(axis=1) == y).astype(float)
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    size = np.bincount(idx, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "edges": np.linspace(0, 1, bins + 1),
            "count": size,
            "confidence": np.bincount(idx, conf, bins) / size,
            "accuracy": np.bincount(idx, right, bins) / size,
        }

