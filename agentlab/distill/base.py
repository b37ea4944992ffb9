"""The student protocol, its registry, the saved-student metadata and shared training helpers.

A student trains on rows (or pairs) and predicts class probabilities for texts. Every student
saves itself into one folder: weights (peft adapters or a full model, safetensors), the tokenizer,
``agentlab_student.json`` (what it is) and a model card ``README.md``. `load_student(dir)` reads
the metadata and hands the folder to the registered class. Heavy libraries are imported lazily.
"""

from __future__ import annotations

import json
import random
import resource
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from agentlab.errors import TrainingError
from agentlab.registry import Registry

if TYPE_CHECKING:
    import numpy as np

    from agentlab.config.sections import DistillConfig

META_FILE = "agentlab_student.json"
#: default peak learning rate per peft method (a config's `learning_rate` overrides it)
DEFAULT_LR = {"lora": 1e-3, "none": 5e-5, "prompt_tuning": 3e-2}


class Student:
    """A trainable small model. Subclasses implement `train`, `predict` and `load`.

    Attributes:
        name: the registry key (`classifier`, `causal`, `retriever`).
        classes: class names; `predict` returns probabilities in this column order.
        meta: the saved metadata (``agentlab_student.json``) once trained or loaded.
    """

    name: ClassVar[str] = "base"

    def __init__(self, classes: list[str] | None = None, meta: dict[str, Any] | None = None):
        self.classes = list(classes or [])
        self.meta: dict[str, Any] = meta or {}
        #: extra transformers TrainerCallbacks for the next `train` (e.g. a progress bar)
        self.callbacks: list[Any] = []

    def train(self, data: list[Any], config: DistillConfig, out_dir: Path,
              eval_data: list[Any] | None = None) -> dict[str, Any]:
        """Train on `data` (rows or pairs), validate on `eval_data`, save into `out_dir`; return metrics."""
        raise NotImplementedError

    def predict(self, texts: list[str]) -> np.ndarray:
        """(n, k) class probabilities, columns in `self.classes` order."""
        raise NotImplementedError

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> Student:
        """Rebuild a trained student from its folder."""
        raise NotImplementedError


def _load_builtins() -> None:
    from agentlab.distill import causal, classifier, embedding, retriever  # noqa: F401


STUDENTS: Registry[type[Student]] = Registry("student", _load_builtins)


def make_student(kind: str, classes: list[str] | None = None) -> Student:
    """A fresh, untrained student of the registered `kind`."""
    from agentlab.registry import UnknownKey

    try:
        cls = STUDENTS.get(kind)
    except UnknownKey as exc:
        raise TrainingError(str(exc)) from None
    return cls(classes=classes)


