"""`queries`: synthetic queries for documents (InPars hard prompt, SPTAR soft prompt; METHODS.md §4).

Per document: `per_doc` queries from a few-shot hard prompt through any backend (cached like every
call) and/or from a soft prompt tuned on the labeled pairs (SPTAR: PEFT prompt tuning, example
filter, journaled generation). Consistency filter: a query is kept only if BM25 over the whole
corpus (the source without `limit`) ranks its document in the top `bm25_top_k`. On the evaluation
queries (the recipe's `eval: {queries, qrels}`, else held-out labeled queries), BM25, the untrained
embedder and (with the recipe's `distill: {student: {type: retriever}}`) dense retrievers trained on
labeled-only and labeled + kept weak pairs are evaluated with pytrec_eval (nDCG@10, MRR@10, Recall@100).
The task trains its retrievers itself (`handles_distill`): the runner's label distill stage is skipped.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from agentlab.backends.base import ChatRequest
from agentlab.errors import RecipeError
from agentlab.queries.config import (  # noqa: F401  (re-exported: the task's schema)
    FilterConfig,
    LabeledConfig,
    QueriesConfig,
    SoftPromptConfig,
)
from agentlab.tasks.base import TASKS, Task

log = logging.getLogger("agentlab")
EMBEDDED_CAVEAT = ("The embedded SmolLM2-135M writes poor queries (copied titles, claim-like sentences, generic or "
                   "off-topic questions), with a hard prompt and after soft prompt tuning alike; use it to check the "
                   "pipeline, not for training data. Point `task.model` (hard) or `task.soft.base` (soft) at a "
                   "stronger model for real queries.")
RETRY_TEMPERATURE = 0.7
#: data.jsonl columns per generator: queries, kept flags, raw answers
COLUMNS = {"hard": ("queries", "kept", "_raw"), "soft": ("soft_queries", "soft_kept", "_soft_raw")}
#: `distill:` fields that only the label task's distillation reads (the retrievers are judged on the eval queries)
LABEL_ONLY = ("soft_labels", "min_confidence", "weight_by_confidence", "class_weights", "eval_split",
              "early_stopping_patience", "early_stopping_metric")
LABEL_ONLY_STUDENT = ("text_field", "prompt")


@TASKS.register("queries")
class QueriesTask(Task):
    """Documents in; per generator (`hard`, `soft`) the queries and a kept flag per query (BM25 filter) out."""

    config_cls = QueriesConfig
    handles_distill = True

    @classmethod
    def check_recipe(cls, recipe) -> list[RecipeError]:
        """`distill:` must be a retriever student without label-only fields; `eval.queries` replaces held-out claims."""
        cfg, distill, ev = recipe.task_config, recipe.distill, recipe.eval
        test = ev is not None and ev.queries is not None
        errors = []
        if test and "eval_queries" in cfg.labeled.model_fields_set:
            errors.append(RecipeError("task.labeled.eval_queries", "holds out labeled queries for evaluation, but "
                                      "`eval.queries` already gives the test queries", cfg.labeled.eval_queries,
                                      "remove task.labeled.eval_queries (or eval.queries / eval.qrels)"))
        if distill is None:
            return errors
        if distill.student.type != "retriever":
            errors.append(RecipeError("distill.student.type", "the queries task trains a dense retriever",
                                      distill.student.type, "use `distill: {student: {type: retriever, base: minilm}}` "
                                      "(or remove `distill:`)"))
        bad = [(f"distill.{f}", getattr(distill, f)) for f in LABEL_ONLY if f in distill.model_fields_set]
        bad += [(f"distill.student.{f}", getattr(distill.student, f)) for f in LABEL_ONLY_STUDENT
                if f in distill.student.model_fields_set]
        errors += [RecipeError(path, "is a label-distillation field; the queries task trains retrievers on "
                               "query-document pairs and evaluates them on the evaluation queries", value,
                               "remove it") for path, value in bad]
        if not test and cfg.labeled.eval_queries == 0:
            errors.append(RecipeError("distill", "the retrievers are evaluated on held-out labeled queries, but "
                                      "task.labeled.eval_queries is 0", fix="set task.labeled.eval_queries (e.g. 200), "
                                      "give `eval: {queries: ..., qrels: ...}`, or remove `distill:`"))
        return errors

    def run(self, ctx, rows):
        from agentlab.queries.bm25 import BM25Index

        cfg = self.config
        self._threads()
        self._caveats(ctx)
        corpus = self._corpus(ctx, rows)
        labeled = self._labeled(ctx, corpus)
        texts = {r["id"]: r["text"] for r in corpus}
        index = BM25Index(list(texts), list(texts.values())) if (cfg.filter or labeled.eval_queries) else None
        out = [dict(r) for r in rows]
        ctx.metrics["queries"], weak = {}, {}
        for name in cfg.prompts:
            queries, raws = self._hard(ctx, rows, labeled, texts, out) if name == "hard" else self._soft(ctx, rows, labeled, texts)
            col_q, col_k, col_raw = COLUMNS[name]
            for row, qs, raw in zip(out, queries, raws):
                kept = index.consistent(qs, [row["id"]] * len(qs), cfg.filter.bm25_top_k) if cfg.filter else [True] * len(qs)
                row.update({col_q: qs, col_k: kept, col_raw: raw})
            weak[name] = [(q, r["id"]) for r in out for q, k in zip(r[col_q], r[col_k]) if k]
            self._count(ctx, name, out, labeled)
        self._write_pairs(ctx, labeled, weak)
        if labeled.eval_queries:
            from agentlab.queries.stage import evaluate_systems

            distill = ctx.recipe.distill if ctx.recipe is not None else None
            evaluate_systems(ctx, cfg, distill, labeled, texts, weak, index)
        return out

    # -- inputs ---------------------------------------------------------------------------------
    def _threads(self) -> None:
        if self.config.threads:
            import torch

            torch.set_num_threads(self.config.threads)

    def _caveats(self, ctx) -> None:
        embedded = "hard" in self.config.prompts and ctx.runs_embedded(self.config.model)
        if (embedded or ("soft" in self.config.prompts and self.config.soft.base == "smollm2")) \
                and EMBEDDED_CAVEAT not in ctx.caveats:
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
        """Labeled pairs and evaluation queries: the recipe's `eval: {queries, qrels}` when given (never
        also a labeled pair), else held-out labeled queries."""
        from agentlab.queries.labeled import (
            read_qrels,
            read_queries,
            read_test,
            split_labeled,
        )

        lab, ids = self.config.labeled, {r["id"] for r in corpus}
        resolve = ctx.recipe.resolve if ctx.recipe is not None else Path
        ev = ctx.recipe.eval if ctx.recipe is not None else None
        test = read_test(resolve(ev.queries), resolve(ev.qrels), ids) if ev is not None and ev.queries else None
        queries, qrels = read_queries(resolve(lab.queries)), read_qrels(resolve(lab.qrels))
        labeled = split_labeled(queries, qrels, ids, lab.n, ctx.seed, lab.eval_queries, test=test)
        if test is not None:
            ctx.report.append(f"evaluation: {len(test.eval_queries)} test queries from `eval.queries`; {labeled.excluded} "
                              "labeled queries with a test query's id or text left out of the labeled pairs  ")
        return labeled

    # -- hard prompt (any backend) -----------------------------------------------------------------
    def _hard(self, ctx, rows, labeled, texts, out):
        """Per row: `per_doc` cleaned queries (empties dropped), raw answers; `_error` set on `out`."""
        from agentlab.queries.text import clean_query

        cfg = self.config
        examples = [{"document": texts[d][: cfg.doc_chars], "query": q} for q, d in labeled.pairs[: cfg.examples]]
        prompt = ctx.load_prompt(cfg.prompt_file)
        seed = cfg.seed if cfg.seed is not None else ctx.seed
        slots = [(i, j) for i in range(len(rows)) for j in range(cfg.per_doc)]
        msgs = [prompt.messages(examples=examples, document=r["text"][: cfg.doc_chars]) for r in rows]
        reqs = [ChatRequest(messages=msgs[i], max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=seed + j)
                for i, j in slots]
        answers = ctx.complete(cfg.model, reqs, desc="queries [hard prompt]")
        texts_out = [clean_query(a.value) for a in answers]
        retry = [k for k, t in enumerate(texts_out) if not t and answers[k].error is None]
        if retry:  # same request would hit the cache: retry sampled, with another seed
            again = [reqs[k].model_copy(update={"temperature": max(cfg.temperature, RETRY_TEMPERATURE),
                                                "seed": reqs[k].seed + 1000}) for k in retry]
            for k, ans in zip(retry, ctx.complete(cfg.model, again, desc="queries [hard, retry]")):
                texts_out[k], answers[k] = clean_query(ans.value), ans
        queries: list[list[str]] = [[] for _ in rows]
        raws: list[list[str | None]] = [[] for _ in rows]
        for row in out:
            row["_error"] = None
        for (i, _), text, ans in zip(slots, texts_out, answers):
            raws[i].append(ans.raw)
            if text and text not in queries[i]:
                queries[i].append(text)
            out[i]["_error"] = out[i]["_error"] or ans.error
        self._retried = {"hard": len(retry)}
        self._hard_examples = min(cfg.examples, len(labeled.pairs))
        return queries, raws

    # -- soft prompt (SPTAR) ------------------------------------------------------------------------
    def _soft(self, ctx, rows, labeled, texts):
        """Tune (or reuse) the soft prompt, choose the examples, generate (journaled)."""
        from agentlab.queries.softgen import generate_soft
        from agentlab.queries.stage import choose_examples, tune_soft

        cfg = self.config
        seed = cfg.seed if cfg.seed is not None else ctx.seed
        lm, info, split = tune_soft(ctx, cfg, labeled, texts, seed, self._work_dir(ctx))
        chosen, filt = choose_examples(ctx, cfg, lm, split, texts, info["key"], seed)
        gen = generate_soft(lm, rows, chosen, texts, soft_key=info["key"], doc_chars=cfg.doc_chars, per_doc=cfg.per_doc,
                            max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=seed,
                            batch_size=cfg.soft.generate_batch, cache=ctx.cache, fresh=ctx.fresh, progress=ctx.progress)
        ctx.metrics["sptar"] = {"soft_prompt": info, "example_filter": filt, "generation": {
            "seconds": gen.seconds, "generated": gen.generated_calls, "resumed": gen.resumed, "retried": gen.retried,
            "docs_per_min": round(60 * gen.generated_calls / cfg.per_doc / gen.seconds, 2) if gen.generated_calls else None}}
        self._retried = {**getattr(self, "_retried", {}), "soft": gen.retried}
        self._soft_examples = len(chosen)
        return gen.queries, gen.raws

    def _work_dir(self, ctx) -> Path:
        """`<run>/sptar` (a temporary folder when there is no run directory)."""
        if ctx.run_dir is not None:
            return ctx.run_dir.path("sptar")
        if not hasattr(self, "_tmp"):
            self._tmp = tempfile.TemporaryDirectory(prefix="agentlab-sptar-")
        return Path(self._tmp.name)

    # -- accounting -----------------------------------------------------------------------------
    def _count(self, ctx, name: str, out, labeled) -> None:
        cfg = self.config
        col_q, col_k, _ = COLUMNS[name]
        generated = sum(len(r[col_q]) for r in out)
        kept = sum(sum(r[col_k]) for r in out)
        examples = self._hard_examples if name == "hard" else self._soft_examples
        m = {"documents": len(out), "requested": len(out) * cfg.per_doc, "generated": generated,
             "empty": len(out) * cfg.per_doc - generated, "retried": self._retried.get(name, 0), "kept": kept,
             "kept_fraction": round(kept / generated, 4) if generated else 0.0,
             "bm25_top_k": cfg.filter.bm25_top_k if cfg.filter else None,
             "labeled_pairs": len(labeled.pairs), "examples": examples}
        ctx.metrics["queries"][name] = m
        what = f"{kept} kept by the BM25 filter (top {m['bm25_top_k']})" if cfg.filter else "no filter"
        ctx.report.append(f"queries ({name} prompt): {generated} generated for {len(out)} documents, {what}  ")

    def _write_pairs(self, ctx, labeled, weak) -> None:
        if ctx.run_dir is None:
            return
        pairs = [{"query": q, "doc_id": d, "source": "labeled"} for q, d in labeled.pairs]
        pairs += [{"query": q, "doc_id": d, "source": name} for name, kept in weak.items() for q, d in kept]
        ctx.artifacts["pairs"] = str(ctx.run_dir.write_jsonl("pairs.jsonl", pairs))
