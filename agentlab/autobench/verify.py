"""Checks that keep a multiple-choice question only when it is one its answer answers.

- **Well-formed phrases of the answer's type**: an answer or distractor starts and ends on a content word,
  has a word of three letters or more, no lone adverb ("usually") or word fragment; distractors have the
  answer's type (a number, a symbol such as a gene name, or words) and a similar length.
- **Anchored**: the question shares content words with the sentence its answer comes from (a question
  written about another part of the document is not answered by this phrase).
- **Verified**: the document-seeing proposer, given the document and the question, picks the answer among
  the choices by log-probability (:class:`AnswerCheck`).

Each failure is a rejection reason, counted in the report.
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Any

from agentlab.autobench.text import (
    STOPWORDS,
    content_words,
    normalize,
    token_f1,
    tokens,
)
from agentlab.backends.base import ChatRequest

if TYPE_CHECKING:
    from agentlab.engine import RunContext

_NUMBER_WORDS = frozenset(["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "hundred", "thousand", "million", "billion"])
_ADVERB = re.compile(r"^[a-z]+ly$")
_GLUED = re.compile(r"[A-Za-z]\.[A-Za-z]{2}")  # "effects.Previous": two sentences run together in the source text
#: abstract section headings: "BACKGROUND Analysis" is not a phrase of the text
_HEADINGS = frozenset(["BACKGROUND", "OBJECTIVE", "OBJECTIVES", "METHODS", "RESULTS", "CONCLUSION", "CONCLUSIONS", "INTRODUCTION",
                       "PURPOSE", "DESIGN", "SETTING", "AIMS", "CONTEXT", "FINDINGS", "INTERPRETATION", "INCLUSION", "CRITERIA"])
#: a question must share at least this many content words with its answer's sentence
MIN_ANCHOR_WORDS = 2


def answer_type(phrase: str) -> str:
    """`number` (digits, %, number words), `symbol` (a token mixing letters with digits or upper case past its
    first letter: IL-6, TP53, mRNA) or `words`."""
    toks = str(phrase).split()
    if any(re.search(r"[A-Za-z]", t) and (re.search(r"[0-9]", t) or re.search(r".[A-Z]", t)) for t in toks):
        return "symbol"
    if any(re.search(r"\d", t) for t in toks) or any(t.lower() in _NUMBER_WORDS for t in toks):
        return "number"
    return "words"


def well_formed(phrase: str | None) -> bool:
    """A phrase that can stand as an answer: content words at both ends, a word of 3+ letters, no lone adverb, no
    section heading or sentences run together ("effects.Previous")."""
    words = tokens(phrase)
    if not words or words[0] in STOPWORDS or words[-1] in STOPWORDS:
        return False
    if _GLUED.search(phrase or "") or any(w in _HEADINGS for w in str(phrase).split()):
        return False
    if answer_type(phrase or "") == "number":
        return True
    if not any(len(w) >= 3 and w.isalpha() for w in words):
        return False
    return not (len(words) == 1 and (_ADVERB.match(words[0]) or len(words[0]) < 3))


def _stems(phrase: str) -> set[str]:
    """Crude word stems (first 6 letters of words of 4+): "threshold" and "Thresholds" share one, so one is no
    distractor for the other."""
    return {w[:6] for w in tokens(phrase) if len(w) >= 4}


def _sentences(document: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+", document) if s.strip()]


def anchored(question: str, answer: str, document: str) -> bool:
    """Does the question share enough content words with a sentence that holds the answer?"""
    a = f" {normalize(answer)} "
    q = set(content_words(question)) - set(content_words(answer))
    need = min(MIN_ANCHOR_WORDS, len(q)) or 1
    return any(len(q & set(content_words(s))) >= need for s in _sentences(document) if a in f" {normalize(s)} ")


def distractors(answer: str, same_doc: list[str], pool: list[str], k: int, rng: random.Random) -> list[str]:
    """Up to k well-formed phrases of the answer's type and similar length sharing no word with it:
    from the same document first, then from `pool` (other questions' documents)."""
    kind, n = answer_type(answer), len(answer.split())
    seen = {normalize(answer)}

    def fits(c: str) -> bool:
        key = normalize(c)
        ok = (key not in seen and well_formed(c) and answer_type(c) == kind and abs(len(c.split()) - n) <= 1
              and token_f1(c, answer) == 0 and not _stems(c) & _stems(answer))
        if ok:
            seen.add(key)
        return ok

    out: list[str] = []
    for source in (same_doc, pool):
        found = [c for c in dict.fromkeys(source) if fits(c)]
        rng.shuffle(found)
        out += found[: k - len(out)]
        if len(out) >= k:
            break
    return out


class AnswerCheck:
    """The document-seeing model picks among a question's choices by log-probability; keep when it picks the answer.

    Args:
        ctx: the run context. model: the proposer. prompt: the extract template (document, question).
        doc: doc_id -> the document text shown. pick: how option scores are compared (length-normalised).
    """

    def __init__(self, ctx: RunContext, model: str, prompt: Any, doc: Any, pick: Any, seed: int = 0):
        self.ctx, self.model, self.prompt, self.doc, self.pick, self.seed = ctx, model, prompt, doc, pick, seed

    def run(self, pairs: list[dict[str, Any]]) -> None:
        """Set `verified` (the picked choice) and reject pairs whose pick is not the answer."""
        todo = [p for p in pairs if not p["rejected"] and p.get("choices") and p["doc_id"] is not None]
        reqs = [ChatRequest(messages=self.prompt.messages(document=self.doc(p["doc_id"]), question=p["question"]),
                            options=list(p["choices"]), max_tokens=16, seed=self.seed) for p in todo]
        for p, res in zip(todo, self.ctx.call(self.model, reqs, desc="autobench answer check") if reqs else []):
            if not res.ok or not res.option_logprobs:
                p["rejected"] = "answer check failed"
                p["_error"] = p.get("_error") or res.error
                continue
            p["verified"] = self.pick(res.option_logprobs)
            if p["verified"] != p["answer"]:
                p["rejected"] = "document-seeing model picks another choice"
