"""Built-in labelers: prompt (LLM), keywords, regex, precomputed votes, a user's python function."""

from __future__ import annotations

import importlib.util
import logging
import math
import random
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, create_model

from agentlab.backends.base import ChatRequest
from agentlab.errors import ConfigError
from agentlab.labeling.base import ABSTAIN, LABELERS, Labeler, LabelerConfig, Votes
from agentlab.prompts import row_variables

log = logging.getLogger("agentlab")


class PromptLabelerConfig(LabelerConfig):
    """An LLM prompt (template x model) that votes a class."""

    type: Literal["prompt"] = "prompt"
    model: str = Field("default", description="Model name under `models:`.")
    prompt: str = Field("prompts/label/zero_shot.jinja", description="Jinja template; variables: text, row, classes, examples.")
    examples: int = Field(0, ge=0, description="Few-shot examples drawn (stratified, seeded) from `task.seed`.")
    mode: Literal["auto", "options", "choice", "parse"] = Field(
        "auto", description="options = score each class's verbalizer by log-likelihood; choice = JSON enum; "
        "parse = free text mapped by verbalizers; auto = the best the backend supports, in that order.")
    verbalizers: dict[str, str | list[str]] | None = Field(
        None, description="Words that mean each class (default: the class name).")
    calibrate: bool = Field(False, description="Contextual calibration: subtract the scores of a content-free input ('N/A').")
    abstain_threshold: float | None = Field(None, ge=0, le=1, description="Abstain when the vote's probability is below this.")
    max_tokens: int = Field(16, ge=1, description="Max tokens for choice/parse modes.")
    system: str | None = Field(None, description="Optional system message.")


