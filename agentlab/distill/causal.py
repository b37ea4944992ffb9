"""`causal` student: LoRA SFT or prompt tuning of a causal LM on (prompt, completion) pairs.

The loss covers the completion tokens only (prompt tokens are masked). `train_causal` is the
reusable entry point (SPTAR's soft-prompt query generator uses it); the returned `CausalLM` can
`generate` completions and compute per-pair `loss`. As a registered student it classifies: each
row becomes ``prompt.format(text=...) -> " <class>"`` (with soft labels, one pair per class
weighted by its probability, i.e. the expected NLL under the label distribution), and `predict`
scores every class completion and normalises the likelihoods.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.distill.base import (
    STUDENTS,
    Student,
    early_stopping,
    remove_checkpoints,
    seed_everything,
    silence,
    training_args,
)
from agentlab.errors import TrainingError

if TYPE_CHECKING:
    import numpy as np

    from agentlab.config.sections import DistillConfig, StudentPeftConfig


@dataclass
class Pair:
    """A (prompt, completion) training pair; `weight` scales its loss."""

    prompt: str
    completion: str
    weight: float = 1.0


PairLike = Pair | tuple | dict


def as_pairs(items: Iterable[PairLike]) -> list[Pair]:
    """Pairs from `Pair`s, `(prompt, completion[, weight])` tuples or `{prompt, completion[, weight]}` dicts."""
    out = []
    for it in items:
        if isinstance(it, Pair):
            out.append(it)
        elif isinstance(it, dict):
            out.append(Pair(str(it["prompt"]), str(it["completion"]), float(it.get("weight", 1.0))))
        else:
            out.append(Pair(str(it[0]), str(it[1]), float(it[2]) if len(it) > 2 else 1.0))
    return out


def encode_pair(tok, pair: Pair, max_length: int) -> dict[str, Any]:
    """Token ids and labels (-100 on the prompt); the completion ends with EOS; long prompts lose their start."""
    p = tok(pair.prompt)["input_ids"]
    c = tok(pair.completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    c = c[: max_length - 1]
    p = p[-(max_length - len(c)) :]
    return {"input_ids": p + c, "labels": [-100] * len(p) + c, "weight": pair.weight}


class _Collator:
    """Right-pad ids (pad token) and labels (-100)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, feats: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        n = max(len(f["input_ids"]) for f in feats)
        ids = [f["input_ids"] + [self.pad_id] * (n - len(f["input_ids"])) for f in feats]
        labels = [f["labels"] + [-100] * (n - len(f["labels"])) for f in feats]
        mask = [[1] * len(f["input_ids"]) + [0] * (n - len(f["input_ids"])) for f in feats]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels),
                "weights": torch.tensor([f["weight"] for f in feats], dtype=torch.float32)}


def completion_nll(model, input_ids, attention_mask, labels):
    """(sum of completion-token NLL, completion-token count) per row.

    Only the last `seq_len` logits are used, so soft-prompt models (which prepend virtual tokens)
    and plain models line up the same way.
    """
    import torch

    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, -input_ids.shape[1] :, :]
    logits, target = logits[:, :-1, :].float(), labels[:, 1:]
    mask = target != -100
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target.clamp_min(0), reduction="none")
    return (nll * mask).sum(-1), mask.sum(-1)


