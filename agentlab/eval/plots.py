"""Calibration plots saved as PNG: a reliability diagram and a risk–coverage curve.

matplotlib is imported lazily and drawn through its Agg canvas directly (no pyplot), so the
plots work headless and never change the caller's matplotlib backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentlab.eval.metrics import (
    expected_calibration_error,
    reliability_bins,
    risk_coverage,
)


def _figure(size=(4.5, 4.5)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def reliability_diagram(y: Any, probs: Any, path: str | Path, bins: int = 10, title: str = "Reliability") -> Path:
    """Accuracy vs confidence per bin (bars), the diagonal, and the ECE in the title.

    Args:
        y: (n,) gold classes. probs: (n, k) probabilities. path: PNG to write (parents created).

    Returns:
        The path written.
    """
    stats = reliability_bins(y, probs, bins)
    ece = expected_calibration_error(y, probs, bins)
    fig, ax = _figure()
    edges = stats["edges"]
    width = edges[1] - edges[0]
    filled = stats["count"] > 0
    ax.bar(edges[:-1][filled], stats["accuracy"][filled], width=width, align="edge",
           edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.plot(stats["confidence"][filled], stats["accuracy"][filled], "o", color="C1", label="bin mean")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=f"{title} (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def risk_coverage_curve(y: Any, probs: Any, path: str | Path, title: str = "Risk–coverage") -> Path:
    """Error rate among the most confident rows vs the fraction kept, with the AURC in the title.

    Returns:
        The path written.
    """
    rc = risk_coverage(y, probs)
    fig, ax = _figure()
    ax.plot(rc["coverage"], rc["risk"], color="C0")
    ax.set(xlim=(0, 1), ylim=(0, max(0.05, float(rc["risk"].max()) * 1.1) if len(rc["risk"]) else 1),
           xlabel="coverage", ylabel="risk (error rate)", title=f"{title} (AURC {rc['aurc']:.3f})")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def grouped_bars(groups: list[str], series: dict[str, list[float]], path: str | Path, title: str = "",
                 ylabel: str = "", ylim: tuple[float, float] | None = (0, 1)) -> Path:
    """One group of bars per entry of `groups`, one bar per series (e.g. accuracy per category and model).

    Returns:
        The path written.
    """
    fig, ax = _figure(size=(max(4.5, 0.9 * len(groups) * max(1, len(series)) ** 0.5 + 2), 4.5))
    width = 0.8 / max(1, len(series))
    for j, (name, values) in enumerate(series.items()):
        ax.bar([i + j * width for i in range(len(groups))], values, width=width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))])
    ax.set_xticklabels([g if len(g) <= 24 else g[:22] + "…" for g in groups], rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8)
    return _save(fig, path)


def line_plot(x: list[float], series: dict[str, list[float | None]], path: str | Path, title: str = "",
              xlabel: str = "", ylabel: str = "") -> Path:
    """One line (with markers) per series over `x`; None values are gaps.

    Returns:
        The path written.
    """
    fig, ax = _figure(size=(5.5, 4))
    for name, values in series.items():
        pts = [(a, b) for a, b in zip(x, values) if b is not None]
        ax.plot([a for a, _ in pts], [b for _, b in pts], marker="o", label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if all(float(a).is_integer() for a in x):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
