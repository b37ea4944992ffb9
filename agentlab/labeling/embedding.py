"""Embedding-similarity labeler (Lbl2Vec / Lbl2TransformerVec, METHODS.md §2), offline MiniLM."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from agentlab.labeling.base import ABSTAIN, LABELERS, Labeler, LabelerConfig, Votes


class EmbeddingLabelerConfig(LabelerConfig):
    """Class descriptions/keywords -> centroids -> re-centred on the documents above a threshold -> nearest class."""

    type: Literal["embedding"] = "embedding"
    descriptions: bool = Field(True, description="Embed each class's description (task.classes mapping) with its name.")
    keywords: dict[str, list[str]] | None = Field(None, description="Extra keywords per class, embedded and averaged in.")
    embedder: str = Field("minilm", description="`minilm` (shipped, offline) or a local sentence-transformers folder.")
    threshold: float = Field(0.3, ge=-1, le=1, description="Cosine above which a document re-centres its class vector.")
    min_docs: int = Field(5, ge=1, description="Re-centre on at least this many top documents per class.")
    margin: float = Field(0.02, ge=0, description="Abstain when the top two class similarities differ by less.")
    temperature: float = Field(0.05, gt=0, description="Softmax temperature turning similarities into a confidence.")
    field: str = Field("text", description="Column to embed.")


@LABELERS.register("embedding")
class EmbeddingLabeler(Labeler):
    """Lbl2TransformerVec: works offline with the shipped MiniLM."""

    config_cls = EmbeddingLabelerConfig

    @property
    def name(self) -> str:
        return self.config.name or "embedding"

    def _class_texts(self) -> list[list[str]]:
        out = []
        for cls in self.space.names:
            texts = [cls]
            desc = self.space.descriptions.get(cls)
            if self.config.descriptions and desc:
                texts.append(f"{cls}: {desc}")
            texts += (self.config.keywords or {}).get(cls, [])
            out.append(texts)
        return out

    def label(self, ctx, rows):
        from agentlab.embedder import embed

        cfg = self.config
        docs = embed([str(r.get(cfg.field) or "") for r in rows], cfg.embedder)
        groups = self._class_texts()
        flat = embed([t for g in groups for t in g], cfg.embedder)
        cents, at = [], 0
        for g in groups:
            cents.append(flat[at : at + len(g)].mean(0))
            at += len(g)
        cents = _norm(np.stack(cents))
        cents = self._recentre(docs, cents)
        sims = docs @ cents.T
        order = np.sort(sims, axis=1)
        top = sims.argmax(1)
        margin = order[:, -1] - order[:, -2] if sims.shape[1] > 1 else np.ones(len(rows))
        z = (sims - sims.max(1, keepdims=True)) / cfg.temperature
        probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        out = Votes.single(self.name, len(rows))
        keep = margin >= cfg.margin
        out.votes[keep, 0] = top[keep]
        out.votes[~keep, 0] = ABSTAIN
        out.confidence[keep, 0] = probs.max(1)[keep]
        return out

    def _recentre(self, docs: np.ndarray, cents: np.ndarray) -> np.ndarray:
        """Move each class vector to the mean of its documents above the threshold (not just the nearest one)."""
        sims = docs @ cents.T
        top = sims.argmax(1)
        new = cents.copy()
        for c in range(len(cents)):
            mine = np.where(top == c)[0]
            if len(mine) == 0:
                continue
            s = sims[mine, c]
            chosen = mine[s >= self.config.threshold]
            if len(chosen) < self.config.min_docs:
                chosen = mine[np.argsort(-s)[: self.config.min_docs]]
            new[c] = docs[chosen].mean(0)
        return _norm(new)


def _norm(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
