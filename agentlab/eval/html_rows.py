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
    votes = _loads(first).get("votes") if first else None
    width = len(votes) if isinstance(votes, dict) else 1
    return min(max_rows, max(1000, max_cells // max(width, 1)))


def load_rows(path: Path, max_rows: int = MAX_ROWS, seed: int = 0) -> tuple[list[dict[str, Any]], int, str | None]:
    """(rows, total, note): every row up to `max_rows`; past it the least confident rows plus a uniform sample
    of the rest (reservoir), in file order, and a note that says so."""
    rng = random.Random(seed)
    uncertain: list[tuple[float, int, dict[str, Any]]] = []  # heap: its smallest item is the most confident kept
    reservoir: list[tuple[int, dict[str, Any]]] = []
    total = seen = 0
    n_unc = k = None
    for i, (row, conf) in enumerate(_lines_with_confidence(path)):  # rows stay bytes until kept
        total += 1
        if n_unc is None:  # the first row says whether rows carry a confidence
            n_unc = int(max_rows * UNCERTAIN_SHARE) if isinstance(conf, (int, float)) else 0
            k = max_rows - n_unc
        cand: tuple[int, dict[str, Any]] | None = (i, row)
        if n_unc and isinstance(conf, (int, float)):
            item = (-float(conf), i, row)
            if len(uncertain) < n_unc:
                heapq.heappush(uncertain, item)
                cand = None
            elif item[:2] > uncertain[0][:2]:
                _, j, old = heapq.heapreplace(uncertain, item)
                cand = (j, old)
        if cand is None:
            continue
        seen += 1
        if len(reservoir) < k:
            reservoir.append(cand)
        else:
            j = rng.randrange(seen)
            if j < k:
                reservoir[j] = cand
    picked = {i: r for _, i, r in uncertain}
    picked.update(dict(reservoir))
    rows = [_loads(picked[i]) for i in sorted(picked)]
    if total <= max_rows:
        return rows, total, None
    note = (f"This run has {total:,} rows; the table holds {len(rows):,} of them: the {len(uncertain):,} least confident "
            f"rows plus a uniform random sample of the others (seed {seed}). Per-labeler views are computed on these rows.")
    return rows, total, note


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
