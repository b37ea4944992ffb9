"""Escalation: send the rows the label model is unsure about to a stronger model, within a row and cost cap."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import numpy as np

from agentlab.errors import ConfigError
from agentlab.labeling.base import ABSTAIN, Votes

log = logging.getLogger("agentlab")
_CONF = re.compile(r"^confidence\s*<\s*([0-9.]+)$")


def parse_when(when: str) -> tuple[float | None, bool]:
    """`confidence < X`, `disagreement`, or both joined by ` or ` -> (threshold, disagreement)."""
    thr, dis = None, False
    for part in (p.strip() for p in when.split(" or ")):
        m = _CONF.match(part)
        if m:
            thr = float(m.group(1))
        elif part == "disagreement":
            dis = True
        else:
            raise ConfigError(f"escalate.when: cannot read {part!r}; write `confidence < 0.7`, `disagreement`, or both joined by ` or `")
    return thr, dis


def select_rows(L: np.ndarray, probs: np.ndarray, when: str) -> np.ndarray:
    """Row indices to escalate, least confident first."""
    thr, dis = parse_when(when)
    conf = probs.max(1)
    mask = np.zeros(len(L), dtype=bool)
    if thr is not None:
        mask |= conf < thr
    if dis:
        voted = np.where(L == ABSTAIN, -1, L)
        hi = np.where(L == ABSTAIN, -10**9, voted).max(1)
        lo = np.where(L == ABSTAIN, 10**9, voted).min(1)
        mask |= (hi != lo) & (hi >= 0) & (lo < 10**9)
    idx = np.where(mask)[0]
    return idx[np.argsort(conf[idx], kind="stable")]


def escalate(ctx, task, rows: list[dict[str, Any]], L: np.ndarray, probs: np.ndarray, cfg) -> tuple[Votes | None, dict[str, Any]]:
    """Run the strong model's labeler on selected rows; its votes become one more matrix column."""
    from agentlab.labeling.labelers import PromptLabeler, PromptLabelerConfig

    idx = select_rows(L, probs, cfg.when)
    candidates = len(idx)
    if cfg.max_rows is not None:
        idx = idx[: cfg.max_rows]
    kwargs = {"model": cfg.to, "name": f"escalate@{cfg.to}"}
    if cfg.prompt:
        kwargs["prompt"] = cfg.prompt
    lab = PromptLabeler(PromptLabelerConfig(type="prompt", **kwargs), task.space, len(task.labelers), task)
    cap = CostCap(ctx, ctx.resolve_model(cfg.to), cfg.max_cost_usd)
    out = Votes.single(lab.name, len(rows))
    done, stopped = 0, "done"
    while done < len(idx):
        n = cap.affordable(CHUNK)
        if n == 0:
            stopped = "max_cost_usd"
            break
        part = idx[done : done + n]
        cap.sending(len(part))
        votes = lab.label(ctx, [rows[i] for i in part])
        cap.sent(len(part), failed=votes.faults[0])
        out.votes[part, 0], out.confidence[part, 0] = votes.votes[:, 0], votes.confidence[:, 0]
        for j, i in enumerate(part):
            out.raw[0][i] = votes.raw[0][j]
        out.faults[0] += votes.faults[0]
        done += len(part)
    if stopped == "done" and cfg.max_rows is not None and candidates > cfg.max_rows:
        stopped = "max_rows"
    info = {"candidates": int(candidates), "escalated": int(done), **cap.summary(),
            "stopped_by": stopped, "model": cfg.to, "when": cfg.when}
    ctx.report += ["## Escalation", f"{done} of {candidates} candidate rows sent to `{cfg.to}` "
                   f"(cost ${info['cost_usd']:.4f}; stopped by {stopped}).", ""]
    log.info("escalation: %s", info)
    return (out if done else None), info


CHUNK = 16  # rows per escalation batch (fewer near the cost cap)
LEDGER = "escalation_spend.json"


