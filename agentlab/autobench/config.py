"""The recipe fields of the `autobench` task."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentlab.config import StrictModel
from agentlab.tasks.base import TaskConfig


class CandidateConfig(StrictModel):
    """A model under test: a model name plus how it is asked, so one model can be several candidates."""

    name: str = Field(description="Candidate name in metrics and the leaderboard (default: the model name).")
    model: str = Field("default", description="Model name under `models:`.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature of written answers (0 = greedy).")
    system: str | None = Field(None, description="System message (default: 'final answer only' instructions).")
    prompt: str = Field("prompts/autobench/answer.jinja", description="Jinja template of the question (variables: question, choices).")
    max_tokens: int = Field(24, ge=1, description="Max tokens of a written answer.")
    seed: int | None = Field(None, description="Sampling seed (default: the recipe seed).")


class GradeConfig(StrictModel):
    """How open answers are graded: normalised exact match, token F1, then the LLM grader for the rest."""

    f1_correct: float = Field(0.8, ge=0, le=1, description="Token F1 at or above this counts as correct without the grader.")
    grade_no_overlap: bool = Field(True, description="Ask the grader also when the answer shares no token with the "
                                   "reference (false: such answers are wrong without a call; weak graders say 'yes' too often).")
    prompt: str = Field("prompts/autobench/grade.jinja", description="Jinja template of the grader's question.")


class LeakageConfig(StrictModel):
    """The leakage guard: generated questions that overlap training data or prompt examples are flagged and excluded."""

    against: list[str] = Field(default_factory=list, description="Files of training/eval data to check against "
                               "(JSONL/CSV/...: every string column is used). Few-shot `examples` are always checked.")
    ngram: int = Field(8, ge=1, description="Word n-gram length (questions shorter than n are compared whole).")
    ngram_overlap: float = Field(0.5, gt=0, le=1, description="Flag when at least this fraction of a question's n-grams occur in the data.")
    embedding_similarity: float | None = Field(0.92, gt=0, le=1, description="Flag when the cosine similarity to any "
                                                  "data text reaches this (MiniLM); null = n-grams only.")
    embedding_model: str = Field("minilm", description="Embedder: `minilm` or a local sentence-transformers folder.")


class AblationConfig(StrictModel):
    """Ablations run in the same run on the same candidates (METHODS.md §6), reported beside the search."""

    no_documents: bool = Field(False, description="Also build a benchmark whose questions are written without documents.")
    no_adaptive: bool = Field(False, description="Also build one whose categories are all proposed at once, without history.")


class AutobenchConfig(TaskConfig):
    """Search a document collection for categories of questions that are salient, novel and difficult."""

    type: Literal["autobench"] = "autobench"
    proposer: str = Field("default", description="Model that proposes categories and writes questions.")
    candidates: list[CandidateConfig] = Field(min_length=2, description="Models under test: model names, or mappings "
                                              "{name, model, temperature, system, prompt} (the same model asked differently).")
    grader: str | None = Field(None, description="LLM judge of open answers that exact match and F1 leave undecided (null: F1 only).")
    iterations: int = Field(8, ge=1, description="Search iterations.")
    target_accuracy: tuple[float, float] = Field((0.1, 0.3), description="Best-candidate accuracy band the proposer aims at.")
    categories_per_iteration: int = Field(5, ge=1, description="Categories kept (by salience) and evaluated per iteration.")
    proposals_per_iteration: int | None = Field(None, ge=1, description="Categories proposed per iteration before "
                                                   "the salience cut (default: 2 × categories_per_iteration).")
    questions_per_category: int = Field(15, ge=1, description="Questions generated per category (one per retrieved document).")
    salience: Literal["corpus", "llm", "none"] = Field("corpus", description="corpus = document frequency of the "
                                                      "category's words; llm = the proposer rates it 1-5 (by log-probability where possible); none = no ranking.")
    min_salience: float = Field(0.0, ge=0, le=1, description="The salience constraint: proposed categories below it are not evaluated (0 = keep all).")
    beta: float = Field(1.0, ge=0, description="Objective = novelty + beta × difficulty.")
    reference_accuracies: str | None = Field(None, description="CSV of the candidates' accuracy on existing benchmarks "
                                                "(columns candidate, benchmark, accuracy; or candidate + one column per benchmark). "
                                                "Default: predict each category's ranking from the run's other categories.")
    question_format: Literal["open", "multiple_choice"] = Field("open", description="open = candidates write answers "
                                                                "(graded); multiple_choice = candidates pick among the answer and distractor phrases from the document.")
    answer_mode: Literal["auto", "write", "extract"] = Field("auto", description="write = the proposer writes question and "
                                                            "answer; extract = it writes the question and the answer is the document phrase it scores most likely (grounded by construction); auto = extract when the backend scores options.")
    question_style: Literal["auto", "written", "cloze"] = Field(
        "auto", description="written = the proposer writes each question from its document; cloze = a document sentence with "
        "the answer phrase (the phrase the proposer scores most about the category) blanked out, for models that write "
        "poorly; auto = cloze when the proposer is the embedded model and questions are multiple choice, else written.")
    choices: int = Field(4, ge=2, le=8, description="Options per multiple-choice question (answer + distractors).")
    require_grounded: bool = Field(True, description="Drop question-answer pairs whose answer is not in their document.")
    verify_answers: bool = Field(True, description="Multiple choice: keep a question only when its answer is a well-formed "
                                 "phrase from a sentence the question is about, it has enough distractors of the answer's type "
                                 "(number, symbol, words; similar length), and the document-seeing proposer picks the answer "
                                 "among the choices by log-probability (where its backend scores options).")
    examples: str | None = Field("prompts/autobench/examples.jsonl", description="JSONL of few-shot examples for question "
                                    "writing (document, category, question, answer); always checked by the leakage guard. null = none.")
    doc_chars: int = Field(600, ge=100, description="Documents are cut to this many characters in prompts.")
    retrieval: Literal["bm25", "embedding"] = Field("bm25", description="How documents are retrieved for a category.")
    grade: GradeConfig = Field(default_factory=GradeConfig, description="Grading of open answers.")
    leakage: LeakageConfig = Field(default_factory=LeakageConfig, description="The leakage guard.")
    ablations: AblationConfig = Field(default_factory=AblationConfig, description="Ablations run alongside.")
    propose_prompt: str = Field("prompts/autobench/propose.jinja", description="Template of the proposer's request.")
    question_prompt: str = Field("prompts/autobench/question.jinja", description="Template of the question writer's request.")
    extract_prompt: str = Field("prompts/autobench/extract.jinja", description="Template for choosing the answer phrase.")
    salience_prompt: str = Field("prompts/autobench/salience.jinja", description="Template of the LLM salience rating.")
    temperature: float = Field(0.7, ge=0, description="Proposer sampling temperature (proposals and retries need variety).")
    seed: int | None = Field(None, description="Sampling seed (default: the recipe seed).")

    @field_validator("candidates", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        return [{"name": c, "model": c} if isinstance(c, str) else
                ({**c, "name": c.get("name") or c.get("model", "default")} if isinstance(c, dict) else c) for c in v]

    @model_validator(mode="after")
    def _check(self) -> AutobenchConfig:
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate names must be unique; got {names}: give repeated models a `name`")
        lo, hi = self.target_accuracy
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"target_accuracy must be [low, high] with 0 <= low <= high <= 1; got {list(self.target_accuracy)}")
        return self

    @property
    def n_proposals(self) -> int:
        """Categories asked of the proposer per iteration."""
        return self.proposals_per_iteration or 2 * self.categories_per_iteration
