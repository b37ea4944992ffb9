"""`queries`: synthetic queries for documents (InPars hard prompt; SPTAR, METHODS.md §4), BM25-filtered.

Per document: `per_doc` queries from a few-shot prompt with `examples` labeled pairs (first line,
repetitions cut, one retry when empty). Consistency filter: a query is kept only if BM25 over the
whole corpus (the source without `limit`) ranks its document in the top `bm25_top_k`. With held-out
labeled queries, BM25 and the untrained embedder are evaluated (nDCG@10, MRR@10, Recall@100).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentlab.backends.base import ChatRequest
from agentlab.config import StrictModel
from agentlab.tasks.base import TASKS, Task, TaskConfig

log = logging.getLogger("agentlab")
EMBEDDED_CAVEAT = ("The embedded SmolLM2-135M writes poor queries (copied titles, generic or off-topic questions), "
                   "so few survive the BM25 filter; use it to check the pipeline, not for training data. Point "
                   "`task.model` at a stronger model for real queries.")
RETRY_TEMPERATURE = 0.7


class LabeledConfig(StrictModel):
    """Labeled queries in BEIR layout; `n` of them feed the prompt, the rest are held out for evaluation."""

    queries: str = Field(description="queries.jsonl with `_id` and `text`.")
    qrels: str = Field(description="qrels TSV: query-id, corpus-id, score (a header line is allowed).")
    n: int = Field(50, ge=1, description="Labeled pairs to use for prompts (and, later, training); seeded choice.")
    eval_queries: int | None = Field(200, ge=0, description="Held-out labeled queries to evaluate retrieval on "
                                        "(0 = no evaluation, null = all).")


class FilterConfig(StrictModel):
    """The consistency filter (SPTAR step 4)."""

    bm25_top_k: int = Field(30, ge=1, description="Keep a query only if BM25 over the whole corpus ranks its document in the top k (paper: 30-70).")


class QueriesConfig(TaskConfig):
    """Generate search queries for documents, keep the ones BM25 agrees with, evaluate baselines."""

    type: Literal["queries"] = "queries"
    model: str = Field("default", description="Model name under `models:` that writes the queries.")
    labeled: LabeledConfig = Field(description="Labeled queries and qrels (few-shot examples and evaluation).")
    prompt: Literal["hard", "soft", "both"] = Field(
        "hard", description="hard = InPars few-shot prompt through any backend. soft/both (SPTAR prompt tuning) are not available yet.")
    prompt_file: str = Field("prompts/queries/hard.jinja", description="Template of the hard prompt (variables: examples, document).")
    examples: int = Field(2, ge=0, le=8, description="Labeled (document, query) pairs shown in the hard prompt.")
    per_doc: int = Field(1, ge=1, le=20, description="Queries to generate per document (> 1 needs temperature > 0).")
    doc_chars: int = Field(1200, ge=100, description="Documents (in the prompt and its examples) are cut to this many characters.")
    filter: FilterConfig | None = Field(default_factory=FilterConfig, description="BM25 consistency filter; null keeps every query.")
    embedding_model: str = Field("minilm", description="Untrained dense baseline: `minilm` or a local sentence-transformers folder.")
    max_tokens: int = Field(48, ge=4, description="Max tokens of a query.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy).")
    seed: int | None = Field(None, description="Sampling seed (default: the recipe seed).")

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if v != "hard":
            raise ValueError(f"prompt {v!r} (SPTAR soft prompt tuning) is not available yet; use `prompt: hard`")
        return v

    @model_validator(mode="after")
    def _sampling(self) -> QueriesConfig:
        if self.per_doc > 1 and self.temperature == 0:
            raise ValueError(f"per_doc is {self.per_doc} but temperature is 0, so every query would be the same; "
                             "set temperature > 0 (e.g. 0.7) or per_doc: 1")
        if self.examples > self.labeled.n:
            raise ValueError(f"examples ({self.examples}) cannot exceed labeled.n ({self.labeled.n})")
        return self


@TASKS.register("queries")
class QueriesTask(Task):
    """Documents in, `queries` (list) and `kept` (bool per query, after the BM25 filter) out."""

    config_cls = QueriesConfig

    def run(self, ctx, rows):
        from agentlab.queries.bm25 import BM25Index

        cfg = self.config
        self._caveats(ctx)
        corpus = self._corpus(ctx, rows)
        labeled = self._labeled(ctx, corpus)
        texts = {r["id"]: r["text"] for r in corpus}
        examples = [{"document": texts[d][: cfg.doc_chars], "query": q} for q, d in labeled.pairs[: cfg.examples]]
        queries, raws, errors = self._generate(ctx, rows, examples)
        index = BM25Index(list(texts), list(texts.values())) if (cfg.filter or labeled.eval_queries) else None
        out = []
        for row, qs, raw, err in zip(rows, queries, raws, errors):
            kept = index.consistent(qs, [row["id"]] * len(qs), cfg.filter.bm25_top_k) if cfg.filter else [True] * len(qs)
            out.append({**row, "queries": qs, "kept": kept, "_raw": raw, "_error": err})
        self._report(ctx, out, labeled)
        if labeled.eval_queries:
            ctx.metrics["retrieval"] = self._evaluate(index, corpus, labeled)
        return out

    # -- inputs ---------------------------------------------------------------------------------
    def _caveats(self, ctx) -> None:
        cfg = ctx.model_configs.get(ctx.resolve_model(self.config.model))
        embedded = cfg is not None and cfg.backend == "embedded" and getattr(cfg, "model_path", None) is None
        if embedded and EMBEDDED_CAVEAT not in ctx.caveats:
            ctx.caveats.append(EMBEDDED_CAVEAT)

    @staticmethod
    def _corpus(ctx, rows) -> list[dict[str, Any]]:
        """The whole corpus: the recipe source without `limit` (the rows themselves without a recipe)."""
        if ctx.recipe is None:
            return rows
        from agentlab.sources import load_rows

        src = ctx.recipe.source.model_copy(update={"limit": None, "shuffle": False})
        corpus = load_rows(src, ctx.recipe.resolve(src.path))
        ids = {r["id"] for r in corpus}
        return corpus + [r for r in rows if r["id"] not in ids]

    def _labeled(self, ctx, corpus):
        from agentlab.queries.labeled import read_qrels, read_queries, split_labeled

        lab = self.config.labeled
        resolve = ctx.recipe.resolve if ctx.recipe is not None else Path
        queries, qrels = read_queries(resolve(lab.queries)), read_qrels(resolve(lab.qrels))
        return split_labeled(queries, qrels, {r["id"] for r in corpus}, lab.n, ctx.seed, lab.eval_queries)

    # -- generation -----------------------------------------------------------------------------
    def _generate(self, ctx, rows, examples):
        """Per row: `per_doc` cleaned queries (empties dropped), raw answers, first error."""
        from agentlab.queries.text import clean_query

        cfg = self.config
        prompt = ctx.load_prompt(cfg.prompt_file)
        seed = cfg.seed if cfg.seed is not None else ctx.seed
        slots = [(i, j) for i in range(len(rows)) for j in range(cfg.per_doc)]
        msgs = [prompt.messages(examples=examples, document=r["text"][: cfg.doc_chars]) for r in rows]
        reqs = [ChatRequest(messages=msgs[i], max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=seed + j)
                for i, j in slots]
        answers = ctx.complete(cfg.model, reqs, desc="queries")
        texts = [clean_query(a.value) for a in answers]
        retry = [k for k, t in enumerate(texts) if not t and answers[k].error is None]
        if retry:  # same request would hit the cache: retry sampled, with another seed
            again = [reqs[k].model_copy(update={"temperature": max(cfg.temperature, RETRY_TEMPERATURE),
                                                "seed": reqs[k].seed + 1000}) for k in retry]
            for k, ans in zip(retry, ctx.complete(cfg.model, again, desc="queries (retry)")):
                texts[k], answers[k] = clean_query(ans.value), ans
        queries: list[list[str]] = [[] for _ in rows]
        raws: list[list[str | None]] = [[] for _ in rows]
        errors: list[str | None] = [None] * len(rows)
        for (i, _), text, ans in zip(slots, texts, answers):
            raws[i].append(ans.raw)
            if text and text not in queries[i]:
                queries[i].append(text)
            errors[i] = errors[i] or ans.error
        self._retried = len(retry)
        return queries, raws, errors

    # -- accounting and evaluation ---------------------------------------------------------------
    def _report(self, ctx, out, labeled) -> None:
        cfg = self.config
        generated = sum(len(r["queries"]) for r in out)
        kept = sum(sum(r["kept"]) for r in out)
        m = {"documents": len(out), "requested": len(out) * cfg.per_doc, "generated": generated,
             "empty": len(out) * cfg.per_doc - generated, "retried": self._retried, "kept": kept,
             "kept_fraction": round(kept / generated, 4) if generated else 0.0,
             "bm25_top_k": cfg.filter.bm25_top_k if cfg.filter else None,
             "labeled_pairs": len(labeled.pairs), "examples": min(cfg.examples, len(labeled.pairs))}
        ctx.metrics["queries"] = m
        ctx.report.append(f"queries: {generated} generated for {len(out)} documents, {kept} kept by the BM25 filter "
                          f"(top {m['bm25_top_k']})" if cfg.filter else f"queries: {generated} generated, no filter")
        if ctx.run_dir is not None:
            pairs = [{"query": q, "doc_id": d, "source": "labeled"} for q, d in labeled.pairs]
            pairs += [{"query": q, "doc_id": r["id"], "source": "generated"}
                      for r in out for q, k in zip(r["queries"], r["kept"]) if k]
            ctx.artifacts["pairs"] = str(ctx.run_dir.write_jsonl("pairs.jsonl", pairs))

    def _evaluate(self, index, corpus, labeled) -> dict[str, Any]:
        """BM25 and the untrained embedder on the held-out labeled queries, over the whole corpus."""
        from agentlab.embedder import embed
        from agentlab.queries.ireval import dense_search, evaluate_run

        qids, qtexts = list(labeled.eval_queries), list(labeled.eval_queries.values())
        bm25_run = dict(zip(qids, index.search(qtexts, 100)))
        ids = [r["id"] for r in corpus]
        docs = embed([r["text"] for r in corpus], self.config.embedding_model)
        base_run = dict(zip(qids, dense_search(embed(qtexts, self.config.embedding_model), docs, ids, 100)))
        return {"bm25": evaluate_run(bm25_run, labeled.eval_qrels), "base": evaluate_run(base_run, labeled.eval_qrels)}
