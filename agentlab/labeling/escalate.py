"""Escalation: send the rows the label model is unsure about to a stronger model, within a row and cost cap."""

from __future__ import annotations

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
    name = ctx.resolve_model(cfg.to)
    start_cost = _spent(ctx, name, 0.0)
    out = Votes.single(lab.name, len(rows))
    done, stopped, chunk = 0, "done", 16
    while done < len(idx):
        spent = _spent(ctx, name, start_cost)
        if cfg.max_cost_usd is not None:
            per_row = spent / done if done else 0.0
            if spent >= cfg.max_cost_usd or (per_row and spent + per_row > cfg.max_cost_usd):
                stopped = "max_cost_usd"
                break
            # the first row measures the cost of one call; later chunks fit what is left of the budget
            n = 1 if not done else chunk if not per_row else max(1, min(chunk, int((cfg.max_cost_usd - spent) / per_row)))
        else:
            n = chunk
        part = idx[done : done + n]
        votes = lab.label(ctx, [rows[i] for i in part])
        out.votes[part, 0], out.confidence[part, 0] = votes.votes[:, 0], votes.confidence[:, 0]
        for j, i in enumerate(part):
            out.raw[0][i] = votes.raw[0][j]
        out.faults[0] += votes.faults[0]
        done += len(part)
    if stopped == "done" and cfg.max_rows is not None and candidates > cfg.max_rows:
        stopped = "max_rows"
    info = {"candidates": int(candidates), "escalated": int(done), "cost_usd": round(_spent(ctx, name, start_cost), 6),
            "stopped_by": stopped, "model": cfg.to, "when": cfg.when}
    ctx.report += ["## Escalation", f"{done} of {candidates} candidate rows sent to `{cfg.to}` "
                   f"(cost ${info['cost_usd']:.4f}; stopped by {stopped}).", ""]
    log.info("escalation: %s", info)
    return (out if done else None), info


def _spent(ctx, name: str, start: float) -> float:
    s = ctx.stats.get(name)
    return (s.cost_usd - start) if s else 0.0
