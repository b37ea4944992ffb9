"""One weak-to-strong run (METHODS.md §7): debate every example, train the weak ensembles on half 1,
label half 2 with them, train the strong student on those labels, score everything on the test split.

Gold is read from `ctx.gold` for exactly three things: the proposed answers and targets (`data.py`),
the weak students' training targets on half 1 and the strong ceiling's on half 2, and the test
accuracies. The debaters and the judge never see it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.debate.run import Debate, Turn
from agentlab.w2s.data import W2sData, build_data, with_transcript
from agentlab.w2s.metrics import accuracy, decision_accuracy, gap_note, table
from agentlab.w2s.train import (
    AuxConfidenceLoss,
    average_probs,
    one_hot,
    soft_targets,
    train_examples,
)

if TYPE_CHECKING:
    import numpy as np

    from agentlab.engine import RunContext
    from agentlab.w2s.config import W2sConfig

log = logging.getLogger("agentlab")
#: the supervisor whose soft labels each weak -> strong variant learns from
SUPERVISOR = {"w2s_weak": "weak", "w2s_ensemble": "weak_ensemble", "w2s_debate_ensemble": "weak_debate_ensemble",
              "w2s_debate_ensemble_aux": "weak_debate_ensemble"}


class W2sRun:
    """Runs the whole experiment on one set of rows; results are left on the instance.

    Everything is per example (`data.source[i]` is example i's source row): one per row, or two with `pair_answers`.

    Attributes (after `run`):
        data: source rows, answers, targets, splits and input texts.
        transcripts: per debate sample, per example, the turns (empty for examples without gold).
        judge: the judge's decision per example (None where not run).
        supervisors: name -> {"half2": probs, "test": probs} of the weak students/ensembles.
        predictions: variant -> test probabilities.
        accuracies: variant -> test accuracy.
        usage: per example [prompt, completion] tokens of the debates and the judge.
        info: sizes, bases, timings and per-student training metrics (`metrics.w2s_run`).
    """

    def __init__(self, config: W2sConfig, ctx: RunContext, rows: list[dict[str, Any]]):
        self.c, self.ctx, self.rows = config, ctx, rows
        self.transcripts: list[list[list[Turn]]] = []
        self.judge: list[str | None] = []
        self.supervisors: dict[str, dict[str, np.ndarray]] = {}
        self.predictions: dict[str, np.ndarray] = {}
        self.accuracies: dict[str, float | None] = {}
        self.usage: list[list[int]] = []
        self.info: dict[str, Any] = {"timings": {}, "training": {}}

    def run(self) -> None:
        """Build the data, debate, train the weak then the strong students, score."""
        self.data = build_data(self.c, self.rows, self.ctx.gold)
        n = len(self.data.source)
        self.judge, self.usage = [None] * n, [[0, 0] for _ in range(n)]
        self._bar = None
        t = time.perf_counter()
        self._debate()
        self.info["timings"]["debate"] = round(time.perf_counter() - t, 2)
        n_students = 2 * self.c.ensemble + 1 + len(self.c.strong_variants())
        self._bar = self.ctx.progress.task("w2s: students", total=n_students)
        try:
            t = time.perf_counter()
            self._weak()
            self.info["timings"]["weak"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            self._strong()
            self.info["timings"]["strong"] = round(time.perf_counter() - t, 2)
        finally:
            self._bar.close()
        self._score()

    # -- debate --------------------------------------------------------------------------
    def _debate_rows(self) -> list[dict[str, Any]]:
        d = self.data
        return [dict(self.rows[d.source[i]], proposed_answer=d.answers[i], w2s_question=d.questions[i]) for i in d.usable]

    def _debate(self) -> None:
        """`debate_samples` independent debates of every usable example (seed + s), then the judge baseline."""
        usable, rows = self.data.usable, self._debate_rows()
        first = None
        for s in range(self.c.debate_samples):
            ctx = self.ctx if s == 0 else self.ctx.with_seed(self.ctx.seed + s)
            debate = Debate(self.c.debate, ctx, len(rows))
            debate.check_rows(rows)
            tag = "w2s debate" + (f" (sample {s + 1})" if self.c.debate_samples > 1 else "")
            turns = debate.debate(rows, self.c.debate.debaters, tag)
            full: list[list[Turn]] = [[] for _ in self.data.source]
            for pos, i in enumerate(usable):
                full[i] = turns[pos]
            self.transcripts.append(full)
            self._add_usage(usable, debate.usage)
            first = first or (debate, turns)
        if self.c.judge_baseline:
            debate, turns = first
            debate.usage = [[0, 0] for _ in rows]
            verdicts = debate.judge(rows, turns, "w2s: debate judge", detail=False)
            for pos, i in enumerate(usable):
                self.judge[i] = verdicts[pos].decision
            self._add_usage(usable, debate.usage)

    def _add_usage(self, usable: list[int], usage: list[list[int]]) -> None:
        for pos, i in enumerate(usable):
            self.usage[i][0] += usage[pos][0]
            self.usage[i][1] += usage[pos][1]

    def debate_text(self, i: int, sample: int) -> str:
        """Example i's input with debate sample `sample` appended."""
        turns = self.transcripts[sample % len(self.transcripts)][i]
        return with_transcript(self.data.texts[i], [t.as_dict() for t in turns])

    # -- students ------------------------------------------------------------------------
    def _out_dir(self, name: str) -> Path:
        if self.ctx.run_dir is not None:
            return self.ctx.run_dir.path(f"w2s/{name}")
        return Path(tempfile.mkdtemp(prefix=f"agentlab-w2s-{name}-"))

    def _train(self, cfg, name: str, text: Callable[[int], str], train: list[int], targets: list[list[float]],
               predict: dict[str, list[int]], seed: int, loss: AuxConfidenceLoss | None = None,
               hard: bool = False) -> dict[str, np.ndarray]:
        """One student through `train_examples` (with `score_answers` from the config); its metrics are kept."""
        probs, metrics = train_examples(cfg, self.data, text, train, targets, predict, self._out_dir(name), seed,
                                        score_answers=self.c.score_answers, hard=hard, loss=loss, keep=self.c.keep_students,
                                        progress=self.ctx.progress, desc=name)
        self.info["training"][name] = metrics
        self._bar.advance(1)
        return probs

    def _weak(self) -> None:
        """Two weak ensembles on half 1 with gold (plain and with debate); their probabilities on half 2 and test."""
        d, c = self.data, self.c
        h1 = d.splits["half1"]
        gold, predict = one_hot([d.targets[i] for i in h1], 2), {p: d.splits[p] for p in ("half2", "test")}
        plain, debated = [], []
        for k in range(c.ensemble):
            plain.append(self._train(c.weak, f"weak_{k}", d.texts.__getitem__, h1, gold, predict, c.seed + k))
            debated.append(self._train(c.weak, f"weak_debate_{k}", lambda i, k=k: self.debate_text(i, k), h1, gold,
                                       predict, c.seed + k))
        self.supervisors = {"weak": plain[0], "weak_ensemble": _mean(plain), "weak_debate": debated[0],
                            "weak_debate_ensemble": _mean(debated)}

    def strong_text(self, i: int) -> str:
        """What the strong student reads: the plain input, or with the first transcript when `strong_sees_debate`."""
        return self.debate_text(i, 0) if self.c.strong_sees_debate else self.data.texts[i]

    def _strong(self) -> None:
        """The ceiling on half 2's gold, then each weak -> strong variant on its supervisor's half-2 soft labels."""
        d, c = self.data, self.c
        h2, predict = d.splits["half2"], {"test": d.splits["test"]}
        gold = one_hot([d.targets[i] for i in h2], 2)
        self.predictions["ceiling"] = self._train(c.strong, "ceiling", self.strong_text, h2, gold, predict, c.seed)["test"]
        for variant in c.strong_variants():
            labels = soft_targets(self.supervisors[SUPERVISOR[variant]]["half2"], soft=True)
            loss = None
            if variant.endswith("_aux"):
                a = c.aux_loss
                loss = AuxConfidenceLoss(a.weight, a.warmup, a.threshold)
            self.predictions[variant] = self._train(c.strong, variant, self.strong_text, h2, labels, predict, c.seed, loss,
                                                    hard=not c.strong.soft_labels)["test"]

    # -- scoring -------------------------------------------------------------------------
    def _score(self) -> None:
        d = self.data
        test = d.splits["test"]
        y = [d.targets[i] for i in test]
        accs: dict[str, float | None] = {name: accuracy(p["test"], y) for name, p in self.supervisors.items()}
        if self.c.judge_baseline:
            accs["debate_judge"] = decision_accuracy([self.judge[i] for i in test], y, d.classes)
        accs.update({name: accuracy(p, y) for name, p in self.predictions.items()})
        self.accuracies = accs
        self.metrics = table(accs)
        used_rows = {d.source[i] for i in d.usable}
        self.info.update(
            sizes={**{k: len(v) for k, v in d.splits.items()}, "skipped": len(self.rows) - len(used_rows)},
            source_rows={k: len({d.source[i] for i in v}) for k, v in d.splits.items()}, paired=self.c.paired,
            weak_base=self.c.weak.student.base, strong_base=self.c.strong.student.base, ensemble=self.c.ensemble,
            debate_samples=self.c.debate_samples, classes=d.classes, pgr_note=gap_note(accs.get("weak"), accs.get("ceiling")),
            positive_rate={k: round(sum(t == 0 for t in (d.targets[i] for i in v)) / len(v), 4) if v else None
                           for k, v in d.splits.items()})

    def row_columns(self, i: int) -> dict[str, Any]:
        """The columns w2s adds to example i's source row (the task writes `gold` itself: rows and examples differ)."""
        d = self.data
        split = d.split_of(i)
        out: dict[str, Any] = {"source_row": d.source[i], "split": split, "proposed_answer": d.answers[i], "w2s_question": d.questions[i],
                               "w2s_input": d.texts[i], "w2s_target": None if d.targets[i] is None else d.classes[d.targets[i]],
                               "transcript": [t.as_dict() for t in self.transcripts[0][i]] if self.transcripts else []}
        if len(self.transcripts) > 1:
            out["transcript_samples"] = [[t.as_dict() for t in s[i]] for s in self.transcripts]
        if self.c.judge_baseline:
            out["judge_decision"] = self.judge[i]
        out["weak_labels"] = self._probs_at(i, "half2", {k: v["half2"] for k, v in self.supervisors.items()})
        test_probs = {**{k: v["test"] for k, v in self.supervisors.items()}, **self.predictions}
        out["predictions"] = self._probs_at(i, "test", test_probs)
        errors = [f"{t.speaker}: {t.error}" for s in self.transcripts for t in s[i] if t.error]
        out["tokens"] = {"prompt": self.usage[i][0], "completion": self.usage[i][1]}
        out["_error"] = "; ".join(errors) or None
        out["gold"] = self.ctx.gold[d.source[i]]
        return out

    def _probs_at(self, i: int, split: str, probs: dict[str, np.ndarray]) -> dict[str, float] | None:
        """{name: p(positive class)} for example i when it is in `split`, else None."""
        idx = self.data.splits.get(split, [])
        if i not in idx:
            return None
        pos = idx.index(i)
        return {name: round(float(p[pos][0]), 4) for name, p in probs.items()}


def _mean(members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """An ensemble's probabilities per split: the mean over its members."""
    return {part: average_probs([m[part] for m in members]) for part in ("half2", "test")}


__all__ = ["SUPERVISOR", "W2sData", "W2sRun"]
