"""The settings of a debate, shared by the `debate` task and the `debate` labeler."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentlab.config import StrictModel

#: `refusal_counts_as` value that leaves a refused row to the judge
JUDGE_DECIDES = "judge"


def yaml_words(value: Any) -> Any:
    """Undo YAML 1.1 booleans: an unquoted `yes`/`no` (keys and values) reads as True/False; we mean the words."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return [yaml_words(v) for v in value]
    if isinstance(value, dict):
        return {yaml_words(k): yaml_words(v) for k, v in value.items()}
    return value


class DebaterConfig(StrictModel):
    """One debater: a role (its name in the transcript), the model that speaks it, what it argues."""

    role: str = Field(description="Speaker name in the transcript, e.g. affirmative, negative, expert.")
    model: str = Field("default", description="Model name under `models:`.")
    stance: str | None = Field(
        None, description="The answer this debater argues for (a choice, or free text). Default: affirmative -> the "
        "positive choice, negative -> the other choice (or 'not <positive>'), any other role -> its honest view.")
    prompt: str | None = Field(
        None, description="Jinja template of a debater's turn. Default: prompts/debate/debater.jinja "
        "(prompts/debate/quote.jinja with `quote`).")
    quote: bool = Field(
        False, description="Quote instead of write: the turn is the span of the content (a clause, at most 8 words) whose "
        "log-likelihood as the answer to 'which words show the answer is <stance>?' rises most over the other stances. "
        "Nothing is generated; needs a model that scores options (e.g. embedded) and text content.")
    max_tokens: int = Field(96, ge=8, description="Max tokens of one turn.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy).")

    @property
    def template(self) -> str:
        """The turn's prompt file."""
        return self.prompt or ("prompts/debate/quote.jinja" if self.quote else "prompts/debate/debater.jinja")

    @field_validator("stance", mode="before")
    @classmethod
    def _stance_words(cls, v: Any) -> Any:
        return yaml_words(v)


class JudgeConfig(StrictModel):
    """The judge: decides alone, from the definition, the in-context examples and the transcript."""

    model: str = Field("default", description="Model name under `models:`.")
    prompt: str = Field("prompts/debate/judge.jinja", description="Jinja template of the judge's question.")
    detail_prompt: str = Field("prompts/debate/judge_detail.jinja",
                               description="Follow-up asking for category/reason after a decision scored by log-likelihood.")
    examples: str | None = Field(
        None, description="JSONL of in-context examples: `text` (and/or `image`), `answer` (a choice), optional "
        "`category` and `reason`. Relative to the recipe.")
    max_examples: int | None = Field(None, ge=0, description="Use only the first N examples.")
    mode: Literal["auto", "options", "json", "text"] = Field(
        "auto", description="options = score the choices by log-likelihood, then ask for category/reason; "
        "json = one structured answer; text = parse 'Yes, <category>' / 'No, <reason>'; auto = the best the backend supports.")
    max_tokens: int = Field(64, ge=8, description="Max tokens of a written judge answer (json/text modes, category/reason).")
    debate_examples: bool = Field(
        False, description="Debate the in-context examples too (the same debaters, in the same speaking order) and show them "
        "with their transcripts, so the judge learns from examples in the form of the question it answers. Costs the "
        "debaters' turns on the examples (once per speaking order, cached). Text examples only.")
    calibrate: bool | Literal["transcript"] = Field(
        False, description="Options mode: contextual calibration, subtract the choice scores the judge gives when the content "
        "and every turn's text are 'N/A' (same speakers, definition and examples). Small models lean to one answer; this removes "
        "the lean. `transcript`: the content is 'N/A' but the turns are the row's own, so what the arguments push by "
        "themselves (whatever the content) is removed too, and the decision is what the content changes given them "
        "(one more scored call per row and speaking order).")


class AnswerConfig(StrictModel):
    """What the judge answers: one of `choices`, plus an optional category and a short reason."""

    choices: list[str] = Field(default_factory=lambda: ["yes", "no"], description="Possible decisions (two or more).")
    positive: str | None = Field(None, description="The positive choice (harmful, spam, ...) for precision/recall; default: the first.")
    category: bool = Field(False, description="Ask for a category when the decision is positive ('Yes, <category>').")
    categories: list[str] | None = Field(None, description="Closed list of categories (default: free text).")
    reason: bool = Field(True, description="Ask for a short reason.")

    @field_validator("choices", "positive", mode="before")
    @classmethod
    def _answer_words(cls, v: Any) -> Any:
        return yaml_words(v)

    @field_validator("choices")
    @classmethod
    def _choices(cls, v: list[str]) -> list[str]:
        if len(v) < 2:
            raise ValueError("needs at least two choices")
        if len({c.strip().lower() for c in v}) != len(v):
            raise ValueError("choices must be unique (case-insensitive)")
        return v

    @model_validator(mode="after")
    def _positive(self):
        if self.positive is not None and self.positive not in self.choices:
            raise ValueError(f"answer.positive {self.positive!r} is not one of the choices {self.choices}")
        return self

    @property
    def positive_choice(self) -> str:
        """The positive choice (default: the first)."""
        return self.positive or self.choices[0]

    @property
    def asks_detail(self) -> bool:
        """Whether the judge is asked for anything beyond the decision."""
        return self.category or self.reason


