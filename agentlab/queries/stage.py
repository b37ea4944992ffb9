"""The queries task's heavy stages, given a run context: soft prompt tuning + example filter, retriever
training and evaluation, and the report table. `agentlab.tasks.queries` calls them in order."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from agentlab.queries.cache import content_hash

log = logging.getLogger("agentlab")
SYSTEM_NAMES = {"bm25": "BM25 (`bm25s`)", "base": "untrained embedder", "labeled_only": "trained on labeled pairs",
                "weak_hard": "trained on labeled + hard-prompt queries", "weak_soft": "trained on labeled + soft-prompt queries"}


def _callbacks(ctx, desc: str) -> tuple[bool, list[Any]]:
    """(quiet, callbacks): training advances a bar in the run's display instead of printing its own."""
    progress = ctx.progress
    if progress is None or getattr(progress, "quiet", True):
        return True, []
    from agentlab.distill.base import progress_callback

    return True, [progress_callback(progress, desc)]


def tune_soft(ctx, cfg, labeled, texts, seed: int, work_dir: Path):
    """Split the labeled pairs, tune (or reuse) the soft prompt; returns (lm, info, split)."""
    from agentlab.queries.sptar import split_pairs, tune

    split = split_pairs(labeled.pairs, cfg.examples, cfg.soft.val_fraction)
    quiet, callbacks = _callbacks(ctx, "soft prompt tuning")
    lm, info = tune(split, texts, cfg.soft, cfg.doc_chars, seed, work_dir, fresh=ctx.fresh, quiet=quiet, callbacks=callbacks)
    if ctx.run_dir is not None:
        info["path"] = str(Path(info["path"]).relative_to(ctx.run_dir.root))
    tuned = f"val loss {info.get('init_val_loss')} -> {info.get('val_loss')}" if info.get("val_loss") is not None else ""
    ctx.report.append(f"soft prompt: {cfg.soft.num_virtual_tokens} virtual tokens on `{cfg.soft.base}`, "
                      f"{info['train_pairs']} training pairs, {info.get('steps')} steps, {tuned}"
                      f"{' (reused from an earlier run)' if info['reused'] else ''}  ")
    return lm, info, split


def choose_examples(ctx, cfg, lm, split, texts, soft_key: str, seed: int):
    """SPTAR's example filter over `soft.candidates` sets (journaled in the call cache); returns (chosen, record)."""
    from agentlab.queries.sptar import candidate_sets, example_filter

    cands = candidate_sets(split, cfg.soft.candidates, seed)
    record: dict[str, Any] = {"held_out_pairs": len(split.held), "chosen": 0, "candidates": []}
    scores: list[float] = []
    if len(cands) > 1 and split.held:
        key = "sptar-filter:" + content_hash({"soft": soft_key, "cands": cands, "held": split.held}, 32)
        hit = {} if ctx.fresh else ctx.cache.get_many([key])
        if key in hit:
            best, scores = hit[key]["best"], hit[key]["scores"]
        else:
            best, scores = example_filter(lm, cands, split.held, texts, cfg.doc_chars, cfg.soft.max_length)
            ctx.cache.put(key, {"best": best, "scores": scores})
        record["chosen"] = best
    record["candidates"] = [{"doc_ids": [d for _, d in c], "queries": [q for q, _ in c],
                             "mean_loss": scores[i] if scores else None} for i, c in enumerate(cands)]
    if scores:
        ctx.report.append(f"example filter: {len(cands)} candidate sets scored on {len(split.held)} held-out pairs "
                          f"(mean gold-query loss {', '.join(f'{s:.3f}' for s in scores)}); set {record['chosen']} kept  ")
    return cands[record["chosen"]], record


