"""`classifier` student: a sequence classifier (AutoModelForSequenceClassification) + peft LoRA.

Trains with the transformers `Trainer` on soft targets (the label model's `label_probs`) or their
argmax, with per-row weights (confidence, class balance). Validation on the held-out rows' labels
picks the best epoch (EarlyStoppingCallback + load_best_model_at_end). Saved as a LoRA adapter
(safetensors) or, with `peft.method: none`, a full model; plus tokenizer, metadata and model card.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.distill.base import (
    STUDENTS,
    Student,
    early_stopping,
    quiet_loading,
    remove_checkpoints,
    seed_everything,
    silence,
    training_args,
)
from agentlab.distill.data import Example, build_examples
from agentlab.errors import TrainingError

if TYPE_CHECKING:
    import numpy as np

    from agentlab.config.sections import DistillConfig

log = logging.getLogger("agentlab")


class _Collator:
    """Tokenise a batch of examples; soft targets go in `labels`, loss weights in `weights`."""

    def __init__(self, tokenizer, max_length: int):
        self.tok, self.max_length = tokenizer, max_length

    def __call__(self, feats: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        enc = self.tok([f["text"] for f in feats], truncation=True, max_length=self.max_length, padding=True,
                       return_tensors="pt")
        batch = dict(enc)
        batch["labels"] = torch.tensor([f["target"] for f in feats], dtype=torch.float32)
        batch["weights"] = torch.tensor([f["weight"] for f in feats], dtype=torch.float32)
        return batch


def soft_cross_entropy(logits, targets, weights):
    """Mean over the batch of weight * cross-entropy(targets, softmax(logits)); one-hot targets = hard CE."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    return (-(targets * logp).sum(-1) * weights).mean()


def _trainer_cls(loss_fn=soft_cross_entropy):
    from transformers import Trainer

    class SoftLabelTrainer(Trainer):
        """A Trainer whose loss is the weighted soft-label cross-entropy."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            targets, weights = inputs.pop("labels"), inputs.pop("weights")
            outputs = model(**inputs)
            loss = loss_fn(outputs.logits, targets, weights)
            return (loss, outputs) if return_outputs else loss

    return SoftLabelTrainer


def _accuracy(pred) -> dict[str, float]:
    """Validation accuracy against the argmax of the (noisy) labels: never gold."""
    import numpy as np

    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    labels = pred.label_ids[0] if isinstance(pred.label_ids, tuple) else pred.label_ids
    return {"accuracy": float((np.argmax(logits, -1) == np.argmax(labels, -1)).mean())}


def load_tokenizer(path: Path):
    """The tokenizer, with a pad token (decoder-only models often have none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def build_model(base_path: Path, model_type: str, classes: list[str], peft_cfg, pad_token_id: int | None):
    """A sequence classifier over `classes`, wrapped with LoRA unless `peft_cfg.method` is `none`."""
    from transformers import AutoModelForSequenceClassification

    from agentlab.distill.bases import lora_targets

    with quiet_loading():
        model = AutoModelForSequenceClassification.from_pretrained(
            str(base_path), num_labels=len(classes), id2label=dict(enumerate(classes)),
            label2id={c: i for i, c in enumerate(classes)}, ignore_mismatched_sizes=True,
        )
    model.config.pad_token_id = pad_token_id
    if peft_cfg.method == "none":
        return model
    if peft_cfg.method != "lora":
        raise TrainingError(f"classifier student supports peft.method lora or none (got {peft_cfg.method!r})")
    from peft import LoraConfig, TaskType, get_peft_model

    cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=peft_cfg.r, lora_alpha=peft_cfg.alpha, lora_dropout=peft_cfg.dropout,
                     target_modules=lora_targets(model_type, peft_cfg.target_modules))
    try:
        return get_peft_model(model, cfg)
    except ValueError as exc:
        raise TrainingError(f"LoRA on a {model_type!r} model: {exc}; set student.peft.target_modules") from None


