"""Training the weak and strong students (`classifier` or `causal`), averaging an ensemble, the auxiliary confidence loss.

torch and transformers are imported inside the functions: the task module stays light to import.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.errors import TrainingError

if TYPE_CHECKING:
    import numpy as np

    from agentlab.config.sections import DistillConfig
    from agentlab.w2s.data import W2sData

log = logging.getLogger("agentlab")


def one_hot(indices: list[int], k: int) -> list[list[float]]:
    """Class indices -> one-hot target rows."""
    return [[1.0 if j == i else 0.0 for j in range(k)] for i in indices]


def average_probs(members: list[np.ndarray]) -> np.ndarray:
    """The ensemble's soft labels: the mean of its members' (n, k) class probabilities."""
    import numpy as np

    if not members:
        raise TrainingError("an ensemble needs at least one member")
    shapes = {m.shape for m in members}
    if len(shapes) != 1:
        raise TrainingError(f"ensemble members disagree on shape: {sorted(shapes)}")
    return np.mean(np.stack(members), axis=0)


def soft_targets(probs: np.ndarray | list[list[float]], soft: bool) -> list[list[float]]:
    """Training targets from a supervisor's probabilities: as they are (soft), or their argmax (one-hot)."""
    import numpy as np

    if soft:
        return [[float(x) for x in row] for row in probs]
    return one_hot([int(i) for i in np.argmax(probs, axis=1)], len(probs[0]) if len(probs) else 0)


def to_answer_space(targets: list[list[float]], answers: list[str], classes: list[str]) -> list[list[float]]:
    """[p(correct), p(incorrect)] per example -> a distribution over the two answers `classes`: the proposed
    answer gets p(correct), the other answer p(incorrect) (`score_answers`)."""
    out = []
    for (correct, incorrect), answer in zip(targets, answers):
        row = [float(incorrect)] * 2
        row[classes.index(answer)] = float(correct)
        out.append(row)
    return out


def from_answer_space(probs: np.ndarray, answers: list[str], classes: list[str]) -> np.ndarray:
    """(n, 2) probabilities over the answers -> (n, 2) [p(correct), p(incorrect)] of each example's proposed answer."""
    import numpy as np

    correct = probs[np.arange(len(answers)), [classes.index(a) for a in answers]]
    return np.stack([correct, 1 - correct], axis=1)


def merge_duplicates(texts: list[str], targets: list[list[float]]) -> tuple[list[str], list[list[float]]]:
    """Identical inputs -> one example with their mean target (paired `score_answers` examples read the same text)."""
    groups: dict[str, list[list[float]]] = {}
    for text, target in zip(texts, targets):
        groups.setdefault(text, []).append(target)
    return list(groups), [[sum(col) / len(ts) for col in zip(*ts)] for ts in groups.values()]


def harden(probs, weak_targets, threshold: str = "adaptive"):
    """The strong student's own predictions made hard (one-hot), as in Burns et al.'s confidence loss.

    Binary with `adaptive`: class 1 where p(class 0) falls below the batch quantile at the weak labels'
    mean mass of class 1, so the hardened batch has about as many class-1 rows as the weak labels.
    Otherwise: argmax.

    Args:
        probs: (n, k) tensor of the strong student's probabilities (detached).
        weak_targets: (n, k) tensor of the weak soft labels of the same batch.
        threshold: `adaptive` or `argmax`.
    """
    import torch

    k = probs.shape[-1]
    if k == 2 and threshold == "adaptive":
        q = torch.quantile(probs[:, 0], weak_targets[:, 1].float().mean().clamp(0, 1))
        second = (probs[:, 0] < q).float()
        return torch.stack([1 - second, second], dim=1)
    return torch.nn.functional.one_hot(probs.argmax(-1), k).float()


