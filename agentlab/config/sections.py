"""Config models of the recipe's fixed sections (source, output, executor, later stages).

Every field has a description: `docs/recipes.md` is generated from them (`make docs`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentlab.config import StrictModel
from agentlab.registry import Registry, UnknownKey


def registered(registry: Registry, name: str) -> str:
    """`name` if `registry` knows it (built-ins and entry-point plugins), else a ValueError with "did you mean"."""
    try:
        registry.get(name)
    except UnknownKey as exc:
        raise ValueError(str(exc)) from None
    return name


class SourceConfig(StrictModel):
    """Where the rows come from. Loaded with `datasets`."""

    path: str = Field(description="JSONL/JSON/CSV/TSV/Parquet file, a WRENCH split json, or a `save_to_disk` dataset folder.")
    format: Literal["auto", "jsonl", "json", "csv", "tsv", "parquet", "hf", "wrench"] = Field(
        "auto", description="File format; `auto` picks by extension (a folder is an HF dataset)."
    )
    split: str | None = Field(None, description="Split to read from an HF DatasetDict folder (default: the first).")
    fields: dict[str, str] = Field(default_factory=dict, description="Rename columns: {new_name: column_in_file}.")
    text_field: str | None = Field(None, description="Column holding the text; copied to `text`.")
    text_fields: list[str] | None = Field(None, description="Columns joined (with a blank line) into `text`.")
    id_field: str | None = Field(None, description="Column with a stable row id; default: the row number.")
    group_by: str | None = Field(None, description="Column grouping rows (e.g. several captions per image).")
    limit: int | None = Field(None, ge=1, description="Use only the first N rows (after shuffling, if set).")
    shuffle: bool = Field(False, description="Shuffle rows with `seed` before `limit`.")
    seed: int = Field(0, description="Seed for shuffling and sampling.")
    license: str | None = Field(
        None, description="The source data's license as a Hugging Face license id (e.g. `cc-by-4.0`, `apache-2.0`, "
        "`other`); written to the dataset card's `license:`. Default: not stated.")
    language: str | list[str] | None = Field(
        None, description="The source text's language(s), ISO 639 codes (e.g. `en` or `[en, de]`); written to the "
        "dataset card's `language:`. Default: not stated.")

    @field_validator("license")
    @classmethod
    def _license(cls, v: str | None) -> str | None:
        from agentlab.hub.metadata import license_problem

        if v is not None and (problem := license_problem(v)):
            raise ValueError(problem)
        return v

    @field_validator("language")
    @classmethod
    def _language(cls, v: str | list[str] | None) -> str | list[str] | None:
        from agentlab.hub.metadata import language_problem

        for code in [v] if isinstance(v, str) else v or []:
            if problem := language_problem(code):
                raise ValueError(problem)
        return v


class OutputConfig(StrictModel):
    """Where and what to write."""

    dir: str | None = Field(None, description="Run directory; default `outputs/<name>`. `-o` overrides.")
    cache: Literal["run", "user", "none"] = Field(
        "run", description="Call cache: in the run directory, in the user cache dir (shared across runs), or off."
    )
    hf_dataset: bool = Field(True, description="Also write the rows as an HF dataset (`dataset/`, save_to_disk).")
    chunk_size: int = Field(
        1000, ge=1, description="Streaming runs (`generate`, row-wise `label`): rows per chunk appended to data.jsonl; "
        "a killed run resumes from its last complete chunk.")
    commit_seconds: float = Field(
        2.0, gt=0, description="Streaming runs: append the finished rows at least this often, even before a chunk fills.")


class ExecutorConfig(StrictModel):
    """How LLM calls are scheduled."""

    type: str = Field("local", description="`local` (threads/asyncio in this process), `ray` (Ray Data actor pool; "
                      "`pip install 'agentlab[ray]'`), or an executor a plugin registers (entry point group `agentlab.executors`).")
    address: str | None = Field(
        None, description="Ray cluster to join: `auto` (the cluster on this node), `ray://head:10001`, or a GCS `host:port`; "
        "default: start a Ray instance for this run (ray executor only).")
    replicas: int = Field(1, ge=1, description="Ray actors, each holding one backend instance (e.g. one vLLM engine per GPU).")
    batch_size: int = Field(64, ge=1, description="Rows per batch handed to an actor; results are cached as each batch completes (ray executor only).")
    num_cpus: float = Field(1.0, ge=0, description="CPUs each actor reserves (ray executor only).")
    num_gpus: float | None = Field(
        None, ge=0, description="GPUs each actor reserves; default: the model's `tensor_parallel_size` for vllm, else 0 (ray executor only).")
    max_restarts: int = Field(3, ge=0, description="Times Ray restarts a lost actor and retries its batch before the batch's rows become errors (ray executor only).")
    runtime_env: dict[str, Any] = Field(
        default_factory=dict, description="Ray runtime environment for the workers, e.g. `{pip: [\"agentlab[vllm]\"]}` (ray executor only).")

    @field_validator("type")
    @classmethod
    def _registered(cls, v: str) -> str:
        from agentlab.executors import EXECUTORS

        return registered(EXECUTORS, v)

    @model_validator(mode="after")
    def _ray_only(self) -> ExecutorConfig:
        if self.type == "local" and self.address:
            raise ValueError("`address` is a Ray cluster address; set `type: ray` (or remove `address`)")
        return self


class EvalConfig(StrictModel):
    """Evaluation against gold data, when available (a gold column, or test queries for the queries task)."""

    gold: str | None = Field(None, description="Column holding the gold label/answer; hidden from every labeler and prompt, used only to measure.")
    format: str | None = Field(
        None, description="How the gold column is written, for tasks that parse it: `factual` = scene-graph triplets "
        "`( s , p , o ) , ...`, `json` = a list of [s, p, o] (triplets task). Default: the task decides from the value.")
    queries: str | None = Field(
        None, description="Test queries, BEIR queries.jsonl with `_id` and `text` (queries task, with `qrels`): the "
        "retrieval systems are evaluated on them instead of held-out labeled queries, and none of them becomes a "
        "labeled pair.")
    qrels: str | None = Field(
        None, description="Test qrels TSV for `queries`: query-id, corpus-id, score (a header line is allowed).")

    @model_validator(mode="after")
    def _pair(self) -> EvalConfig:
        if (self.queries is None) != (self.qrels is None):
            given, missing = ("queries", "qrels") if self.qrels is None else ("qrels", "queries")
            raise ValueError(f"`{given}` is set but `{missing}` is not; give both test files "
                             "(`eval: {queries: test_queries.jsonl, qrels: qrels/test.tsv}`)")
        return self


class AggregateDevConfig(SourceConfig):
    """Labeled rows that choose the label model and calibrate its class prior; they are never scored."""

    gold: str = Field("label", description="Column with the gold class name (or index into task.classes).")


class AggregateConfig(StrictModel):
    """How labeler votes become probabilistic labels (label task)."""

    method: str = Field(
        "auto", description="Label model: `auto` (fits the others and picks one by gold rows, else by the votes; the reason "
        "is in the report), `majority`, `weighted`, `dawid_skene`, `dawid_skene_groups` (correlated labelers count once), "
        "`metal`, `hyper` (HyperLM; `pip install 'agentlab[bench]'`), one a plugin registers (entry point group "
        "`agentlab.aggregators`), or `all`: fit every available model and report them side by side."
    )
    use: str | None = Field(None, description="With `method: all`, the model whose labels are written (default: auto).")
    dev: AggregateDevConfig | None = Field(
        None, description="A labeled dev file: the labelers vote on its rows too, and their gold labels pick the label "
        "model (`auto`) and calibrate its class prior. Its rows are not written or scored.")
    seed_gold: bool = Field(
        True, description="Also use `task.seed`'s labeled rows as gold rows for `auto` (the labelers vote on them; a "
        "few-shot labeler has seen some of them in its prompt, which the report notes).")
    class_prior: dict[str, float] | list[float] | None = Field(
        None, description="Class-balance prior (name -> probability), e.g. for imbalanced tasks."
    )
    tie_break: Literal["random", "prior", "abstain"] = Field("random", description="Majority-vote tie break.")
    max_iter: int = Field(100, ge=1, description="EM / optimisation iterations.")
    tol: float = Field(1e-5, gt=0, description="Convergence tolerance.")
    seed: int = Field(0, description="Seed for tie-breaks and initialisation.")

    @field_validator("method", "use")
    @classmethod
    def _registered(cls, v: str | None, info) -> str | None:
        from agentlab.labeling.label_model import AGGREGATORS

        if v is None or (v == "all" and info.field_name == "method"):
            return v
        return registered(AGGREGATORS, v)


class EscalateConfig(StrictModel):
    """Send uncertain rows to a stronger model; its vote joins the label matrix."""

    to: str = Field(description="Model name (under `models:`) to escalate to.")
    when: str = Field("confidence < 0.7", description="`confidence < X`, `disagreement`, or both joined by ` or `.")
    max_rows: int | None = Field(None, ge=1, description="Escalate at most this many rows (lowest confidence first).")
    max_cost_usd: float | None = Field(
        None, ge=0, description="Stop escalating before the run's escalation spend passes this (USD), counted over the "
        "run and all its resumes: answers from the call cache count what they cost when made, and the run directory's "
        "`escalation_spend.json` keeps what was paid (and what was in flight when a run was killed). The first call "
        "measures the cost per row.")
    prompt: str | None = Field(None, description="Prompt template for the strong model (default: zero-shot label prompt).")


class StudentPeftConfig(StrictModel):
    """Parameter-efficient fine-tuning of the student (peft)."""

    method: Literal["lora", "prompt_tuning", "none"] = Field(
        "lora", description="`lora` adapters, `prompt_tuning` (soft prompt; causal student only) or `none` (full fine-tune)."
    )
    r: int = Field(8, ge=1, description="LoRA rank.")
    alpha: int = Field(16, ge=1, description="LoRA alpha (scaling = alpha / r).")
    dropout: float = Field(0.1, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] | None = Field(
        None, description="Modules LoRA adapts; default per architecture (BERT query/value, Llama q_proj/v_proj)."
    )
    num_virtual_tokens: int = Field(20, ge=1, description="Soft-prompt length (prompt_tuning).")
    init_text: str | None = Field(
        None, description="Text the soft prompt starts from (prompt_tuning); default: random initialisation."
    )


class StudentConfig(StrictModel):
    """The small model to distill into."""

    type: str = Field("classifier", description="Registered student: classifier, causal, retriever.")
    base: str = Field("minilm", description="`minilm`, `smollm2`, or a local HF model directory (embedding student: "
                      "`minilm`, a local sentence-transformers folder, `smollm2` or a `.gguf` file, or several joined by "
                      "`+`, e.g. `minilm+smollm2`: their features side by side).")
    peft: StudentPeftConfig = Field(default_factory=StudentPeftConfig, description="PEFT settings (LoRA by default).")
    text_field: str = Field("text", description="Row field holding the input text.")
    prompt: str = Field(
        "Text: {text}\nLabel:", description="Causal student, and the embedding student on a GGUF base: prompt template; "
        "`{text}` is replaced by the row's text."
    )
    loss: Literal["mnrl", "gist", "cached_gist"] = Field(
        "mnrl", description="Retriever student: MultipleNegativesRanking, or GISTEmbed with the base model as frozen guide."
    )


class DistillConfig(StrictModel):
    """Train a student on the run's labels."""

    student: StudentConfig = Field(default_factory=StudentConfig, description="Which student to train.")
    epochs: float = Field(3, gt=0, description="Training epochs.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimiser steps (overrides epochs).")
    batch_size: int = Field(16, ge=1, description="Per-device batch size (doubled on GPU).")
    learning_rate: float | None = Field(
        None, gt=0, description="Peak learning rate; default per method (LoRA 1e-3, full 5e-5, prompt tuning 3e-2)."
    )
    max_length: int = Field(128, ge=8, description="Max input tokens.")
    soft_labels: bool = Field(True, description="Train on `label_probs` (soft cross-entropy), not the argmax.")
    min_confidence: float | None = Field(None, ge=0, le=1, description="Drop rows whose confidence is below this.")
    weight_by_confidence: bool = Field(False, description="Weight each row's loss by its confidence.")
    class_weights: bool = Field(False, description="Re-weight classes by inverse frequency.")
    eval_split: float = Field(
        0.2, ge=0, lt=1, description="Fraction held out: validation / early stopping, and gold evaluation when gold exists."
    )
    early_stopping_patience: int = Field(2, ge=0, description="Evaluations without improvement before stopping (0 = off).")
    early_stopping_metric: Literal["loss", "accuracy"] = Field(
        "loss", description="Validation metric (against the held-out rows' labels, never gold) that picks the best epoch."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto` uses a GPU when present (bf16).")
    seed: int = Field(0, description="Seed for everything.")
    fallback: str | None = Field(
        "embedding", description="A second, cheap student trained on the same labels (`embedding`: MiniLM sentence "
        "embeddings + logistic regression, seconds on a CPU); the run keeps it instead of `student` when its cross-entropy "
        "against the validation rows' label_probs is lower (never gold). null: train `student` only.")
    clean_baseline: bool = Field(
        True, description="Also train the kept student on only the gold rows you gave (`task.seed`, `aggregate.dev`) "
        "and score it on the same held-out rows, so the report shows whether the weak labels helped.")

    @model_validator(mode="after")
    def _check(self) -> DistillConfig:
        from agentlab.distill.base import STUDENTS

        kind = self.student.type
        for where, name in (("student", kind), ("fallback", self.fallback)):
            if name is not None and name not in STUDENTS:
                raise ValueError(f"unknown {where} {name!r}; use one of: {', '.join(STUDENTS.names())}")
        if self.student.peft.method == "prompt_tuning" and kind != "causal":
            raise ValueError(f"peft.method prompt_tuning needs student.type causal (got {kind!r})")
        return self
