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
        agg = ctx.recipe.aggregate if ctx.recipe is not None and ctx.recipe.aggregate else None
        cols = [lab.label(ctx, rows) for lab in self.labelers]
        L, W, names = _stack(cols)
        probs, used = self.fit_label_model(ctx, L, W, agg, names)
        esc = ctx.recipe.escalate if ctx.recipe is not None else None
        if esc is not None:
            from agentlab.labeling.escalate import escalate

            extra, info = escalate(ctx, self, rows, L, probs, esc)
            if extra is not None:
                cols.append(extra)
                L, W, names = _stack(cols)
                probs, used = self.fit_label_model(ctx, L, W, agg, names)
            ctx.metrics["escalation"] = info
        self.L, self.W, self.names, self.used = L, W, names, used
        self._save(ctx, L, names, cols)
        return [self._row(r, i, L, W, names, probs, cols) for i, r in enumerate(rows)]

    def fit_label_model(self, ctx, L, W, agg, names: list[str]) -> tuple[np.ndarray, str]:
        """Fit the label model(s) on L, with the gold rows of `aggregate.dev` / `task.seed` voted on by
        the same labelers and appended (they pick the model, then are dropped); report the choice.
        Returns the probabilities of L's rows and the name of the model used."""
        gold_rows, gold, Lg, Wg = self._vote_gold(ctx, agg)
        self._gold_texts = {str(r.get("text")) for r in gold_rows}
        n = len(L)
        if gold_rows:
            pad = L.shape[1] - Lg.shape[1]  # the escalation column: no escalated votes on gold rows
            Lg = np.concatenate([Lg, np.full((len(Lg), pad), ABSTAIN, dtype=Lg.dtype)], 1)
            Wg = np.concatenate([Wg, np.full((len(Wg), pad), np.nan)], 1)
            L = np.concatenate([np.asarray(L), Lg.astype(np.asarray(L).dtype)])
            W = None if W is None else np.concatenate([np.asarray(W, dtype=float), Wg])  # None: no labeler gives any
        y = np.concatenate([np.full(n, ABSTAIN), gold]) if gold_rows else None
        probs, used = self._aggregate(L, W, agg, y)
        self.probs = {m: p[:n] for m, p in self.probs.items()}
        self._n_gold = len(gold_rows)
        return probs[:n], used

    def _vote_gold(self, ctx, cfg) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(rows, gold, L, W) of the gold rows, voted on by the labelers. Dev rows must be votable
        (a labeler that cannot read them is an error); seed rows are skipped, with a note, when a
        labeler cannot vote on them (e.g. a precomputed column the seed file lacks)."""
        dev_rows, dev_gold = self._gold_rows(cfg, seed=False)
        seed_rows, seed_gold = self._gold_rows(cfg, seed=True)
        self._seed_note = self._seed_problem(ctx, seed_rows) if seed_rows else None
        if seed_rows and self._seed_note is None:
            try:
                Ls, Ws, _ = _stack([lab.label(ctx, seed_rows) for lab in self.labelers])
            except Exception as e:
                self._seed_note = f"task.seed rows were not used to choose the label model: {e}"
        if self._seed_note is not None:
            seed_rows, seed_gold = [], seed_gold[:0]
        parts = []
        if dev_rows:
            parts.append(_stack([lab.label(ctx, dev_rows) for lab in self.labelers])[:2])
        if seed_rows:
            parts.append((Ls, Ws))
        if not parts:
            return [], np.zeros(0, dtype=np.int64), None, None
        return (dev_rows + seed_rows, np.concatenate([dev_gold, seed_gold]),
                np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    def _seed_problem(self, ctx, seed_rows: list[dict[str, Any]]) -> str | None:
        """Why the seed rows cannot serve as gold rows, found by the labelers that read arbitrary
        columns (precomputed, python) before any LLM call is spent on them; None if they can."""
        for lab in self.labelers:
            if lab.config.type in ("precomputed", "python"):
                try:
                    lab.label(ctx, seed_rows)
                except Exception as e:
                    return f"task.seed rows were not used to choose the label model: {e}"
        return None

    def gold_row_calls(self, ctx) -> list:
        """The LLM calls voting on the gold rows (aggregate.dev, task.seed) adds, for `agentlab plan`."""
        agg = ctx.recipe.aggregate if ctx.recipe is not None and ctx.recipe.aggregate else None
        dev_rows, _ = self._gold_rows(agg, seed=False)
        seed_rows, _ = self._gold_rows(agg, seed=True)
        if seed_rows and self._seed_problem(ctx, seed_rows) is not None:
            seed_rows = []
        gold_rows = dev_rows + seed_rows
        return [p for lab in self.labelers for p in lab.planned_calls(ctx, gold_rows)] if gold_rows else []

    def _gold_rows(self, cfg, seed: bool) -> tuple[list[dict[str, Any]], np.ndarray]:
        """Labeled rows that pick the label model: `aggregate.dev`, or `task.seed` (`aggregate.seed_gold`)."""
        from agentlab.sources import load_rows

        rows: list[dict[str, Any]] = []
        gold: list[int] = []
        if not seed and cfg is not None and cfg.dev is not None:
            dev = cfg.dev
            loaded = load_rows(SourceConfig(**dev.model_dump(exclude={"gold"})), self._recipe.resolve(dev.path),
                               where="aggregate.dev")
            if loaded and dev.gold not in loaded[0]:
                raise ConfigError(f"aggregate.dev.gold: column {dev.gold!r} not in {dev.path}; "
                                  f"use one of: {', '.join(sorted(map(str, loaded[0])))}")
            usable = [r for r in loaded if self.space.index(r.get(dev.gold)) != ABSTAIN]
            rows += usable
            gold += [self.space.index(r[dev.gold]) for r in usable]
        if seed and self.config.seed is not None and (cfg is None or cfg.seed_gold):
            if self._seed_rows is None:
                self._seed_rows = self._load_seed()
            lf = self.config.seed.label_field
            rows += self._seed_rows
            gold += [self.space.index(r[lf]) for r in self._seed_rows]
        return rows, np.asarray(gold, dtype=np.int64)

    def planned_calls(self, ctx, rows):
        """Every labeler's calls, plus escalation's as an upper bound (which rows escalate depends on the votes)."""
        self._recipe = ctx.recipe
        out = [p for lab in self.labelers for p in lab.planned_calls(ctx, rows)]
        out += self.gold_row_calls(ctx)  # the labelers also vote on the gold rows that pick the model
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

    def _aggregate(self, L, W, cfg, gold=None):
        from agentlab.labeling.aggregators import AGGREGATORS, available_names

        method = cfg.method if cfg else "auto"
        methods = available_names() if method == "all" else [method]
        used = (cfg.use or "auto") if method == "all" else method
        if used not in methods:
            methods.append(used)
        prior = self._prior(cfg)
        self.probs, self.models = {}, {}
        # vote confidences (NaN = none, counted as 1); None when no labeler gives any: nothing to build
        # (a streaming run's 1M x 32 matrix of NaNs would be 256 MB, twice over)
        Wc = None if W is None else np.nan_to_num(np.asarray(W, dtype=float), nan=1.0)
        for m in methods:
            kw = dict(seed=cfg.seed, max_iter=cfg.max_iter, tol=cfg.tol, tie_break=cfg.tie_break) if cfg else {}
            model = AGGREGATORS.get(m)(cardinality=len(self.space.names), class_prior=prior, **kw)
            if m == "auto":
                model.fit(L, Wc, gold=gold)
            else:
                model.fit(L, Wc) if m == "weighted" else model.fit(L)
            self.models[m], self.probs[m] = model, model.predict_proba(L)
        return self.probs[used], used

    def _group_of(self, names: list[str]) -> dict[str, str]:
        """Labeler name -> correlated group (g1, g2, ...) as found for the label model used."""
        model = self.models.get(self.used)
        groups = (getattr(model, "selection_", None) or {}).get("groups") or getattr(model, "groups_", None) or []
        return {names[j]: f"g{i}" for i, g in enumerate(groups, 1) for j in g}

    def _save_selection(self, ctx, names: list[str], n_gold: int) -> None:
        """Which model `auto` picked and why, and the groups of correlated labelers, for manifest and report."""
        model = self.models.get("auto")
        if model is None or not getattr(model, "selection_", None):
            return
        sel = dict(model.selection_)
        sel["groups"] = [[names[j] for j in g] for g in sel.get("groups") or []]
        ctx.metrics["aggregate_selection"] = sel
        lines = ["## Label model choice", f"`auto` picked **{sel['picked']}**: {sel['reason']}."]
        if sel["groups"]:
            lines.append("Correlated labelers (counted as one): " + "; ".join(", ".join(g) for g in sel["groups"]) + ".")
        if getattr(self, "_seed_note", None):
            lines.append(self._seed_note + ".")
        if n_gold:
            lines.append(f"{n_gold} labeled rows (aggregate.dev / task.seed) were voted on to choose; they are not "
                         "in the output and not scored.")
            if any(getattr(lab.config, "examples", 0) for lab in self.labelers) and self.config.seed is not None:
                lines.append("Few-shot labelers saw some seed rows in their prompts, so their votes on those rows "
                             "look better than they are; prefer a separate `aggregate.dev` file.")
        ctx.report += [*lines, ""]

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
        group_of = self._group_of(names)
        for row in table:
            row["faults"] = faults.get(row["name"], 0)
            if group_of:
                row["group"] = group_of.get(row["name"])
        ctx.metrics["labelers"] = table
        self._save_selection(ctx, names, getattr(self, "_n_gold", 0))
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
        if getattr(self, "_gold_texts", None) and rows is not None:  # never score a row that also chose the model
            known &= np.array([str(r.get("text")) not in self._gold_texts for r in rows], dtype=bool)
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