class AuxConfidenceLoss:
    """Soft cross-entropy against `(1 - a) * weak + a * harden(strong)`, `a` rising linearly to `weight` over `warmup`.

    A drop-in `loss_fn(logits, targets, weights)` for the classifier student; `callback()` feeds it the
    fraction of training done.

    Args:
        weight: final mixing weight of the hardened predictions (0.5 in the paper).
        warmup: fraction of training over which the weight rises from 0.
        threshold: how predictions are hardened (`adaptive` or `argmax`).
    """

    def __init__(self, weight: float, warmup: float = 0.2, threshold: str = "adaptive"):
        self.weight, self.warmup, self.threshold = weight, warmup, threshold
        self.progress = 0.0

    def coefficient(self) -> float:
        """The mixing weight now."""
        if self.warmup <= 0 or self.progress >= self.warmup:
            return self.weight
        return self.weight * self.progress / self.warmup

    def mixed_targets(self, logits, targets):
        """The targets the loss uses for this batch."""
        import torch

        probs = torch.softmax(logits.detach().float(), -1)
        a = self.coefficient()
        return (1 - a) * targets + a * harden(probs, targets, self.threshold)

    def __call__(self, logits, targets, weights):
        from agentlab.distill.classifier import soft_cross_entropy

        return soft_cross_entropy(logits, self.mixed_targets(logits, targets), weights)

    def callback(self):
        """A TrainerCallback that sets `progress` = step / max_steps before each step."""
        from transformers import TrainerCallback

        loss = self

        class Progress(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                loss.progress = state.global_step / max(1, state.max_steps or 1)

        return Progress()


def train_and_predict(config: DistillConfig, classes: list[str], texts: list[str], targets: list[list[float]],
                      predict: dict[str, list[str]], out_dir: Path, seed: int, *, loss: AuxConfidenceLoss | None = None,
                      keep: bool = False, progress: Any = None, desc: str = "student") -> tuple[dict[str, np.ndarray], dict]:
    """Train one `classifier` student on (texts, targets), predict each named text list, free it.

    Args:
        config: the student's distill config (`seed` is replaced by `seed`).
        classes: class names (column order of targets and predictions).
        texts / targets: training inputs and target distributions.
        predict: name -> texts to predict after training.
        out_dir: where the student is saved (deleted afterwards unless `keep`).
        seed: the student's seed (ensemble member k uses base seed + k).
        loss: the auxiliary confidence loss, or None for plain soft cross-entropy.
        keep: keep the saved student.
        progress: an agentlab Progress; when live, training steps advance a bar there.
        desc: the bar's and the log's name for this student.

    Returns:
        (name -> (n, k) probabilities, training metrics).
    """
    from agentlab.distill.base import make_student, progress_callback
    from agentlab.distill.data import Example

    cfg = config.model_copy(update={"seed": seed})
    student = make_student(cfg.student.type, classes)
    if loss is not None:
        if not hasattr(student, "loss_fn"):
            raise TrainingError(f"the auxiliary confidence loss needs a `classifier` student (got {cfg.student.type!r})")
        student.loss_fn = loss
        student.callbacks.append(loss.callback())
    if progress is not None and not getattr(progress, "quiet", True):
        student.callbacks.append(progress_callback(progress, f"w2s: {desc}"))
    log.info("w2s: training %s (%s, %d examples, seed %d)", desc, cfg.student.base, len(texts), seed)
    examples = [Example(t, list(y)) for t, y in zip(texts, targets)]
    metrics = student.train(examples, cfg, Path(out_dir), quiet=True)
    out = {name: student.predict(batch) for name, batch in predict.items()}
    del student
    if not keep:
        shutil.rmtree(out_dir, ignore_errors=True)
    return out, metrics


def train_examples(config: DistillConfig, data: W2sData, text: Callable[[int], str], train: list[int],
                   targets: list[list[float]], predict: dict[str, list[int]], out_dir: Path, seed: int, *,
                   score_answers: bool = False, hard: bool = False, **kw: Any) -> tuple[dict[str, np.ndarray], dict]:
    """`train_and_predict` on w2s examples: train on examples `train` (input `text(i)`, [p(correct), p(incorrect)]
    targets, made one-hot when `hard`), predict the examples of each split in `predict`.

    With `score_answers` the student learns and predicts over the two answers (`data.answer_classes`) on
    de-duplicated inputs (targets merged, then hardened); the mapping back to [p(correct), p(incorrect)]
    per example is exact. `kw` goes to `train_and_predict` (loss, keep, progress, desc).

    Returns:
        (split -> (n, 2) [p(correct), p(incorrect)] of its examples, training metrics).
    """
    classes, texts = data.classes, [text(i) for i in train]
    inputs = {part: [text(i) for i in idx] for part, idx in predict.items()}
    batches = inputs
    if score_answers:
        classes = data.answer_classes
        texts, targets = merge_duplicates(texts, to_answer_space(targets, [data.answers[i] for i in train], classes))
        batches = {part: list(dict.fromkeys(b)) for part, b in inputs.items()}
    if hard:
        targets = soft_targets(targets, soft=False)
    probs, metrics = train_and_predict(config, classes, texts, targets, batches, out_dir, seed, **kw)
    if score_answers:
        for part, idx in predict.items():
            row = {t: k for k, t in enumerate(batches[part])}
            per_example = probs[part][[row[t] for t in inputs[part]]]
            probs[part] = from_answer_space(per_example, [data.answers[i] for i in idx], classes)
    return probs, metrics
