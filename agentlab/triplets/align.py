"""Align free-text entities and predicates to a target vocabulary (LLM4SGG step 3).

Three passes, each only on what the one before left open:

1. **rules** (:func:`rule_align`): exact match; all-digit terms -> none; lemma match ("trees" ->
   "tree", "grow on" -> "growing on"); leading auxiliaries stripped from predicates; "A and B" -> A;
   a multi-word entity whose head (last words) is in the vocabulary -> that head.
2. **an LLM** (:class:`~agentlab.triplets.choose.LLMChooser`) picks the closest vocabulary item or
   "none".
3. **embeddings** (optional): the nearest vocabulary item by MiniLM cosine, if above a threshold.

Every term is aligned once per run: :class:`Aligner` keeps a table per kind, and the table is the
`alignment.json` artifact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlab.errors import ConfigError
from agentlab.triplets.text import (
    Triplet,
    normalise,
    strip_auxiliaries,
    term_key,
    unique,
)

if TYPE_CHECKING:
    from agentlab.triplets.choose import LLMChooser

KINDS = ("entity", "predicate")
#: how a term got (or failed to get) its target; the order is the order of the passes
METHODS = ("exact", "lemma", "auxiliary", "and", "head", "open", "llm", "embedding",
           "digits", "empty", "llm_none", "llm_failed", "unaligned")


@dataclass
class Alignment:
    """Where one term went: `target` (a vocabulary item, or None = dropped), `by` which pass, a score."""

    target: str | None
    by: str
    score: float | None = None


class Vocabulary:
    """The target classes of one kind, with a lemma index for rule matching."""

    def __init__(self, names: Iterable[str], kind: str):
        self.kind = kind
        self.names = unique(n for n in (normalise(x) for x in names) if n)
        if not self.names:
            raise ConfigError(f"the {kind} vocabulary is empty; give a file with one class a line")
        self._exact = set(self.names)
        self._by_key: dict[str, str] = {}
        for name in self.names:  # first listed wins a shared key ("wearing" before "wears")
            self._by_key.setdefault(term_key(name), name)

    @classmethod
    def from_file(cls, path: Path, kind: str) -> Vocabulary:
        """One class a line; blank lines and `#` comments are skipped."""
        if not path.is_file():
            raise ConfigError(f"{kind} vocabulary file {str(path)!r} not found; give one class a line")
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls([ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")], kind)

    def lookup(self, term: str) -> tuple[str, str] | None:
        """(name, "exact" | "lemma") for a normalised term, or None."""
        if term in self._exact:
            return term, "exact"
        hit = self._by_key.get(term_key(term))
        return (hit, "lemma") if hit else None

    def __len__(self) -> int:
        return len(self.names)


def rule_align(term: str, vocab: Vocabulary) -> Alignment | None:
    """The rule pass for one term: an Alignment when the rules decide (target or a sure none), else None."""
    t = normalise(term)
    if not t:
        return Alignment(None, "empty")
    if t.replace(" ", "").isdigit():
        return Alignment(None, "digits")
    hit = vocab.lookup(t)
    if hit:
        return Alignment(hit[0], hit[1])
    if vocab.kind == "predicate":
        bare = strip_auxiliaries(t)
        hit = vocab.lookup(bare) if bare != t else None
        if hit:
            return Alignment(hit[0], "auxiliary")
    if " and " in t:
        first = rule_align(t.split(" and ", 1)[0], vocab)
        if first is not None and first.target:
            return Alignment(first.target, "and")
    words = t.split()
    if vocab.kind == "entity" and len(words) > 1:
        for i in range(1, len(words)):  # longest suffix first: "tennis racket" -> "racket"
            hit = vocab.lookup(" ".join(words[i:]))
            if hit:
                return Alignment(hit[0], "head")
    return None


def open_align(term: str, kind: str) -> Alignment:
    """No vocabulary for this kind: the cleaned term itself (predicates lose their auxiliaries)."""
    t = strip_auxiliaries(term) if kind == "predicate" else normalise(term)
    return Alignment(t or None, "open" if t else "empty")


class Aligner:
    """Aligns terms of both kinds once each, through rules, an optional LLM and optional embeddings.

    Args:
        vocabs: kind -> Vocabulary; a missing kind is open (terms pass through cleaned).
        chooser: the LLM pass, or None to skip it.
        embedding_threshold: cosine needed by the embedding fallback; None turns it off.
        embedding_model: `minilm` or a local sentence-transformers folder.
    """

    def __init__(self, vocabs: dict[str, Vocabulary], chooser: LLMChooser | None = None,
                 embedding_threshold: float | None = None, embedding_model: str = "minilm"):
        self.vocabs = vocabs
        self.chooser = chooser
        self.threshold = embedding_threshold
        self.embedding_model = embedding_model
        self.table: dict[str, dict[str, Alignment]] = {k: {} for k in KINDS}
        self._vocab_vectors: dict[str, Any] = {}

    def align(self, kind: str, terms: Iterable[str]) -> None:
        """Align every term not yet in the table (rules, then LLM, then embeddings)."""
        table, vocab = self.table[kind], self.vocabs.get(kind)
        todo = [t for t in unique(normalise(t) for t in terms) if t not in table]
        if vocab is None:
            table.update({t: open_align(t, kind) for t in todo})
            return
        open_terms = []
        for t in todo:
            found = rule_align(t, vocab)
            if found is None:
                open_terms.append(t)
            else:
                table[t] = found
        if open_terms and self.chooser is not None:
            table.update(self.chooser.choose(vocab, open_terms))
        rest = [t for t in open_terms if table.get(t) is None or table[t].target is None]
        if rest and self.threshold is not None:
            table.update(self._nearest(vocab, rest))
        for t in open_terms:
            table.setdefault(t, Alignment(None, "unaligned"))

    def _nearest(self, vocab: Vocabulary, terms: list[str]) -> dict[str, Alignment]:
        """Embedding nearest neighbour; terms below the threshold keep what the LLM said."""
        from agentlab.embedder import embed

        if vocab.kind not in self._vocab_vectors:
            self._vocab_vectors[vocab.kind] = embed(vocab.names, self.embedding_model)
        sims = embed(terms, self.embedding_model) @ self._vocab_vectors[vocab.kind].T
        out = {}
        for term, row in zip(terms, sims):
            j = int(row.argmax())
            if float(row[j]) >= self.threshold:
                out[term] = Alignment(vocab.names[j], "embedding", round(float(row[j]), 4))
        return out

    def target(self, kind: str, term: str) -> str | None:
        """The aligned target of a term already aligned (None = dropped)."""
        a = self.table[kind].get(normalise(term))
        return a.target if a else None

    def align_all(self, triplet_lists: Iterable[Iterable[Triplet]]) -> None:
        """Align every predicate, then the entities of triplets whose predicate aligned (one LLM batch per kind).

        Entities only seen in triplets that will be dropped anyway ("white" in `(stove, is, white)`)
        cost no calls and stay out of the table.
        """
        lists = [list(ts) for ts in triplet_lists]
        self.align("predicate", [p for ts in lists for _, p, _ in ts])
        kept = [t for ts in lists for t in ts if self.target("predicate", t[1])]
        self.align("entity", [x for s, _, o in kept for x in (s, o)])

    def map(self, triplets: Iterable[Triplet]) -> list[Triplet]:
        """The already-aligned triplets whose three parts have a target; the rest are dropped."""
        out = []
        for s, p, o in triplets:
            parts = (self.target("entity", s), self.target("predicate", p), self.target("entity", o))
            if all(parts):
                out.append(parts)  # type: ignore[arg-type]
        return out

    def align_triplets(self, triplets: Iterable[Triplet]) -> list[Triplet]:
        """Align one list of triplets and return those whose three parts aligned."""
        triplets = list(triplets)
        self.align_all([triplets])
        return self.map(triplets)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per kind: how many terms each pass decided, plus totals."""
        out = {}
        for kind, table in self.table.items():
            counts = Counter(a.by for a in table.values())
            out[kind] = {"terms": len(table), "aligned": sum(a.target is not None for a in table.values()),
                         **{m: counts[m] for m in METHODS if counts[m]}}
        return out

    def as_json(self) -> dict[str, Any]:
        """The alignment table: kind -> term -> {target, by, score}."""
        plural = {"entity": "entities", "predicate": "predicates"}
        return {plural[kind]: {t: asdict(a) for t, a in sorted(table.items())} for kind, table in self.table.items()}
