"""The calls a debate will make, for `agentlab plan` (debate task and debate labeler).

The first speaker's first turn and the single-prompt judge do not depend on any answer, so their
requests are exact (looked up in the cache, tokens counted). Every later turn and the judge after a
debate read earlier turns: their prompts are counted without those turns plus `max_tokens` per turn
before them (an upper bound), and they are not looked up in the cache.
"""

from __future__ import annotations

from typing import Any

from agentlab.backends.base import ChatRequest
from agentlab.debate import quotes
from agentlab.debate.run import Debate, cap
from agentlab.tasks.base import PlannedCalls


def plan_debate(debate: Debate, rows: list[dict[str, Any]], order: list, tag: str, detail: bool = True) -> list[PlannedCalls]:
    """Every turn of every round in `order`, then the judge (and, with `detail`, its category/reason follow-up, at most);
    with `judge.debate_examples`, first the same turns on the judge's in-context examples."""
    s = debate.s
    out: list[PlannedCalls] = []
    if s.judge.debate_examples and debate.examples:
        out += _turns(debate, [debate._common(r) for r in debate.example_rows()], order, f"{tag}: judge (examples)")[0]
    turns, before = _turns(debate, [debate._common(r) for r in rows], order, tag)
    out += turns
    out += plan_judge(debate, rows, f"{tag}: judge", transcript_tokens=before, detail=detail)
    return out


def _turns(debate: Debate, common: list[dict[str, Any]], order: list, tag: str) -> tuple[list[PlannedCalls], int]:
    """The debaters' calls for rows (their template variables), and the tokens of a transcript, at most."""
    s = debate.s
    out: list[PlannedCalls] = []
    before = 0  # tokens of the turns already spoken, at most
    for rnd in range(s.rounds):
        for d in order:
            if d.quote:  # scored spans of the content, every request known now; the same calls every round (cached)
                reqs = [r for c in common for r in quotes.requests(debate, d, c)[1]]
                out.append(PlannedCalls(d.model, f"{tag}: round {rnd + 1}, {d.role} (quote)", reqs, exact=True))
                before += 3 * quotes.MAX_WORDS
                continue
            reqs = [debate._debater_request(d, c, [], rnd) for c in common]
            shown = 0 if rnd == 0 and s.simultaneous_opening else before
            out.append(PlannedCalls(d.model, f"{tag}: round {rnd + 1}, {d.role}", reqs, exact=shown == 0,
                                    added_prompt_tokens=shown))
            before += d.max_tokens
    return out, before


def plan_judge(debate: Debate, rows: list[dict[str, Any]], tag: str, transcript_tokens: int = 0,
               detail: bool = False) -> list[PlannedCalls]:
    """The judge's calls; with `transcript_tokens` 0 (the single judge, no debate) they are exact."""
    s, exact = debate.s, transcript_tokens == 0
    model = s.judge.model
    msgs = [debate._judge_messages(r, []) for r in rows]
    if debate.mode != "options":
        schema = debate._verdict_schema() if debate.mode == "json" else None
        reqs = [_with_schema(ChatRequest(messages=m, max_tokens=s.judge.max_tokens, seed=debate.ctx.seed), schema) for m in msgs]
        return [PlannedCalls(model, tag, reqs, exact=exact, added_prompt_tokens=transcript_tokens)]
    options = [w for c in s.answer.choices for w in sorted({c, cap(c)})]
    out = []
    if s.judge.calibrate:
        blank = [debate._judge_messages(debate._blank(r), []) for r in rows]
        out.append(PlannedCalls(model, f"{tag} (calibration)", [ChatRequest(messages=m, options=options, seed=debate.ctx.seed) for m in blank],
                                exact=exact, added_prompt_tokens=transcript_tokens))
    out.append(PlannedCalls(model, tag, [ChatRequest(messages=m, options=options, seed=debate.ctx.seed) for m in msgs],
                            exact=exact, added_prompt_tokens=transcript_tokens))
    if detail and debate.detail_prompt is not None and (s.answer.category or s.answer.reason):
        schema = debate._detail_schema(bool(s.answer.category))
        reqs = [_with_schema(ChatRequest(messages=m, max_tokens=s.judge.max_tokens, seed=debate.ctx.seed), schema) for m in msgs]
        out.append(PlannedCalls(model, f"{tag} (category/reason, at most)", reqs, exact=False,
                                added_prompt_tokens=transcript_tokens, upper_bound=True))
    return out


def _with_schema(req: ChatRequest, schema: Any) -> ChatRequest:
    if schema is None:
        return req
    from agentlab.structured import json_schema_of

    return req.model_copy(update={"json_schema": json_schema_of(schema)})
