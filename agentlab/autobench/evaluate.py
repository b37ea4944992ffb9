"""Candidates answer ("final answer only"); answers are graded by exact match, token F1, then the LLM grader.

Multiple-choice questions are answered by log-probability of each option where the backend scores options
(then a candidate's temperature plays no part: only its prompt does), else by writing and matching the text.
A failed call leaves `correct` None: it is recorded, and left out of accuracy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import create_model

from agentlab.autobench.text import clean_answer, exact_match, normalize, token_f1
from agentlab.backends.base import ChatRequest

if TYPE_CHECKING:
    from agentlab.autobench.config import AutobenchConfig, CandidateConfig
    from agentlab.engine import RunContext

DEFAULT_SYSTEM = "Answer the question. Output only the final answer: a short phrase, no explanation."


class Evaluator:
    """Asks every candidate every question and grades the answers.

    Args:
        cfg: the task config. ctx: the run context.
    """

    def __init__(self, cfg: AutobenchConfig, ctx: RunContext):
        self.cfg, self.ctx = cfg, ctx
        self.prompts = {c.name: ctx.load_prompt(c.prompt) for c in cfg.candidates}
        self.grade_prompt = ctx.load_prompt(cfg.grade.prompt) if cfg.grader else None
        self.seed = cfg.seed if cfg.seed is not None else ctx.seed

    def run(self, pairs: list[dict[str, Any]], desc: str = "") -> None:
        """Add `answers` {candidate: text} and `correct` {candidate: bool|None} (and `grading`) to each pair."""
        for p in pairs:
            p["answers"], p["correct"], p["grading"] = {}, {}, {}
        if not pairs:
            return
        for cand in self.cfg.candidates:
            if self.cfg.question_format == "multiple_choice":
                self._choose(cand, pairs, desc)
            else:
                self._write(cand, pairs, desc)
        if self.cfg.question_format == "open":
            self._grade(pairs, desc)

    def _request(self, cand: CandidateConfig, p: dict[str, Any], **kw: Any) -> ChatRequest:
        msgs = [{"role": "system", "content": cand.system or DEFAULT_SYSTEM},
                *self.prompts[cand.name].messages(question=p["question"], choices=p.get("choices") or [])]
        seed = cand.seed if cand.seed is not None else self.seed
        return ChatRequest(messages=msgs, max_tokens=cand.max_tokens, temperature=cand.temperature, seed=seed, stop=["\n"], **kw)

    def _write(self, cand: CandidateConfig, pairs: list[dict[str, Any]], desc: str) -> None:
        answers = self.ctx.complete(cand.model, [self._request(cand, p) for p in pairs], desc=f"autobench {cand.name} {desc}".strip())
        for p, ans in zip(pairs, answers):
            p["answers"][cand.name] = clean_answer(ans.value) if ans.value is not None else None
            if ans.value is None:
                p["correct"][cand.name], p["grading"][cand.name] = None, f"failed: {ans.error}"

    def _choose(self, cand: CandidateConfig, pairs: list[dict[str, Any]], desc: str) -> None:
        if "options" not in self.ctx.backend(cand.model).capabilities:
            self._write(cand, pairs, desc)
            for p in pairs:
                if p["answers"].get(cand.name) is not None:
                    p["answers"][cand.name] = match_choice(p["answers"][cand.name], p["choices"])
                    self._set(p, cand.name, p["answers"][cand.name] == p["answer"], "choice")
            return
        reqs = [self._request(cand, p, options=p["choices"]) for p in pairs]
        for p, res in zip(pairs, self.ctx.call(cand.model, reqs, desc=f"autobench {cand.name} {desc}".strip())):
            chosen = max(res.option_logprobs, key=res.option_logprobs.get) if res.ok and res.option_logprobs else None
            p["answers"][cand.name] = chosen
            if chosen is None:
                p["correct"][cand.name], p["grading"][cand.name] = None, f"failed: {res.error}"
            else:
                self._set(p, cand.name, chosen == p["answer"], "choice")

    @staticmethod
    def _set(p: dict[str, Any], name: str, correct: bool | None, how: str) -> None:
        p["correct"][name], p["grading"][name] = correct, how

    def _grade(self, pairs: list[dict[str, Any]], desc: str) -> None:
        """Exact match, then F1, then the grader for what is left (one batched call)."""
        todo = []
        for p in pairs:
            for name, text in p["answers"].items():
                if text is None:
                    continue
                if exact_match(text, p["answer"]):
                    self._set(p, name, True, "exact")
                elif token_f1(text, p["answer"]) >= self.cfg.grade.f1_correct:
                    self._set(p, name, True, "f1")
                elif not normalize(text):
                    self._set(p, name, False, "empty")
                elif self.cfg.grader is None or (token_f1(text, p["answer"]) == 0 and not self.cfg.grade.grade_no_overlap):
                    self._set(p, name, False, "f1")
                else:
                    todo.append((p, name))
        if todo:
            for (p, name), verdict in zip(todo, self._ask_grader(todo, desc)):
                if verdict is None:
                    self._set(p, name, None, "grader failed")
                else:
                    self._set(p, name, verdict, "grader")

    def _ask_grader(self, todo: list[tuple[dict[str, Any], str]], desc: str) -> list[bool | None]:
        scored = "options" in self.ctx.backend(self.cfg.grader).capabilities
        reqs = [ChatRequest(messages=self.grade_prompt.messages(question=p["question"], reference=p["answer"], answer=p["answers"][n]),
                            max_tokens=8, seed=self.seed, options=["yes", "no"] if scored else None) for p, n in todo]
        if scored:
            results = self.ctx.call(self.cfg.grader, reqs, desc=f"autobench grader {desc}".strip())
            return [None if not r.ok or not r.option_logprobs else r.option_logprobs["yes"] >= r.option_logprobs["no"] for r in results]
        verdict = create_model("Verdict", verdict=(Literal["correct", "incorrect"], ...))
        answers = self.ctx.complete(self.cfg.grader, reqs, schema=verdict, desc=f"autobench grader {desc}".strip())
        return [None if a.value is None else a.value.verdict == "correct" for a in answers]


def match_choice(text: str, choices: list[str]) -> str | None:
    """The choice a written answer names: exact match first, else the best token F1 (> 0), else None."""
    for c in choices:
        if exact_match(text, c):
            return c
    best = max(choices, key=lambda c: token_f1(text, c), default=None)
    return best if best is not None and token_f1(text, best) > 0 else None
