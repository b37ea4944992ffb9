"""`retriever` student: sentence-transformers fine-tuning on (query, positive[, negative]) pairs.

Loss: MultipleNegativesRankingLoss (in-batch negatives), or GISTEmbed (`loss: gist` /
`cached_gist`): the untouched base model acts as a frozen guide that masks in-batch candidates it
scores above the anchor-positive pair (likely false negatives). With `peft.method: lora` the
adapter is merged into the weights before saving, so the folder is a plain sentence-transformers
model. Given label-task rows instead of pairs, it trains on (text, same-class text, other-class
text) triplets and classifies by cosine similarity to class centroids (SetFit-style).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.distill.base import (
    STUDENTS,
    Student,
    best_in_memory,
    pick_device,
    seed_everything,
    silence,
    training_args,
)
from agentlab.errors import TrainingError

if TYPE_CHECKING:
    import numpy as np

    from agentlab.config.sections import DistillConfig

CENTROIDS = "class_centroids.json"
SCALE = 20.0  # cosine -> logit scale for centroid probabilities (MNRL's default scale)


@dataclass
class RetrievalPair:
    """A query with a relevant text and, optionally, a hard negative."""

    query: str
    positive: str
    negative: str | None = None


def as_retrieval_pairs(items: Iterable[Any]) -> list[RetrievalPair]:
    """From `RetrievalPair`s, `(query, positive[, negative])` tuples or `{query|anchor, positive[, negative]}` dicts."""
    out = []
    for it in items:
        if isinstance(it, RetrievalPair):
            out.append(it)
        elif isinstance(it, dict):
            out.append(RetrievalPair(str(it.get("query", it.get("anchor"))), str(it["positive"]), it.get("negative")))
        else:
            out.append(RetrievalPair(str(it[0]), str(it[1]), str(it[2]) if len(it) > 2 and it[2] is not None else None))
    return out


def pairs_from_examples(examples: list[Any], seed: int) -> list[RetrievalPair]:
    """(text, another text of its class, a text of another class) for each labeled example."""
    rng = random.Random(seed)
    by_class: dict[int, list[str]] = {}
    for e in examples:
        by_class.setdefault(e.label, []).append(e.text)
    out = []
    for e in examples:
        same = by_class[e.label]
        others = [c for c in by_class if c != e.label]
        if len(same) < 2:
            continue
        pos = rng.choice([t for t in same if t != e.text] or same)
        neg = rng.choice(by_class[rng.choice(others)]) if others else None
        out.append(RetrievalPair(e.text, pos, neg))
    return out


def _dataset(pairs: list[RetrievalPair]):
    from datasets import Dataset

    cols: dict[str, list] = {"anchor": [p.query for p in pairs], "positive": [p.positive for p in pairs]}
    if pairs and all(p.negative is not None for p in pairs):
        cols["negative"] = [p.negative for p in pairs]
    return Dataset.from_dict(cols)


def _inner_attr(module) -> str:
    """The attribute holding the HF model inside an ST Transformer module (`model` in ST 6, `auto_model` before)."""
    return "model" if isinstance(getattr(type(module), "auto_model", None), property) else "auto_model"


def _loss(name: str, model, base_path: Path, device: str, batch: int):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses

    if name == "mnrl":
        return losses.MultipleNegativesRankingLoss(model)
    guide = SentenceTransformer(str(base_path), device=device)
    if name == "gist":
        return losses.GISTEmbedLoss(model, guide=guide)
    return losses.CachedGISTEmbedLoss(model, guide=guide, mini_batch_size=max(1, batch // 2))


@STUDENTS.register("retriever")
class RetrieverStudent(Student):
    """A sentence-transformers bi-encoder; classifies via class centroids when trained on rows."""

    name = "retriever"

    def __init__(self, classes: list[str] | None = None, meta: dict[str, Any] | None = None,
                 model: Any = None, centroids: Any = None):
        super().__init__(classes, meta)
        self.model, self.centroids = model, centroids

    def _pairs(self, data: list[Any], config: DistillConfig) -> tuple[list[RetrievalPair], list[Any]]:
        """(pairs, examples): rows/examples become class triplets; anything else is read as pairs."""
        from agentlab.distill.data import Example, build_examples, infer_classes

        if data and isinstance(data[0], dict) and "label" in data[0]:
            self.classes = self.classes or infer_classes(data)
            data, _ = build_examples(data, self.classes, config, config.student.text_field)
        if data and isinstance(data[0], Example):
            return pairs_from_examples(data, config.seed), list(data)
        return as_retrieval_pairs(data), []

    def train(self, data: list[Any], config: DistillConfig, out_dir: Path,
              eval_data: list[Any] | None = None, quiet: bool = False) -> dict[str, Any]:
        """Fine-tune on pairs (or labeled rows); save a sentence-transformers folder into `out_dir`."""
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.training_args import BatchSamplers

        from agentlab.distill.bases import resolve_base
        from agentlab.distill.card import finish_student

        pairs, examples = self._pairs(data, config)
        eval_pairs = self._pairs(eval_data, config)[0] if eval_data else []
        if not pairs:
            raise TrainingError("retriever student: no training pairs (rows need at least two texts per class)")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(config.seed)
        base = resolve_base(config.student.base)
        device, _ = pick_device(config)
        t0 = time.perf_counter()
        self.model = SentenceTransformer(str(base.path), device=device)
        self.model.max_seq_length = config.max_length
        peft = config.student.peft
        if peft.method == "lora":
            self._add_lora(base, peft)
        elif peft.method != "none":
            raise TrainingError(f"retriever student supports peft.method lora or none (got {peft.method!r})")
        has_eval = bool(eval_pairs)
        # the best epoch is kept in memory: transformers cannot reload a checkpoint of a peft-wrapped ST module
        kw = training_args(config, out_dir, len(pairs), has_eval, quiet, batch_sampler=BatchSamplers.NO_DUPLICATES,
                           save_strategy="no", load_best_model_at_end=False)
        kw.pop("metric_for_best_model", None), kw.pop("greater_is_better", None)
        loss = _loss(config.student.loss, self.model, base.path, device, kw["per_device_train_batch_size"])
        trainer = SentenceTransformerTrainer(
            model=self.model, args=SentenceTransformerTrainingArguments(**kw), train_dataset=_dataset(pairs),
            eval_dataset=_dataset(eval_pairs) if has_eval else None, loss=loss,
            callbacks=([best_in_memory(self.model, config.early_stopping_patience)] if has_eval else []) + self.callbacks)
        out = silence(trainer, quiet).train()
        metrics: dict[str, Any] = {"train_loss": round(float(out.training_loss), 4), "steps": out.global_step,
                                   "epochs": round(float(trainer.state.epoch or 0), 2), "examples": len(pairs)}
        if has_eval:
            metrics["val_loss"] = round(float(trainer.evaluate()["eval_loss"]), 4)
        if peft.method == "lora":
            inner = _inner_attr(self.model[0])
            setattr(self.model[0], inner, getattr(self.model[0], inner).merge_and_unload())
        self.model.save(str(out_dir))
        if examples:
            self._save_centroids(examples, out_dir)
        metrics["seconds"] = round(time.perf_counter() - t0, 2)
        self.meta = {"type": self.name, "base": base.name, "base_path": str(base.path), "hub_id": base.hub_id,
                     "model_type": base.model_type, "classes": self.classes, "text_field": config.student.text_field,
                     "peft": peft.method, "loss": config.student.loss, "max_length": config.max_length,
                     "soft_labels": config.soft_labels, "train": metrics}
        finish_student(out_dir, self.meta)
        return metrics

    def _add_lora(self, base, peft) -> None:
        from peft import LoraConfig, TaskType, get_peft_model

        from agentlab.distill.bases import lora_targets

        cfg = LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=peft.r, lora_alpha=peft.alpha,
                         lora_dropout=peft.dropout, target_modules=lora_targets(base.model_type, peft.target_modules))
        inner = _inner_attr(self.model[0])
        setattr(self.model[0], inner, get_peft_model(getattr(self.model[0], inner), cfg))

    def _save_centroids(self, examples: list[Any], out_dir: Path) -> None:
        """Per-class mean embedding of the training texts, weighted by their target probabilities."""
        import numpy as np

        emb = self.encode([e.text for e in examples])
        targets = np.array([e.target for e in examples], dtype=np.float64)
        cent = targets.T @ emb
        cent /= np.linalg.norm(cent, axis=1, keepdims=True).clip(1e-12)
        self.centroids = cent
        Path(out_dir, CENTROIDS).write_text(json.dumps({"classes": self.classes, "centroids": cent.tolist()}), encoding="utf-8")

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised embeddings (n, d)."""
        return self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)

    def predict(self, texts: list[str]) -> np.ndarray:
        """(n, k) probabilities: softmax of scaled cosine similarity to each class centroid."""
        import numpy as np

        if self.centroids is None:
            raise TrainingError("this retriever was trained on pairs and has no classes; use encode() for embeddings")
        logits = SCALE * (self.encode(texts) @ np.asarray(self.centroids).T)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> RetrieverStudent:
        """Rebuild from the folder (a plain sentence-transformers model + optional centroids)."""
        import torch
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cuda" if torch.cuda.is_available() else "cpu")
        cfile = Path(path, CENTROIDS)
        cent = json.loads(cfile.read_text(encoding="utf-8"))["centroids"] if cfile.is_file() else None
        return cls(meta.get("classes"), meta, model, cent)
