"""Extraction chains (LLM4SGG steps 1-2): triplets come from a structured answer, never from splitting text.

- ``direct``: few-shot chain-of-thought extraction from the caption (or from the image, on a VLM).
- ``paraphrase``: paraphrase the caption (or describe the image) first, then extract from that text.

Each chain yields, per row, a list of cleaned triplets, the raw answer and an error (or None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from agentlab.backends.base import ChatRequest
from agentlab.errors import ConfigError
from agentlab.triplets.text import Triplet, clean_triplet, unique

if TYPE_CHECKING:
    from agentlab.engine import RunContext


class TripletItem(BaseModel):
    """One relation as the model writes it."""

    subject: str = Field(description="The noun that acts or is described.")
    predicate: str = Field(description="A verb, preposition or 'is', without auxiliaries or tense.")
    object: str = Field(description="The noun acted on or related to (or the attribute, after 'is').")


class Extraction(BaseModel):
    """The extraction answer with a short chain of thought first."""

    reasoning: str = Field("", description="One short sentence of reasoning.")
    triplets: list[TripletItem] = Field(default_factory=list, description="The triplets.")


class PlainExtraction(BaseModel):
    """The extraction answer without reasoning."""

    triplets: list[TripletItem] = Field(default_factory=list, description="The triplets.")


@dataclass
class ChainOutput:
    """Per row: cleaned triplets, the raw answer, an error; and the intermediate text (paraphrase chain)."""

    triplets: list[list[Triplet]]
    raw: list[str | None]
    errors: list[str | None]
    texts: list[str | None] | None = None
    failed: int = field(default=0)
    salvaged: int = field(default=0)


def salvage(raw: str | None) -> list[TripletItem]:
    """The well-formed triplets of an answer that failed validation as a whole (json-repaired; bad items skipped)."""
    if not raw or not raw.strip():
        return []
    import json_repair

    try:
        data = json_repair.loads(raw.strip().removeprefix("```json").removeprefix("```").removesuffix("```"))
    except Exception:  # json-repair gives up on some inputs; nothing to salvage then
        return []
    items = data.get("triplets") if isinstance(data, dict) else data if isinstance(data, list) else None
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(TripletItem.model_validate(item))
        except ValidationError:
            continue
    return out


class Extractor:
    """Runs the configured chains over rows.

    Args:
        ctx: run context.
        cfg: the triplets task config (model, prompts, reasoning, image_field, sampling).
        prompts: name (extract, paraphrase, describe) -> loaded Prompt.
        base_dir: where relative image paths are looked up.
    """

    def __init__(self, ctx: RunContext, cfg: Any, prompts: dict[str, Any], base_dir: Path | None = None):
        self.ctx, self.cfg, self.prompts, self.base_dir = ctx, cfg, prompts, base_dir
        self.schema = Extraction if cfg.reasoning else PlainExtraction
        self.seed = cfg.seed if cfg.seed is not None else ctx.seed

    def run(self, rows: list[dict[str, Any]]) -> dict[str, ChainOutput]:
        """chain name -> ChainOutput, for each configured chain."""
        out = {}
        for chain in self.cfg.chains:
            out[chain] = self._direct(rows) if chain == "direct" else self._paraphrase(rows)
        return out

    def _request(self, messages: list[dict[str, Any]], max_tokens: int | None = None) -> ChatRequest:
        return ChatRequest(messages=messages, max_tokens=max_tokens or self.cfg.max_tokens,
                           temperature=self.cfg.temperature, seed=self.seed)

    def _with_image(self, messages: list[dict[str, Any]], row: dict[str, Any]) -> list[dict[str, Any]]:
        """Attach the row's image to the last user message."""
        from agentlab.media import user_message

        ref = row.get(self.cfg.image_field)
        if not ref:
            raise ConfigError(f"row {row.get('id')!r} has no image in column {self.cfg.image_field!r}")
        last = max(i for i, m in enumerate(messages) if m["role"] == "user")
        return [*messages[:last], user_message(messages[last]["content"], [str(ref)], self.base_dir), *messages[last + 1:]]

    def _extraction_messages(self, caption: str | None, row: dict[str, Any] | None) -> list[dict[str, Any]]:
        msgs = self.prompts["extract"].messages(caption=caption or "", image=row is not None, reasoning=self.cfg.reasoning)
        return self._with_image(msgs, row) if row is not None else msgs

    def _direct(self, rows: list[dict[str, Any]]) -> ChainOutput:
        image = self.cfg.image_field is not None
        return self.extract([None if image else r.get("text") for r in rows], rows if image else None, "extract")

    def extract(self, captions: list[str | None], image_rows: list[dict[str, Any]] | None, desc: str) -> ChainOutput:
        """Extract triplets from texts (or from the images of `image_rows`); a missing input is a row error."""
        n = len(captions)
        out = ChainOutput([[] for _ in range(n)], [None] * n, [None] * n)
        reqs, idx = [], []
        for i, caption in enumerate(captions):
            try:
                if image_rows is None and not (caption and str(caption).strip()):
                    raise ConfigError("no text to extract from")
                reqs.append(self._request(self._extraction_messages(caption, image_rows[i] if image_rows else None)))
                idx.append(i)
            except ConfigError as exc:  # one bad row (missing text or image) is data, not a crash
                out.errors[i] = str(exc)
        for i, (value, raw, error) in zip(idx, self._answers(reqs, desc)):
            out.raw[i], out.errors[i] = raw, error
            items = value.triplets if value is not None else salvage(raw)
            if value is None and items:  # one malformed triplet must not sink the well-formed ones
                out.errors[i], out.salvaged = None, out.salvaged + 1
            found = (clean_triplet(t.subject, t.predicate, t.object) for t in items)
            out.triplets[i] = unique(t for t in found if t)
        out.failed = sum(e is not None for e in out.errors)
        return out

    def _answers(self, reqs: list[ChatRequest], desc: str) -> list[tuple[Any, str | None, str | None]]:
        """(value, raw, error) per request: constrained to the schema, or (unconstrained) parsed and repaired, no retry."""
        if self.cfg.constrained:
            return [(a.value, a.raw, a.error) for a in self.ctx.complete(self.cfg.model, reqs, schema=self.schema, desc=desc)]
        from agentlab.structured import parse_structured

        out = []
        for a in self.ctx.complete(self.cfg.model, reqs, schema=None, desc=desc):
            value, _, error = parse_structured(a.raw, self.schema) if a.error is None else (None, False, a.error)
            out.append((value, a.raw, error))
        return out

    def _paraphrase(self, rows: list[dict[str, Any]]) -> ChainOutput:
        texts, errors = self._restate(rows)
        out = self.extract(texts, None, "extract (paraphrased)")
        out.texts = texts
        out.errors = [e or x for e, x in zip(errors, out.errors)]
        out.failed = sum(e is not None for e in out.errors)
        return out

    def _restate(self, rows: list[dict[str, Any]]) -> tuple[list[str | None], list[str | None]]:
        """The paraphrase of each caption (or the description of each image), first line only."""
        n = len(rows)
        texts: list[str | None] = [None] * n
        errors: list[str | None] = [None] * n
        reqs, idx = [], []
        for i, row in enumerate(rows):
            try:
                if self.cfg.image_field is not None:
                    msgs = self._with_image(self.prompts["describe"].messages(), row)
                elif row.get("text") and str(row["text"]).strip():
                    msgs = self.prompts["paraphrase"].messages(caption=row["text"])
                else:
                    raise ConfigError("no text to paraphrase")
                reqs.append(self._request(msgs, max_tokens=self.cfg.paraphrase_max_tokens))
                idx.append(i)
            except ConfigError as exc:
                errors[i] = str(exc)
        desc = "describe" if self.cfg.image_field is not None else "paraphrase"
        for i, ans in zip(idx, self.ctx.complete(self.cfg.model, reqs, desc=desc)):
            line = (ans.value or "").strip().splitlines()[0].strip() if ans.value and ans.value.strip() else ""
            texts[i] = line or None
            errors[i] = ans.error or (None if line else f"{desc}: empty answer")
        return texts, errors