def evaluate_systems(ctx, cfg, distill, labeled, texts: dict[str, str], weak: dict[str, list], index) -> dict[str, Any]:
    """BM25, the untrained embedder and (with `distill`) the trained retrievers on the evaluation queries.

    Fills ctx.metrics (`retrieval`, `retriever`, `retrieval_eval`) and the report's table.
    """
    from agentlab.embedder import get_embedder, resolve_model
    from agentlab.queries.retrieval import Evaluator, eval_subset, load_model
    from agentlab.store import user_cache_dir

    ids = eval_subset(list(texts), labeled.eval_qrels, cfg.labeled.eval_corpus, ctx.seed)
    run_cache = ctx.run_dir.path("embeddings") if ctx.run_dir is not None else None
    ev = Evaluator(ids, [texts[i] for i in ids], labeled.eval_queries, labeled.eval_qrels,
                   base_cache=user_cache_dir() / "embeddings", run_cache=run_cache)
    res: dict[str, Any] = {"bm25": ev.bm25(index if len(ids) == len(texts) else None)}
    res["base"] = ev.dense(get_embedder(cfg.embedding_model), Path(resolve_model(cfg.embedding_model)), cache="base")
    trained = train_systems(ctx, cfg, distill, labeled, texts, weak) if distill is not None else {}
    for name, (folder, _) in trained.items():
        res[name] = ev.dense(load_model(folder, distill.device), folder)
    ctx.metrics["retrieval"] = res
    if trained:
        ctx.metrics["retriever"] = {name: info for name, (_, info) in trained.items()}
    ctx.metrics["retrieval_eval"] = {"queries": len(labeled.eval_queries), "source": labeled.eval_source,
                                     "labeled_excluded": labeled.excluded, "corpus": len(ids),
                                     "whole_corpus": len(ids) == len(texts), "embedding_cache": ev.embedding_cache}
    if distill is not None and distill.student.base != cfg.embedding_model:
        ctx.report.append(f"note: the `base` row is `task.embedding_model` ({cfg.embedding_model}); the retrievers start "
                          f"from `distill.student.base` ({distill.student.base})  ")
    ctx.report.append(render_table(res, {n: i for n, (_, i) in trained.items()}, len(ids), len(texts), labeled))
    return res


def train_systems(ctx, cfg, distill, labeled, texts, weak) -> dict[str, tuple[Path, dict[str, Any]]]:
    """`labeled_only` and `weak_<prompt>` retrievers (identical training data shares one folder)."""
    from agentlab.queries.retrieval import train_retriever

    data = {"labeled_only": list(labeled.pairs)} if cfg.labeled_only else {}
    data.update({f"weak_{p}": list(labeled.pairs) + list(weak.get(p, [])) for p in cfg.prompts})
    parent = ctx.run_dir.path("retrievers") if ctx.run_dir is not None else Path(_tmp_dir())
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for name, pairs in data.items():
        same = next((n for n, p in data.items() if p == pairs and n in out), None)
        if same is not None:  # no weak pair kept: the same training data, the same model
            out[name] = (out[same][0], {**out[same][1], "same_as": same})
            continue
        quiet, callbacks = _callbacks(ctx, f"retriever [{name}]")
        folder, info = train_retriever(pairs, texts, distill, parent, name, fresh=ctx.fresh, quiet=quiet,
                                       callbacks=callbacks)
        if ctx.run_dir is not None:
            info["path"] = str(folder.relative_to(ctx.run_dir.root))
        out[name] = (folder, info)
    return out


def _tmp_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="agentlab-retrievers-")


def render_table(res: dict[str, Any], trained: dict[str, dict[str, Any]], n_docs: int, n_corpus: int, labeled) -> str:
    """The report.md section: where the queries come from, then one row per system."""
    where = "the whole corpus" if n_docs == n_corpus else f"{n_docs:,} of {n_corpus:,} documents (`labeled.eval_corpus`)"
    queries = next(iter(res.values()))["queries"] if res else 0
    if labeled.eval_source == "eval.queries":
        what = (f"{queries} test queries (`eval.queries`) over {where}; {labeled.excluded} labeled queries that are "
                "also test queries (same id or text) were left out of the labeled pairs.")
    else:
        what = f"{queries} held-out labeled queries (never used as pairs) over {where}."
    what += " Metrics: pytrec_eval (`ndcg_cut_10`, `recip_rank` of the top 10, `recall_100`)."
    lines = ["", "## Retrieval", "", what, "",
             "| system | nDCG@10 | MRR@10 | Recall@100 | training pairs |", "|---|---|---|---|---|"]
    for name, m in res.items():
        pairs = trained.get(name, {}).get("pairs", "")
        lines.append(f"| `{name}`: {SYSTEM_NAMES.get(name, name)} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | "
                     f"{m['recall@100']:.4f} | {pairs} |")
    return "\n".join(lines + [""])
