"""Answer text: normalising, exact match and token F1, grounding, candidate answer phrases, parsing."""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})
STOPWORDS = frozenset("""
a an the of in on at to for from by with and or but not no is are was were be been being this that these those
it its as into than then there their they them we our you your he she his her which who whom what when where
why how do does did has have had can could may might will would should shall also such both each other more
most some any all only over under between about after before during while using used use via per within
without among across whether if so very
""".split())  # noqa: SIM905 (a word list reads better as text)
_ANSWER_PREFIX = re.compile(r"^\s*(?:final\s+)?answer\s*[:\-]\s*", re.IGNORECASE)
_QA = re.compile(r"question\s*:\s*(?P<q>.+?)\s*(?:\n|$)\s*(?:answer\s*:\s*(?P<a>.+))?", re.IGNORECASE | re.DOTALL)


def normalize(text: str | None) -> str:
    """SQuAD normalisation: lower case, punctuation and articles removed, whitespace collapsed."""
    if not text:
        return ""
    return " ".join(_ARTICLES.sub(" ", str(text).lower().translate(_PUNCT)).split())


def tokens(text: str | None) -> list[str]:
    """Normalised word tokens."""
    return normalize(text).split()


def exact_match(pred: str | None, gold: str | None) -> bool:
    """Normalised exact match (an empty reference matches nothing)."""
    return bool(normalize(gold)) and normalize(pred) == normalize(gold)


def token_f1(pred: str | None, gold: str | None) -> float:
    """SQuAD token F1 between a prediction and the reference."""
    p, g = tokens(pred), tokens(gold)
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def grounded(answer: str | None, document: str | None) -> bool:
    """Is the answer stated in the document (normalised answer a whole-word substring of the normalised document)?"""
    a, d = normalize(answer), normalize(document)
    return bool(a) and f" {a} " in f" {d} "


def grounding_overlap(answer: str | None, document: str | None) -> float:
    """Fraction of the answer's content words that occur in the document (1.0 for a grounded answer)."""
    words = [w for w in tokens(answer) if w not in STOPWORDS] or tokens(answer)
    if not words:
        return 0.0
    doc = set(tokens(document))
    return sum(w in doc for w in words) / len(words)


def content_words(text: str | None) -> list[str]:
    """Normalised tokens without stopwords or one-character tokens, order kept, no repeats."""
    out: list[str] = []
    for w in tokens(text):
        if w not in STOPWORDS and len(w) > 1 and w not in out:
            out.append(w)
    return out


def answer_spans(document: str, max_words: int = 4, limit: int = 40, exclude: str = "") -> list[str]:
    """Candidate answer phrases of a document: maximal runs of non-stopwords (cut to `max_words`), in order.

    Phrases whose words all occur in `exclude` (the question) are left out: an answer must not be in its question.
    """
    spans: list[str] = []
    seen: set[str] = set()
    skip = set(tokens(exclude))
    for sentence in re.split(r"(?<=[.!?;:])\s+|[()\[\]]", document):
        run: list[str] = []
        for raw in sentence.split() + [""]:
            word = raw.strip(string.punctuation + "“”’‘")
            if word and word.lower() not in STOPWORDS and len(run) < max_words:
                run.append(word)
                if raw[-1:] in ",;:" and run:
                    _add(spans, seen, run, skip)
                    run = []
                continue
            _add(spans, seen, run, skip)
            run = [word] if word and word.lower() not in STOPWORDS else []
        if len(spans) >= limit:
            break
    return spans[:limit]


def _add(spans: list[str], seen: set[str], run: list[str], skip: set[str]) -> None:
    if not run:
        return
    phrase = " ".join(run)
    key = normalize(phrase)
    if key and key not in seen and not set(key.split()) <= skip and not (len(key) < 3 and not key.isdigit()):
        seen.add(key)
        spans.append(phrase)


def clean_answer(text: str | None, max_words: int = 20) -> str:
    """A written answer's first non-empty line, without an `Answer:` prefix or quotes, at most `max_words` words."""
    if not text:
        return ""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    line = _ANSWER_PREFIX.sub("", line).strip().strip("\"'`").strip()
    return " ".join(line.split()[:max_words]).rstrip(" ,;:")


def parse_qa(text: str | None) -> tuple[str, str]:
    """`Question: ...` / `Answer: ...` text -> (question, answer); "" for what is missing."""
    if not text:
        return "", ""
    m = _QA.search(text)
    if m is None:
        first = clean_answer(text, max_words=40)
        return (first, "") if first.endswith("?") else ("", "")
    question = " ".join(m.group("q").split())
    return question, clean_answer(m.group("a") or "")
