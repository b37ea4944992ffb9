"""The rows of report.html: read from the run's data.jsonl (so streamed runs work), sampled past a limit,
turned into table columns, and the label task's per-labeler views (confusion vs gold, agreement)."""

from __future__ import annotations

import heapq
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_ROWS = 50_000
MAX_VOTE_CELLS = 500_000  # rows x labelers kept for the table and per-labeler views (32 labelers: 15,625 rows)
UNCERTAIN_SHARE = 0.2  # of MAX_ROWS, for the least confident rows when a run is sampled
TEXT_KEYS = ("text", "content", "caption", "question", "query", "document", "title")
_SKIP = {"votes", "vote_confidence", "_raw"}


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file, one at a time (blank lines skipped)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_CONF = re.compile(rb'^\{.*?"confidence": ?(-?[0-9][0-9.eE+-]*|null|true|false)[,}]')


def _lines_with_confidence(path: Path) -> Iterator[tuple[bytes, Any]]:
    """(line, its top-level "confidence") per non-blank line, parsing the whole line only when a cheap look
    cannot say (a key "confidence" inside a nested value or a string would be ambiguous)."""
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            m = _CONF.match(line) if line.count(b'"confidence"') == 1 else None
            bare = _STRINGS.sub(b"", line[1 : m.start(1)]) if m else b"{"  # the text before it, strings taken out
            if bare.count(b"{") != bare.count(b"}") or bare.count(b"[") != bare.count(b"]"):  # nested, or unsure
                yield line, json.loads(line).get("confidence") if b'"confidence"' in line else None
                continue
            v = m.group(1)
            yield line, None if v == b"null" else (v == b"true") if v in (b"true", b"false") else float(v)


def _loads(line: bytes) -> Any:
    import orjson

    try:
        return orjson.loads(line)
    except ValueError:  # NaN and friends, which the stdlib writes and reads
        return json.loads(line)


def row_budget(path: Path, max_rows: int = MAX_ROWS, max_cells: int = MAX_VOTE_CELLS) -> int:
    """How many rows the page holds: `max_rows`, fewer when each row carries many votes (the page and the
    per-labeler views grow with rows x labelers), never under 1,000."""
    with open(path, "rb") as fh:
        first = next((line for line in fh if line.strip()), None)
    return budget_for(_loads(first) if first else None, max_rows, max_cells)


