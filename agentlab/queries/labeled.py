"""Labeled queries (BEIR layout: queries.jsonl with `_id`/`text`, qrels TSV `query-id corpus-id score`)."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from agentlab.errors import ConfigError


@dataclass
class Labeled:
    """Labeled pairs for prompts/training (`pairs`) and the queries to evaluate on (`eval_*`).

    The evaluation queries are either held-out labeled queries (`eval_source` "labeled") or the
    recipe's test set (`eval: {queries, qrels}`, `eval_source` "eval.queries"); `excluded` counts
    labeled queries left out of the pool because they are also test queries.
    """

    pairs: list[tuple[str, str]] = field(default_factory=list)  # (query text, doc id)
    eval_queries: dict[str, str] = field(default_factory=dict)  # query id -> text
    eval_qrels: dict[str, dict[str, int]] = field(default_factory=dict)  # query id -> {doc id: grade}
    eval_source: str = "labeled"
    excluded: int = 0


def read_queries(path: Path) -> dict[str, str]:
    """Query id -> text from a BEIR queries.jsonl."""
    out = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                row = json.loads(line)
                if "_id" not in row or "text" not in row:
                    raise ConfigError(f"{path}:{n}: a query needs `_id` and `text`; got keys {sorted(row)}")
                out[str(row["_id"])] = str(row["text"])
    return out


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Query id -> {doc id: grade} from a qrels TSV (a header line is skipped; grade <= 0 dropped)."""
    out: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not row or (n == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue
            if len(row) < 3:
                raise ConfigError(f"{path}:{n}: expected `query-id<TAB>corpus-id<TAB>score`, got {row!r}")
            if int(row[-1]) > 0:
                out.setdefault(row[0], {})[row[-2]] = int(row[-1])
    return out


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def split_labeled(queries: dict[str, str], qrels: dict[str, dict[str, int]], corpus_ids: set[str], n: int,
                  seed: int, max_eval: int | None, test: Labeled | None = None) -> Labeled:
    """Pick `n` labeled queries (seeded) as pairs, the rest (up to `max_eval`) held out for evaluation.

    Only queries with text and at least one relevant document in the corpus are used. With `test`
    (the recipe's test queries), nothing is held out: the test set is evaluated on instead, and a
    labeled query with a test query's id or text (case and spacing aside) never becomes a pair.
    """
    usable = sorted(q for q, rels in qrels.items() if q in queries and any(d in corpus_ids for d in rels))
    excluded = 0
    if test is not None:
        test_texts = {_norm(t) for t in test.eval_queries.values()}
        clean = [q for q in usable if q not in test.eval_qrels and _norm(queries[q]) not in test_texts]
        usable, excluded, max_eval = clean, len(usable) - len(clean), 0
    random.Random(seed).shuffle(usable)
    if len(usable) < n:
        also = f" (after leaving out {excluded} that are also test queries in eval.queries)" if excluded else ""
        raise ConfigError(f"task.labeled.n is {n} but only {len(usable)} labeled queries have a relevant document "
                          f"in the corpus{also}; lower n or check the qrels/corpus ids")
    out = Labeled(excluded=excluded)
    if test is not None:
        out.eval_queries, out.eval_qrels, out.eval_source = test.eval_queries, test.eval_qrels, test.eval_source
    for q in usable[:n]:
        doc = next(d for d in sorted(qrels[q]) if d in corpus_ids)
        out.pairs.append((queries[q], doc))
    held = usable[n:] if max_eval is None else usable[n : n + max_eval]
    for q in held:
        out.eval_queries[q] = queries[q]
        out.eval_qrels[q] = {d: g for d, g in qrels[q].items() if d in corpus_ids}
    return out


def read_test(queries_path: Path, qrels_path: Path, corpus_ids: set[str]) -> Labeled:
    """The recipe's test set (`eval: {queries, qrels}`): queries with text and a relevant document in the corpus.

    Returns a `Labeled` with only `eval_queries` / `eval_qrels` (judgements restricted to the corpus).
    """
    queries, qrels = read_queries(queries_path), read_qrels(qrels_path)
    out = Labeled(eval_source="eval.queries")
    for q in sorted(qrels):
        rels = {d: g for d, g in qrels[q].items() if d in corpus_ids}
        if q in queries and rels:
            out.eval_queries[q], out.eval_qrels[q] = queries[q], rels
    if not out.eval_queries:
        raise ConfigError(f"eval.queries: none of the {len(qrels)} queries in {qrels_path} has text in {queries_path} "
                          "and a relevant document in the corpus; check the ids")
    return out