def write_meta(out_dir: Path, meta: dict[str, Any]) -> None:
    """Write ``agentlab_student.json``."""
    Path(out_dir, META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")


def read_meta(path: Path) -> dict[str, Any]:
    """Read ``agentlab_student.json`` from a student folder, with a clear error when it is not one."""
    f = Path(path) / META_FILE
    if not f.is_file():
        raise TrainingError(f"{path} is not a saved student (no {META_FILE}); train one with `agentlab train RUN_DIR`")
    return json.loads(f.read_text(encoding="utf-8"))


def load_student(path: str | Path) -> Student:
    """Load a saved student folder (any registered type)."""
    path = Path(path)
    meta = read_meta(path)
    cls = make_student(meta.get("type", "?")).__class__
    return cls.load(path, meta)


# -- shared training helpers ------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def pick_device(config: DistillConfig) -> tuple[str, bool]:
    """("cuda" | "cpu", use_bf16) for the config's `device` setting."""
    import torch

    cuda = torch.cuda.is_available()
    if config.device == "cuda" and not cuda:
        raise TrainingError("distill.device is `cuda` but no CUDA GPU is visible; use `auto` or `cpu`")
    use_cuda = cuda and config.device != "cpu"
    return ("cuda", bool(torch.cuda.is_bf16_supported())) if use_cuda else ("cpu", False)


def learning_rate(config: DistillConfig) -> float:
    """The configured learning rate, or the default for the peft method."""
    return config.learning_rate or DEFAULT_LR[config.student.peft.method]


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB), from getrusage (KB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


def gpu_peak_memory_mb() -> float | None:
    """Peak CUDA memory allocated (MB), or None on CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def training_args(config: DistillConfig, out_dir: Path, n_train: int, has_eval: bool, quiet: bool = False,
                  **extra: Any) -> dict[str, Any]:
    """Keyword arguments for `TrainingArguments` shared by the students.

    Evaluates and checkpoints once per epoch (or twice over `max_steps`) so that early stopping and
    `load_best_model_at_end` can pick the best epoch; checkpoints go to ``out_dir/_checkpoints``.
    """
    device, bf16 = pick_device(config)
    batch = config.batch_size * (2 if device == "cuda" else 1)
    steps_per_epoch = max(1, -(-n_train // batch))
    every = max(1, config.max_steps // 2) if config.max_steps else steps_per_epoch
    kw: dict[str, Any] = {
        "output_dir": str(out_dir / "_checkpoints"), "per_device_train_batch_size": batch,
        "per_device_eval_batch_size": batch * 2, "num_train_epochs": config.epochs, "max_steps": config.max_steps or -1,
        "learning_rate": learning_rate(config), "seed": config.seed, "data_seed": config.seed,
        "use_cpu": device == "cpu", "bf16": bf16, "report_to": "none", "logging_steps": max(1, every // 2),
        "disable_tqdm": quiet, "save_only_model": True, "dataloader_num_workers": 0,
        "eval_strategy": "steps" if has_eval else "no", "save_strategy": "steps" if has_eval else "no",
        "eval_steps": every, "save_steps": every, "save_total_limit": 2, "load_best_model_at_end": has_eval,
    }
    if has_eval:
        acc = config.early_stopping_metric == "accuracy"
        kw.update(metric_for_best_model="eval_accuracy" if acc else "eval_loss", greater_is_better=acc)
    kw.update(extra)
    return kw


def early_stopping(config: DistillConfig, has_eval: bool) -> list[Any]:
    """[EarlyStoppingCallback] when there is validation data and patience > 0."""
    if not has_eval or config.early_stopping_patience <= 0:
        return []
    from transformers import EarlyStoppingCallback

    return [EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)]


def best_in_memory(model, patience: int, metric: str = "eval_loss", greater_is_better: bool = False):
    """A TrainerCallback that keeps the best trainable weights in memory, stops after `patience`
    evaluations without improvement (0 = never), and restores the best weights when training ends.

    For models whose checkpoints transformers cannot reload (a peft-wrapped module inside a
    sentence-transformers model): no checkpoint files are written at all.
    """
    from transformers import TrainerCallback

    class BestInMemory(TrainerCallback):
        best: float | None = None
        state_dict: dict[str, Any] | None = None
        bad = 0

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            value = (metrics or {}).get(metric)
            if value is None:
                return
            if self.best is None or (value > self.best if greater_is_better else value < self.best):
                self.best, self.bad = value, 0
                self.state_dict = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            else:
                self.bad += 1
                if patience and self.bad >= patience:
                    control.should_training_stop = True

        def on_train_end(self, args, state, control, **kw):
            if self.state_dict is not None:
                params = dict(model.named_parameters())
                for n, value in self.state_dict.items():
                    params[n].data.copy_(value)

    return BestInMemory()


def progress_callback(progress, desc: str):
    """A TrainerCallback that advances an agentlab `Progress` bar by optimiser steps."""
    from transformers import TrainerCallback

    class StepBar(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kw):
            self.bar = progress.task(desc, total=int(state.max_steps or 0))

        def on_step_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.advance(1)

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.close()

    return StepBar()


@contextmanager
def quiet_loading():
    """Silence transformers' load report while building a model whose new head is expected to be missing."""
    from transformers.utils import logging as tlog

    old = tlog.get_verbosity()
    tlog.set_verbosity_error()
    try:
        yield
    finally:
        tlog.set_verbosity(old)


def silence(trainer, quiet: bool):
    """Drop the Trainer's log printer when quiet (disable_tqdm swaps the bar for a printer of log dicts)."""
    if quiet:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def remove_checkpoints(out_dir: Path) -> None:
    """Delete the intermediate checkpoints once the best model is loaded and saved."""
    import shutil

    shutil.rmtree(out_dir / "_checkpoints", ignore_errors=True)