@LABELERS.register("prompt")
class PromptLabeler(Labeler):
    """Template x model; prefers scoring verbalizers by log-likelihood (small models choose far better than they write)."""

    config_cls = PromptLabelerConfig

    @property
    def name(self) -> str:
        return self.config.name or f"{Path(self.config.prompt).stem}@{self.config.model}" + (
            f"+{self.config.examples}shot" if self.config.examples else "")

    def _verbalizers(self) -> dict[str, list[str]]:
        out = {}
        for cls in self.space.names:
            words = (self.config.verbalizers or {}).get(cls, cls)
            out[cls] = [words] if isinstance(words, str) else list(words)
        return out

    def label(self, ctx, rows):
        cfg, votes = self.config, Votes.single(self.name, len(rows))
        prompt = ctx.load_prompt(cfg.prompt)
        examples = self.task.examples(cfg.examples, ctx.seed + self.index) if cfg.examples else []
        mode = self._mode(ctx)
        build = lambda row: self._messages(prompt, row, examples)
        if mode == "options":
            self._by_options(ctx, rows, build, votes)
        else:
            self._by_answer(ctx, rows, build, votes, mode)
        return votes

    def preflight(self, ctx, rows):
        """Render the first row's messages (reads the template and the seed file); no calls."""
        cfg = self.config
        examples = self.task.examples(cfg.examples, ctx.seed + self.index) if cfg.examples else []
        self._messages(ctx.load_prompt(cfg.prompt), rows[0], examples)

    def _mode(self, ctx) -> str:
        if self.config.mode != "auto":
            return self.config.mode
        caps = ctx.backend(self.config.model).capabilities
        return "options" if "options" in caps else "choice" if "json_schema" in caps else "parse"

    def _messages(self, prompt, row, examples) -> list[dict[str, Any]]:
        msgs = prompt.messages(**row_variables(row, classes=self.space.as_list(), class_names=self.space.names, examples=examples))
        return ([{"role": "system", "content": self.config.system}] if self.config.system else []) + msgs

    def planned_calls(self, ctx, rows):
        """This labeler's requests (and its calibration request), built exactly as `label` builds them."""
        from agentlab.structured import json_schema_of
        from agentlab.tasks.base import PlannedCalls

        cfg = self.config
        prompt = ctx.load_prompt(cfg.prompt)
        examples = self.task.examples(cfg.examples, ctx.seed + self.index) if cfg.examples else []
        build = lambda row: self._messages(prompt, row, examples)
        mode = self._mode(ctx)
        if mode == "options":
            reqs = self._option_requests(ctx, rows, build)
            out = [PlannedCalls(cfg.model, self.name, reqs)]
            if cfg.calibrate:
                out.append(PlannedCalls(cfg.model, f"{self.name} calibrate", [self._calibration_request(ctx, rows, build)]))
            return out
        reqs = [ChatRequest(messages=build(r), max_tokens=cfg.max_tokens, seed=ctx.seed) for r in rows]
        schema = self._choice_schema() if mode == "choice" else None
        if schema is not None:
            js = json_schema_of(schema)
            reqs = [r.model_copy(update={"json_schema": js}) for r in reqs]
        return [PlannedCalls(cfg.model, self.name, reqs)]

    def _option_requests(self, ctx, rows, build) -> list[ChatRequest]:
        options = [w for words in self._verbalizers().values() for w in words]
        return [ChatRequest(messages=build(r), options=options, seed=ctx.seed) for r in rows]

    def _calibration_request(self, ctx, rows, build) -> ChatRequest:
        options = [w for words in self._verbalizers().values() for w in words]
        return ChatRequest(messages=build({**rows[0], "text": "N/A"}), options=options, seed=ctx.seed)

    def _choice_schema(self):
        return create_model("Label", label=(Literal[tuple(self.space.names)], ...))  # type: ignore[misc]

    def _by_options(self, ctx, rows, build, votes: Votes) -> None:
        verb = self._verbalizers()
        reqs = self._option_requests(ctx, rows, build)
        base = None
        if self.config.calibrate:
            blank = ctx.call(self.config.model, [self._calibration_request(ctx, rows, build)], f"{self.name} calibrate")[0]
            base = self._class_scores(blank.option_logprobs, verb) if blank.ok else None
        for i, res in enumerate(ctx.call(self.config.model, reqs, self.name)):
            if not res.ok or not res.option_logprobs:
                votes.raw[0][i], votes.faults[0] = res.error or res.text, votes.faults[0] + 1
                continue
            scores = self._class_scores(res.option_logprobs, verb)
            if base is not None:
                scores = scores - base
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            self._set(votes, i, int(probs.argmax()), float(probs.max()))

    @staticmethod
    def _class_scores(option_logprobs: dict[str, float], verb: dict[str, list[str]]) -> np.ndarray:
        def lse(xs):
            m = max(xs)
            return m + math.log(sum(math.exp(x - m) for x in xs))

        return np.array([lse([option_logprobs.get(w, -1e9) for w in words]) for words in verb.values()])

    def _by_answer(self, ctx, rows, build, votes: Votes, mode: str) -> None:
        schema = self._choice_schema() if mode == "choice" else None
        reqs = [ChatRequest(messages=build(r), max_tokens=self.config.max_tokens, seed=ctx.seed) for r in rows]
        verb = self._verbalizers()
        for i, ans in enumerate(ctx.complete(self.config.model, reqs, schema=schema, desc=self.name)):
            if ans.value is None:
                votes.raw[0][i], votes.faults[0] = ans.error if ans.raw is None else ans.raw, votes.faults[0] + 1
                continue
            cls = self.space.index(ans.value.label) if schema else _map_text(str(ans.value), verb, self.space.names)
            if cls == ABSTAIN:
                votes.raw[0][i] = ans.raw  # unmappable: abstain, raw text kept
            self._set(votes, i, cls, np.nan)

    def _set(self, votes: Votes, i: int, cls: int, conf: float) -> None:
        thr = self.config.abstain_threshold
        if thr is not None and not np.isnan(conf) and conf < thr:
            return
        votes.votes[i, 0], votes.confidence[i, 0] = cls, conf


