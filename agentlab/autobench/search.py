"""The AutoBencher loop and its ablations.

Per iteration: propose new categories from the history, keep the most salient, retrieve documents,
write question–answer pairs from them, drop leaked ones, have every candidate answer, grade, score.
`no_adaptive` proposes every category at once (no history); `no_documents` writes questions without
documents. Each variant is one `Variant` with its categories, questions and per-iteration trace.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentlab.autobench import scoring
from agentlab.autobench.propose import Proposal, Proposer
from agentlab.autobench.questions import QuestionWriter, Slot

if TYPE_CHECKING:
    from agentlab.autobench.config import AutobenchConfig
    from agentlab.autobench.corpus import Corpus
    from agentlab.autobench.evaluate import Evaluator
    from agentlab.autobench.leakage import LeakageGuard
    from agentlab.engine import RunContext

log = logging.getLogger("agentlab")
VARIANTS = ("autobench", "no_documents", "no_adaptive")


@dataclass
class Category:
    """A category tried by the search, with its scores (filled by `Variant.score`)."""

    name: str
    parent: str
    requirement: str
    iteration: int
    salience: float | None
    docs: list[str] = field(default_factory=list)
    accuracy: dict[str, float] = field(default_factory=dict)
    questions: int = 0
    novelty: float | None = None
    difficulty: float | None = None
    objective: float | None = None

    def metrics(self, band: tuple[float, float]) -> dict[str, Any]:
        """The category's entry in `metrics.categories`."""
        best = max(self.accuracy.values()) if self.accuracy else None
        r = lambda v: None if v is None else round(v, 4)
        return {"novelty": r(self.novelty), "difficulty": r(self.difficulty), "salience": self.salience,
                "objective": r(self.objective), "accuracy": {k: r(v) for k, v in self.accuracy.items()},
                "questions": self.questions, "iteration": self.iteration, "parent": self.parent or None,
                "requirement": self.requirement or None, "documents": len(self.docs),
                "in_target": None if best is None else band[0] <= best <= band[1]}


@dataclass
class Variant:
    """One benchmark built by the search (or an ablation): categories, kept and rejected pairs, trace."""

    name: str
    categories: dict[str, Category] = field(default_factory=dict)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def kept(self) -> list[dict[str, Any]]:
        """Pairs in the benchmark (not rejected, not leaked)."""
        return [p for p in self.pairs if not p["rejected"]]

    def table(self) -> dict[str, dict[str, float]]:
        """category -> candidate -> accuracy (categories without graded questions left out)."""
        return {n: c.accuracy for n, c in self.categories.items() if c.accuracy}

    def score(self, cfg: AutobenchConfig, reference: dict[str, float] | None, names: list[str]) -> None:
        """Accuracy per category and candidate, then difficulty, novelty and objective for every category."""
        for cat in self.categories.values():
            qs = [p for p in self.kept if p["category"] == cat.name]
            cat.questions = len(qs)
            cat.accuracy = {}
            for n in names:
                graded = [p["correct"][n] for p in qs if p["correct"].get(n) is not None]
                if graded:
                    cat.accuracy[n] = sum(graded) / len(graded)
        for name, s in scoring.score_table(self.table(), reference).items():
            cat = self.categories[name]
            cat.novelty, cat.difficulty = s["novelty"], s["difficulty"]
            cat.objective = scoring.objective(cat.novelty, cat.difficulty, cat.salience, cfg.beta, cfg.min_salience)


