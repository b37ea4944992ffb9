"""Label-matrix helpers shared by the label models and LF analysis.

A label matrix ``L`` is an integer array of shape (n examples, m labelers); ``-1`` means the
labeler abstained and ``0..k-1`` are class votes. Optional per-vote confidences ``W`` have the
same shape, with values in [0, 1].
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

ABSTAIN = -1


def check_cardinality(k: object) -> int:
    """Return `k` as an int, or raise ValueError when it is not an integer >= 2."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"cardinality must be an integer >= 2 (got {k!r})")  # noqa: TRY004 - one error type for bad input
    if k < 2:
        raise ValueError(f"cardinality must be >= 2: a label model needs at least two classes (got {k})")
    return int(k)


def check_matrix(L: object, k: int, m: int | None = None) -> np.ndarray:
    """Validate a label matrix and return it as a C-contiguous int array.

    Args:
        L: array-like of shape (n, m) holding -1 (abstain) or a class in 0..k-1.
        k: number of classes.
        m: expected number of labelers (the one the model was fitted with), if known.

    Raises:
        ValueError: naming the problem (not 2-D, no rows/labelers, non-integer dtype, values out
            of range, a labeler count that differs from the fitted one).
    """
    arr = np.asarray(L)
    if arr.ndim != 2:
        raise ValueError(f"label matrix must be 2-D (n examples, m labelers); got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(
            f"label matrix must hold integers (-1 = abstain, 0..{k - 1} = class); got dtype {arr.dtype}. "
            "Fix: map votes to class indices and cast with .astype(int)"
        )
    n, cols = arr.shape
    if n == 0 or cols == 0:
        raise ValueError(f"label matrix is empty (shape {arr.shape}); need at least one row and one labeler")
    if m is not None and cols != m:
        raise ValueError(f"label matrix has {cols} labelers but the model was fitted with {m}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < ABSTAIN or hi >= k:
        bad = arr[(arr < ABSTAIN) | (arr >= k)]
        raise ValueError(
            f"label matrix values must be -1 (abstain) or a class in 0..{k - 1}; "
            f"found {np.unique(bad)[:10].tolist()}"
        )
    small = np.int8 if k < 127 else np.int32
    return np.ascontiguousarray(arr, dtype=small)


def check_weights(W: object, shape: tuple[int, int]) -> np.ndarray | None:
    """Validate per-vote confidences (same shape as L, values in [0, 1]); None passes through."""
    if W is None:
        return None
    arr = np.asarray(W, dtype=float)
    if arr.shape != shape:
        raise ValueError(f"vote weights W must have the label matrix's shape {shape}; got {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError("vote weights W must be finite and in [0, 1]")
    return arr


def check_prior(prior: Sequence[float] | None, k: int) -> np.ndarray | None:
    """Validate a class-balance prior (k non-negative numbers) and normalise it to sum to 1.

    A dict keyed by class index (0..k-1) is accepted too; map class *names* before calling.
    """
    if prior is None:
        return None
    if isinstance(prior, dict):
        if set(prior) - set(range(k)):
            raise ValueError(f"class_prior keys must be class indices 0..{k - 1}; got {sorted(prior, key=str)}")
        prior = [float(prior.get(c, 0.0)) for c in range(k)]
    arr = np.asarray(prior, dtype=float).ravel()
    if arr.shape != (k,):
        raise ValueError(f"class_prior must have one entry per class ({k}); got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.sum() <= 0:
        raise ValueError(f"class_prior must be non-negative with a positive sum; got {arr.tolist()}")
    return arr / arr.sum()


def vote_counts(L: np.ndarray, k: int, W: np.ndarray | None = None) -> np.ndarray:
    """(n, k) number of votes per class (or the sum of their weights when `W` is given)."""
    n = L.shape[0]
    if k <= 32:  # a pass per class beats building (n, m) int64 indices
        out = np.empty((n, k))
        for c in range(k):
            hit = L == c
            out[:, c] = np.count_nonzero(hit, axis=1) if W is None else np.where(hit, W, 0.0).sum(axis=1)
        return out
    voted = L >= 0
    idx = (np.arange(n, dtype=np.int64)[:, None] * k + L)[voted]
    weights = None if W is None else W[voted]
    return np.bincount(idx, weights=weights, minlength=n * k).reshape(n, k).astype(float)


def dedupe_rows(L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique rows of L: returns (U, inverse, counts) with ``U[inverse] == L``.

    Rows are hashed to 64-bit keys (random odd multipliers) and the result is checked exactly;
    on a collision, or when fewer than a third of the rows repeat (merging would not pay), the
    identity mapping is returned instead, which is always correct.
    """
    n, m = L.shape
    identity = (L, np.arange(n), np.ones(n, dtype=np.int64))
    mult = np.random.default_rng(12345).integers(1, 2**62, size=m, dtype=np.int64) | 1
    with np.errstate(over="ignore"):
        keys = (L.astype(np.int64) + 2) @ mult
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    if len(first) > 0.67 * n:
        return identity
    U = L[first]
    if not np.array_equal(U[inverse], L):
        return identity
    return U, inverse.ravel(), counts


def duplicate_share(L: np.ndarray) -> np.ndarray:
    """(m,) share of each labeler in its group of identical columns: 1 / group size.

    Labelers whose columns are identical (the same rule added twice, a rule copied under another
    name) are one source of evidence; a label model that assumes independent labelers would count
    it once per copy. Weighting each copy by its share counts the group once. Exact: columns are
    grouped by their bytes.
    """
    groups: dict[bytes, list[int]] = {}
    for j, col in enumerate(np.ascontiguousarray(L.T)):
        groups.setdefault(col.tobytes(), []).append(j)
    share = np.ones(L.shape[1])
    for members in groups.values():
        share[members] = 1.0 / len(members)
    return share


def indicator(L: np.ndarray, k: int, dtype=np.float64):
    """Sparse one-hot matrix of the votes, shape (n, m*k): column ``j*k + l`` is 1 where labeler j
    voted l. Abstains are empty, so the matrix is as sparse as the votes."""
    import scipy.sparse as sp  # lazy: only label models need it

    n, m = L.shape
    voted = L >= 0
    cols = (np.arange(m, dtype=np.int32)[None, :] * k + L)[voted]
    indptr = np.concatenate([[0], np.cumsum(np.count_nonzero(voted, axis=1), dtype=np.int64)])
    return sp.csr_matrix((np.ones(len(cols), dtype), cols, indptr), shape=(n, m * k))


def break_ties(P: np.ndarray, rule: str = "random", seed: int = 0, prior: np.ndarray | None = None) -> np.ndarray:
    """Argmax of each row of P; rows whose maximum is shared are settled by `rule`.

    Rules: ``random`` (seeded, so the same input gives the same output), ``prior`` (the tied class
    with the highest prior, then random), ``abstain`` (-1 for tied rows).
    """
    k = P.shape[1]
    top = P.max(axis=1, keepdims=True)
    is_max = P >= top - 1e-10 * np.maximum(1.0, np.abs(top))
    pred = P.argmax(axis=1)
    tied = is_max.sum(axis=1) > 1
    if not tied.any():
        return pred
    if rule == "abstain":
        pred[tied] = ABSTAIN
        return pred
    rng = np.random.default_rng(seed)
    key = rng.random((int(tied.sum()), k))
    if rule == "prior" and prior is not None:
        rank = np.unique(prior, return_inverse=True)[1].ravel()
        key = key + 2.0 * rank[None, :]
    elif rule not in ("random", "prior"):
        raise ValueError(f"tie_break must be 'random', 'prior' or 'abstain' (got {rule!r})")
    pred[tied] = np.where(is_max[tied], key, -1.0).argmax(axis=1)
    return pred


def loo_agreement(L: np.ndarray, k: int, smoothing: float = 1.0) -> np.ndarray:
    """Estimated accuracy of each labeler: agreement with the majority of the *other* labelers.

    Votes where the others abstain or tie are skipped. Beta(smoothing, smoothing) shrinkage pulls
    the estimate toward 0.5; a labeler with no usable votes gets NaN.
    """
    counts = vote_counts(L, k)
    srt = np.sort(counts, axis=1)
    top1, top2 = srt[:, -1:], srt[:, -2:-1]
    voted = L >= 0
    own = np.take_along_axis(counts, np.where(voted, L, 0).astype(np.int64), axis=1) - 1.0
    others = np.where(own + 1.0 == top1, top2, top1)
    agree = ((own > others) & voted).sum(0)
    disagree = ((own < others) & voted).sum(0)
    total = agree + disagree
    acc = (agree + smoothing) / np.maximum(total + 2 * smoothing, 1e-12)
    return np.where(total > 0, acc, np.nan)


def blas_single_thread():
    """Context limiting BLAS to one thread: the label models' dense products are small, and
    threaded BLAS makes them 10-30x slower on a busy machine. No-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
