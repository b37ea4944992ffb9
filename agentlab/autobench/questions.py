"""Question–answer pairs from documents (privileged information), checked for grounding and concision.

`write`: the proposer writes `Question:` and `Answer:`. `extract`: it writes the question, and the answer is
the document phrase it scores most likely by log-probability (grounded by construction; what a small model
can do). Without documents (the ablation) the proposer always writes both.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentlab.autobench.cloze import cloze, fits
from agentlab.autobench.text import (
    answer_spans,
    grounded,
    grounding_overlap,
    normalize,
    parse_qa,
    token_f1,
)
from agentlab.autobench.verify import AnswerCheck, anchored, distractors, well_formed
from agentlab.backends.base import ChatRequest

if TYPE_CHECKING:
    from agentlab.autobench.config import AutobenchConfig
    from agentlab.autobench.corpus import Corpus
    from agentlab.engine import RunContext

MAX_ANSWER_WORDS = 12
MAX_SPANS = 24  # answer phrases scored per question (each costs a few token evaluations)
SPAN_LENGTH_PENALTY = 0.5  # span score = log P / words**penalty: a plain sum would always pick the shortest phrase


@dataclass
class Slot:
    """One question to write: a category (and requirement) and its source document (None = no documents)."""

    category: str
    requirement: str
    doc_id: str | None
    index: int = 0  # k-th question of a category without documents: its own seed, so the k questions differ


def question_style(cfg: AutobenchConfig, ctx: RunContext) -> tuple[str, str]:
    """(`written` or `cloze`, why) for questions written from documents."""
    if cfg.question_style != "auto":
        return cfg.question_style, f"`question_style: {cfg.question_style}` in the recipe"
    if cfg.question_format == "multiple_choice" and ctx.runs_embedded(cfg.proposer) and "options" in ctx.backend(cfg.proposer).capabilities:
        return "cloze", (f"`question_style: auto` and the proposer `{ctx.resolve_model(cfg.proposer)}` is the embedded SmolLM2-135M, "
                         "whose written questions its answers mostly do not answer")
    return "written", "`question_style: auto` and the proposer is not the embedded SmolLM2-135M (or questions are open)"


def answer_mode(cfg: AutobenchConfig, ctx: RunContext) -> str:
    """`write` or `extract` (auto: extract when the proposer's backend scores options)."""
    if cfg.answer_mode != "auto":
        return cfg.answer_mode
    return "extract" if "options" in ctx.backend(cfg.proposer).capabilities else "write"


class QuestionWriter:
    """Writes, grounds and checks question–answer pairs for slots, in batched calls.

    Args:
        cfg: the task config. ctx: the run context. corpus: the documents. examples: few-shot examples.
    """

    def __init__(self, cfg: AutobenchConfig, ctx: RunContext, corpus: Corpus, examples: list[dict[str, Any]]):
        self.cfg, self.ctx, self.corpus, self.examples = cfg, ctx, corpus, examples
        self.prompt = ctx.load_prompt(cfg.question_prompt)
        self.extract_prompt = ctx.load_prompt(cfg.extract_prompt)
        self.mode = answer_mode(cfg, ctx)
        self.seed = cfg.seed if cfg.seed is not None else ctx.seed
        caps = ctx.backend(cfg.proposer).capabilities
        self.verify = cfg.verify_answers and cfg.question_format == "multiple_choice" and "options" in caps
        self.style, self.style_why = question_style(cfg, ctx)

    def write(self, slots: list[Slot], desc: str = "autobench questions") -> list[dict[str, Any]]:
        """One checked pair per slot: question, answer, category, doc_id, grounded, choices, rejected (reason or None)."""
        cloze = [s.doc_id is not None and self.style == "cloze" for s in slots]
        extract = [s.doc_id is not None and self.mode == "extract" and not c for s, c in zip(slots, cloze)]
        written = [s for s, c in zip(slots, cloze) if not c]
        answers = iter(self.ctx.complete(self.cfg.proposer, [self._request(s, not ex) for s, ex, c in zip(slots, extract, cloze) if not c],
                                         desc=desc) if written else [])
        pairs = []
        for s, c in zip(slots, cloze):
            base = {"category": s.category, "requirement": s.requirement or None, "doc_id": s.doc_id}
            if c:
                pairs.append({**base, "question": "", "answer": "", "answer_source": "cloze", "_raw": None, "_error": None})
                continue
            ans = next(answers)
            question, answer = parse_qa(ans.value)
            pairs.append({**base, "question": question, "answer": answer, "answer_source": "written", "_raw": ans.raw, "_error": ans.error})
        self._cloze([p for p, c in zip(pairs, cloze) if c])
        self._extract([p for p, ex in zip(pairs, extract) if ex and p["question"]])
        for p in pairs:
            p["rejected"] = self._check(p)
        self._choices(pairs)
        if self.verify:
            AnswerCheck(self.ctx, self.cfg.proposer, self.extract_prompt, self._doc, pick_span, self.seed).run(pairs)
        return pairs

    def _doc(self, doc_id: str | None) -> str:
        """The document as prompts show it: cut to `doc_chars` at a word boundary (no word fragments as answers)."""
        text = self.corpus.text(doc_id)
        if len(text) <= self.cfg.doc_chars:
            return text
        cut = text[: self.cfg.doc_chars + 1]
        return cut[: cut.rfind(" ")] if " " in cut else cut[: self.cfg.doc_chars]

    def _request(self, slot: Slot, with_answer: bool) -> ChatRequest:
        doc = self._doc(slot.doc_id) if slot.doc_id is not None else None
        examples = [{**e, "document": str(e.get("document", ""))[: self.cfg.doc_chars]} for e in self.examples]
        msgs = self.prompt.messages(category=slot.category, requirement=slot.requirement, document=doc,
                                    with_answer=with_answer, examples=examples)
        sampled = slot.doc_id is None and slot.index > 0
        return ChatRequest(messages=msgs, max_tokens=96 if with_answer else 64, temperature=self.cfg.temperature if sampled else 0.0,
                           seed=self.seed + slot.index, stop=["\n\n"] if with_answer else ["\n"])

    def _cloze(self, pairs: list[dict[str, Any]]) -> None:
        """The phrase the proposer scores most about the category (among well-formed phrases that a sentence of the
        document can blank) becomes the answer; the question is that sentence with the phrase blanked."""
        todo, reqs = [], []
        for p in pairs:
            doc = self._doc(p["doc_id"])
            spans = [x for x in answer_spans(doc, limit=MAX_SPANS) if well_formed(x) and fits(doc, x)]
            if spans:
                todo.append(p)
                about = f"Which phrase of the document is about {p['category']}?"
                reqs.append(ChatRequest(messages=self.extract_prompt.messages(document=doc, question=about),
                                        max_tokens=16, options=spans, seed=self.seed))
        for p, res in zip(todo, self.ctx.call(self.cfg.proposer, reqs, desc="autobench cloze answers") if reqs else []):
            if res.ok and res.option_logprobs:
                p["answer"] = pick_span(res.option_logprobs)
                p["question"] = cloze(self._doc(p["doc_id"]), p["answer"]) or ""
            else:
                p["_error"] = res.error

    def _extract(self, pairs: list[dict[str, Any]]) -> None:
        """Answer each pair's question with the document phrase the proposer finds most likely."""
        todo, reqs = [], []
        for p in pairs:
            spans = answer_spans(self._doc(p["doc_id"]), limit=MAX_SPANS, exclude=p["question"])
            if self.verify:  # only phrases that can stand as an answer
                spans = [x for x in spans if well_formed(x)]
            if spans:
                todo.append(p)
                reqs.append(ChatRequest(messages=self.extract_prompt.messages(document=self._doc(p["doc_id"]), question=p["question"]),
                                        max_tokens=16, options=spans, seed=self.seed))
        for p, res in zip(todo, self.ctx.call(self.cfg.proposer, reqs, desc="autobench answers (extract)")):
            if res.ok and res.option_logprobs:
                p["answer"] = pick_span(res.option_logprobs)
                p["answer_source"] = "extracted"
            else:
                p["_error"] = p["_error"] or res.error

    def _check(self, p: dict[str, Any]) -> str | None:
        """Why a pair is rejected, or None: empty, long, answer inside the question, or not in the document."""
        if not p["question"]:
            return "no sentence to blank (a well-formed phrase in a sentence of 6-45 words)" if p.get("answer_source") == "cloze" else "no question"
        if not p["answer"]:
            return "no answer"
        if len(p["answer"].split()) > MAX_ANSWER_WORDS:
            return "answer too long"
        if f" {normalize(p['answer'])} " in f" {normalize(p['question'])} ":
            return "answer in question"
        if p["doc_id"] is None:
            p["grounded"], p["grounding_overlap"] = None, None
            return None
        doc = self.corpus.text(p["doc_id"])
        p["grounded"], p["grounding_overlap"] = grounded(p["answer"], doc), round(grounding_overlap(p["answer"], doc), 4)
        if self.cfg.require_grounded and not p["grounded"]:
            return "not grounded"
        if self.cfg.question_format == "multiple_choice" and self.cfg.verify_answers:
            if not well_formed(p["answer"]):
                return "answer not a well-formed phrase"
            if not anchored(p["question"], p["answer"], self._doc(p["doc_id"])):
                return "question not about the answer's sentence"
        return None

    def _choices(self, pairs: list[dict[str, Any]]) -> None:
        """Multiple choice: the answer plus distractor phrases (same document, else other answers), seeded order."""
        pool = [p["answer"] for p in pairs if not p["rejected"]]
        for p in pairs:
            p.setdefault("grounded", None)
            p.setdefault("grounding_overlap", None)
            if self.cfg.question_format != "multiple_choice" or p["rejected"]:
                p["choices"] = None
                continue
            rng = random.Random(int(hashlib.sha256(f"{self.seed}:{p['question']}".encode()).hexdigest()[:12], 16))
            spans = answer_spans(self._doc(p["doc_id"]), exclude=p["question"]) if p["doc_id"] else []
            if not self.cfg.verify_answers:
                p["choices"] = make_choices(p["answer"], spans or pool, self.cfg.choices, rng)
                continue
            others = [x for q in pairs if q["doc_id"] not in (None, p["doc_id"]) for x in answer_spans(self._doc(q["doc_id"]))]
            wrong = distractors(p["answer"], spans, others + pool, self.cfg.choices - 1, rng)
            if len(wrong) < self.cfg.choices - 1:
                p["choices"], p["rejected"] = None, "too few distractors of the answer's type"
                continue
            p["choices"] = [p["answer"], *wrong]
            rng.shuffle(p["choices"])


def pick_span(logprobs: dict[str, float]) -> str:
    """The phrase with the best length-normalised log-probability."""
    return max(logprobs, key=lambda s: logprobs[s] / max(1, len(s.split())) ** SPAN_LENGTH_PENALTY)


def make_choices(answer: str, pool: list[str], k: int, rng: random.Random) -> list[str]:
    """`answer` and up to k − 1 distractors from `pool` that share no token-F1 with it, shuffled."""
    distractors = [c for c in dict.fromkeys(pool) if token_f1(c, answer) == 0 and normalize(c)]
    rng.shuffle(distractors)
    choices = [answer, *distractors[: k - 1]]
    rng.shuffle(choices)
    return choices
