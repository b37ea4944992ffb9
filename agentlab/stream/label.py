"""The streaming form of the `label` task: two passes over the source, compact votes in between.

Pass 1 reads the source chunk by chunk and lets every labeler vote on the chunk; the votes go into
a :class:`VoteMatrix` (int8 columns: 1M rows x 32 labelers = 32 MB), confidences only for the
columns that have any, raw answers only where there are some. The label model is then fitted on the
whole matrix (:meth:`LabelTask._aggregate`). Pass 2 reads the source again and writes each chunk's
rows with their labels to ``data.jsonl``; a killed run resumes pass 2 from its last committed chunk
(pass 1 is answered again from the call cache).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentlab.labeling.base import ABSTAIN, Votes
from agentlab.stream.generate import stats_snapshot


class SparseRaw(dict):
    """Raw answers of one column by row number; a row without one reads as None."""

    def __missing__(self, key: int) -> None:
        return None


class VoteMatrix:
    """Label-matrix columns accumulated chunk by chunk, keyed by (labeler, column name)."""

    def __init__(self, n_classes: int):
        self.dtype = np.int8 if n_classes < 127 else np.int16
        self.n = 0
        self.votes: dict[tuple[int, str], list[np.ndarray]] = {}
        self.conf: dict[tuple[int, str], list[np.ndarray | int]] = {}  # an int: that many rows without confidence
        self.raw: dict[tuple[int, str], SparseRaw] = {}
        self.faults: dict[tuple[int, str], int] = {}

    def add(self, cols: list[Votes], rows: int) -> None:
        """Append one chunk's votes (one Votes per labeler, `rows` rows each)."""
        seen = set()
        for li, v in enumerate(cols):
            for j, name in enumerate(v.names):
                key = (li, name)
                seen.add(key)
                if key not in self.votes:  # a column first seen now: earlier rows abstained
                    self.votes[key] = [np.full(self.n, ABSTAIN, dtype=self.dtype)]
                    self.conf[key], self.raw[key], self.faults[key] = [self.n], SparseRaw(), 0
                self.votes[key].append(v.votes[:, j].astype(self.dtype))
                c = v.confidence[:, j]
                self.conf[key].append(rows if np.isnan(c).all() else c.astype(np.float64))
                for i, text in enumerate(v.raw[j] if j < len(v.raw) and v.raw[j] else ()):
                    if text is not None:
                        self.raw[key][self.n + i] = text
                self.faults[key] += v.faults[j] if j < len(v.faults) else 0
        for key in self.votes.keys() - seen:  # a column this chunk did not produce: abstain
            self.votes[key].append(np.full(rows, ABSTAIN, dtype=self.dtype))
            self.conf[key].append(rows)
        self.n += rows

    def finish(self) -> tuple[np.ndarray, dict[int, np.ndarray], list[str], list[SparseRaw], dict[str, int]]:
        """(L as n x m int8, confidence columns by index (only those with any), names, raw per column, faults by name)."""
        keys = list(self.votes)
        names: list[str] = []
        for _, n in keys:  # duplicate names across labelers get a suffix, as in the in-memory path
            names.append(n if n not in names else f"{n}#{len(names)}")
        L = np.empty((self.n, len(keys)), dtype=self.dtype)
        conf: dict[int, np.ndarray] = {}
        for j, k in enumerate(keys):
            L[:, j] = np.concatenate(self.votes.pop(k))
            parts = self.conf.pop(k)
            if any(not isinstance(p, int) for p in parts):
                conf[j] = np.concatenate([np.full(p, np.nan) if isinstance(p, int) else p for p in parts])
        return L, conf, names, [self.raw[k] for k in keys], {n: self.faults[k] for n, k in zip(names, keys)}


