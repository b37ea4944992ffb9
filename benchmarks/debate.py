"""Debate vs single judge on WRENCH YouTube spam (recipes/debate_spam.yaml, embedded model, offline).

Runs the recipe once and prints, from that one run: accuracy / precision / recall / F1 / Cohen's kappa
of the debate, of the debate with the speaking order swapped, and of the single-prompt judge (same
model, definition and examples, no debate), plus position consistency and the run's cost.

Usage: python benchmarks/debate.py [--limit N] [--recipe recipes/debate_spam.yaml] [--data-dir ../shared/data]
       [--out /tmp/agentlab-bench/debate] [--fresh]
"""

from __future__ import annotations

from _recipe_bench import main

KEYS = ("accuracy", "precision", "recall", "f1", "kappa", "coverage")


def table(manifest: dict) -> str:
    """The comparison table and the position-bias line, from one manifest."""
    m = manifest["metrics"]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    lines = ["| annotator | " + " | ".join(KEYS) + " | n |", "|---|" + "---|" * (len(KEYS) + 1)]
    for name in ("debate", "debate_swapped", "single_judge"):
        if name in m:
            lines.append(f"| {name} | " + " | ".join(fmt(m[name][k]) for k in KEYS) + f" | {m[name]['n']} |")
    pb = m.get("position_bias")
    if pb:
        lines.append(f"\nposition consistency: {fmt(pb['consistency'])} ({pb['n'] - pb['changed']} of {pb['n']} rows kept "
                     f"their decision when the speaking order was reversed; bias rate {fmt(pb['rate'])})")
    run = m.get("debate_run", {})
    lines.append(f"judge mode: {run.get('judge_mode')}; decided by refusal: {run.get('decided_by_refusal')}; "
                 f"undecided: {run.get('undecided')}")
    return "\n".join(lines)


if __name__ == "__main__":
    main(__doc__, "recipes/debate_spam.yaml", "wrench/youtube/test.json", "rows", "/tmp/agentlab-bench/debate", table)