def _trainer_cls():
    from transformers import Trainer

    class CompletionTrainer(Trainer):
        """Weighted mean per-pair completion NLL."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels, weights = inputs.pop("labels"), inputs.pop("weights")
            total, count = completion_nll(model, inputs["input_ids"], inputs["attention_mask"], labels)
            loss = (total / count.clamp_min(1) * weights).mean()
            return (loss, {}) if return_outputs else loss

    return CompletionTrainer


def _peft_model(model, base, peft_cfg: StudentPeftConfig):
    from peft import (
        LoraConfig,
        PromptTuningConfig,
        PromptTuningInit,
        TaskType,
        get_peft_model,
    )

    from agentlab.distill.bases import lora_targets

    if peft_cfg.method == "none":
        return model
    if peft_cfg.method == "prompt_tuning":
        cfg = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM, num_virtual_tokens=peft_cfg.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.TEXT if peft_cfg.init_text else PromptTuningInit.RANDOM,
            prompt_tuning_init_text=peft_cfg.init_text, tokenizer_name_or_path=str(base.path))
    else:
        cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=peft_cfg.r, lora_alpha=peft_cfg.alpha,
                         lora_dropout=peft_cfg.dropout, target_modules=lora_targets(base.model_type, peft_cfg.target_modules))
    return get_peft_model(model, cfg)


class CausalLM:
    """A (possibly adapted) causal LM with `generate` and per-pair `loss` helpers."""

    def __init__(self, model, tokenizer, meta: dict[str, Any] | None = None):
        self.model, self.tokenizer, self.meta = model, tokenizer, meta or {}
        self.metrics: dict[str, Any] = dict(self.meta.get("train", {}))

    @classmethod
    def from_base(cls, base: str) -> CausalLM:
        """The untrained base model (e.g. a hard-prompt baseline)."""
        from transformers import AutoModelForCausalLM

        from agentlab.distill.bases import resolve_base
        from agentlab.distill.classifier import load_tokenizer

        b = resolve_base(base)
        return cls(AutoModelForCausalLM.from_pretrained(str(b.path)).eval(), load_tokenizer(b.path),
                   {"base": b.name, "base_path": str(b.path), "hub_id": b.hub_id, "peft": "none"})

    @classmethod
    def load(cls, path: str | Path) -> CausalLM:
        """Load a folder written by `train_causal` (adapter or full model)."""
        from transformers import AutoModelForCausalLM

        from agentlab.distill.base import read_meta
        from agentlab.distill.classifier import base_path_for, load_tokenizer

        meta = read_meta(Path(path))
        if meta.get("peft") == "none":
            model = AutoModelForCausalLM.from_pretrained(str(path))
        else:
            from peft import PeftModel

            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base_path_for(meta))), str(path))
        import torch

        if torch.cuda.is_available():
            model = model.to("cuda")
        return cls(model.eval(), load_tokenizer(Path(path)), meta)

    @property
    def device(self):
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    def generate(self, prompts: list[str], max_new_tokens: int = 32, batch_size: int = 8, **gen_kwargs: Any) -> list[str]:
        """Greedy (or `gen_kwargs`-configured) completions for each prompt, without the prompt."""
        import torch

        tok, out = self.tokenizer, []
        tok.padding_side = "left"
        gen_kwargs.setdefault("do_sample", False)
        with torch.inference_mode():
            for i in range(0, len(prompts), batch_size):
                enc = tok(list(prompts[i : i + batch_size]), return_tensors="pt", padding=True).to(self.device)
                ids = self._new_tokens(enc, max_new_tokens, gen_kwargs)
                out += [t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True)]
        tok.padding_side = "right"
        return out

    def _new_tokens(self, enc, max_new_tokens: int, gen_kwargs: dict[str, Any]):
        """The generated token ids (prompt excluded) for one left-padded batch."""
        import torch

        pad = self.tokenizer.pad_token_id
        if self.meta.get("peft") != "prompt_tuning":
            ids = self.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                      max_new_tokens=max_new_tokens, pad_token_id=pad, **gen_kwargs)
            return ids[:, enc["input_ids"].shape[1] :]
        # peft 0.21's own generate drops position ids (left-padded rows decode shifted) and its KV cache
        # corrupts soft-prompt decoding on transformers 5: prepend the soft prompt as embeddings instead,
        # so the base model decodes with its cache and positions counted from the attention mask
        base, n = self.model.get_base_model(), enc["input_ids"].shape[0]
        soft = self.model.get_prompt(batch_size=n).to(base.dtype)
        embeds = torch.cat([soft, base.get_input_embeddings()(enc["input_ids"])], dim=1)
        mask = torch.cat([enc["attention_mask"].new_ones(n, soft.shape[1]), enc["attention_mask"]], dim=1)
        return base.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                             pad_token_id=pad, **gen_kwargs)

    def logprobs(self, pairs: Iterable[PairLike], batch_size: int = 16, max_length: int = 256) -> list[tuple[float, int]]:
        """(sum of completion-token log-probs, token count) per pair (EOS included)."""
        import torch

        pairs = as_pairs(pairs)
        coll, out = _Collator(self.tokenizer.pad_token_id), []
        self.model.eval()
        with torch.inference_mode():
            for i in range(0, len(pairs), batch_size):
                b = coll([encode_pair(self.tokenizer, p, max_length) for p in pairs[i : i + batch_size]])
                total, count = completion_nll(self.model, b["input_ids"].to(self.device),
                                              b["attention_mask"].to(self.device), b["labels"].to(self.device))
                out += [(-float(t), int(c)) for t, c in zip(total.cpu(), count.cpu())]
        return out

    def loss(self, pairs: Iterable[PairLike], batch_size: int = 16, max_length: int = 256) -> list[float]:
        """Mean completion-token NLL per pair (lower = the model finds the completion likelier)."""
        return [-s / max(n, 1) for s, n in self.logprobs(pairs, batch_size, max_length)]


def train_causal(pairs: Iterable[PairLike], base: str, peft_cfg: Any, out_dir: str | Path, *,
                 eval_pairs: Iterable[PairLike] | None = None, config: DistillConfig | None = None,
                 quiet: bool = False, meta: dict[str, Any] | None = None, callbacks: list[Any] | None = None,
                 **settings: Any) -> CausalLM:
    """Fine-tune `base` on (prompt, completion) pairs; loss on the completion tokens only.

    Args:
        pairs: training pairs (see `as_pairs`).
        base: `smollm2`, `minilm`-style name or a local causal-LM folder.
        peft_cfg: a `StudentPeftConfig` or dict: {method: lora|prompt_tuning|none, r, alpha,
            num_virtual_tokens, init_text}.
        out_dir: where the adapter, tokenizer and metadata go.
        eval_pairs: validation pairs: early stopping on their loss, best epoch kept.
        config: a full `DistillConfig` (its student is replaced by base/peft_cfg); or give
            `settings` (epochs, learning_rate, batch_size, max_length, max_steps, seed,
            early_stopping_patience) to build one.
        meta: extra metadata saved in ``agentlab_student.json``.
        callbacks: extra transformers TrainerCallbacks (e.g. a progress bar).

    Returns:
        The trained `CausalLM`; its `metrics` hold train/validation loss, steps, seconds.
    """
    from transformers import AutoModelForCausalLM, TrainingArguments

    from agentlab.config.sections import DistillConfig
    from agentlab.distill.bases import resolve_base
    from agentlab.distill.card import finish_student
    from agentlab.distill.classifier import load_tokenizer

    peft_dict = peft_cfg.model_dump() if hasattr(peft_cfg, "model_dump") else dict(peft_cfg or {})
    data = (config.model_dump() if config else {}) | settings
    data["student"] = {**data.get("student", {}), "type": "causal", "base": base, "peft": peft_dict}
    config = DistillConfig.model_validate(data)
    train_p, eval_p = as_pairs(pairs), as_pairs(eval_pairs or [])
    if not train_p:
        raise TrainingError("train_causal: no training pairs")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    b = resolve_base(base)
    t0 = time.perf_counter()
    tok = load_tokenizer(b.path)
    model = _peft_model(AutoModelForCausalLM.from_pretrained(str(b.path)), b, config.student.peft)
    enc = lambda ps: [encode_pair(tok, p, config.max_length) for p in ps]
    args = TrainingArguments(**training_args(config, out_dir, len(train_p), bool(eval_p), quiet, remove_unused_columns=False,
                                             label_names=["labels"], prediction_loss_only=True))
    trainer = _trainer_cls()(model=model, args=args, train_dataset=enc(train_p), eval_dataset=enc(eval_p) or None,
                             data_collator=_Collator(tok.pad_token_id), callbacks=early_stopping(config, bool(eval_p)) + list(callbacks or []))
    out = silence(trainer, quiet).train()
    model = trainer.model
    remove_checkpoints(out_dir)
    metrics: dict[str, Any] = {"train_loss": round(float(out.training_loss), 4), "steps": out.global_step,
                               "epochs": round(float(trainer.state.epoch or 0), 2), "examples": len(train_p)}
    if eval_p:
        metrics["val_loss"] = round(float(trainer.evaluate()["eval_loss"]), 4)
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    full = {"type": "causal", "base": b.name, "base_path": str(b.path), "hub_id": b.hub_id, "model_type": b.model_type,
            "peft": config.student.peft.method, "max_length": config.max_length, "train": metrics, **(meta or {})}
    finish_student(out_dir, full)
    return CausalLM(model.eval(), tok, full)


@STUDENTS.register("causal")
class CausalStudent(Student):
    """Classifies by scoring each class name as the completion of `student.prompt`."""

    name = "causal"

    def __init__(self, classes: list[str] | None = None, meta: dict[str, Any] | None = None,
                 lm: CausalLM | None = None):
        super().__init__(classes, meta)
        self.lm = lm

    def pairs(self, data: list[Any], config: DistillConfig) -> list[Pair]:
        """Rows (or `Example`s) -> pairs; soft labels give one pair per class weighted by its probability."""
        from agentlab.distill.data import Example, build_examples, infer_classes

        if data and isinstance(data[0], dict):
            self.classes = self.classes or infer_classes(data)
            data, _ = build_examples(data, self.classes, config, config.student.text_field)
        out = []
        for e in data:
            e = e if isinstance(e, Example) else Example(*e)
            prompt = config.student.prompt.format(text=e.text)
            for k, p in enumerate(e.target):
                if p >= 0.01 and (config.soft_labels or k == e.label):
                    out.append(Pair(prompt, f" {self.classes[k]}", e.weight * (p if config.soft_labels else 1.0)))
        return out

    def train(self, data: list[Any], config: DistillConfig, out_dir: Path,
              eval_data: list[Any] | None = None, quiet: bool = False) -> dict[str, Any]:
        """Train the causal LM on the rows' labels as completions; save into `out_dir`."""
        train_p = self.pairs(data, config)
        eval_p = self.pairs(eval_data, config) if eval_data else None
        if not self.classes:
            raise TrainingError("the causal student needs class names (pass classes=...)")
        extra = {"classes": self.classes, "prompt": config.student.prompt, "text_field": config.student.text_field,
                 "soft_labels": config.soft_labels}
        self.lm = train_causal(train_p, config.student.base, config.student.peft, out_dir, eval_pairs=eval_p,
                               config=config, quiet=quiet, meta=extra, callbacks=self.callbacks)
        self.meta = self.lm.meta
        return self.lm.metrics

    def predict(self, texts: list[str]) -> np.ndarray:
        """(n, k) probabilities: softmax over each class completion's total log-likelihood."""
        import numpy as np

        prompt = self.meta.get("prompt", "{text}")
        pairs = [Pair(prompt.format(text=t), f" {c}") for t in texts for c in self.classes]
        scores = self.lm.logprobs(pairs, max_length=int(self.meta.get("max_length", 256)))
        lp = np.array([s for s, _ in scores]).reshape(len(texts), len(self.classes))
        lp -= lp.max(axis=1, keepdims=True) if len(texts) else 0
        p = np.exp(lp)
        return p / p.sum(axis=1, keepdims=True) if len(texts) else p

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> CausalStudent:
        """Rebuild from the folder."""
        return cls(meta.get("classes"), meta, CausalLM.load(path))


def perplexity(lm: CausalLM, pairs: Iterable[PairLike]) -> float:
    """exp(mean completion NLL) over pairs: a single number to compare prompts or soft prompts."""
    losses = lm.loss(pairs)
    return math.exp(sum(losses) / max(len(losses), 1))
