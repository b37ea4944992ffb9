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
    """Labeled pairs for prompts/training (`pairs`) and held-out queries for evaluation (`eval_*`)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)  # (query text, doc id)
    eval_queries: dict[str, str] = field(default_factory=dict)  # query id -> text
    eval_qrels: dict[str, dict[str, int]] = field(default_factory=dict)  # query id -> {doc id: grade}


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


def split_labeled(queries: dict[str, str], qrels: dict[str, dict[str, int]], corpus_ids: set[str], n: int,
                  seed: int, max_eval: int | None) -> Labeled:
    """Pick `n` labeled queries (seeded) as pairs, the rest (up to `max_eval`) held out for evaluation.

    Only queries with text and at least one relevant document in the corpus are used.
    """
    usable = sorted(q for q, rels in qrels.items() if q in queries and any(d in corpus_ids for d in rels))
    random.Random(seed).shuffle(usable)
    if len(usable) < n:
        raise ConfigError(f"task.labeled.n is {n} but only {len(usable)} labeled queries have a relevant document "
                          "in the corpus; lower n or check the qrels/corpus ids")
    out = Labeled()
    for q in usable[:n]:
        doc = next(d for d in sorted(qrels[q]) if d in corpus_ids)
        out.pairs.append((queries[q], doc))
    held = usable[n:] if max_eval is None else usable[n : n + max_eval]
    for q in held:
        out.eval_queries[q] = queries[q]
        out.eval_qrels[q] = {d: g for d, g in qrels[q].items() if d in corpus_ids}
    return out
