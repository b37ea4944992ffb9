"""Running debates: every row advances turn by turn together, one batched call per speaker turn.

A turn is one `ctx.complete` over all rows, so the call cache makes a rerun (or a resumed run)
repeat nothing that finished, turn by turn. The judge then decides each row alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import create_model

from agentlab.backends.base import ChatRequest, image_error
from agentlab.debate import quotes
from agentlab.debate.config import DebaterConfig, DebateSettings
from agentlab.debate.inputs import Example, load_definition, load_examples, verdict_text
from agentlab.debate.parse import (
    clean_turn,
    is_refusal,
    limit_reasons,
    match_choice,
    parse_verdict,
)
from agentlab.debate.score import logsumexp
from agentlab.errors import ConfigError
from agentlab.media import user_message
from agentlab.prompts import Prompt, row_variables

if TYPE_CHECKING:
    from agentlab.engine import RunContext

NO_ANSWER = "(no answer)"


@dataclass
class Turn:
    """One speaker's turn; `refused` when it declined to argue, `error` when the call failed."""

    speaker: str
    text: str
    refused: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, str]:
        """{speaker, text}: what later speakers, the judge and the output see."""
        return {"speaker": self.speaker, "text": self.text}


@dataclass
class Verdict:
    """The judge's answer: decision None when it failed or could not be parsed (raw kept, never guessed)."""

    decision: str | None
    category: str | None = None
    reason: str | None = None
    confidence: float | None = None
    raw: str | None = None
    error: str | None = None
    scores: list[float] | None = None  # options mode: the (calibrated) log-likelihood of each choice


@dataclass
class Outcome:
    """A finished debate for one row: the transcript, the judge's verdict and the final decision."""

    transcript: list[Turn]
    verdict: Verdict
    decision: str | None
    source: str | None  # "judge" | "refusal" | None (undecided)
    refused_by: list[str] = field(default_factory=list)

    @property
    def category(self) -> str | None:
        """The judge's category when it agrees with the final decision."""
        return self.verdict.category if self.verdict.decision == self.decision else None

    @property
    def reason(self) -> str | None:
        """The judge's reason, or why a refusal decided the row."""
        if self.source == "refusal" and self.verdict.decision != self.decision:
            return f"{', '.join(self.refused_by)} refused to argue"
        return self.verdict.reason

    @property
    def errors(self) -> list[str]:
        """Failed calls of this row (debater turns and the judge)."""
        out = [f"{t.speaker}: {t.error}" for t in self.transcript if t.error]
        if self.verdict.error:
            out.append(f"judge: {self.verdict.error}")
        return out


def embedded_debaters(ctx: RunContext, debaters: list[Any]) -> list[str]:
    """The model names among `debaters` that run on the embedded SmolLM2 (or another local GGUF), sorted."""
    names = {ctx.resolve_model(d.model) for d in debaters}
    return sorted(n for n in names if ctx.runs_embedded(n, any_gguf=True))


def cap(choice: str) -> str:
    """'yes' -> 'Yes' (the form an answer starts with)."""
    return choice[:1].upper() + choice[1:]