class CostCap:
    """`escalate.max_cost_usd` over a run and all its resumes.

    The spend is what the escalation's answers cost, whether they were paid now or served from the call
    cache (a cached result carries what it cost when it was made), so a resumed run walks the rows it
    already paid for and stops where an uninterrupted run would. Where the cache cannot replay them
    (`output.cache: none`, `--fresh`) the spend is what was paid, summed over every invocation. Both come
    with a ledger in the run directory (`escalation_spend.json`), which also remembers the batch that was
    in flight when a run was killed: those calls may have been paid without an answer, so they count at
    the highest cost per row seen.

    Args:
        ctx: the run context (its stats, cache and run directory).
        model: the model rows escalate to (a name under `models:`).
        max_usd: the cap, or None for no cap (the spend is still recorded).
    """

    def __init__(self, ctx, model: str, max_usd: float | None):
        self.ctx, self.model, self.max_usd = ctx, model, max_usd
        self.replay = ctx.cache.path is not None and not ctx.fresh
        self._start = self._costs()
        led = self._read().get(model, {})
        self.paid_before = float(led.get("paid_usd", 0.0))
        self.per_row: float | None = led.get("per_row_usd")
        # a batch in flight when the last invocation died: maybe paid, never answered
        self.lost = float(led.get("lost_usd", 0.0)) + led.get("in_flight_rows", 0) * (self.per_row or 0.0)
        self._chunk_start = self._start
        self._write(in_flight=0)

    # -- accounting ----------------------------------------------------------------------------------------
    def _costs(self) -> tuple[float, float]:
        s = self.ctx.stats.get(self.model)
        return (s.cost_usd, s.cached_cost_usd) if s else (0.0, 0.0)

    def paid_now(self) -> float:
        """USD paid for escalation calls in this invocation."""
        return self._costs()[0] - self._start[0]

    def spent(self) -> float:
        """USD that count against the cap: this run's escalation answers, over all its invocations."""
        fresh, cached = (now - then for now, then in zip(self._costs(), self._start))
        return (fresh + cached if self.replay else self.paid_before + fresh) + self.lost

    def affordable(self, chunk: int) -> int:
        """How many rows the next batch may hold (0: stop). The first batch is one row: it measures the cost."""
        if self.max_usd is None:
            return chunk
        left = self.max_usd - self.spent()
        if left <= 0:
            return 0
        if self.per_row is None:
            return 1
        return chunk if self.per_row == 0 else max(0, min(chunk, int(left / self.per_row + 1e-9)))

    def sending(self, n: int) -> None:
        """Record a batch of `n` rows as in flight before its calls go out."""
        self._chunk_start = self._costs()
        self._write(in_flight=n)

    def sent(self, n: int, failed: int) -> None:
        """A batch came back: learn the highest cost per answered row, record what was paid."""
        cost = sum(now - then for now, then in zip(self._costs(), self._chunk_start))
        if n > failed:  # failed calls usually cost nothing: they must not lower the estimate
            self.per_row = max(self.per_row or 0.0, cost / (n - failed))
        flush = getattr(self.ctx.cache, "flush", None)
        if flush is not None:  # the batch's answers are on disk before the ledger says it is done
            flush()
        self._write(in_flight=0)

    def summary(self) -> dict[str, Any]:
        """manifest metrics.escalation: the spend so far (all invocations), this invocation's, and the cap."""
        return {"cost_usd": round(self.spent(), 6), "cost_usd_this_invocation": round(self.paid_now(), 6),
                "max_cost_usd": self.max_usd}

    # -- the ledger in the run directory ----------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        run = self.ctx.run_dir
        if run is None or not run.path(LEDGER).is_file():
            return {}
        try:
            data = json.loads(run.path(LEDGER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("escalation: %s is unreadable; counting only the cached answers' cost", LEDGER)
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, in_flight: int) -> None:
        if self.ctx.run_dir is None:
            return
        data = self._read()
        data[self.model] = {"paid_usd": self.paid_before + self.paid_now(), "lost_usd": self.lost,
                            "in_flight_rows": in_flight, "per_row_usd": self.per_row}
        self.ctx.run_dir.write_json(LEDGER, data)
