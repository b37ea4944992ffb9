"""`debate`: debaters argue a judgment turn by turn, a judge alone decides (METHODS.md §5, VHD11K).

With gold, the debate is scored against a single-prompt judge on the same model (same definition
and examples, no debate): the baseline a debate has to beat to be worth its calls.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from agentlab.debate.config import DebateSettings, yaml_words
from agentlab.debate.run import Debate, Outcome, embedded_debaters
from agentlab.debate.score import (
    agreement,
    combine,
    consistent,
    position_bias,
    recentered,
)
from agentlab.errors import ConfigError
from agentlab.tasks.base import TASKS, Task, TaskConfig

METRIC_KEYS = ("accuracy", "precision", "recall", "f1", "kappa", "coverage")


class DebateConfig(TaskConfig, DebateSettings):
    """Multi-agent debate annotation: fixed speaking order, N rounds, then the judge decides alone."""

    type: Literal["debate"] = "debate"
    baseline: bool | None = Field(
        None, description="Also run the single-prompt judge (same model, definition and examples; no debate). Default: when `eval.gold` is set.")
    gold_map: dict[str, str] | None = Field(
        None, description="Gold value -> choice when gold uses other names, e.g. `{spam: yes, ham: no}` (default: the same names).")
    average_orders: bool = Field(
        True, description="With `swap_sides` and a judge that scores the choices (options mode): the debate's decision is the "
        "mean of the judge's choice scores over both speaking orders, which cancels position bias. metrics.debate_forward and "
        "metrics.debate_swapped are each order alone.")
    prior_weight: float = Field(
        0.0, ge=0, description="Options mode: add this times the single judge's (no debate) choice scores to the debate judge's, "
        "so a judge that ignores the transcript is no worse than no transcript (runs the single judge). 0 = no prior.")

    recenter: bool = Field(
        False, description="Options mode: subtract from each speaking order's choice scores the mean, over the run's rows, of "
        "(that order's scores - the single judge's). The form of a debate leans a small judge to one answer on every row "
        "(a lean content-free calibration does not see); what is left is how much a row's debate moves the judge compared "
        "with the other rows' debates, on top of the single judge's own balance (runs the single judge).")

    @field_validator("gold_map", mode="before")
    @classmethod
    def _gold_map_words(cls, v: Any) -> Any:
        return yaml_words(v)


@TASKS.register("debate")
class DebateTask(Task):
    """Rows -> decision, category, reason, transcript (and the swapped-order and single-judge decisions)."""

    config_cls = DebateConfig
    template_names: ClassVar[dict[str, str]] = {n: f"the debate's `{n}`" for n in (
        "row", "modality", "question", "definition", "choices", "max_reasons", "debaters", "role", "stance", "transcript",
        "round", "rounds", "examples", "mode", "category", "reason", "categories", "answer_format")}

    def run(self, ctx, rows):
        c: DebateConfig = self.config
        self._check_gold(ctx)
        debate = Debate(c, ctx, len(rows))
        debate.check_rows(rows)
        self._caveats(ctx)
        main = debate.run(rows, c.debaters, "debate")
        # the swapped order's category/reason is never shown (only its decision), so its judge only scores the choices
        swapped = debate.run(rows, c.debaters[::-1], "debate (swapped order)", detail=False) if c.swap_sides else None
        prior = None
        if self._baseline(ctx) or ((c.prior_weight or c.recenter) and debate.mode == "options"):
            prior = debate.judge(rows, [[] for _ in rows], "single judge", detail=False)
        base = [v.decision for v in prior] if prior is not None and self._baseline(ctx) else None
        self.orders = None
        unused = [n for n, on in (("recenter", c.recenter), ("prior_weight", c.prior_weight)) if on]
        if unused and debate.mode != "options":
            ctx.caveats.append(f"{' and '.join(unused)} need a judge that scores the choices (options mode); the judge "
                               f"ran in {debate.mode} mode, so they were not applied")
        if debate.mode == "options" and (c.prior_weight or c.recenter or (swapped is not None and c.average_orders)):
            main, swapped, self.orders = self._combine(main, swapped, prior)
        self.results = (main, swapped, base)
        self._summary(ctx, debate, main, swapped)
        return [self._row(r, i, main, swapped, base, debate.usage[i]) for i, r in enumerate(rows)]

    def _combine(self, main: list[Outcome], swapped: list[Outcome] | None, prior):
        """Each order's decision with the single judge's prior, and the debate's decision from both orders averaged.

        Returns (debate outcomes, swapped-order outcomes, {"forward", "swapped"} decisions of each order alone).
        """
        c = self.config
        choices, w = c.answer.choices, c.prior_weight
        pri = prior if prior is not None else [None] * len(main)
        if c.recenter and prior is not None:
            main = recentered(main, prior)
            swapped = recentered(swapped, prior) if swapped is not None else None

        def one(outs, k, verdicts):
            o = outs[k]
            if o.source == "refusal":
                return o
            d, conf = combine(choices, verdicts, pri[k], w)
            if d is None:
                return o
            verdict = replace(o.verdict, decision=d, confidence=conf,
                              category=o.verdict.category if d == o.verdict.decision else None,
                              reason=o.verdict.reason if d == o.verdict.decision else None)
            return replace(o, verdict=verdict, decision=d, source="judge")

        forward = [one(main, k, [main[k].verdict]) for k in range(len(main))]
        back = [one(swapped, k, [swapped[k].verdict]) for k in range(len(main))] if swapped is not None else None
        if back is not None and c.average_orders:
            both = [one(main, k, [main[k].verdict, swapped[k].verdict]) for k in range(len(main))]
        else:
            both = forward
        orders = {"forward": [o.decision for o in forward], "swapped": None if back is None else [o.decision for o in back]}
        return both, back, orders

    def planned_calls(self, ctx, rows):
        """The debate's turns and judge (again in swapped order with `swap_sides`), and the single judge."""
        from agentlab.debate.plan import plan_debate, plan_judge

        c: DebateConfig = self.config
        debate = Debate(c, ctx, len(rows))
        debate.check_rows(rows)
        out = plan_debate(debate, rows, c.debaters, "debate")
        if c.swap_sides:
            out += plan_debate(debate, rows, c.debaters[::-1], "debate (swapped order)", detail=False)
        if self._baseline(ctx) or ((c.prior_weight or c.recenter) and debate.mode == "options"):
            out += plan_judge(debate, rows, "single judge")
        return out

    def _baseline(self, ctx) -> bool:
        return self.config.baseline if self.config.baseline is not None else ctx.gold is not None

    def _row(self, row, i, main: list[Outcome], swapped, base, usage) -> dict[str, Any]:
        o = main[i]
        out = dict(row)
        out.update(decision=o.decision, category=o.category, reason=o.reason, transcript=[t.as_dict() for t in o.transcript],
                   decision_source=o.source, refused_by=o.refused_by, judge_decision=o.verdict.decision,
                   judge_confidence=o.verdict.confidence, judge_raw=o.verdict.raw)
        errors = o.errors
        if swapped is not None:
            s = swapped[i]
            first = self.orders["forward"][i] if self.orders else o.decision
            out.update(decision_swapped=s.decision, position_consistent=consistent(first, s.decision),
                       transcript_swapped=[t.as_dict() for t in s.transcript])
            errors += [f"swapped {e}" for e in s.errors]
        if self.orders is not None:
            out["decision_forward"] = self.orders["forward"][i]
        if base is not None:
            out["single_judge_decision"] = base[i]
        out["tokens"] = {"prompt": usage[0], "completion": usage[1]}
        out["_error"] = "; ".join(errors) or None
        return out

    # -- gold ------------------------------------------------------------------------------
    def _gold_choice(self, value: Any) -> str | None:
        if value is None:
            return None
        key = str(value).strip().lower()
        mapping = {str(k).strip().lower(): v for k, v in (self.config.gold_map or {}).items()}
        target = mapping.get(key, key)
        return next((ch for ch in self.config.answer.choices if ch.lower() == str(target).lower()), None)

    def _check_gold(self, ctx) -> None:
        """Fail before any call when no gold value names a choice (a missing gold_map)."""
        c = self.config
        for k, v in (c.gold_map or {}).items():
            if v not in c.answer.choices:
                raise ConfigError(f"task.gold_map maps {k!r} to {v!r}, which is not one of the choices {c.answer.choices}")
        if ctx.gold and all(self._gold_choice(g) is None for g in ctx.gold):
            seen = sorted({str(g) for g in ctx.gold})[:5]
            raise ConfigError(f"no gold value ({', '.join(seen)}) is one of the choices {c.answer.choices}; "
                              f"map them with `task.gold_map`, e.g. {{{seen[0]}: {c.answer.choices[0]}}}")

    # -- reporting -------------------------------------------------------------------------
    def _caveats(self, ctx) -> None:
        embedded = embedded_debaters(ctx, self.config.debaters)
        writing = embedded_debaters(ctx, [d for d in self.config.debaters if not d.quote])
        if embedded and not writing:
            ctx.caveats.append(
                f"Debaters run on the embedded model ({', '.join(embedded)}; SmolLM2-135M unless model_path says otherwise) "
                "and quote the content instead of arguing: a model that small writes poor arguments but picks spans by "
                "log-likelihood well. This is the path for small models; a recipe with a stronger model can let its "
                "debaters write (quote: false, the full VHD11K path). Compare "
                "metrics.debate with metrics.single_judge.")
        elif writing:
            ctx.caveats.append(
                f"Debaters run on the embedded model ({', '.join(writing)}; SmolLM2-135M unless model_path says otherwise), "
                "which is weak at arguing: its turns are often generic or off-topic, so the debate adds little or negative "
                "signal. Compare metrics.debate with metrics.single_judge, and use a stronger model for real annotation.")

    def _summary(self, ctx, debate: Debate, main: list[Outcome], swapped) -> None:
        c = self.config
        order = " → ".join(d.role for d in c.debaters)
        refused = sum(o.source == "refusal" for o in main)
        undecided = sum(o.decision is None for o in main)
        combined = self.orders is not None
        how = ("the judge's choice scores " + ("averaged over both speaking orders" if swapped is not None and c.average_orders
                                               else "of the first speaking order")
               + (", less the debate's mean lean over the rows (recentered on the single judge)" if c.recenter else "")
               + (f" plus {c.prior_weight} × the single judge's" if c.prior_weight else "")) if combined else "the judge's verdict"
        quoting = [d.role for d in c.debaters if d.quote]
        if quoting:
            how += f"; {', '.join(quoting)} quote the content (spans chosen by log-likelihood, nothing written)"
        if c.judge.debate_examples:
            how += "; the judge's in-context examples are debated the same way"
        ctx.metrics["debate_run"] = {"decision": how, "rounds": c.rounds, "speakers": [d.role for d in c.debaters], "judge_mode": debate.mode,
                                     "decided_by_refusal": refused, "undecided": undecided,
                                     "examples": len(debate.examples)}
        ctx.report += ["## Debate", (f"Speaking order per round: {order}; {c.rounds} round(s); judge `{c.judge.model}` "
                                     f"({debate.mode}); {len(debate.examples)} in-context example(s)."),
                       f"Decision: {how}.",
                       f"Rows decided by a debater's refusal: {refused}; undecided (judge failed or unparsable): {undecided}.", ""]
        if swapped is not None:
            first = self.orders["forward"] if self.orders else [o.decision for o in main]
            pb = position_bias(first, [o.decision for o in swapped])
            ctx.metrics["position_bias"] = pb
            rate = "n/a" if pb["rate"] is None else f"{pb['rate']:.4f}"
            each = " (each order alone, with the prior)" if combined else ""
            ctx.report += [(f"Position bias (speaking order reversed{each}): {pb['changed']} of {pb['n']} rows changed decision "
                            f"(rate {rate})."), ""]

    def evaluate(self, ctx, rows):
        """metrics.debate / .single_judge / .debate_swapped: accuracy, precision, recall, F1, kappa vs gold."""
        a = self.config.answer
        gold = [self._gold_choice(g) for g in ctx.gold]
        main, swapped, base = self.results
        out: dict[str, Any] = {"debate": agreement(gold, [o.decision for o in main], a.choices, a.positive_choice)}
        if self.orders is not None:
            out["debate_forward"] = agreement(gold, self.orders["forward"], a.choices, a.positive_choice)
        if swapped is not None:
            out["debate_swapped"] = agreement(gold, [o.decision for o in swapped], a.choices, a.positive_choice)
        if base is not None:
            out["single_judge"] = agreement(gold, base, a.choices, a.positive_choice)
        fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
        lines = [f"| {name} | " + " | ".join(fmt(m[k]) for k in METRIC_KEYS) + f" | {m['n']} |" for name, m in out.items()]
        ctx.report += ["## Debate vs single judge (gold)", f"Positive choice: `{a.positive_choice}`.", "",
                       "| annotator | " + " | ".join(METRIC_KEYS) + " | n |", "|---|" + "---|" * (len(METRIC_KEYS) + 1), *lines, ""]
        return out
