"""`embedding` student: frozen sentence embeddings + a soft-label logistic-regression head (SetFit-style head).

The cheap, strong baseline: the texts are encoded once by a sentence-transformers model
(all-MiniLM-L6-v2 by default) or, with `base: smollm2`, by the embedded SmolLM2 GGUF (the last
token's hidden state after `student.prompt`, see `gguf_features`), and a multinomial logistic regression is fitted on the
embeddings with the same targets the other students use (`label_probs` or their argmax, with
per-row weights). The L2 strength is picked on the validation rows' labels (never gold) from a
small grid; without validation rows C = 1. SmolLM2 features are standardised for the fit and the
scaling folded into the saved head, so the head applies to raw features. Training takes seconds on a CPU. Saved as
`head.safetensors` (weight (d, k), bias (k,)) + metadata; the encoder is the named base.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentlab.distill.base import STUDENTS, Student, seed_everything
from agentlab.distill.data import Example, build_examples
from agentlab.distill.gguf_features import is_gguf_base
from agentlab.errors import AgentlabError, TrainingError

if TYPE_CHECKING:
    from agentlab.config.sections import DistillConfig

log = logging.getLogger("agentlab")
HEAD_FILE = "head.safetensors"
#: inverse L2 strengths tried on the validation rows (sklearn's C: loss sum + ||W||^2 / 2C); the small ones are
#: for standardised GGUF features (576+ dimensions of unit variance), which picked 0.1, the old grid's edge
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
DEFAULT_C = 1.0


def base_parts(base: str) -> list[str]:
    """The encoders of a base: `minilm+smollm2` -> ['minilm', 'smollm2'] (their features side by side)."""
    parts = [p.strip() for p in base.split("+")]
    if not all(parts):
        raise TrainingError(f"embedding student: base {base!r} has an empty part; write e.g. minilm+smollm2")
    return parts


def uses_gguf(base: str) -> bool:
    """True when any part of `base` is a GGUF decoder (its features are then standardised for the fit)."""
    return any(is_gguf_base(p) for p in base_parts(base))


def encode(texts: list[str], base: str, prompt: str = "{text}") -> np.ndarray:
    """Features (n, d) from `base`: L2-normalised sentence embeddings (`minilm` or a local sentence-transformers
    folder), or a GGUF decoder's last-token hidden states after `prompt` (`smollm2` or a `.gguf` path); with
    several parts joined by `+` (`minilm+smollm2`), each part's features side by side."""
    from agentlab.distill.gguf_features import gguf_embed, is_gguf_base
    from agentlab.embedder import embed

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    parts = base_parts(base)
    if len(parts) > 1:
        return np.hstack([np.asarray(encode(texts, p, prompt), dtype=np.float64) for p in parts])
    if is_gguf_base(base):
        return gguf_embed(list(texts), base, prompt)
    try:
        return np.asarray(embed(list(texts), base), dtype=np.float64)
    except AgentlabError as exc:
        raise TrainingError(f"embedding student: {exc}") from None


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_head(X: np.ndarray, T: np.ndarray, w: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on soft targets: min sum_i w_i CE(T_i, softmax(X_i W + b)) + |W|^2 / 2C.

    Args:
        X: (n, d) features. T: (n, k) target distributions. w: (n,) loss weights. C: inverse L2 strength.

    Returns:
        (W (d, k), b (k,)).
    """
    from scipy.optimize import minimize

    d = X.shape[1]
    k = T.shape[1]

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[: d * k].reshape(d, k), theta[d * k:]
        Z = X @ W + b
        logp = Z - Z.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        loss = float(-(w[:, None] * T * logp).sum() + (W * W).sum() / (2 * C))
        G = (np.exp(logp) * T.sum(1, keepdims=True) - T) * w[:, None]
        return loss, np.concatenate([(X.T @ G + W / C).ravel(), G.sum(0)])

    res = minimize(loss_grad, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x[: d * k].reshape(d, k), res.x[d * k:]


def fit_standardized(X: np.ndarray, T: np.ndarray, w: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray]:
    """`fit_head` on column-standardised X, with the scaling folded into (W, b) so they apply to raw X."""
    mu, sd = X.mean(0), X.std(0) + 1e-6
    W, b = fit_head((X - mu) / sd, T, w, C)
    return W / sd[:, None], b - (mu / sd) @ W


def soft_ce(P: np.ndarray, T: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean cross-entropy of predictions P against target distributions T."""
    return float(-(w[:, None] * T * np.log(np.clip(P, 1e-12, 1.0))).sum() / max(w.sum(), 1e-12))


def arrays(examples: list[Example]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(texts, targets (n, k), weights (n,)) of examples."""
    return ([e.text for e in examples], np.array([e.target for e in examples], dtype=np.float64),
            np.array([e.weight for e in examples], dtype=np.float64))


@STUDENTS.register("embedding")
class EmbeddingStudent(Student):
    """Frozen sentence encoder + logistic-regression head trained on soft or hard labels."""

    name = "embedding"

    def __init__(self, classes: list[str] | None = None, meta: dict[str, Any] | None = None,
                 weight: np.ndarray | None = None, bias: np.ndarray | None = None):
        super().__init__(classes, meta)
        self.weight, self.bias = weight, bias

    def train(self, data: list[Any], config: DistillConfig, out_dir: Path,
              eval_data: list[Any] | None = None, quiet: bool = False) -> dict[str, Any]:
        """Encode, pick C on `eval_data`'s labels (if any), fit the head on all of `data`, save into `out_dir`.

        Args:
            data: `Example`s or label-task rows. eval_data: validation examples/rows (labels, never gold).
            config: the distill config (student.base, soft_labels, weights, seed). quiet: unused (no bar).
        """
        from agentlab.distill.card import finish_student

        train_ex, eval_ex = self._examples(data, config), self._examples(eval_data or [], config)
        if not train_ex:
            raise TrainingError("no labeled rows to train on (every row has label None or was filtered)")
        seed_everything(config.seed)
        base, prompt = config.student.base, config.student.prompt
        gguf = uses_gguf(base)
        fit = fit_standardized if gguf else fit_head
        t0 = time.perf_counter()
        texts, T, w = arrays(train_ex)
        X = encode(texts, base, prompt)
        metrics: dict[str, Any] = {"examples": len(train_ex)}
        C = DEFAULT_C
        if eval_ex:
            etexts, ET, ew = arrays(eval_ex)
            EX = encode(etexts, base, prompt)
            scores = {c: soft_ce(softmax(EX @ W + b), ET, ew) for c in C_GRID for W, b in [fit(X, T, w, c)]}
            C = min(scores, key=scores.get)
            self.weight, self.bias = fit(X, T, w, C)
            P = self.probs(EX)
            metrics.update(val_loss=round(scores[C], 4),
                           val_accuracy=round(float((P.argmax(1) == ET.argmax(1)).mean()), 4))
        else:
            self.weight, self.bias = fit(X, T, w, C)
        metrics.update(C=C, train_loss=round(soft_ce(self.probs(X), T, w), 4), seconds=round(time.perf_counter() - t0, 2))
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self._save(out_dir)
        self.meta = {"type": self.name, "base": base, "base_path": _base_path(base), "hub_id": _hub_id(base),
                     **({"prompt": prompt, "pooling": "last"} if gguf else {}), "classes": self.classes, "text_field": config.student.text_field, "peft": "none",
                     "soft_labels": config.soft_labels, "train": metrics}
        finish_student(out_dir, self.meta)
        return metrics

    def _examples(self, data: list[Any], config: DistillConfig) -> list[Example]:
        if data and isinstance(data[0], dict):
            if not self.classes:
                from agentlab.distill.data import infer_classes

                self.classes = infer_classes(data)
            data, _ = build_examples(data, self.classes, config, config.student.text_field)
        if data and not self.classes:
            raise TrainingError("the embedding student needs class names (pass classes=...)")
        return list(data)

    def probs(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities for embeddings X."""
        return softmax(X @ self.weight + self.bias)

    def predict(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, k) class probabilities."""
        if not texts:
            return np.zeros((0, len(self.classes)))
        return self.probs(encode(list(texts), self.meta.get("base", "minilm"), self.meta.get("prompt", "{text}")))

    def _save(self, out_dir: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"weight": np.ascontiguousarray(self.weight, dtype=np.float32),
                   "bias": np.ascontiguousarray(self.bias, dtype=np.float32)}, str(out_dir / HEAD_FILE))

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> EmbeddingStudent:
        """Rebuild from the folder: the head's weights; the encoder is re-resolved from the base name."""
        from safetensors.numpy import load_file

        head = load_file(str(Path(path) / HEAD_FILE))
        return cls(list(meta["classes"]), meta, head["weight"].astype(np.float64), head["bias"].astype(np.float64))


def _base_path(base: str) -> str:
    """The resolved path of each part, joined by ' + ' for a combined base."""
    from agentlab.distill.gguf_features import gguf_path
    from agentlab.embedder import resolve_model

    parts = base_parts(base)
    if len(parts) > 1:
        return " + ".join(_base_path(p) for p in parts)
    if is_gguf_base(base):
        return str(gguf_path(base))
    try:
        return resolve_model(base)
    except AgentlabError as exc:
        raise TrainingError(f"embedding student: {exc}") from None


def _hub_id(base: str) -> str | None:
    from agentlab.distill.gguf_features import SMOLLM2_HUB_ID

    return {"minilm": "sentence-transformers/all-MiniLM-L6-v2", "smollm2": SMOLLM2_HUB_ID}.get(base)