def _default_debaters() -> list[DebaterConfig]:
    return [DebaterConfig(role="affirmative"), DebaterConfig(role="negative")]


class DebateSettings(StrictModel):
    """Who debates what, how long, and how the judge answers (mixed into the task and labeler configs)."""

    question: str = Field(description="The judgment, a Jinja string over the row and `modality`, e.g. 'Is the given {{ modality }} harmful?'.")
    definition: str | None = Field(
        None, description="What counts, shown to the judge and debaters: a .md/.txt file (relative to the recipe) or inline text.")
    debaters: list[DebaterConfig] = Field(default_factory=_default_debaters, min_length=1,
                                          description="Speakers, in speaking order (fixed every round).")
    rounds: int = Field(2, ge=1, description="Rounds; every debater speaks once per round.")
    simultaneous_opening: bool = Field(
        False, description="Debaters write their first-round turns without seeing each other's (opening statements); later "
        "rounds see the whole transcript. With `swap_sides` both speaking orders share the openings (the same calls), so "
        "with `rounds: 1` the swapped order costs no debater calls and position bias is the judge's alone.")
    max_reasons: int = Field(3, ge=1, description="At most this many short reasons per turn (longer lists are cut).")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="The judge.")
    answer: AnswerConfig = Field(default_factory=AnswerConfig, description="Choices and what else the judge gives.")
    swap_sides: bool = Field(False, description="Debate again with the speaking order reversed; disagreement is reported as position bias.")
    refusal_counts_as: str | None = Field(
        None, description="A debater's refusal to argue decides the row as this choice (default: the positive choice); "
        "`judge` = the refusal stays in the transcript and the judge decides.")
    refusal_phrases: list[str] | None = Field(None, description="Phrases that mark a refusal (default: a built-in list).")
    text_field: str = Field("text", description="Column with the text to judge (optional with images).")
    image_field: str | None = Field(None, description="Column with an image path/URL: debaters and judge get a VLM request.")
    frames_field: str | None = Field(None, description="Column with a list of image paths/URLs: a video as numbered frames.")
    modality: Literal["text", "image", "video"] | None = Field(None, description="Word used in prompts; default from the fields set.")

    @field_validator("refusal_counts_as", mode="before")
    @classmethod
    def _refusal_words(cls, v: Any) -> Any:
        return yaml_words(v)

    @model_validator(mode="after")
    def _check(self):
        roles = [d.role for d in self.debaters]
        if len(set(roles)) != len(roles):
            raise ValueError(f"debater roles must be unique (they name the speakers); got {roles}")
        if self.image_field and self.frames_field:
            raise ValueError("set image_field or frames_field, not both")
        quoting = [d.role for d in self.debaters if d.quote]
        if quoting and (self.image_field or self.frames_field):
            raise ValueError(f"debaters {quoting} have quote: true, which quotes the text; with image_field/frames_field "
                             "there is no text to quote: set quote: false")
        for d in self.debaters:
            if d.quote and self.stance_of(d) is None:
                raise ValueError(f"debater {d.role!r} has quote: true but no stance (it quotes evidence for a side); "
                                 "give it a stance or the role affirmative/negative")
        allowed = [*self.answer.choices, JUDGE_DECIDES]
        if self.refusal_counts_as is not None and self.refusal_counts_as not in allowed:
            raise ValueError(f"refusal_counts_as must be one of {allowed}; got {self.refusal_counts_as!r}")
        if self.answer.categories is not None and not self.answer.category:
            raise ValueError("answer.categories is set but answer.category is false; set `category: true`")
        return self

    @property
    def kind(self) -> str:
        """text, image or video."""
        if self.modality:
            return self.modality
        return "video" if self.frames_field else "image" if self.image_field else "text"

    @property
    def refusal_vote(self) -> str | None:
        """The choice a refusal decides, or None when the judge decides anyway."""
        if self.refusal_counts_as == JUDGE_DECIDES:
            return None
        return self.refusal_counts_as or self.answer.positive_choice

    def stance_of(self, debater: DebaterConfig) -> str | None:
        """What a debater argues for (None = its honest view)."""
        if debater.stance:
            return debater.stance
        choices, pos = self.answer.choices, self.answer.positive_choice
        if debater.role == "affirmative":
            return pos
        if debater.role == "negative":
            others = [c for c in choices if c != pos]
            return others[0] if len(others) == 1 else f"not {pos}"
        return None
