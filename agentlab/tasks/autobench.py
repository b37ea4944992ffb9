"""`autobench`: build a benchmark from a document collection by searching for salient, novel, difficult categories.

The source rows are the corpus (privileged information); the output rows are the benchmark, one per
question (question, answer, category, doc_id, difficulty, each candidate's answer and grade). See
`agentlab/autobench/` for the steps and docs/autobench.md for the fields.
"""

from __future__ import annotations

import time
from typing import Any

from agentlab.autobench.config import AutobenchConfig
from agentlab.errors import ConfigError
from agentlab.tasks.base import TASKS, Task

EMBEDDED_CAVEAT = ("AutoBencher ran with the embedded SmolLM2-135M in some roles ({roles}). It cannot plan a search: its "
                   "categories are mostly copied topic hints, its questions are often vague, and as a candidate it answers "
                   "closed-book questions nearly at random, so novelty and difficulty here measure the pipeline, not a model. "
                   "Answers are chosen from document phrases by log-probability (extract mode), which keeps them grounded. "
                   "Use a stronger proposer (any GGUF via model_path, a server) for a real benchmark.")
ROW_FIELDS = ("question", "answer", "category", "doc_id", "difficulty", "requirement", "iteration", "choices", "grounded",
              "grounding_overlap", "answer_source", "verified", "answers", "correct", "grading", "leakage", "_raw", "_error")


@TASKS.register("autobench")
class AutobenchTask(Task):
    """Corpus rows in, benchmark questions out (a different number of rows)."""

    config_cls = AutobenchConfig
    changes_rows = True
    caveat = ("Novelty and difficulty are relative to the candidates and noisy with few questions per category; the "
              "embedded SmolLM2-135M cannot plan a search, write precise questions or answer them closed-book.")

    def run(self, ctx, rows):
        from agentlab.autobench.corpus import Corpus
        from agentlab.autobench.evaluate import Evaluator
        from agentlab.autobench.outputs import write_all
        from agentlab.autobench.search import Search

        cfg: AutobenchConfig = self.config
        if ctx.gold is not None:
            raise ConfigError("autobench writes its own answers; remove `eval.gold` from the recipe")
        if rows and "text" not in rows[0]:
            raise ConfigError(f"autobench needs a `text` column (set source.text_field(s)); columns: {', '.join(sorted(rows[0]))}")
        t0 = time.perf_counter()
        self._caveats(ctx)
        corpus = Corpus(rows, cfg.retrieval, cfg.leakage.embedding_model)
        examples = self._examples(ctx)
        search = Search(cfg, ctx, corpus, Evaluator(cfg, ctx), self._guard(ctx, examples), examples, self._reference(ctx))
        variants = {"autobench": search.run("autobench")}
        for name in ("no_documents", "no_adaptive"):
            if getattr(cfg.ablations, name):
                variants[name] = search.run(name)
        main = variants["autobench"]
        ctx.metrics["question_style"] = {"style": search.writer.style, "why": search.writer.style_why}
        write_all(ctx, cfg, variants, minutes=main.seconds / 60 or (time.perf_counter() - t0) / 60)
        ctx.report += [f"Questions from documents: **{search.writer.style}** ({search.writer.style_why}).", ""]
        return [self._row(p, main) for p in main.kept]

    @staticmethod
    def _row(p: dict[str, Any], main) -> dict[str, Any]:
        cat = main.categories[p["category"]]
        out = {k: p.get(k) for k in ROW_FIELDS}
        out["difficulty"] = None if cat.difficulty is None else round(cat.difficulty, 4)
        return out

    def _caveats(self, ctx) -> None:
        cfg = self.config
        grader = cfg.grader if cfg.question_format == "open" else None  # multiple choice needs no grader
        roles = {"proposer": cfg.proposer, "grader": grader, **{f"candidate {c.name}": c.model for c in cfg.candidates}}
        weak = [role for role, m in roles.items() if m is not None and ctx.runs_embedded(m)]
        if weak:
            ctx.caveats.append(EMBEDDED_CAVEAT.format(roles=", ".join(weak)))

    def _examples(self, ctx) -> list[dict[str, Any]]:
        from agentlab.sources import read_jsonl

        if not self.config.examples:
            return []
        path = ctx.recipe.resolve(self.config.examples) if ctx.recipe is not None else self.config.examples
        rows = list(read_jsonl(path))
        bad = [i for i, r in enumerate(rows) if not (r.get("question") and r.get("answer") and r.get("category"))]
        if bad:
            raise ConfigError(f"task.examples: row(s) {bad[:5]} lack `question`, `answer` or `category`")
        return rows

    def _guard(self, ctx, examples):
        from agentlab.autobench.leakage import LeakageGuard, reference_texts

        lk = self.config.leakage
        return LeakageGuard(reference_texts(ctx, lk.against, examples), lk.ngram, lk.ngram_overlap,
                            lk.embedding_similarity, lk.embedding_model)

    def _reference(self, ctx):
        from pathlib import Path

        from agentlab.autobench.scoring import read_reference

        ref = self.config.reference_accuracies
        if not ref:
            return None
        path = ctx.recipe.resolve(ref) if ctx.recipe is not None else Path(ref)
        return read_reference(Path(path), [c.name for c in self.config.candidates])


