"""`w2s`: weak-to-strong generalisation with debate (METHODS.md §7), with its baselines in the same run.

The strong model(s) debate every yes/no example ("is this proposed answer correct?"); an ensemble of
weak `classifier` students learns half 1 with gold and the transcript appended; the ensemble's mean
soft labels on half 2 train the strong student. Baselines: the weak student alone, a weak ensemble
without debate, the strong student on gold (the ceiling). Every accuracy is on a held-out test split;
PGR = (acc − acc(weak)) / (acc(ceiling) − acc(weak)) per variant in `metrics.w2s.<variant>`.

Gold (`eval.gold`, moved to `ctx.gold` by the runner) builds the examples' targets, trains the weak
students on half 1 and the ceiling on half 2, and measures; it is never shown to a debater or the judge.
"""

from __future__ import annotations

from typing import Any

from agentlab.tasks.base import TASKS, Task
from agentlab.w2s.config import W2sConfig
from agentlab.w2s.metrics import render


@TASKS.register("w2s")
class W2sTask(Task):
    """Rows -> examples (two per row with `pair_answers`): split, proposed answer, debate transcript, weak labels
    (half 2) and every variant's test prediction; each keeps its source row's columns, `source_row` and `gold`."""

    config_cls = W2sConfig
    #: one output row per example: two per input row with `pair_answers` (the default with `answers_from_gold`)
    changes_rows = True
    caveat = ("w2s accuracies are on a small held-out test split and move in steps of 1/n; PGR divides by the "
              "ceiling-minus-weak gap, so it is noisy when that gap is a few rows.")

    def run(self, ctx, rows):
        from agentlab.w2s.run import W2sRun

        self._caveats(ctx)
        self.w2s = W2sRun(self.config, ctx, rows)
        self.w2s.run()
        return [{**rows[j], **self.w2s.row_columns(i)} for i, j in enumerate(self.w2s.data.source)]

    def evaluate(self, ctx, rows) -> dict[str, Any]:
        """metrics.w2s.<variant>.{accuracy, pgr} and metrics.w2s_run (sizes, timings, training metrics, notes)."""
        w = self.w2s
        ctx.report += render(w.metrics, w.info)
        return {"w2s": w.metrics, "w2s_run": w.info}

    def _caveats(self, ctx) -> None:
        c = self.config
        if c.debate_samples > 1 and all(d.temperature == 0 for d in c.debate.debaters):
            ctx.caveats.append(f"debate_samples is {c.debate_samples} but every debater is greedy (temperature 0): the samples "
                               "differ only by seed, which greedy decoding ignores; give the debaters a temperature.")
        from agentlab.debate.run import embedded_debaters

        embedded = embedded_debaters(ctx, c.debate.debaters)
        if embedded:
            ctx.caveats.append(
                f"The debaters run on the embedded model ({', '.join(embedded)}; SmolLM2-135M unless model_path says "
                "otherwise), a weak arguer: its transcripts carry little signal, so compare weak_debate_ensemble with "
                "weak_ensemble before crediting the debate. Use a stronger model for real experiments.")