def _map_text(text: str, verb: dict[str, list[str]], names: list[str]) -> int:
    """The class whose verbalizer occurs first in the answer (whole words, case-insensitive); -1 if none."""
    low, best = text.lower(), (len(text) + 1, ABSTAIN)
    for ci, words in enumerate(verb.values()):
        for w in words:
            m = re.search(rf"\b{re.escape(w.lower())}\b", low)
            if m and m.start() < best[0]:
                best = (m.start(), ci)
    return best[1]


class KeywordsLabelerConfig(LabelerConfig):
    """Vote a class when one of its keywords occurs (abstain when none, or several classes, match)."""

    type: Literal["keywords"] = "keywords"
    votes: dict[str, list[str]] = Field(description="class -> keywords (whole words/phrases, case-insensitive).")
    case_sensitive: bool = Field(False, description="Match case.")
    field: str = Field("text", description="Column to search.")


class RegexLabelerConfig(LabelerConfig):
    """Vote a class when one of its regular expressions matches."""

    type: Literal["regex"] = "regex"
    votes: dict[str, list[str]] = Field(description="class -> regular expressions (Python `re`, searched).")
    ignore_case: bool = Field(True, description="Case-insensitive matching.")
    field: str = Field("text", description="Column to search.")


class _PatternLabeler(Labeler):
    def _patterns(self) -> list[tuple[int, re.Pattern]]:
        raise NotImplementedError

    def label(self, ctx, rows):
        out = Votes.single(self.name, len(rows))
        pats = self._patterns()
        for i, row in enumerate(rows):
            text = str(row.get(self.config.field) or "")
            hits = {ci for ci, p in pats if p.search(text)}
            if len(hits) == 1:
                out.votes[i, 0] = hits.pop()
        return out

    def _class(self, name: str) -> int:
        ci = self.space.index(name)
        if ci == ABSTAIN:
            raise ConfigError(f"labeler {self.name}: unknown class {name!r}; classes: {', '.join(self.space.names)}")
        return ci


@LABELERS.register("keywords")
class KeywordsLabeler(_PatternLabeler):
    """Keyword rules, whole words/phrases."""

    config_cls = KeywordsLabelerConfig

    def _patterns(self):
        flags = 0 if self.config.case_sensitive else re.IGNORECASE
        return [(self._class(c), re.compile(rf"(?<!\w){re.escape(w)}(?!\w)", flags)) for c, ws in self.config.votes.items() for w in ws]


@LABELERS.register("regex")
class RegexLabeler(_PatternLabeler):
    """Regular-expression rules."""

    config_cls = RegexLabelerConfig

    def _patterns(self):
        flags = re.IGNORECASE if self.config.ignore_case else 0
        try:
            return [(self._class(c), re.compile(p, flags)) for c, ps in self.config.votes.items() for p in ps]
        except re.error as exc:
            raise ConfigError(f"labeler {self.name}: bad regular expression: {exc}") from None


class PrecomputedLabelerConfig(LabelerConfig):
    """Votes already in the data: a column holding one vote or a list of votes (one matrix column each)."""

    type: Literal["precomputed"] = "precomputed"
    field: str = Field(description="Column with a vote or a list of votes (class names, class indices, or -1/None = abstain).")
    names: list[str] | None = Field(None, description="Column names for the votes (default: field[i]).")
    classes: list[str] | None = Field(None, description="Class order of integer votes, when it differs from task.classes.")


