"""Accuracy, performance gap recovered (PGR) and the w2s report table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: a ceiling-minus-weak gap at or below this is "no gap": PGR is reported as null
MIN_GAP = 1e-9
#: table order and one-line meaning of every variant
DESCRIPTIONS = {
    "weak": "weak student alone (half 1, gold, no debate): the PGR floor",
    "weak_ensemble": "weak ensemble without debate (mean of the members' probabilities)",
    "weak_debate": "one weak student with the debate transcript appended",
    "weak_debate_ensemble": "weak ensemble with debate transcripts",
    "debate_judge": "the debate's judge on the first transcript (zero-shot, no training)",
    "w2s_weak": "strong student on the weak student's soft labels (half 2)",
    "w2s_ensemble": "strong student on the no-debate ensemble's soft labels",
    "w2s_debate_ensemble": "strong student on the debate ensemble's soft labels (the method)",
    "w2s_debate_ensemble_aux": "the same + auxiliary confidence loss",
    "ceiling": "strong student on gold (half 2): the PGR ceiling",
}


def accuracy(probs: np.ndarray, targets: list[int]) -> float | None:
    """Share of rows whose most likely class is the target (None for no rows)."""
    import numpy as np

    if len(targets) == 0:
        return None
    return round(float(np.mean(np.argmax(probs, axis=1) == np.asarray(targets))), 6)


def decision_accuracy(decisions: list[str | None], targets: list[int], classes: list[str]) -> float | None:
    """Share of rows whose decision is the target class; an undecided row (None) counts as wrong."""
    if not targets:
        return None
    return round(sum(d is not None and d == classes[t] for d, t in zip(decisions, targets)) / len(targets), 6)


def pgr(acc: float | None, weak: float | None, ceiling: float | None) -> float | None:
    """(acc − weak) / (ceiling − weak); None when an accuracy is missing or the gap is not positive."""
    if acc is None or weak is None or ceiling is None or ceiling - weak <= MIN_GAP:
        return None
    return round((acc - weak) / (ceiling - weak), 6)


def gap_note(weak: float | None, ceiling: float | None) -> str | None:
    """Why every PGR is null, or None when they are defined."""
    if weak is None or ceiling is None:
        return "PGR is null: the weak or the ceiling accuracy is missing"
    if ceiling - weak <= MIN_GAP:
        return (f"PGR is null: the strong ceiling ({ceiling:.4f}) does not beat the weak student ({weak:.4f}), "
                "so there is no gap to recover (use more data, more epochs or a stronger strong student)")
    return None


def table(accs: dict[str, float | None]) -> dict[str, dict[str, float | None]]:
    """`metrics.w2s`: variant -> {accuracy, pgr}, PGR against `weak` and `ceiling`, in table order."""
    weak, ceiling = accs.get("weak"), accs.get("ceiling")
    order = [k for k in DESCRIPTIONS if k in accs] + [k for k in accs if k not in DESCRIPTIONS]
    return {k: {"accuracy": accs[k], "pgr": pgr(accs[k], weak, ceiling)} for k in order}


def render(metrics: dict[str, dict[str, Any]], info: dict[str, Any]) -> list[str]:
    """The report section: sizes, the PGR table, the gap note."""
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    sizes = info["sizes"]
    lines = ["## Weak-to-strong with debate",
             (f"Rows: half 1 {sizes['half1']} (weak students, gold), half 2 {sizes['half2']} (strong students, weak labels), "
              f"test {sizes['test']} (every accuracy); {sizes.get('skipped', 0)} row(s) without usable gold. "
              f"Weak `{info['weak_base']}` × {info['ensemble']} per ensemble; strong `{info['strong_base']}`; "
              f"{info['debate_samples']} debate sample(s) per row."),
             "PGR = (acc − acc(weak)) / (acc(ceiling) − acc(weak)); `weak` is 0 and `ceiling` 1 by definition.", "",
             "| variant | accuracy | PGR | what |", "|---|---|---|---|"]
    lines += [f"| {k} | {fmt(m['accuracy'])} | {fmt(m['pgr'])} | {DESCRIPTIONS.get(k, '')} |" for k, m in metrics.items()]
    if info.get("pgr_note"):
        lines += ["", info["pgr_note"]]
    return lines + [""]
