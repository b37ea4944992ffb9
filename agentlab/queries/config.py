"""The `queries` task's recipe schema: labeled data, prompts (hard / SPTAR soft), BM25 filter.

Its retrievers are configured by the recipe's top-level `distill:` section (a `retriever` student).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agentlab.config import StrictModel
from agentlab.tasks.base import TaskConfig

#: SPTAR's initialisation text for the soft prompt (METHODS.md §4)
SPTAR_INIT_TEXT = "please generate query for this document"


class LabeledConfig(StrictModel):
    """Labeled queries in BEIR layout; `n` of them give (query, document) pairs, others are held out for evaluation."""

    queries: str = Field(description="queries.jsonl with `_id` and `text`.")
    qrels: str = Field(description="qrels TSV: query-id, corpus-id, score (a header line is allowed).")
    n: int = Field(50, ge=1, description="Labeled pairs for prompts, soft-prompt tuning and retriever training; seeded choice.")
    eval_queries: int | None = Field(200, ge=0, description="Held-out labeled queries to evaluate retrieval on "
                                        "(0 = no evaluation, null = all); not used when the recipe's `eval:` gives "
                                        "test `queries` and `qrels`.")
    eval_corpus: int | None = Field(None, ge=1, description="Evaluate over the documents relevant to the evaluation queries "
                                    "plus seeded random others, this many in all (null = the whole corpus). Embedding "
                                    "5,000 abstracts takes minutes per retriever on CPU; numbers on a subset are "
                                    "higher than on the whole corpus.")


class FilterConfig(StrictModel):
    """The consistency filter (SPTAR step 4)."""

    bm25_top_k: int = Field(30, ge=1, description="Keep a query only if BM25 over the whole corpus ranks its document "
                            "in the top k (paper: 30-70).")


class SoftPromptConfig(StrictModel):
    """SPTAR soft prompt tuning (PEFT prompt tuning of a causal LM) and its example filter."""

    base: str = Field("smollm2", description="Causal LM to tune: `smollm2` (the embedded model, through transformers) "
                      "or a local Hugging Face causal-LM folder.")
    num_virtual_tokens: int = Field(50, ge=1, description="Soft-prompt length in virtual tokens.")
    init_text: str | None = Field(SPTAR_INIT_TEXT, description="Text the soft prompt starts from (null = random).")
    learning_rate: float = Field(3e-2, gt=0, description="Peak learning rate.")
    epochs: float = Field(3, gt=0, description="Training epochs (early stopping may end sooner).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimiser steps (overrides epochs).")
    batch_size: int = Field(4, ge=1, description="Training batch size (doubled on GPU).")
    patience: int = Field(2, ge=0, description="Validation evaluations without improvement before stopping (0 = off).")
    val_fraction: float = Field(0.2, ge=0, lt=1, description="Share of the labeled pairs held out from tuning: validation "
                                "loss (early stopping) and the example filter's scoring set.")
    max_length: int = Field(384, ge=32, description="Max tokens of an input (examples + document + query); "
                            "the start of a longer prompt is cut.")
    candidates: int = Field(4, ge=1, description="Example filter: candidate example sets scored on the held-out pairs "
                            "(1 = keep the set the prompt was tuned with).")
    generate_batch: int = Field(4, ge=1, description="Documents per generation batch.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto` uses a GPU when present.")


class QueriesConfig(TaskConfig):
    """Generate search queries for documents, keep the ones BM25 agrees with, train and evaluate retrievers."""

    type: Literal["queries"] = "queries"
    model: str = Field("default", description="Model name under `models:` that writes the hard-prompt queries.")
    labeled: LabeledConfig = Field(description="Labeled queries and qrels (examples, tuning, training, evaluation).")
    prompt: Literal["hard", "soft", "both"] = Field(
        "hard", description="hard = InPars few-shot prompt through any backend; soft = SPTAR soft prompt tuned on "
        "the labeled pairs (`soft.base`, through transformers); both = each, side by side.")
    prompt_file: str = Field("prompts/queries/hard.jinja", description="Template of the hard prompt (variables: examples, document).")
    examples: int = Field(2, ge=0, le=8, description="Labeled (document, query) pairs shown in the prompt (soft: chosen "
                          "by the example filter).")
    per_doc: int = Field(1, ge=1, le=20, description="Queries to generate per document (> 1 needs temperature > 0).")
    doc_chars: int = Field(1200, ge=100, description="Documents (in the prompt and its examples) are cut to this many characters.")
    filter: FilterConfig | None = Field(default_factory=FilterConfig, description="BM25 consistency filter; null keeps every query.")
    soft: SoftPromptConfig = Field(default_factory=SoftPromptConfig, description="Soft prompt tuning (prompt: soft|both).")
    labeled_only: bool = Field(True, description="With a `distill:` section, also train a retriever on the labeled "
                               "pairs alone (the `labeled_only` system).")
    embedding_model: str = Field("minilm", description="Untrained dense baseline: `minilm` or a local sentence-transformers "
                                 "folder.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads for tuning, generation, training and "
                                "embedding (null = torch's default).")
    max_tokens: int = Field(48, ge=4, description="Max tokens of a query.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy).")
    seed: int | None = Field(None, description="Sampling seed (default: the recipe seed).")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "retriever" in data:
            raise ValueError("`task.retriever` moved to the recipe's top-level `distill:` section; write e.g. "
                             "`distill: {student: {type: retriever, base: minilm, loss: mnrl, peft: {method: none}}, "
                             "epochs: 1, batch_size: 16, max_length: 256}` (and `task.labeled_only` for the labeled-only "
                             "retriever)")
        return data

    @model_validator(mode="after")
    def _check(self) -> QueriesConfig:
        if self.per_doc > 1 and self.temperature == 0:
            raise ValueError(f"per_doc is {self.per_doc} but temperature is 0, so every query would be the same; "
                             "set temperature > 0 (e.g. 0.7) or per_doc: 1")
        if self.examples > self.labeled.n:
            raise ValueError(f"examples ({self.examples}) cannot exceed labeled.n ({self.labeled.n})")
        if self.prompt != "hard" and self.labeled.n < self.examples + 2:
            raise ValueError(f"prompt {self.prompt!r} tunes a soft prompt on labeled.n - examples pairs and holds some "
                             f"out; labeled.n is {self.labeled.n} with examples {self.examples}: use labeled.n >= "
                             f"{self.examples + 2}")
        return self

    @property
    def prompts(self) -> list[str]:
        """The generators this run uses, in order: `hard`, `soft`."""
        return ["hard", "soft"] if self.prompt == "both" else [self.prompt]