def confidence_matrix(conf: dict[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The n x m confidence matrix (NaN where a labeler gave none), built only when a label model needs it."""
    W = np.full(shape, np.nan)
    for j, col in conf.items():
        W[:, j] = col
    return W


class _LazyW:
    """Stands for the confidence matrix until something indexes it (only the `weighted` model does)."""

    def __init__(self, conf: dict[int, np.ndarray], shape: tuple[int, int]):
        self.conf, self.shape = conf, shape

    def __array__(self, dtype=None, copy=None):
        W = confidence_matrix(self.conf, self.shape)
        return W if dtype is None else W.astype(dtype)


def stream_label(ctx: Any, task: Any, source: Any, sink: Any, bar: Any, gold_field: str | None, chunk_size: int,
                 commit_seconds: float) -> None:
    """Vote (pass 1), fit the label model, then write labeled rows chunk by chunk (pass 2)."""
    from agentlab.labeling.base import LabelSpace  # noqa: F401 - the task's space

    space = task.space
    task._recipe = ctx.recipe
    ctx.classes = space.names
    acc = VoteMatrix(len(space.names))
    gold: list[np.ndarray] = []
    for rows in source.chunks(chunk_size):
        if gold_field is not None:
            gold.append(np.array([space.index(r.pop(gold_field, None)) for r in rows], dtype=np.int16))
        acc.add([lab.label(ctx, rows) for lab in task.labelers], len(rows))
        bar.note_chunk(f"voting: {acc.n:,} rows")
    L, conf, names, raw, faults = acc.finish()
    del acc
    if gold_field is not None:
        ctx.gold = np.concatenate(gold).tolist()  # class indices (-1 = none); small ints cost no memory each
    agg = ctx.recipe.aggregate if ctx.recipe is not None and ctx.recipe.aggregate else None
    # + aggregate.dev / seed gold rows; no confidence matrix at all when no labeler gave a confidence
    probs, used = task.fit_label_model(ctx, L, _LazyW(conf, L.shape) if conf else None, agg, names)
    task.L, task.names, task.used = L, names, used
    task.W = _LazyW(conf, L.shape)
    task._save(ctx, L, names, [Votes(names, np.empty((0, len(names))), np.empty((0, len(names))), [], [faults[n] for n in names])])
    _write_rows(ctx, task, source, sink, bar, gold_field, chunk_size, L, conf, names, raw, probs)


def _write_rows(ctx, task, source, sink, bar, gold_field, chunk_size, L, conf, names, raw, probs) -> None:
    """Pass 2: each chunk's rows with label, label_probs, confidence, votes (+ vote_confidence, labeler_raw)."""
    classes = task.space.names
    by_vote = [*classes, None]  # index -1 (abstain) reads the None at the end
    vote_names = np.array(by_vote, dtype=object)
    raw_cols = [(n, r) for n, r in zip(names, raw) if r]
    start = sink.rows
    for rows in source.chunks(chunk_size, skip=start):
        end = start + len(rows)
        Lc, Pc = L[start:end], probs[start:end]
        covered = (Lc != ABSTAIN).any(1)
        label = np.where(covered, Pc.argmax(1), len(classes)).tolist()  # index len(classes): None (no votes)
        top = np.where(covered, Pc.max(1).round(6), 0.0).tolist()
        out = []
        voted = vote_names[Lc].tolist()  # class names (None: abstain) for the whole block at once
        for k, (row, votes, p) in enumerate(zip(rows, voted, Pc.round(6).tolist())):
            i = start + k
            g = row.pop(gold_field, None) if gold_field is not None else None
            new = dict(row)
            new["label"] = by_vote[label[k]]
            new["label_probs"] = dict(zip(classes, p))
            new["confidence"] = top[k]
            new["votes"] = dict(zip(names, votes))
            vc = {names[j]: round(float(col[i]), 4) for j, col in conf.items() if col[i] == col[i]}
            if vc:
                new["vote_confidence"] = vc
            lr = {n: r[i] for n, r in raw_cols if i in r}
            if lr:
                new["labeler_raw"] = lr
            if gold_field is not None:
                new["gold"] = g
            out.append(new)
        bar.advance(len(out))
        bar.note_chunk(f"chunk {sink.chunks + 1} -> {sink.name}")
        sink.commit(out, stats_snapshot(ctx))
        start = end
