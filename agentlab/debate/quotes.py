"""Quoting debaters: a turn that is a span of the content, chosen by log-likelihood instead of written.

A small model argues badly in free text (generic lines, the wrong side, copied definitions) but it
scores short options well. A quoting debater (`quote: true`) therefore *points* at the evidence: the
content is cut into short spans (clauses, or overlapping windows of `max_words` words), the model
scores every span as the answer to "which words best show the answer is <stance>?", and the debater
quotes the span whose score rises most when its stance replaces the other choices (a contrast, so a
span that is merely likely, e.g. the first words, is not picked for every side). Quotes are verbatim
spans by construction, as in debates with verified quotes (Khan et al., 2024).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from agentlab.backends.base import ChatRequest
from agentlab.debate.score import logsumexp

if TYPE_CHECKING:
    from agentlab.debate.config import DebaterConfig
    from agentlab.debate.run import Debate, Turn

#: a quoted span has at most this many words (longer clauses become overlapping windows)
MAX_WORDS = 8
#: the turn of a row with no words to quote
NO_QUOTE = "(nothing to quote)"
#: at most this many candidate spans per row (the first ones: long comments rarely hide evidence at the end)
MAX_SPANS = 24

_CLAUSE = re.compile(r"(?<=[.!?;:])\s+|\n+")
_WORDY = re.compile(r"\w")


def spans(text: str | None, max_words: int = MAX_WORDS, max_spans: int = MAX_SPANS) -> list[str]:
    """Candidate quotes of `text`: its clauses, cut into overlapping `max_words`-word windows when longer."""
    out: list[str] = []
    for clause in _CLAUSE.split((text or "").replace("\ufeff", "").strip()):
        words = clause.split()
        if not words:
            continue
        step = max(1, max_words // 2)
        starts = range(0, max(1, len(words) - max_words + step), step) if len(words) > max_words else [0]
        for s in starts:
            span = " ".join(words[s:s + max_words])
            if span not in out and _WORDY.search(span):
                out.append(span)
            if len(out) >= max_spans:
                return out
    return out


def contrast(own: dict[str, float], others: list[dict[str, float]], options: list[str]) -> list[float]:
    """Each option's log-likelihood under its own stance minus its mean likelihood under the other stances."""
    def mean_other(o: str) -> float:
        return logsumexp([d.get(o, -1e9) for d in others]) - math.log(len(others))

    return [own.get(o, -1e9) - (mean_other(o) if others else 0.0) for o in options]


def quote(span: str) -> str:
    """The turn text of a quote."""
    return f'"{span}"'


def requests(debate: Debate, d: DebaterConfig, common: dict[str, Any]) -> tuple[list[str], list[ChatRequest]]:
    """A quoting debater's candidate spans of one row and one scoring request per stance (its own first)."""
    cands = spans(common["content"])
    if not cands:
        return [], []
    stance = debate.s.stance_of(d)
    choices = debate.s.answer.choices
    others = ([c for c in choices if c != stance] if stance in choices
              else [stance[4:]] if stance.startswith("not ") else list(choices))
    reqs = []
    for st in [stance, *others]:
        messages = debate.prompts[d.role].messages(**dict(common, role=d.role, stance=st))
        reqs.append(ChatRequest(messages=messages, options=cands, seed=debate.ctx.seed))
    return cands, reqs


def turns(debate: Debate, d: DebaterConfig, common: list[dict[str, Any]], desc: str) -> list[Turn]:
    """A quoting debater's turn for every row: the span its stance raises most over the others (one batched call)."""
    from agentlab.debate.run import NO_ANSWER, Turn

    planned = [requests(debate, d, c) for c in common]
    results = iter(debate.ctx.call(d.model, [r for _, reqs in planned for r in reqs], desc))
    out = []
    for i, (cands, reqs) in enumerate(planned):
        res = [next(results) for _ in reqs]
        for r in res:
            debate._add(i, r)
        bad = next((r for r in res if not r.ok or not r.option_logprobs), None)
        if not cands:
            out.append(Turn(d.role, NO_QUOTE))
        elif bad is not None:
            out.append(Turn(d.role, NO_ANSWER, error=bad.error or "no option scores"))
        else:
            scores = contrast(res[0].option_logprobs, [r.option_logprobs for r in res[1:]], cands)
            out.append(Turn(d.role, quote(cands[max(range(len(cands)), key=scores.__getitem__)])))
    return out
