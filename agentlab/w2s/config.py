"""The `w2s` task config: the yes/no data, the debate, the weak and strong students, the variants."""

# Optional[...] rather than `X | None`: docs/recipes.md renders field types inside a markdown table
# ruff: noqa: UP045

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from agentlab.config import StrictModel
from agentlab.config.sections import DistillConfig, StudentConfig
from agentlab.debate.config import DebaterConfig, DebateSettings, yaml_words
from agentlab.tasks.base import TaskConfig

#: weak -> strong variants: the strong student trained on each supervisor's soft labels
STRONG_VARIANTS = ("w2s_weak", "w2s_ensemble", "w2s_debate_ensemble", "w2s_debate_ensemble_aux")
#: what the students read: with the proposed answer (classify the pair), or without it (`score_answers`)
ANSWER_FREE_TEMPLATE = "{{ text }}\nQuestion: {{ question }}"
DEFAULT_TEMPLATE = ANSWER_FREE_TEMPLATE + "\nProposed answer: {{ answer }}"
#: the default question the debaters argue about (the row's proposed answer to the w2s question)
DEFAULT_DEBATE_QUESTION = 'Is the proposed answer "{{ proposed_answer }}" to the question "{{ w2s_question }}" correct?'


def _debaters() -> list[DebaterConfig]:
    return [DebaterConfig(role="affirmative", max_tokens=48), DebaterConfig(role="negative", max_tokens=48)]


class W2sDebate(DebateSettings):
    """How the strong model(s) debate each example (Part A settings; the judge only scores the `debate_judge` baseline)."""

    question: str = Field(DEFAULT_DEBATE_QUESTION, description="What the debaters argue, a Jinja string over the row; the "
                          "row also has `proposed_answer` and `w2s_question`. Affirmative argues yes (correct), negative no.")
    debaters: list[DebaterConfig] = Field(default_factory=_debaters, min_length=1,
                                          description="Speakers, in speaking order (fixed every round).")
    rounds: int = Field(1, ge=1, description="Rounds; every debater speaks once per round.")


class AuxLossConfig(StrictModel):
    """Auxiliary confidence loss (Burns et al. 2023): mix the weak labels with the strong student's own hardened predictions."""

    weight: float = Field(0.0, ge=0, le=1, description="Final mixing weight of the hardened predictions (0 = off; 0.5 in the paper). "
                          "When > 0 the variant `w2s_debate_ensemble_aux` is trained as well.")
    warmup: float = Field(0.2, ge=0, le=1, description="Fraction of training over which the weight rises linearly from 0.")
    threshold: Literal["adaptive", "argmax"] = Field(
        "adaptive", description="Binary: `adaptive` hardens at the batch quantile that gives as many positives as the weak "
        "labels carry (the paper's choice); `argmax` takes the most likely class. More than two classes: argmax.")


def _weak() -> DistillConfig:
    return DistillConfig(student=StudentConfig(base="minilm"), epochs=3, batch_size=8, max_length=256)


def _strong() -> DistillConfig:
    return DistillConfig(student=StudentConfig(base="smollm2"), epochs=2, batch_size=8, max_length=96)


