"""`hyper`: HyperLM (Wu et al., ICLR'23), a graph network pretrained on synthetic label matrices.

No fitting: one forward pass over the whole label matrix (it is transductive: a row's label depends
on every other row's votes). Optional: ``pip install 'agentlab[bench]'`` or ``pip install hyperlm``.
For k > 2 classes it scores each class one-vs-rest and normalises, as the package does, but with k
taken from the task (the package infers it from the largest vote, which breaks when the last class
gets no vote). Its checkpoint is a pickled torch file; it is loaded with
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for that one load (it ships inside the wheel).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from agentlab.labeling.label_model import AGGREGATORS, LabelModel
from agentlab.labeling.matrix import vote_counts

_NET: Any = None


def _net():
    """The pretrained network, loaded once per process (CPU)."""
    global _NET
    if _NET is None:
        try:
            import hyperlm
        except ImportError as e:
            raise ImportError("the `hyper` label model needs the optional `hyperlm` package: "
                              "pip install 'agentlab[bench]' (or pip install hyperlm)") from e
        from hyperlm.hyper_label_model import UnsupervisedWraper

        path = os.path.join(os.path.dirname(hyperlm.__file__), "checkpoint.pt")
        old = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
        try:
            with warnings.catch_warnings():  # the package's own torch.load FutureWarning
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", UserWarning)
                _NET = UnsupervisedWraper("cpu", path).net
        finally:
            if old is None:
                os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
            else:
                os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = old
    return _NET


def _forward(mat: np.ndarray) -> np.ndarray:
    """P(positive) per row for a ±1/0 (0 = abstain) matrix."""
    import torch

    rows, cols = np.nonzero(mat)
    if len(rows) == 0:
        return np.full(len(mat), 0.5)
    index = torch.from_numpy(np.stack([rows, cols], axis=1).astype(np.int64)).unsqueeze(0)
    value = torch.from_numpy(mat[rows, cols].astype(np.float32)).unsqueeze(0)
    with torch.no_grad():
        pred, _ = _net()(index, value)
    out = np.full(len(mat), 0.5)
    # the net returns one value per row up to the last row with a vote
    p = np.atleast_1d(pred.numpy().astype(float))
    out[: len(p)] = p
    return out


@AGGREGATORS.register("hyper")
class HyperLM(LabelModel):
    """HyperLM's unsupervised forward pass (module docstring). Vote confidences W are ignored;
    `labeler_accuracy` is the agreement of each labeler with the predicted labels."""

    name = "hyper"

    def fit(self, L: Any, W: Any = None) -> HyperLM:
        L, _ = self._check(L, W, fitting=True)
        _net()
        P = self.predict_proba(L)
        pred = P.argmax(axis=1)
        voted = L >= 0
        right = (voted & (L == pred[:, None])).sum(axis=0)
        n = voted.sum(axis=0)
        self._acc = np.where(n > 0, right / np.maximum(n, 1), np.nan)
        if self.class_balance_ is None:
            self.class_balance_ = (P[voted.any(axis=1)].sum(axis=0) + 1.0) / (voted.any(axis=1).sum() + self.k)
        return self

    def predict_proba(self, L: Any, W: Any = None) -> np.ndarray:
        L, _ = self._check(L, W)
        mat = np.where(L < 0, 0, -1).astype(np.int8)
        if self.k == 2:
            p = _forward(np.where(L == 1, 1, mat))
            P = np.stack([1 - p, p], axis=1)
        else:
            P = np.stack([_forward(np.where(L == c, 1, mat)) for c in range(self.k)], axis=1)
            P = P / np.maximum(P.sum(axis=1, keepdims=True), 1e-12)
        if self.class_prior is not None:
            P = P * self.class_prior
            P /= P.sum(axis=1, keepdims=True)
        P[~np.isfinite(P).all(axis=1)] = vote_counts(L, self.k)[~np.isfinite(P).all(axis=1)] + 1e-9
        P /= P.sum(axis=1, keepdims=True)
        return self._fill_empty(P, L)

    def labeler_accuracy(self) -> np.ndarray:
        """Agreement of each labeler's votes with HyperLM's labels (no fitted confusion exists)."""
        self._require_fitted()
        return self._acc.copy()
