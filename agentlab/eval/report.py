"""The human-readable report (report.md)."""

from __future__ import annotations

import json
from typing import Any


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def render_report(manifest: dict[str, Any], recipe, ctx, rows: list[dict[str, Any]]) -> str:
    """Markdown: what ran, counts, usage, caveats, task sections, metrics, a few sample rows."""
    c, u = manifest["counts"], manifest["usage"]
    out = [f"# Run `{recipe.name}`", ""]
    if recipe.description:
        out += [recipe.description, ""]
    out += [
        f"Task **{manifest['task']}** over **{c['rows']}** rows from `{recipe.source.path}`; recipe hash `{manifest['recipe_hash'][:12]}`.",
        "",
        "## Counts",
        _table(["rows", "llm_calls", "cache_hits", "repaired", "failed", "failed_rows"],
               [[c["rows"], c["llm_calls"], c["cache_hits"], c["repaired"], c["failed"], c["failed_rows"]]]),
        "",
        f"Tokens: {u['prompt_tokens']} in, {u['completion_tokens']} out; cost ${u['cost_usd']:.4f}. "
        f"Time: {manifest['timings'].get('total', 0):.1f}s.",
        "",
        "## Models",
        _table(["name", "backend", "calls", "cache hits", "repaired", "failed"],
               [[n, m["config"].get("backend"), m["llm_calls"], m["cache_hits"], m["repaired"], m["failed"]] for n, m in manifest["models"].items()]),
        "",
    ]
    caveats = manifest.get("caveats", ctx.caveats)  # the task's own caveat first (outputs.run_caveats)
    if caveats:
        out += ["## Caveats", *[f"- {c}" for c in caveats], ""]
    out += ctx.report
    if manifest["metrics"]:
        out += ["## Metrics", "```json", json.dumps(manifest["metrics"], indent=2, default=str)[:20000], "```", ""]
    out += ["## Sample rows", "```json"]
    out += [json.dumps({k: v for k, v in r.items() if not k.startswith("_")}, ensure_ascii=False, default=str)[:600] for r in rows[:5]]
    out += ["```", ""]
    return "\n".join(out)