class Search:
    """Runs the search and its ablations over one corpus with one set of candidates.

    Args:
        cfg, ctx: task config and run context. corpus: documents. evaluator: candidates and grading.
        guard: the leakage guard. examples: few-shot examples. reference: accuracies on existing benchmarks.
    """

    def __init__(self, cfg: AutobenchConfig, ctx: RunContext, corpus: Corpus, evaluator: Evaluator,
                 guard: LeakageGuard, examples: list[dict[str, Any]], reference: dict[str, float] | None):
        self.cfg, self.ctx, self.corpus, self.evaluator, self.guard = cfg, ctx, corpus, evaluator, guard
        self.proposer = Proposer(cfg, ctx, corpus)
        self.writer = QuestionWriter(cfg, ctx, corpus, examples)
        self.reference = reference
        self.names = [c.name for c in cfg.candidates]

    def run(self, variant: str) -> Variant:
        """Build one variant: `autobench` (adaptive, with documents), `no_documents` or `no_adaptive`."""
        t0 = time.perf_counter()
        v = Variant(variant)
        seen: set[str] = set()
        if variant == "no_adaptive":
            total = self.cfg.iterations * self.cfg.categories_per_iteration
            self._iteration(v, 0, total, self.cfg.iterations * self.cfg.n_proposals, seen, all_at_once=True)
        else:
            for it in range(self.cfg.iterations):
                if not self._iteration(v, it, self.cfg.categories_per_iteration, self.cfg.n_proposals, seen):
                    break
        v.score(self.cfg, self.reference, self.names)
        v.seconds = time.perf_counter() - t0
        return v

    def _iteration(self, v: Variant, it: int, keep: int, n: int, seen: set[str], all_at_once: bool = False) -> bool:
        """One propose → select → write → check → answer → grade → score step; False when nothing new came."""
        history = [] if all_at_once else self._history(v)
        rnd = self.proposer.propose(n, history, seen, step=it + 100 * VARIANTS.index(v.name), need=keep, all_at_once=all_at_once)
        sal = self.proposer.salience(rnd.new)
        ranked = list(zip(rnd.new, sal))
        if self.cfg.salience != "none":  # most salient first; below `min_salience` is out (the constraint)
            ranked.sort(key=lambda ps: -(ps[1] or 0.0))
        chosen = [(p, s) for p, s in ranked if s is None or s >= self.cfg.min_salience][:keep]
        entry: dict[str, Any] = {"variant": v.name, "iteration": it, "proposed": [p.category for p in rnd.new],
                                 "repeats_dropped": rnd.repeats, "odd_names_dropped": rnd.odd, "proposal_errors": rnd.errors,
                                 "salience": {p.category: s for p, s in ranked}, "kept": [p.category for p, _ in chosen],
                                 "below_min_salience": [p.category for p, s in ranked if s is not None and s < self.cfg.min_salience]}
        if not chosen:  # nothing new stops the search; only low-salience categories just skip this iteration
            if not rnd.new:
                entry["stopped"] = "the proposer gave no new category"
                log.info("autobench %s: iteration %d gave no new category; stopping", v.name, it)
            v.trace.append(entry)
            return bool(rnd.new)
        pairs = self._pairs(v, it, chosen)
        self.evaluator.run([p for p in pairs if not p["rejected"]], desc=f"{v.name} #{it}")
        v.pairs += pairs
        v.score(self.cfg, self.reference, self.names)
        cats = [v.categories[p.category] for p, _ in chosen]
        objs = [c.objective for c in cats if c.objective is not None]
        entry.update(questions=sum(c.questions for c in cats), rejected=sum(1 for p in pairs if p["rejected"]),
                     categories={c.name: c.metrics(self.cfg.target_accuracy) for c in cats},
                     best_objective=max(objs) if objs else None, mean_objective=scoring.mean(objs))
        v.trace.append(entry)
        return True

    def _history(self, v: Variant) -> list[dict[str, Any]]:
        return [{"category": c.name, "parent": c.parent, "requirement": c.requirement, "accuracy": c.accuracy,
                 "best": max(c.accuracy.values()) if c.accuracy else None} for c in v.categories.values()]

    def _pairs(self, v: Variant, it: int, chosen: list[tuple[Proposal, float | None]]) -> list[dict[str, Any]]:
        """Retrieve documents, write pairs, run the leakage guard; returns every pair (rejected ones marked)."""
        slots, used = [], {d for c in v.categories.values() for d in c.docs}
        for prop, sal in chosen:
            cat = Category(prop.category, prop.parent, prop.requirement, it, sal)
            if v.name != "no_documents":
                query = " ".join(x for x in (prop.category, prop.requirement) if x)
                cat.docs = self.corpus.search(query, self.cfg.questions_per_category, exclude=sorted(used))
                used.update(cat.docs)
                slots += [Slot(cat.name, prop.requirement, d) for d in cat.docs]
            else:
                slots += [Slot(cat.name, prop.requirement, None, k) for k in range(self.cfg.questions_per_category)]
            v.categories[cat.name] = cat
        pairs = self.writer.write(slots, desc=f"autobench questions {v.name} #{it}")
        earlier = [p["question"] for p in v.pairs if not p["rejected"]]
        checks = self.guard.check(earlier + [p["question"] for p in pairs])[len(earlier):]
        for p, chk in zip(pairs, checks):
            p.update(iteration=it, variant=v.name, leakage=chk)
            if p["rejected"] is None and chk["leaked"]:
                p["rejected"] = f"leakage: {chk['leaked']}"
        return pairs