class Debate:
    """Debates and judges batches of rows under one `DebateSettings`.

    Args:
        settings: the debate (task or labeler config).
        ctx: the run context (models, cache, prompts, recipe paths).
        n_rows: rows per batch, for the per-row token counts in `usage`.
    """

    def __init__(self, settings: DebateSettings, ctx: RunContext, n_rows: int):
        self.s, self.ctx = settings, ctx
        self.usage = [[0, 0] for _ in range(n_rows)]
        self._debated_examples: dict[tuple[str, ...], list[list[Turn]]] = {}
        self.question = Prompt(settings.question, "question")
        self.prompts = {d.role: ctx.load_prompt(d.template) for d in settings.debaters}
        self.judge_prompt = ctx.load_prompt(settings.judge.prompt)
        self.detail_prompt = ctx.load_prompt(settings.judge.detail_prompt) if settings.answer.asks_detail else None
        self.definition = load_definition(ctx, settings.definition)
        self.examples = load_examples(ctx, settings.judge, settings.answer)
        recipe_path = getattr(ctx.recipe, "path", None)
        self.base_dir = recipe_path.parent if recipe_path is not None else None
        self._check_images()
        self._check_quotes()
        self.mode = self._mode()

    # -- setup ---------------------------------------------------------------------------
    def _check_images(self) -> None:
        s = self.s
        if not (s.image_field or s.frames_field or any(ex.images for ex in self.examples)):
            return
        speakers = [(f"debater {d.role}", d.model) for d in s.debaters] + [("judge", s.judge.model)]
        for who, model in speakers:
            if "images" not in self.ctx.backend(model).capabilities:
                name = self.ctx.resolve_model(model)
                raise ConfigError(f"the {who} (model {name!r}) must see images, but {image_error(self.ctx.model_configs[name].backend)}")

    def _check_quotes(self) -> None:
        for d in self.s.debaters:
            if d.quote and "options" not in self.ctx.backend(d.model).capabilities:
                name = self.ctx.resolve_model(d.model)
                raise ConfigError(f"the debater {d.role} has quote: true, which scores spans of the content by log-likelihood, but "
                                  f"model {name!r} (backend {self.ctx.model_configs[name].backend!r}) does not score options; "
                                  "use a backend that does (e.g. embedded) or set quote: false")

    def _mode(self) -> str:
        mode = self.s.judge.mode
        if mode != "auto":
            return mode
        caps = self.ctx.backend(self.s.judge.model).capabilities
        return "options" if "options" in caps else "json" if "json_schema" in caps else "text"

    def check_rows(self, rows: list[dict[str, Any]]) -> None:
        """Fail before any call when a named column is missing."""
        s = self.s
        for name in (s.image_field, s.frames_field):
            if name and rows and name not in rows[0]:
                raise ConfigError(f"column {name!r} (image_field/frames_field) not in the source; columns: {', '.join(sorted(rows[0]))}")
        if not (s.image_field or s.frames_field) and rows and s.text_field not in rows[0]:
            raise ConfigError(f"column {s.text_field!r} (text_field) not in the source; columns: {', '.join(sorted(rows[0]))}")

    # -- row views -----------------------------------------------------------------------
    def _images(self, row: dict[str, Any]) -> list[str]:
        s = self.s
        value = row.get(s.frames_field) if s.frames_field else row.get(s.image_field) if s.image_field else None
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]

    def _common(self, row: dict[str, Any]) -> dict[str, Any]:
        s = self.s
        content = row.get(s.text_field)
        return dict(row, row=row, modality=s.kind, content=None if content is None else str(content),
                    question=self.question.render(**row_variables(row, modality=s.kind)), definition=self.definition,
                    choices=s.answer.choices, max_reasons=s.max_reasons,
                    debaters=[{"role": d.role, "stance": s.stance_of(d)} for d in s.debaters])

    def _with_images(self, messages: list[dict[str, Any]], row_images: list[str], example_images: list[list[str]]) -> list[dict[str, Any]]:
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if any(example_images):
            if len(users) != len(example_images) + 1:
                raise ConfigError("judge examples carry images, so the judge template must give each example its own user turn")
            pairs = list(zip(users, [*example_images, row_images]))
        else:
            pairs = [(users[-1], row_images)] if users else []
        for i, imgs in pairs:
            if imgs:
                messages[i] = user_message(messages[i]["content"], imgs, self.base_dir)
        return messages

    def _add(self, i: int, result: Any) -> None:
        if result is not None:
            self.usage[i][0] += result.prompt_tokens
            self.usage[i][1] += result.completion_tokens

    # -- debate --------------------------------------------------------------------------
    def run(self, rows: list[dict[str, Any]], order: list[DebaterConfig], tag: str = "debate", detail: bool = True) -> list[Outcome]:
        """Debate every row in `order` for all rounds, then judge; one outcome per row (`detail`: also ask the
        options-mode judge for its category/reason)."""
        transcripts = self.debate(rows, order, tag)
        verdicts = self.judge(rows, transcripts, f"{tag}: judge", detail=detail)
        return [self._outcome(t, v) for t, v in zip(transcripts, verdicts)]

    def debate(self, rows: list[dict[str, Any]], order: list[DebaterConfig], tag: str = "debate", usage: bool = True) -> list[list[Turn]]:
        """All rounds; each speaker turn is one batched call over all rows (`usage`: count tokens per row)."""
        if not usage:  # rows that are not the run's (the judge's examples): their tokens go to no row
            kept, self.usage = self.usage, [[0, 0] for _ in rows]
            try:
                return self.debate(rows, order, tag)
            finally:
                self.usage = kept
        transcripts: list[list[Turn]] = [[] for _ in rows]
        common = [self._common(r) for r in rows]
        roles = [d.role for d in self.s.debaters]
        for rnd in range(self.s.rounds):
            for d in order:
                if d.quote:  # a quote reads only the content: the same calls every round and order (cached)
                    for i, turn in enumerate(quotes.turns(self, d, common, f"{tag}: round {rnd + 1}, {d.role} (quote)")):
                        transcripts[i].append(turn)
                    continue
                opening = rnd == 0 and self.s.simultaneous_opening  # each debater opens without seeing the others
                reqs = [self._debater_request(d, common[i], [] if opening else transcripts[i], rnd) for i in range(len(rows))]
                answers = self.ctx.complete(d.model, reqs, desc=f"{tag}: round {rnd + 1}, {d.role}")
                for i, ans in enumerate(answers):
                    self._add(i, ans.result)
                    transcripts[i].append(self._turn(d, ans, roles))
        return transcripts

    def _debater_request(self, d: DebaterConfig, common: dict[str, Any], transcript: list[Turn], rnd: int) -> ChatRequest:
        variables = dict(common, role=d.role, stance=self.s.stance_of(d), transcript=[t.as_dict() for t in transcript],
                         round=rnd + 1, rounds=self.s.rounds)
        messages = self.prompts[d.role].messages(**variables)
        messages = self._with_images(messages, self._images(common["row"]), [])
        return ChatRequest(messages=messages, max_tokens=d.max_tokens, temperature=d.temperature, seed=self.ctx.seed)

    def _turn(self, d: DebaterConfig, ans: Any, roles: list[str]) -> Turn:
        if ans.value is None:
            return Turn(d.role, NO_ANSWER, error=ans.error or "no answer")
        text = limit_reasons(clean_turn(ans.value, roles, d.role), self.s.max_reasons) or NO_ANSWER
        return Turn(d.role, text, refused=is_refusal(ans.value, self.s.refusal_phrases))

    def _outcome(self, transcript: list[Turn], verdict: Verdict) -> Outcome:
        refused = list(dict.fromkeys(t.speaker for t in transcript if t.refused))
        vote = self.s.refusal_vote
        if refused and vote is not None:
            return Outcome(transcript, verdict, vote, "refusal", refused)
        return Outcome(transcript, verdict, verdict.decision, "judge" if verdict.decision else None, refused)

    # -- judge ---------------------------------------------------------------------------
    def judge(self, rows: list[dict[str, Any]], transcripts: list[list[Turn]], tag: str = "judge", detail: bool = True) -> list[Verdict]:
        """The judge's verdict per row (an empty transcript = the single-prompt judge, no debate)."""
        ex = self._example_transcripts(transcripts, tag)
        msgs = [self._judge_messages(r, t, ex) for r, t in zip(rows, transcripts)]
        if self.mode == "options":
            blank = None
            keep_turns = self.s.judge.calibrate == "transcript"
            if self.s.judge.calibrate:
                blank = [self._judge_messages(self._blank(r), t if keep_turns else [Turn(x.speaker, "N/A") for x in t], ex)
                         for r, t in zip(rows, transcripts)]
            verdicts = self._judge_options(msgs, tag, blank)
            if detail and self.detail_prompt is not None:
                self._judge_detail(msgs, verdicts, tag)
            return verdicts
        return self._judge_written(msgs, tag)

    def _example_transcripts(self, transcripts: list[list[Turn]], tag: str) -> list[list[Turn]] | None:
        """With `judge.debate_examples`: the in-context examples debated in the rows' speaking order (None otherwise)."""
        first = next((t for t in transcripts if t), None)
        if not self.s.judge.debate_examples or first is None or not self.examples:
            return None
        roles = tuple(dict.fromkeys(t.speaker for t in first))
        if roles not in self._debated_examples:
            order = [next(d for d in self.s.debaters if d.role == r) for r in roles]
            self._debated_examples[roles] = self.debate(self.example_rows(), order, f"{tag} (examples)", usage=False)
        return self._debated_examples[roles]

    def example_rows(self) -> list[dict[str, Any]]:
        """The judge's in-context examples as rows the debaters can read (`judge.debate_examples`)."""
        return [{self.s.text_field: ex.text or ""} for ex in self.examples]

    def _judge_messages(self, row: dict[str, Any], transcript: list[Turn],
                        example_transcripts: list[list[Turn]] | None = None) -> list[dict[str, Any]]:
        a = self.s.answer
        shown = example_transcripts if transcript and example_transcripts else [None] * len(self.examples)
        examples = [{"text": ex.text, "answer_text": verdict_text(ex, a, self.mode),
                     "transcript": [t.as_dict() for t in et] if et else None} for ex, et in zip(self.examples, shown)]
        variables = dict(self._common(row), transcript=[t.as_dict() for t in transcript], examples=examples,
                         mode=self.mode, category=a.category, reason=a.reason, categories=a.categories,
                         answer_format=self._answer_format())
        messages = self.judge_prompt.messages(**variables)
        return self._with_images(messages, self._images(row), [ex.images for ex in self.examples])

    def _answer_format(self) -> str:
        a = self.s.answer
        pos, others = a.positive_choice, [c for c in a.choices if c != a.positive_choice]
        if self.mode == "json":
            keys = ['"decision": ' + " or ".join(f'"{c}"' for c in a.choices)]
            keys += ['"category": "<category>"'] if a.category else []
            keys += ['"reason": "<one short sentence>"'] if a.reason else []
            return "Reply with a JSON object: {" + ", ".join(keys) + "}."
        if self.mode == "text":
            first = f'"{cap(pos)}, <category>"' if a.category else f'"{cap(pos)}, <reason>"' if a.reason else f'"{cap(pos)}"'
            rest = [f'"{cap(c)}, <reason>"' if a.reason else f'"{cap(c)}"' for c in others]
            return "Answer " + " or ".join([first, *rest]) + "."
        return "Answer with one word: " + " or ".join(cap(c) for c in a.choices) + "."

    def _blank(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its content replaced by 'N/A' (and no images): with every turn's text also 'N/A', the
        content-free input of calibration keeps the prompt's shape (examples, speakers) but none of its evidence."""
        s = self.s
        return {**row, s.text_field: "N/A", **{f: None for f in (s.image_field, s.frames_field) if f}}

    def _judge_options(self, msgs: list[list[dict[str, Any]]], tag: str, blank: list | None = None) -> list[Verdict]:
        choices = self.s.answer.choices
        words = {c: sorted({c, cap(c)}) for c in choices}
        options = [w for ws in words.values() for w in ws]
        reqs = [ChatRequest(messages=m, options=options, seed=self.ctx.seed) for m in msgs]
        base: list[list[float] | None] = [None] * len(msgs)
        if blank is not None:
            breqs = [ChatRequest(messages=m, options=options, seed=self.ctx.seed) for m in blank]
            for i, res in enumerate(self.ctx.call(self.s.judge.model, breqs, f"{tag} (calibration)")):
                self._add(i, res)
                if res.ok and res.option_logprobs:
                    base[i] = [logsumexp([res.option_logprobs.get(w, -1e9) for w in words[c]]) for c in choices]
        out = []
        for i, res in enumerate(self.ctx.call(self.s.judge.model, reqs, tag)):
            self._add(i, res)
            if not res.ok or not res.option_logprobs:
                out.append(Verdict(None, raw=res.text, error=res.error or "no option scores"))
                continue
            scores = [logsumexp([res.option_logprobs.get(w, -1e9) for w in words[c]]) for c in choices]
            if base[i] is not None:
                scores = [x - b for x, b in zip(scores, base[i])]
            top = max(scores)
            probs = [math.exp(s - top) for s in scores]
            best = max(range(len(choices)), key=lambda k: probs[k])
            out.append(Verdict(choices[best], confidence=round(probs[best] / sum(probs), 6), raw=cap(choices[best]),
                               scores=[round(x, 6) for x in scores]))
        return out

    def _judge_detail(self, msgs: list[list[dict[str, Any]]], verdicts: list[Verdict], tag: str) -> None:
        a = self.s.answer
        groups: dict[bool, list[int]] = {}
        for i, v in enumerate(verdicts):
            if v.decision is not None:
                groups.setdefault(a.category and v.decision == a.positive_choice, []).append(i)
        for with_category, idx in groups.items():
            if not (with_category or a.reason):
                continue
            schema = self._detail_schema(with_category)
            reqs = []
            for i in idx:
                text = self.detail_prompt.render(decision=cap(verdicts[i].decision), category=with_category, reason=a.reason,
                                                 categories=a.categories)
                follow = [*msgs[i], {"role": "assistant", "content": cap(verdicts[i].decision)}, {"role": "user", "content": text}]
                reqs.append(ChatRequest(messages=follow, max_tokens=self.s.judge.max_tokens, seed=self.ctx.seed))
            for i, ans in zip(idx, self.ctx.complete(self.s.judge.model, reqs, schema=schema, desc=f"{tag} (category/reason)")):
                self._add(i, ans.result)
                if ans.value is not None:
                    verdicts[i].category = getattr(ans.value, "category", None)
                    verdicts[i].reason = getattr(ans.value, "reason", None)

    def _detail_schema(self, with_category: bool):
        a = self.s.answer
        spec: dict[str, Any] = {}
        if with_category:
            spec["category"] = (Literal[tuple(a.categories)] if a.categories else str, ...)  # type: ignore[misc]
        if a.reason:
            spec["reason"] = (str, ...)
        return create_model("JudgeDetail", **spec)

    def _judge_written(self, msgs: list[list[dict[str, Any]]], tag: str) -> list[Verdict]:
        a = self.s.answer
        schema = self._verdict_schema() if self.mode == "json" else None
        reqs = [ChatRequest(messages=m, max_tokens=self.s.judge.max_tokens, seed=self.ctx.seed) for m in msgs]
        out = []
        for i, ans in enumerate(self.ctx.complete(self.s.judge.model, reqs, schema=schema, desc=tag)):
            self._add(i, ans.result)
            if ans.value is None:
                out.append(Verdict(None, raw=ans.raw, error=ans.error or "no answer"))
            elif schema is not None:
                d = match_choice(ans.value.decision, a.choices)
                out.append(Verdict(d, getattr(ans.value, "category", None), getattr(ans.value, "reason", None), raw=ans.raw))
            else:
                d, rest = parse_verdict(ans.value, a.choices)
                if d is None:
                    out.append(Verdict(None, raw=ans.raw, error="unparsable verdict: expected it to start with " + " or ".join(map(cap, a.choices))))
                else:
                    is_cat = a.category and d == a.positive_choice
                    out.append(Verdict(d, rest if is_cat else None, None if is_cat else rest, raw=ans.raw))
        return out

    def _verdict_schema(self):
        a = self.s.answer
        spec: dict[str, Any] = {"decision": (Literal[tuple(a.choices)], ...)}  # type: ignore[misc]
        if a.category:
            spec["category"] = ((Literal[tuple(a.categories)] if a.categories else str) | None, None)  # type: ignore[misc]
        if a.reason:
            spec["reason"] = (str | None, None)
        return create_model("JudgeVerdict", **spec)


__all__ = ["Debate", "Example", "Outcome", "Turn", "Verdict", "cap"]