def budget_for(first: dict[str, Any] | None, max_rows: int = MAX_ROWS, max_cells: int = MAX_VOTE_CELLS) -> int:
    """`row_budget` from the first row itself."""
    votes = first.get("votes") if isinstance(first, dict) else None
    width = len(votes) if isinstance(votes, dict) else 1
    return min(max_rows, max(1000, max_cells // max(width, 1)))


class RowSampler:
    """The page's rows, kept while rows go by (as JSON lines, parsed only when kept): every row up to
    `max_rows`; past it the least confident rows plus a uniform sample of the rest (reservoir).

    `load_rows` feeds it a file; a streaming run's sink feeds it each chunk as it commits, so the page
    needs no second pass over a large data.jsonl."""

    def __init__(self, max_rows: int = MAX_ROWS, seed: int = 0):
        self.max_rows, self.seed = max_rows, seed
        self._rng = random.Random(seed)
        self.uncertain: list[tuple[float, int, bytes]] = []  # heap: its smallest item is the most confident kept
        self.reservoir: list[tuple[int, bytes]] = []
        self.total = self._seen = 0
        self._n_unc: int | None = None
        self._k = 0

    def add(self, line: bytes, conf: Any) -> None:
        """One row: its JSON line and its top-level confidence (None when it has none)."""
        i = self.total
        self.total += 1
        if self._n_unc is None:  # the first row says whether rows carry a confidence
            self._n_unc = int(self.max_rows * UNCERTAIN_SHARE) if isinstance(conf, (int, float)) else 0
            self._k = self.max_rows - self._n_unc
        cand: tuple[int, bytes] | None = (i, line)
        if self._n_unc and isinstance(conf, (int, float)):
            key = (-float(conf), i)
            if len(self.uncertain) < self._n_unc:
                heapq.heappush(self.uncertain, (*key, _compact(line)))
                cand = None
            elif key > self.uncertain[0][:2]:
                _, j, old = heapq.heapreplace(self.uncertain, (*key, _compact(line)))
                cand = (j, old)
        if cand is None:
            return
        self._seen += 1
        if len(self.reservoir) < self._k:
            self.reservoir.append(self._kept(cand, i))
        else:
            j = self._rng.randrange(self._seen)
            if j < self._k:
                self.reservoir[j] = self._kept(cand, i)

    @staticmethod
    def _kept(cand: tuple[int, bytes], i: int) -> tuple[int, bytes]:
        """`cand` as stored: this row's own line copied compact (a line evicted from the heap already is)."""
        return (i, _compact(cand[1])) if cand[0] == i else cand

    def result(self) -> tuple[list[dict[str, Any]], int, str | None]:
        """(rows in file order, total rows seen, a note when the rows are a sample)."""
        picked = {i: r for _, i, r in self.uncertain}
        picked.update(dict(self.reservoir))
        rows = [_loads(picked[i]) for i in sorted(picked)]
        if self.total <= self.max_rows:
            return rows, self.total, None
        note = (f"This run has {self.total:,} rows; the table holds {len(rows):,} of them: the {len(self.uncertain):,} "
                f"least confident rows plus a uniform random sample of the others (seed {self.seed}). Per-labeler "
                "views are computed on these rows.")
        return rows, self.total, note


def _compact(line: bytes) -> bytes:
    """An exact-size copy of a line about to be kept: orjson's bytes hold a ~4 KB buffer each (tracemalloc:
    50k short lines = 210 MB), which a sampler keeping tens of thousands of them must not carry."""
    return bytes(memoryview(line))


def load_rows(path: Path, max_rows: int = MAX_ROWS, seed: int = 0) -> tuple[list[dict[str, Any]], int, str | None]:
    """(rows, total, note) of a JSONL file: see :class:`RowSampler`."""
    sampler = RowSampler(max_rows, seed)
    for line, conf in _lines_with_confidence(path):  # rows stay bytes until kept
        sampler.add(line, conf)
    return sampler.result()


def _text_key(rows: list[dict[str, Any]]) -> str | None:
    first = rows[0] if rows else {}
    for k in TEXT_KEYS:
        if isinstance(first.get(k), str):
            return k
    return next((k for k, v in first.items() if isinstance(v, str) and not k.startswith("_")), None)


def _kind(values: list[Any]) -> str:
    seen = [v for v in values if v is not None]
    if seen and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
        return "num"
    if seen and all(isinstance(v, bool) for v in seen):
        return "bool"
    if seen and all(isinstance(v, str) for v in seen):
        return "text"
    return "rich"


def label_flags(votes: dict[str, Any], label: Any) -> tuple[bool, bool]:
    """(labelers disagree, label model != majority): two classes among the votes; the label is not among
    the most-voted classes (ties keep every tied class)."""
    cast = Counter(v for v in votes.values() if v is not None)
    disagree = len(cast) > 1
    if not cast or label is None:
        return disagree, False
    top = max(cast.values())
    return disagree, label not in {c for c, n in cast.items() if n == top}


def table_data(rows: list[dict[str, Any]], classes: list[str] | None = None) -> dict[str, Any]:
    """Columns, compact rows and (label task) the keys the filters use, for report.js."""
    keys = list(dict.fromkeys(k for r in rows[:200] for k in r))
    is_label = "votes" in keys and "confidence" in keys
    text = _text_key(rows)
    cols: list[dict[str, str]] = []
    if text:
        cols.append({"key": text, "label": text, "kind": "text"})
    label = None
    if is_label:
        labelers = list(dict.fromkeys(n for r in rows for n in (r.get("votes") or {})))
        gold = "gold" if "gold" in keys else None
        cols += [{"key": "label", "label": "label", "kind": "label"}, {"key": "confidence", "label": "confidence", "kind": "num"}]
        if gold:
            cols.append({"key": "gold", "label": "gold", "kind": "rich"})
        cols += [{"key": "_disagree", "label": "labelers disagree", "kind": "bool"},
                 {"key": "_lm_ne_majority", "label": "label ≠ majority", "kind": "bool"}]
        cols += [{"key": f"vote:{n}", "label": n, "kind": "vote"} for n in labelers]
        found = sorted({str(r.get("label")) for r in rows if r.get("label") is not None})
        label = {"classes": classes or found, "labelers": [{"key": f"vote:{n}", "name": n} for n in labelers],
                 "label": "label", "confidence": "confidence", "gold": gold, "disagree": "_disagree",
                 "lm_ne_majority": "_lm_ne_majority"}
    done = {c["key"] for c in cols} | _SKIP
    for k in keys:
        if k in done or (k.startswith("_") and k != "_error") or (k == "_error" and not any(r.get("_error") for r in rows)):
            continue
        cols.append({"key": k, "label": k.lstrip("_"), "kind": _kind([r.get(k) for r in rows[:500]])})
    out_rows = []
    for r in rows:
        o = {c["key"]: r.get(c["key"]) for c in cols if not c["key"].startswith(("vote:", "_d", "_l"))}
        if is_label:
            votes = r.get("votes") or {}
            o.update({f"vote:{n}": v for n, v in votes.items()})
            o["_disagree"], o["_lm_ne_majority"] = label_flags(votes, r.get("label"))
        if "_error" in o and o["_error"] is None:
            del o["_error"]
        out_rows.append(o)
    return {"columns": cols, "rows": out_rows, "label": label}


def labeler_views(rows: list[dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    """Per labeler: a confusion matrix vs gold (rows with gold only); labeler x labeler agreement where both vote."""
    names = list(dict.fromkeys(n for r in rows for n in (r.get("votes") or {})))
    by_name = _vote_columns(rows, names)
    norm = {c.lower(): c for c in classes}
    gold = [norm.get(str(r.get("gold")).lower()) if r.get("gold") is not None else None for r in rows]
    confusion = {}
    if any(g is not None for g in gold):
        kept = [i for i, g in enumerate(gold) if g is not None]
        golds = [gold[i] for i in kept]
        for n in ["label (label model)", *names]:
            m = {g: {} for g in classes}
            col = [r.get("label") for r in rows] if n == "label (label model)" else by_name[n]
            got = col if len(kept) == len(rows) else [col[i] for i in kept]
            for (g, v), c in Counter(zip(golds, got)).items():  # counted in C, not row by row
                m[g]["(abstain)" if v is None else v] = c
            confusion[n] = m
    agree = {a: {} for a in names}
    import numpy as np  # every labeler pair over every row: vectorised (32 labelers x 50k rows = 51M pairs of votes)

    codes: dict[Any, int] = {None: -1}
    col = {}
    for a in names:  # a row without votes is -1 in every column, so it never counts as both voting
        for x in set(by_name[a]) - codes.keys():
            codes[x] = len(codes) - 1
        col[a] = np.fromiter(map(codes.__getitem__, by_name[a]), dtype=np.int64, count=len(rows))
    for a in names:
        for b in names:
            both = (col[a] >= 0) & (col[b] >= 0)
            n = int(both.sum())
            agree[a][b] = (int((col[a][both] == col[b][both]).sum()) / n, n) if n else (None, 0)
    return {"labelers": names, "classes": classes, "confusion": confusion, "agreement": agree}


def _vote_columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, list[Any]]:
    """Each labeler's votes over `rows` (None: no vote); transposed in C when every row has the same labelers."""
    votes = [r.get("votes") or {} for r in rows]
    order = tuple(names)
    if votes and all(len(v) == len(order) for v in votes) and all(tuple(v) == order for v in votes):
        return dict(zip(names, map(list, zip(*(v.values() for v in votes)))))
    return {n: [v.get(n) for v in votes] for n in names}
