"""`triplets`: scene-graph triplets from captions or images, aligned to a vocabulary (LLM4SGG, METHODS.md §3).

Per caption row: extract with each chain (direct, paraphrase-then-extract), take the union, align
every entity and predicate to the vocabulary once per run (rules, LLM, embeddings), drop what did
not align, keep the globally rarest predicate per (subject, object), dedupe. Per image (rows
grouped by `source.group_by`): the union of its captions, finalised the same way, in
`images.jsonl`; the alignment table in `alignment.json`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from agentlab.config import StrictModel
from agentlab.errors import ConfigError
from agentlab.tasks.base import TASKS, Task, TaskConfig
from agentlab.triplets.text import as_dicts, from_dicts, parse_gold, unique

log = logging.getLogger("agentlab")
GOLD_FORMATS = ("factual", "json")
EMBEDDED_CAVEAT = ("The embedded SmolLM2-135M cannot write scene-graph triplets well: expect wrong subjects, "
                   "adjectives as predicates and hallucinated objects. Use it to check the pipeline, not for data; "
                   "point `task.model` at a stronger model for real labels.")


class VocabularyConfig(StrictModel):
    """Target vocabulary files (one class a line); a kind left out is open (terms pass through cleaned)."""

    entities: str | None = Field(None, description="File of entity classes, e.g. VG150's 150 objects.")
    predicates: str | None = Field(None, description="File of predicate classes, e.g. VG150's 50 relations.")


class AlignConfig(StrictModel):
    """How free-text terms are mapped to the vocabulary (after the rule pass, which always runs)."""

    llm: bool = Field(True, description="Ask a model to choose the closest vocabulary item (or none) for terms the rules left open.")
    mode: Literal["auto", "options", "choice"] = Field(
        "auto", description="options = score every item by log-likelihood (one call per term); choice = JSON answer "
        "for a batch of terms; auto = options where the backend scores options, else choice.")
    model: str | None = Field(None, description="Model for alignment (default: the task's model).")
    prompt: str = Field("prompts/triplets/align.jinja", description="Alignment template.")
    batch_size: int = Field(10, ge=1, description="Terms per request in choice mode.")
    shortlist: int | None = Field(
        None, ge=1, description="Options mode: score only the N vocabulary items nearest the term by MiniLM cosine (and "
        "none) instead of all of them; null = all. Scoring costs time per option token.")
    embedding_fallback: float | None = Field(
        None, ge=-1, le=1, description="Cosine threshold of the MiniLM nearest-neighbour fallback for terms still "
        "unaligned (also used to align gold for evaluation); null = off.")
    embedding_model: str = Field("minilm", description="`minilm` (offline) or a local sentence-transformers folder.")


class VerifyConfig(StrictModel):
    """The hybrid path: rules propose triplets, the model keeps, rejects and chooses them by log-likelihood."""

    prompt: str = Field("prompts/triplets/verify.jinja", description="Template of the yes/no check (variables: caption, fact).")
    keep_margin: float | None = Field(
        -1.0, description="A rule triplet is dropped when log P(yes) - log P(no) of its best option is below this; null = never dropped.")
    accept_margin: float = Field(
        1.0, description="A triplet the rules cannot decide alone (a modifier that may be part of a compound) is kept at or above this margin.")
    switch_margin: float = Field(
        1.0, ge=0, description="Another option (other subject or object noun) replaces the rule's pick when its margin is higher by this much.")


class TripletsConfig(TaskConfig):
    """Scene-graph triplets (subject, predicate, object) from captions or images."""

    type: Literal["triplets"] = "triplets"
    model: str = Field("default", description="Model name under `models:` for extraction (and alignment, unless align.model).")
    method: Literal["auto", "hybrid", "llm4sgg"] = Field(
        "auto", description="hybrid = rules propose candidate triplets and the model keeps, rejects and chooses among them by "
        "log-likelihood (no writing; text captions only); llm4sgg = the model writes triplets (the `chains`); auto = hybrid "
        "when `model` is the embedded SmolLM2-135M on text, else llm4sgg.")
    verify: VerifyConfig = Field(default_factory=VerifyConfig, description="The hybrid path's keep/reject/choose thresholds.")
    chains: list[Literal["direct", "paraphrase"]] = Field(
        ["direct", "paraphrase"], description="Extraction chains whose union is kept: `direct` and/or `paraphrase` "
        "(paraphrase the caption, or describe the image, then extract).")
    vocabulary: VocabularyConfig | None = Field(None, description="Target vocabulary; open vocabulary when absent.")
    align: AlignConfig = Field(default_factory=AlignConfig, description="Alignment to the vocabulary.")
    fine_grained_predicates: bool = Field(True, description="Per (subject, object) keep only the globally least frequent predicate.")
    reasoning: bool = Field(True, description="Chain of thought: the answer starts with one sentence of reasoning.")
    constrained: bool = Field(
        True, description="Constrain extraction answers to the JSON schema (grammar / structured output), with one retry. "
        "false: parse and json-repair the free answer, no retry (llama.cpp grammars make the embedded model ~3x slower, "
        "and the few-shot prompt already yields JSON).")
    image_field: str | None = Field(None, description="Column with an image path or URL: extract from the image (needs a backend with image support).")
    extract_prompt: str = Field("prompts/triplets/extract.jinja", description="Extraction template (few-shot chain of thought).")
    paraphrase_prompt: str = Field("prompts/triplets/paraphrase.jinja", description="Paraphrase template (paraphrase chain, text).")
    describe_prompt: str = Field("prompts/triplets/describe.jinja", description="Describe-the-image template (paraphrase chain, images).")
    max_tokens: int = Field(256, ge=16, description="Max tokens of an extraction answer.")
    paraphrase_max_tokens: int = Field(64, ge=8, description="Max tokens of a paraphrase or description.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy).")
    seed: int | None = Field(None, description="Sampling seed (default: the recipe seed).")

    @field_validator("chains")
    @classmethod
    def _chains(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("needs at least one chain: direct and/or paraphrase")
        if len(set(v)) != len(v):
            raise ValueError(f"chains repeat: {v}")
        return v


@TASKS.register("triplets")
class TripletsTask(Task):
    """Captions (or images) in, scene-graph triplets out: one row per caption, one graph per image."""

    config_cls = TripletsConfig

    def __init__(self, config: TripletsConfig):
        super().__init__(config)
        self.vocabs: dict[str, Any] = {}
        self.aligner: Any = None
        self.path: str | None = None
        self.candidates: list[list[dict[str, Any]]] | None = None  # the hybrid path's scored options per row
        self.rules: list[list[Any]] = []

    # -- setup ----------------------------------------------------------------------------------
    def _resolve(self, ctx, path: str) -> Path:
        return ctx.recipe.resolve(path) if ctx.recipe is not None else Path(path)

    def _check(self, ctx) -> None:
        """Fail before any call: a text-only backend with image_field, an unknown gold format."""
        cfg = self.config
        if cfg.image_field is not None and "images" not in ctx.backend(cfg.model).capabilities:
            name = ctx.resolve_model(cfg.model)
            backend = ctx.model_configs[name].backend
            raise ConfigError(f"task.image_field is set but model {name!r} (backend {backend!r}) does not accept images; "
                              "use an OpenAI-compatible VLM (backend: openai with a vision model) or vllm with a multimodal model")
        fmt = self._gold_format(ctx)
        if fmt is not None and fmt not in GOLD_FORMATS:
            raise ConfigError(f"eval.format {fmt!r} is not a triplet format; use one of: {', '.join(GOLD_FORMATS)}")

    @staticmethod
    def _gold_format(ctx) -> str | None:
        ev = getattr(ctx.recipe, "eval", None) if ctx.recipe is not None else None
        return getattr(ev, "format", None) if ev is not None else None

    def _load_vocabs(self, ctx) -> dict[str, Any]:
        from agentlab.triplets.align import Vocabulary

        voc = self.config.vocabulary
        files = {"entity": voc.entities, "predicate": voc.predicates} if voc else {}
        return {kind: Vocabulary.from_file(self._resolve(ctx, f), kind) for kind, f in files.items() if f}

    def _make_aligner(self, ctx):
        from agentlab.triplets.align import Aligner
        from agentlab.triplets.choose import LLMChooser

        a = self.config.align
        chooser = None
        if a.llm and self.vocabs:
            seed = self.config.seed if self.config.seed is not None else ctx.seed
            chooser = LLMChooser(ctx, a.model or self.config.model, ctx.load_prompt(a.prompt), a.mode, a.batch_size, seed=seed,
                                 shortlist=a.shortlist, embedding_model=a.embedding_model)
        return Aligner(self.vocabs, chooser, a.embedding_fallback, a.embedding_model)

    def _caveats(self, ctx) -> None:
        for name in {self.config.model, self.config.align.model or self.config.model}:
            if ctx.runs_embedded(name) and EMBEDDED_CAVEAT not in ctx.caveats:
                ctx.caveats.append(EMBEDDED_CAVEAT)

    # -- run ------------------------------------------------------------------------------------
    def run(self, ctx, rows):
        self._check(ctx)
        self.vocabs = self._load_vocabs(ctx)
        self.path, why = self._path(ctx)
        ctx.metrics["triplets_path"] = {"path": self.path, "why": why}
        self.candidates = None
        if self.path == "hybrid":
            chains = self._hybrid(ctx, rows)
        else:
            self._caveats(ctx)
            chains = self._llm4sgg(ctx, rows)
        union = [unique(t for c in chains.values() for t in c.triplets[i]) for i in range(len(rows))]
        self.aligner = self._make_aligner(ctx)
        self.aligner.align_all(union)
        return self._finish(ctx, rows, chains, union)

    def _path(self, ctx) -> tuple[str, str]:
        """Which extraction path runs, and why (said in the report)."""
        cfg = self.config
        if cfg.method == "hybrid":
            if cfg.image_field is not None:
                raise ConfigError("task.method: hybrid reads text captions; with task.image_field use method: llm4sgg (or auto)")
            return "hybrid", "`method: hybrid` in the recipe"
        if cfg.method == "llm4sgg":
            return "llm4sgg", "`method: llm4sgg` in the recipe"
        if cfg.image_field is not None:
            return "llm4sgg", "`method: auto` with images (`image_field`): the rules read only text"
        if ctx.runs_embedded(cfg.model):
            return "hybrid", (f"`method: auto` and model `{ctx.resolve_model(cfg.model)}` is the embedded SmolLM2-135M, which "
                              "chooses among options well but writes poor triplets")
        return "llm4sgg", f"`method: auto` and model `{ctx.resolve_model(cfg.model)}` is not the embedded SmolLM2-135M"

    def _hybrid(self, ctx, rows):
        """Rules propose slots, the model keeps/rejects/chooses (agentlab/triplets/verify.py)."""
        from agentlab.triplets.extract import ChainOutput
        from agentlab.triplets.propose import propose
        from agentlab.triplets.verify import Verifier

        cfg, v = self.config, self.config.verify
        texts = [str(r.get("text") or "") for r in rows]
        slots = [propose(t) for t in texts]
        seed = cfg.seed if cfg.seed is not None else ctx.seed
        verdicts = Verifier(ctx, cfg.model, ctx.load_prompt(v.prompt), v.keep_margin, v.accept_margin, v.switch_margin,
                            seed=seed).run(texts, slots)
        errors = [e if t.strip() else "no text to extract from" for e, t in zip(verdicts.errors, texts)]
        self.candidates = verdicts.candidates
        self.rules = [unique(s.options[0] for s in row if s.default) for row in slots]
        ctx.metrics["verify"] = verdicts.stats
        return {"hybrid": ChainOutput(verdicts.triplets, [None] * len(rows), errors, failed=sum(e is not None for e in errors))}

    def _llm4sgg(self, ctx, rows):
        """The model writes triplets with each configured chain (agentlab/triplets/extract.py)."""
        from agentlab.triplets.extract import Extractor

        cfg = self.config
        prompts = {"extract": ctx.load_prompt(cfg.extract_prompt)}
        if "paraphrase" in cfg.chains:
            key, path = ("describe", cfg.describe_prompt) if cfg.image_field else ("paraphrase", cfg.paraphrase_prompt)
            prompts[key] = ctx.load_prompt(path)
        base = self._resolve(ctx, ctx.recipe.source.path).parent if ctx.recipe is not None else None
        return Extractor(ctx, cfg, prompts, base).run(rows)

    def _finish(self, ctx, rows, chains, union):
        from agentlab.triplets.finalise import finalise, image_graphs, predicate_counts
        from agentlab.triplets.metrics import predicate_distribution

        mapped = [unique(self.aligner.map(ts)) for ts in union]  # counts below are per caption, not per chain
        counts = predicate_counts(mapped) if self.config.fine_grained_predicates else None
        aligned = [finalise(ts, counts) for ts in mapped]
        group = ctx.recipe.source.group_by if ctx.recipe is not None else None
        keys = [r.get(group) if group else r.get("id", i) for i, r in enumerate(rows)]
        images = image_graphs(keys, [r.get("id", i) for i, r in enumerate(rows)], mapped, counts)
        vocab = self.vocabs.get("predicate")
        ctx.metrics["alignment"] = self.aligner.stats()
        ctx.metrics["predicate_distribution"] = predicate_distribution(aligned, vocab.names if vocab else None)
        ctx.metrics["images"] = {"images": len(images), "with_triplets": sum(bool(g["triplets"]) for g in images),
                                 "triplets": sum(len(g["triplets"]) for g in images)}
        ctx.metrics["extraction"] = {n: {"failed_rows": c.failed, "salvaged_rows": c.salvaged, "triplets": sum(map(len, c.triplets))}
                                     for n, c in chains.items()}
        self._save(ctx, images)
        ctx.report += self._report(ctx, images)
        return [self._row(r, i, chains, union, aligned) for i, r in enumerate(rows)]

    def _row(self, row, i, chains, union, aligned) -> dict[str, Any]:
        out = dict(row)
        out["triplets"] = as_dicts(union[i])
        out["triplets_aligned"] = as_dicts(aligned[i])
        out["triplets_by_chain"] = {n: as_dicts(c.triplets[i]) for n, c in chains.items()}
        if "paraphrase" in chains:
            out["paraphrase"] = chains["paraphrase"].texts[i]
        if self.candidates is not None:
            out["triplets_rules"] = as_dicts(self.rules[i])
            out["triplet_candidates"] = self.candidates[i]
        out["_raw"] = {n: c.raw[i] for n, c in chains.items()}
        errors = [f"{n}: {c.errors[i]}" for n, c in chains.items() if c.errors[i]]
        out["_error"] = "; ".join(errors) if errors else None
        return out

    def _save(self, ctx, images) -> None:
        if ctx.run_dir is None:
            return
        ctx.run_dir.write_jsonl("images.jsonl", images)
        ctx.run_dir.write_json("alignment.json", {"stats": self.aligner.stats(), **self.aligner.as_json()})
        ctx.artifacts.update(images="images.jsonl", alignment="alignment.json")

    def _report(self, ctx, images) -> list[str]:
        m = ctx.metrics
        path = m["triplets_path"]
        lines = ["## Triplets", "", f"Extraction path: **{path['path']}**, because {path['why']}.", ""]
        if "verify" in m:
            s = m["verify"]
            lines += [(f"Hybrid: rules proposed {s['options']} option(s); the model kept {s['kept']} rule triplet(s) (switching "
                       f"{s['switched']} to another subject/object), dropped {s['dropped']}, accepted {s['accepted']} triplet(s) "
                       f"the rules leave out; {s['failed']} score(s) failed ({s['rule_fallback']} slot(s) fell back to the rules)."), ""]
        lines += ["| chain | triplets | failed rows | salvaged rows |", "|---|---|---|---|"]
        lines += [f"| {n} | {e['triplets']} | {e['failed_rows']} | {e['salvaged_rows']} |" for n, e in m["extraction"].items()]
        lines += ["", "(salvaged: the answer failed validation as a whole; its well-formed triplets were kept)"]
        lines += ["", "Alignment (terms decided by each pass):", "", "| kind | terms | aligned | by pass |", "|---|---|---|---|"]
        for kind, s in m["alignment"].items():
            passes = ", ".join(f"{k} {v}" for k, v in s.items() if k not in ("terms", "aligned"))
            lines.append(f"| {kind} | {s['terms']} | {s['aligned']} | {passes} |")
        dist = m["predicate_distribution"]
        covered = (f"; {dist['vocabulary_covered']} of {dist['vocabulary_size']} vocabulary predicates have examples"
                   if "vocabulary_size" in dist else "")
        top = ", ".join(f"{p} {n}" for p, n in list(dist["counts"].items())[:10])
        lines += ["", (f"Aligned triplets: {dist['triplets']} over {dist['predicates_used']} predicates{covered}. "
                       f"Most frequent: {top or '-'}."), "",
                  (f"Images: {m['images']['images']} ({m['images']['with_triplets']} with at least one triplet) in "
                   "`images.jsonl`; alignment table in `alignment.json`."), ""]
        return lines

    # -- evaluate -------------------------------------------------------------------------------
    def evaluate(self, ctx, rows):
        """P/R/F1 against gold triplets: as extracted (after lemmatising), and after alignment.

        Gold is aligned by the rule pass and the embedding fallback only (never the LLM), so the
        aligned score does not depend on which model ran.
        """
        from agentlab.triplets.metrics import prf_table, score_against_gold, triplet_prf

        fmt = self._gold_format(ctx)
        gold = [parse_gold(g, fmt) for g in ctx.gold or []]
        if not any(gold):
            ctx.caveats.append("no gold triplets could be read from the gold column; nothing was measured")
            return {}
        a = self.config.align
        out = score_against_gold([from_dicts(r["triplets"]) for r in rows], [from_dicts(r["triplets_aligned"]) for r in rows],
                                 gold, self.vocabs, a.embedding_fallback, a.embedding_model)
        table = {"extracted (lemmatised)": out["triplets"], "aligned to vocabulary": out["triplets_aligned"]}
        added = []
        if rows and "triplets_rules" in rows[0]:  # the hybrid path: what the model changed over its own rule proposals
            rules = triplet_prf([from_dicts(r["triplets_rules"]) for r in rows], gold)
            out["triplets_rules_alone"] = table["rules alone (no model)"] = rules
            d = round(out["triplets"]["f1"] - rules["f1"], 4)
            added = [f"The model {'adds' if d > 0 else 'falls short of the rules alone by' if d < 0 else 'adds nothing to the rules alone:'}"
                     f" {abs(d):.4f} F1 ({out['triplets']['f1']:.4f} with the model vs {rules['f1']:.4f} rules alone).", ""]
        ctx.report += ["## Triplets vs gold", "", *prf_table(table), "", *added,
                       (f"{out['triplets_aligned']['gold_alignable']:.1%} of gold triplets align to the vocabulary "
                        "(rules and embeddings only); the aligned scores count only those."), ""]
        return out
