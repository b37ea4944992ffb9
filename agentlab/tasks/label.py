"""`label`: many noisy labelers vote, a label model aggregates, uncertain rows escalate (METHODS.md §1, §2)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from agentlab.config.sections import SourceConfig
from agentlab.errors import ConfigError
from agentlab.labeling.base import ABSTAIN, LABELERS, LabelSpace, Votes
from agentlab.tasks.base import TASKS, Task, TaskConfig

log = logging.getLogger("agentlab")
EMBEDDED_CAVEAT = ("LLM labelers on the embedded SmolLM2-135M are weak voters on their own; judge them by the LF "
                   "table, not by hope.")


class SeedConfig(SourceConfig):
    """A small labeled file for few-shot examples (never the rows being labeled)."""

    label_field: str = Field("label", description="Column with the gold class name (or index into task.classes).")


class LabelConfig(TaskConfig):
    """Weak labeling: labelers -> label matrix -> label model -> probabilistic labels."""

    type: Literal["label"] = "label"
    classes: list[str] | dict[str, str] = Field(description="Class names, or a mapping name -> description (fed to prompts and the embedding labeler).")
    labelers: list[dict[str, Any]] = Field(description="Labelers, each `{type: prompt|keywords|regex|embedding|precomputed|python, ...}`.")
    seed: SeedConfig | None = Field(None, description="Labeled seed file for few-shot examples (`examples:` on prompt labelers).")

    nested_registries: ClassVar[dict] = {"labelers": LABELERS}

    @field_validator("classes")
    @classmethod
    def _classes(cls, v):
        names = list(v)
        if len(names) < 2:
            raise ValueError("needs at least two classes")
        if len({n.lower() for n in names}) != len(names):
            raise ValueError("class names must be unique (case-insensitive)")
        return v

    @field_validator("labelers")
    @classmethod
    def _labelers(cls, v):
        if not v:
            raise ValueError("needs at least one labeler")
        return v


@TASKS.register("label")
class LabelTask(Task):
    """Weak labels with an honest estimate of how good they are."""

    config_cls = LabelConfig
    template_names: ClassVar[dict[str, str]] = {
        "row": "the whole row", "classes": "the class list [{name, description}]", "class_names": "the class names",
        "examples": "the few-shot examples from task.seed"}

    def __init__(self, config: LabelConfig):
        super().__init__(config)
        c = config.classes
        self.space = LabelSpace(list(c), dict(c) if isinstance(c, dict) else {})
        self.labelers = [LABELERS.get(lc.type)(lc, self.space, i, self) for i, lc in enumerate(config.labelers)]
        self._seed_rows: list[dict[str, Any]] | None = None
        self.probs: dict[str, np.ndarray] = {}

    # -- few-shot examples -------------------------------------------------------------
    def examples(self, k: int, seed: int) -> list[dict[str, str]]:
        """k labeled examples from `task.seed`, stratified by class, seeded."""
        from agentlab.labeling.labelers import stratified_sample

        if self.config.seed is None:
            raise ConfigError("a prompt labeler asks for `examples` but the task has no `seed:` file of labeled rows")
        if self._seed_rows is None:
            self._seed_rows = self._load_seed()
        lf = self.config.seed.label_field
        picked = stratified_sample(self._seed_rows, k, lambda r: self.space.index(r[lf]), seed)
        return [{"text": r["text"], "label": self.space.names[self.space.index(r[lf])]} for r in picked]

    def _load_seed(self) -> list[dict[str, Any]]:
        """The seed file's rows whose label is one of the classes; a missing column or no usable row is an error."""
        from agentlab.errors import DataError, RecipeError, RecipeErrors
        from agentlab.sources import load_rows

        cfg = self.config.seed
        path = self._recipe.resolve(cfg.path)
        rows = load_rows(SourceConfig(**cfg.model_dump(exclude={"label_field"})), path, where="task.seed")
        for field, col in (("label_field", cfg.label_field), ("text_field", "text")):
            if col not in rows[0]:
                raise RecipeErrors([RecipeError(f"task.seed.{field}", f"column not in {path.name}", col,
                                                f"use one of: {', '.join(sorted(map(str, rows[0])))}")])
        usable = [r for r in rows if self.space.index(r.get(cfg.label_field)) != ABSTAIN]
        if not usable:
            seen = sorted({str(r.get(cfg.label_field)) for r in rows})[:5]
            raise DataError(path, f"no row's {cfg.label_field!r} is one of the classes (seen: {', '.join(seen)})",
                            field="task.seed.label_field", fix=f"label seed rows with {', '.join(self.space.names)} or their index")
        return usable

    def preflight(self, ctx, rows):
        """Every labeler's preflight (prompt labelers render the first row and read the seed file)."""
        self._recipe = ctx.recipe
        for lab in self.labelers:
            lab.preflight(ctx, rows)

    # -- run ------------------------------------------------------------------------------
    def run(self, ctx, rows):
        self._recipe = ctx.recipe
        ctx.classes = self.space.names
        cols = [lab.label(ctx, rows) for lab in self.labelers]
        L, W, names = _stack(cols)
        agg = ctx.recipe.aggregate if ctx.recipe is not None and ctx.recipe.aggregate else None
        probs, used = self._aggregate(L, W, agg)
        esc = ctx.recipe.escalate if ctx.recipe is not None else None
        if esc is not None:
            from agentlab.labeling.escalate import escalate

            extra, info = escalate(ctx, self, rows, L, probs, esc)
            if extra is not None:
                cols.append(extra)
                L, W, names = _stack(cols)
                probs, used = self._aggregate(L, W, agg)
            ctx.metrics["escalation"] = info
        self.L, self.W, self.names, self.used = L, W, names, used
        self._save(ctx, L, names, cols)
        return [self._row(r, i, L, W, names, probs, cols) for i, r in enumerate(rows)]

    def planned_calls(self, ctx, rows):
        """Every labeler's calls, plus escalation's as an upper bound (which rows escalate depends on the votes)."""
        self._recipe = ctx.recipe
        out = [p for lab in self.labelers for p in lab.planned_calls(ctx, rows)]
        esc = ctx.recipe.escalate if ctx.recipe is not None else None
        if esc is not None:
            from agentlab.labeling.labelers import PromptLabeler, PromptLabelerConfig

            kwargs = {"model": esc.to, "name": f"escalate@{esc.to}", **({"prompt": esc.prompt} if esc.prompt else {})}
            lab = PromptLabeler(PromptLabelerConfig(type="prompt", **kwargs), self.space, len(self.labelers), self)
            n = len(rows) if esc.max_rows is None else min(esc.max_rows, len(rows))
            for p in lab.planned_calls(ctx, rows[:n]):
                p.exact, p.upper_bound, p.desc = False, True, f"{p.desc} (at most; only uncertain rows escalate)"
                out.append(p)
        return out

    def _aggregate(self, L, W, cfg):
        from agentlab.labeling.aggregators import AGGREGATORS

        method = cfg.method if cfg else "dawid_skene"
        methods = [m for m in AGGREGATORS.names()] if method == "all" else [method]
        used = (cfg.use or "dawid_skene") if method == "all" else method
        prior = self._prior(cfg)
        self.probs, self.models = {}, {}
        for m in methods:
            kw = dict(seed=cfg.seed, max_iter=cfg.max_iter, tol=cfg.tol, tie_break=cfg.tie_break) if cfg else {}
            model = AGGREGATORS.get(m)(cardinality=len(self.space.names), class_prior=prior, **kw)
            model.fit(L, np.nan_to_num(W, nan=1.0)) if m == "weighted" else model.fit(L)
            self.models[m], self.probs[m] = model, model.predict_proba(L)
        return self.probs[used], used

    def _prior(self, cfg) -> np.ndarray | None:
        if cfg is None or cfg.class_prior is None:
            return None
        p = cfg.class_prior
        vec = np.array([p.get(n, 0.0) for n in self.space.names] if isinstance(p, dict) else p, dtype=float)
        if len(vec) != len(self.space.names) or vec.sum() <= 0:
            raise ConfigError(f"aggregate.class_prior must give one probability per class ({', '.join(self.space.names)})")
        return vec / vec.sum()

    def _row(self, row, i, L, W, names, probs, cols) -> dict[str, Any]:
        covered = bool((L[i] != ABSTAIN).any())
        p = probs[i]
        out = dict(row)
        out["label"] = self.space.names[int(p.argmax())] if covered else None
        out["label_probs"] = {n: round(float(x), 6) for n, x in zip(self.space.names, p)}
        out["confidence"] = round(float(p.max()), 6) if covered else 0.0
        out["votes"] = {n: (self.space.names[v] if v != ABSTAIN else None) for n, v in zip(names, L[i])}
        conf = {n: round(float(w), 4) for n, w in zip(names, W[i]) if not np.isnan(w)}
        if conf:
            out["vote_confidence"] = conf
        raw = {n: r[i] for c in cols for n, r in zip(c.names, c.raw) if r and r[i] is not None}
        if raw:
            out["labeler_raw"] = raw
        return out

    def _save(self, ctx, L, names, cols) -> None:
        if ctx.run_dir is None:
            return
        np.save(ctx.run_dir.path("label_matrix.npy"), L)
        ctx.run_dir.write_json("label_matrix.json", {"labelers": names, "classes": self.space.names, "abstain": ABSTAIN})
        ctx.artifacts.update(label_matrix="label_matrix.npy", label_matrix_columns="label_matrix.json")
        faults = {n: f for c in cols for n, f in zip(c.names, c.faults)}
        ctx.metrics["labeler_faults"] = faults
        from agentlab.labeling.analysis import lf_summary, summary_table_md

        gold = self._gold(ctx)
        est = self.models[self.used].labeler_accuracy()
        table = lf_summary(L, len(self.space.names), names, gold=gold, est_accuracy=est, class_names=self.space.names)
        for row in table:
            row["faults"] = faults.get(row["name"], 0)
        ctx.metrics["labelers"] = table
        ctx.report += ["## Labelers", summary_table_md(table), ""]
        if self._uses_embedded(ctx) and EMBEDDED_CAVEAT not in ctx.caveats:
            ctx.caveats.append(EMBEDDED_CAVEAT)

    def _uses_embedded(self, ctx) -> bool:
        """True when a labeler (or the escalation) runs on the embedded SmolLM2-135M (whatever its name says)."""
        models = {m for _, m in self.config.model_refs()}
        esc = ctx.recipe.escalate if ctx.recipe is not None else None
        if esc is not None:
            models.add(esc.to)
        return any(ctx.runs_embedded(m) for m in models)

    def _gold(self, ctx) -> np.ndarray | None:
        if not ctx.gold:
            return None
        return np.array([self.space.index(g) for g in ctx.gold])

    def evaluate(self, ctx, rows):
        """Per aggregator: accuracy, macro_f1, coverage, ece on gold; plots for the aggregator used."""
        from agentlab.eval.metrics import classification_metrics

        gold = self._gold(ctx)
        known = gold != ABSTAIN
        if not known.any():
            return {}
        covered = (self.L != ABSTAIN).any(1)
        out: dict[str, Any] = {}
        for name, probs in self.probs.items():
            out[name] = classification_metrics(gold[known], probs[known], abstained=~covered[known])
        out["used"] = self.used
        self._plots(ctx, gold[known], self.probs[self.used][known])
        rows_md = [f"| {n} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['coverage']:.4f} | {m['ece']:.4f} |"
                   for n, m in out.items() if isinstance(m, dict)]
        ctx.report += ["## Label models vs gold", "| model | accuracy | macro_f1 | coverage | ece |", "|---|---|---|---|---|", *rows_md, ""]
        return out

    def _plots(self, ctx, y, probs) -> None:
        try:
            from agentlab.eval.plots import reliability_diagram, risk_coverage_curve

            reliability_diagram(y, probs, ctx.run_dir.path("reliability.png"))
            risk_coverage_curve(y, probs, ctx.run_dir.path("risk_coverage.png"))
        except Exception:  # plots are a convenience; metrics are already in the manifest
            log.warning("could not draw calibration plots", exc_info=True)
            return
        ctx.artifacts.update(reliability="reliability.png", risk_coverage="risk_coverage.png")
        ctx.report += ["![reliability diagram](reliability.png)", "", "![risk-coverage curve](risk_coverage.png)", ""]


def _stack(cols: list[Votes]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names: list[str] = []
    for c in cols:
        for n in c.names:
            names.append(n if n not in names else f"{n}#{len(names)}")
    return np.concatenate([c.votes for c in cols], 1), np.concatenate([c.confidence for c in cols], 1), names