class W2sConfig(TaskConfig):
    """Weak-to-strong generalisation with debate (METHODS.md §7)."""

    type: Literal["w2s"] = "w2s"
    question: str = Field(description="The yes/no question each row's proposed answer answers, a Jinja string over the row, "
                          "e.g. 'Is this review positive?'. Shown to the debaters and the students.")
    text_field: str = Field("text", description="Column with the text the question is about.")
    answer_field: Optional[str] = Field(
        None, description="Column with the proposed answer to judge; gold (via `gold_map`) says whether it is correct. "
        "Leave unset to build proposed answers from gold with `answers_from_gold`.")
    answers_from_gold: Optional[dict[str, str]] = Field(
        None, description="Gold value -> the true answer, e.g. `{1: 'yes', 0: 'no'}`: every row yields an example with its true "
        "answer and one with the other answer (`pair_answers`), or one of the two (`pair_answers: false`); the target is whether "
        "the proposed answer is the true one.")
    pair_answers: Optional[bool] = Field(
        None, description="With `answers_from_gold` (default true there): each row yields two examples, its true answer "
        "(target correct) and the flipped one (target incorrect), always in the same split (rows are split, not examples). "
        "`false`: one example per row, a seeded `flip_fraction` of them flipped. Not allowed with `answer_field`.")
    flip_fraction: float = Field(0.5, gt=0, lt=1, description="With `answers_from_gold` and `pair_answers: false`: share of rows "
                                 "given the flipped (wrong) answer.")
    gold_map: Optional[dict[str, str]] = Field(
        None, description="With `answer_field`: gold value -> `yes`/`no` (is the proposed answer correct) when gold uses other names.")
    input_template: Optional[str] = Field(
        None, description="What the students read (Jinja over the row, with `text`, `question`, `answer`); the weak students "
        "with debate get the transcript appended after a blank line. Default: `{{ text }}\\nQuestion: {{ question }}` then "
        "`\\nProposed answer: {{ answer }}` (without the answer line under `score_answers`).")
    score_answers: bool = Field(
        False, description="Students score the answers instead of classifying (question, proposed answer) pairs: they read "
        "the input without the proposed answer and output a distribution over the two answers; p(correct) of an example = "
        "p(its proposed answer). Targets and predictions are mapped between the two views, so metrics and outputs keep "
        "their meaning. Use it when a `classifier` cannot learn the interaction of content and proposed answer at your size "
        "(benchmarks/w2s_learnability.py: MiniLM stays at chance on paired SST-2). The input must not show `answer`.")
    debate: W2sDebate = Field(default_factory=W2sDebate, description="The debate (Part A machinery) run on every example.")
    debate_samples: int = Field(1, ge=1, description="Independent debates per example (seeds seed, seed+1, ...; set a debater "
                                "`temperature` > 0 so they differ); ensemble member k reads sample k mod this.")
    judge_baseline: bool = Field(True, description="Also let the debate judge decide each row from the first transcript "
                                 "(zero-shot, no training), reported as variant `debate_judge`.")
    ensemble: int = Field(4, ge=1, description="Weak students per ensemble (with and without debate); diversity from seeds "
                          "(seed + k) and debate samples.")
    weak: DistillConfig = Field(default_factory=_weak, description="The weak student, `classifier` or `causal` (trained on half 1 with gold); "
                                "`eval_split` and early stopping are unused (no validation data).")
    strong: DistillConfig = Field(default_factory=_strong, description="The strong student (trained on half 2): `classifier`, or `causal` to "
                                  "score each answer with the language-model head (with `score_answers`).")
    strong_sees_debate: bool = Field(False, description="Append the first debate transcript to the strong student's input too.")
    aux_loss: AuxLossConfig = Field(default_factory=AuxLossConfig, description="Auxiliary confidence loss for `w2s_debate_ensemble_aux`.")
    variants: Optional[list[Literal[STRONG_VARIANTS]]] = Field(  # type: ignore[valid-type]
        None, description="Weak -> strong variants to train (default: all; `w2s_debate_ensemble_aux` only with aux_loss.weight > 0). "
        "`weak` and `ceiling` always run: PGR needs them.")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="Held-out test share of the rows with gold; every accuracy is on it. "
                                 "The rest is split in two halves: half 1 trains the weak students, half 2 the strong ones.")
    seed: int = Field(0, description="Seed of the splits, the flipped answers and the students (student k uses seed + k).")
    keep_students: bool = Field(False, description="Keep every trained student under `w2s/` in the run directory (else deleted after predicting).")

    @field_validator("answers_from_gold", "gold_map", mode="before")
    @classmethod
    def _words(cls, v: Any) -> Any:
        v = yaml_words(v)
        return {str(k): str(x) for k, x in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _check(self):
        if (self.answer_field is None) == (self.answers_from_gold is None):
            raise ValueError("set exactly one of `answer_field` (rows carry a proposed answer) and `answers_from_gold` "
                             "(build proposed answers from gold, e.g. {1: 'yes', 0: 'no'})")
        if self.answer_field is not None and self.pair_answers:
            raise ValueError("pair_answers needs `answers_from_gold` (the rows' own proposed answers in `answer_field` cannot be paired)")
        if self.paired and "flip_fraction" in self.model_fields_set:
            raise ValueError("flip_fraction applies only with `pair_answers: false` (paired rows propose both answers)")
        if self.answers_from_gold is not None and len(set(self.answers_from_gold.values())) != 2:
            raise ValueError(f"answers_from_gold must map gold to exactly two answers (to flip between); got {self.answers_from_gold}")
        if len(self.debate.answer.choices) != 2:
            raise ValueError(f"w2s is binary: debate.answer.choices must be two choices (correct / incorrect); got {self.debate.answer.choices}")
        if self.variants and "w2s_debate_ensemble_aux" in self.variants and self.aux_loss.weight <= 0:
            raise ValueError("variant `w2s_debate_ensemble_aux` needs `aux_loss.weight` > 0 (0.5 in the paper)")
        if self.input_template is None:
            self.input_template = ANSWER_FREE_TEMPLATE if self.score_answers else DEFAULT_TEMPLATE
        elif self.score_answers and re.search(r"{[{%][^}]*\banswer\b", self.input_template):
            raise ValueError("score_answers: the students score both answers, so input_template must not show the proposed "
                             f"answer; drop `answer` from {self.input_template!r}")
        if "text_field" not in self.debate.model_fields_set:
            self.debate.text_field = self.text_field
        for name, cfg in (("weak", self.weak), ("strong", self.strong)):
            if cfg.student.type not in ("classifier", "causal"):
                raise ValueError(f"{name}.student.type must be `classifier` or `causal` (got {cfg.student.type!r})")
        if self.strong.student.type == "causal" and "w2s_debate_ensemble_aux" in self.strong_variants():
            raise ValueError("aux_loss needs a `classifier` strong student (it mixes in the student's own predictions "
                             "during training); with strong.student.type causal set aux_loss.weight: 0")
        return self

    @property
    def paired(self) -> bool:
        """Whether every row yields two examples (its true and its flipped answer)."""
        return self.answers_from_gold is not None and self.pair_answers is not False

    @property
    def choices(self) -> list[str]:
        """The student classes: the debate's two choices, the positive one (the answer is correct) first."""
        a = self.debate.answer
        return [a.positive_choice, *[c for c in a.choices if c != a.positive_choice]]

    def strong_variants(self) -> list[str]:
        """The weak -> strong variants this run trains, in table order."""
        names = list(self.variants or STRONG_VARIANTS)
        if self.aux_loss.weight <= 0:
            names = [n for n in names if n != "w2s_debate_ensemble_aux"]
        return [n for n in STRONG_VARIANTS if n in names]