@STUDENTS.register("classifier")
class ClassifierStudent(Student):
    """Sequence classifier student (LoRA or full fine-tune) trained on soft or hard labels."""

    name = "classifier"

    def __init__(self, classes: list[str] | None = None, meta: dict[str, Any] | None = None,
                 model: Any = None, tokenizer: Any = None):
        super().__init__(classes, meta)
        self.model, self.tokenizer = model, tokenizer
        #: loss(logits, targets, weights) for the next `train`; another loss can be swapped in (w2s's auxiliary confidence loss)
        self.loss_fn = soft_cross_entropy

    def train(self, data: list[Any], config: DistillConfig, out_dir: Path,
              eval_data: list[Any] | None = None, quiet: bool = False) -> dict[str, Any]:
        """Train on examples (or labeled rows), save into `out_dir`, return training metrics.

        Args:
            data: `Example`s, or label-task rows (converted with `build_examples`).
            config: the distill config (student, epochs, soft_labels, weights, early stopping...).
            out_dir: the student folder to write.
            eval_data: validation examples/rows (their labels, never gold) for early stopping.
            quiet: no progress bar.
        """
        from agentlab.distill.bases import resolve_base
        from agentlab.distill.card import finish_student

        train_ex = self._examples(data, config)
        eval_ex = self._examples(eval_data or [], config) if eval_data else []
        if not train_ex:
            raise TrainingError("no labeled rows to train on (every row has label None or was filtered)")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(config.seed)
        base = resolve_base(config.student.base)
        t0 = time.perf_counter()
        self.tokenizer = load_tokenizer(base.path)
        self.model = build_model(base.path, base.model_type, self.classes, config.student.peft, self.tokenizer.pad_token_id)
        metrics = self._fit(train_ex, eval_ex, config, out_dir, quiet)
        metrics["seconds"] = round(time.perf_counter() - t0, 2)
        self.model.save_pretrained(str(out_dir))
        self.tokenizer.save_pretrained(str(out_dir))
        self.meta = {"type": self.name, "base": base.name, "base_path": str(base.path), "hub_id": base.hub_id,
                     "model_type": base.model_type, "classes": self.classes, "text_field": config.student.text_field,
                     "peft": config.student.peft.method, "max_length": config.max_length,
                     "soft_labels": config.soft_labels, "train": metrics}
        finish_student(out_dir, self.meta)
        return metrics

    def _examples(self, data: list[Any], config: DistillConfig) -> list[Example]:
        if data and isinstance(data[0], dict):
            if not self.classes:
                from agentlab.distill.data import infer_classes

                self.classes = infer_classes(data)
            data, _ = build_examples(data, self.classes, config, config.student.text_field)
        if not self.classes:
            raise TrainingError("the classifier student needs class names (pass classes=...)")
        return list(data)

    def _fit(self, train_ex: list[Example], eval_ex: list[Example], config: DistillConfig, out_dir: Path,
             quiet: bool) -> dict[str, Any]:
        from transformers import TrainingArguments

        has_eval = bool(eval_ex)
        args = TrainingArguments(**training_args(config, out_dir, len(train_ex), has_eval, quiet,
                                                 remove_unused_columns=False, label_names=["labels"]))
        as_dicts = lambda exs: [{"text": e.text, "target": e.target, "weight": e.weight} for e in exs]
        trainer = _trainer_cls(self.loss_fn)(
            model=self.model, args=args, train_dataset=as_dicts(train_ex), eval_dataset=as_dicts(eval_ex) or None,
            data_collator=_Collator(self.tokenizer, config.max_length), compute_metrics=_accuracy if has_eval else None,
            callbacks=early_stopping(config, has_eval) + self.callbacks,
        )
        out = silence(trainer, quiet).train()
        self.model = trainer.model
        remove_checkpoints(out_dir)
        metrics: dict[str, Any] = {"train_loss": round(float(out.training_loss), 4), "steps": out.global_step,
                                   "epochs": round(float(trainer.state.epoch or 0), 2), "examples": len(train_ex)}
        if has_eval:
            ev = trainer.evaluate()
            metrics.update(val_loss=round(ev["eval_loss"], 4), val_accuracy=round(ev["eval_accuracy"], 4),
                           best_step=_best_step(trainer.state.best_model_checkpoint))
        return metrics

    def predict(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, k) class probabilities."""
        import numpy as np
        import torch

        model = self.model.eval()
        device = next(model.parameters()).device
        max_length = int(self.meta.get("max_length", 128))
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = self.tokenizer(list(texts[i : i + batch_size]), truncation=True, max_length=max_length,
                                     padding=True, return_tensors="pt").to(device)
                out.append(torch.softmax(model(**enc).logits.float(), -1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> ClassifierStudent:
        """Rebuild from the folder: base + LoRA adapter, or the full fine-tuned model."""
        import torch
        from transformers import AutoModelForSequenceClassification

        tok = load_tokenizer(path)
        classes = list(meta["classes"])
        if meta.get("peft") == "lora":
            from peft import PeftModel

            with quiet_loading():
                base = AutoModelForSequenceClassification.from_pretrained(
                    str(base_path_for(meta)), num_labels=len(classes), id2label=dict(enumerate(classes)),
                    label2id={c: i for i, c in enumerate(classes)}, ignore_mismatched_sizes=True)
            base.config.pad_token_id = tok.pad_token_id
            model = PeftModel.from_pretrained(base, str(path))
        else:
            model = AutoModelForSequenceClassification.from_pretrained(str(path))
        if torch.cuda.is_available():
            model = model.to("cuda")
        return cls(classes, meta, model.eval(), tok)


def base_path_for(meta: dict[str, Any]) -> Path:
    """The base model folder of a saved student: re-resolved by name (portable), else the recorded path."""
    from agentlab.distill.bases import resolve_base

    try:
        return resolve_base(meta["base"]).path
    except TrainingError:
        p = Path(meta.get("base_path", ""))
        if (p / "config.json").is_file():
            return p
        raise


def _best_step(checkpoint: str | None) -> int | None:
    try:
        return int(str(checkpoint).rsplit("-", 1)[1]) if checkpoint else None
    except (IndexError, ValueError):
        return None