@LABELERS.register("precomputed")
class PrecomputedLabeler(Labeler):
    """Existing labeling-function outputs (e.g. WRENCH `weak_labels`)."""

    config_cls = PrecomputedLabelerConfig

    def _index(self, v: Any) -> int:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and self.config.classes:
            return self.space.index(self.config.classes[v]) if 0 <= v < len(self.config.classes) else ABSTAIN
        return self.space.index(v)

    def label(self, ctx, rows):
        field = self.config.field
        if field not in rows[0]:
            raise ConfigError(f"labeler {self.name}: column {field!r} not in the source; columns: {', '.join(sorted(rows[0]))}")
        vals = [r.get(field) for r in rows]
        width = max((len(v) for v in vals if isinstance(v, list)), default=1)
        is_list = any(isinstance(v, list) for v in vals)
        names = self.config.names or ([f"{self.config.name or field}[{j}]" for j in range(width)] if is_list else [self.config.name or field])
        votes = np.full((len(rows), len(names)), ABSTAIN, dtype=np.int64)
        memo: dict[tuple[type, Any], int] = {}  # a vote's class index, looked up once per distinct value (1M x 32 votes)

        def index(x: Any) -> int:
            try:
                return memo[(x.__class__, x)]
            except KeyError:
                memo[(x.__class__, x)] = got = self._index(x)
                return got
            except TypeError:  # an unhashable vote (a list): no class
                return self._index(x)

        block = _int_block(vals) if is_list else None
        if block is not None:  # every row a list of plain ints, all as long: map the distinct values once
            uniq, inv = np.unique(block, return_inverse=True)
            votes[:, : block.shape[1]] = np.array([index(int(u)) for u in uniq], dtype=np.int64)[inv.reshape(block.shape)]
        else:
            for i, v in enumerate(vals):
                got = [index(x) for x in (v if is_list and isinstance(v, list) else [v])]
                votes[i, : len(got)] = got
        return Votes(names, votes, np.full(votes.shape, np.nan), [[None] * len(rows) for _ in names], [0] * len(names))


def _int_block(vals: list[Any]) -> np.ndarray | None:
    """`vals` as an n x width int array when every value is a list of plain ints of one length (else None)."""
    import itertools

    if not all(v.__class__ is list for v in vals) or set(map(type, itertools.chain.from_iterable(vals))) != {int}:
        return None
    try:
        block = np.array(vals, dtype=np.int64)
    except (ValueError, OverflowError):  # ragged rows, an int past 64 bits
        return None
    return block if block.ndim == 2 else None


class PythonLabelerConfig(LabelerConfig):
    """A user's function `f(row) -> class name | index | None` in a .py file next to the recipe."""

    type: Literal["python"] = "python"
    file: str = Field(description="Path of the .py file (relative to the recipe or the current directory).")
    function: str = Field(description="Function name in that file.")


@LABELERS.register("python")
class PythonLabeler(Labeler):
    """Snorkel-style labeling function; an exception on a row is an abstain and a counted fault."""

    config_cls = PythonLabelerConfig

    @property
    def name(self) -> str:
        return self.config.name or self.config.function

    def _function(self, ctx):
        path = ctx.recipe.resolve(self.config.file) if ctx.recipe is not None else Path(self.config.file)
        if not Path(path).is_file():
            raise ConfigError(f"labeler {self.name}: file {self.config.file!r} not found")
        spec = importlib.util.spec_from_file_location(f"agentlab_user_{Path(path).stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # the user's own code, named in their own recipe
        fn = getattr(module, self.config.function, None)
        if not callable(fn):
            raise ConfigError(f"labeler {self.name}: no function {self.config.function!r} in {self.config.file}")
        return fn

    def label(self, ctx, rows):
        fn, out = self._function(ctx), Votes.single(self.name, len(rows))
        for i, row in enumerate(rows):
            try:
                out.votes[i, 0] = self.space.index(fn(dict(row)))
            except Exception as exc:
                out.faults[0] += 1
                out.raw[0][i] = f"{type(exc).__name__}: {exc}"
        if out.faults[0]:
            log.warning("labeler %s raised on %d rows (abstained there)", self.name, out.faults[0])
        return out


def stratified_sample(rows: list[dict[str, Any]], k: int, label_of, seed: int) -> list[dict[str, Any]]:
    """k rows, spread over classes round-robin, seeded."""
    rng = random.Random(seed)
    by: dict[Any, list] = {}
    for r in rows:
        by.setdefault(label_of(r), []).append(r)
    for v in by.values():
        rng.shuffle(v)
    out, keys = [], sorted(by, key=str)
    while len(out) < k and any(by.values()):
        for key in keys:
            if by[key] and len(out) < k:
                out.append(by[key].pop())
    rng.shuffle(out)
    return out
