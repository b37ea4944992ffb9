"""The w2s examples: proposed answers and targets from gold, the three splits, the students' input texts.

Gold is used here, and only here, to build the yes/no examples: which answer an example proposes (with
`answers_from_gold`) and whether that answer is correct (the target). Neither the target nor the
gold value is ever put in a debater's or judge's prompt; the proposed answer is, by design (it is
what they argue about), and it says nothing about the target on its own: with `pair_answers` every
row yields one example with its true answer and one with the flipped answer (both in the same split),
without it a seeded `flip_fraction` of the rows propose the flipped one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentlab.debate.parse import match_choice
from agentlab.errors import ConfigError
from agentlab.prompts import Prompt

if TYPE_CHECKING:
    from agentlab.w2s.config import W2sConfig

SPLITS = ("half1", "half2", "test")


@dataclass
class W2sData:
    """Per example: its source row, the proposed answer, the target class index (None: no usable gold), the split, the input.

    One example per source row, or with `pair_answers` two (the true and the flipped answer) per row
    with usable gold; a row without usable gold always keeps one example (no answer, no target).

    Attributes:
        classes: the two student classes, the positive one (the proposed answer is correct) first.
        source: the index of each example's source row (non-decreasing).
        answers: the proposed answer of each example (None when its row has no usable gold).
        targets: 0 (correct) / 1 (incorrect), or None.
        splits: split name -> example indices (sorted); examples without a target are in none.
        questions: the rendered w2s question per example.
        texts: what the students read, without any debate.
        answer_classes: the two possible answers, in a fixed order (the classes of `score_answers` students).
    """

    classes: list[str]
    source: list[int]
    answers: list[str | None]
    targets: list[int | None]
    splits: dict[str, list[int]] = field(default_factory=dict)
    questions: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    answer_classes: list[str] = field(default_factory=list)

    @property
    def usable(self) -> list[int]:
        """Example indices with a target, in order."""
        return [i for i, t in enumerate(self.targets) if t is not None]

    def split_of(self, i: int) -> str | None:
        """The split an example belongs to (None: no usable gold)."""
        return next((name for name, idx in self.splits.items() if i in idx), None)


def proposed_answers(config: W2sConfig, rows: list[dict[str, Any]], gold: list[Any]) -> tuple[list, list, list]:
    """(source row, proposed answer, target index) per example, from gold; answer and target None where gold is unusable."""
    if config.answers_from_gold is not None:
        true = _true_answers(config.answers_from_gold, gold)
        if config.paired:
            return _paired_answers(config.answers_from_gold, true)
        return (list(range(len(rows))), *_flipped_answers(config.answers_from_gold, true, config.flip_fraction, config.seed))
    choices = config.choices
    mapping = {str(k).strip().lower(): v for k, v in (config.gold_map or {}).items()}
    answers, targets = [], []
    for row, g in zip(rows, gold):
        key = None if g is None else str(g).strip().lower()
        choice = match_choice(mapping.get(key, key), choices) if key is not None else None
        ok = choice is not None and row.get(config.answer_field) is not None
        answers.append(str(row[config.answer_field]) if ok else None)
        targets.append(choices.index(choice) if ok else None)
    return list(range(len(rows))), answers, targets


def _true_answers(truth: dict[str, str], gold: list[Any]) -> list[str | None]:
    """Each row's true answer (None: gold missing or not in `answers_from_gold`)."""
    keys = {str(k).strip().lower(): v for k, v in truth.items()}
    return [None if g is None else keys.get(_gold_key(g)) for g in gold]


def _other(truth: dict[str, str], answer: str) -> str:
    values = list(dict.fromkeys(truth.values()))
    return values[1] if answer == values[0] else values[0]


def _paired_answers(truth: dict[str, str], true: list[str | None]) -> tuple[list, list, list]:
    """Two examples per row with a true answer: the true one (target 0, correct), then the flipped one (target 1)."""
    source, answers, targets = [], [], []
    for j, t in enumerate(true):
        pairs = [(t, 0), (_other(truth, t), 1)] if t is not None else [(None, None)]
        for answer, target in pairs:
            source.append(j)
            answers.append(answer)
            targets.append(target)
    return source, answers, targets


def _flipped_answers(truth: dict[str, str], true: list[str | None], fraction: float, seed: int) -> tuple[list, list]:
    """Each row proposes its true answer, or for a seeded `fraction` of rows the other one (target 1 = incorrect)."""
    usable = [i for i, t in enumerate(true) if t is not None]
    order = usable[:]
    random.Random(seed).shuffle(order)
    flipped = set(order[: round(len(order) * fraction)])
    answers: list[str | None] = [None] * len(true)
    targets: list[int | None] = [None] * len(true)
    for i in usable:
        answers[i], targets[i] = (_other(truth, true[i]), 1) if i in flipped else (true[i], 0)
    return answers, targets


def _gold_key(g: Any) -> str:
    """'1', 1 and 1.0 all read as '1' (TSV/CSV/JSON give gold labels in different types)."""
    if isinstance(g, float) and g.is_integer():
        g = int(g)
    return str(g).strip().lower()


def split_rows(usable: list[int], targets: list[Any], test_fraction: float, seed: int) -> dict[str, list[int]]:
    """Seeded split of the usable rows, stratified by target (any sortable class): `test` (held out), then half 1 and half 2.

    Per class (shuffled): round(n_c * test_fraction) rows go to test, the rest alternate between the
    halves, starting with the smaller one so that their sizes stay within one row.
    """
    rng = random.Random(seed)
    splits: dict[str, list[int]] = {"half1": [], "half2": [], "test": []}
    for c in sorted({targets[i] for i in usable}):
        members = [i for i in usable if targets[i] == c]
        rng.shuffle(members)
        k = round(len(members) * test_fraction)
        splits["test"] += members[:k]
        first, second = ("half1", "half2") if len(splits["half1"]) <= len(splits["half2"]) else ("half2", "half1")
        splits[first] += members[k:][0::2]
        splits[second] += members[k:][1::2]
    if not splits["test"]:  # a tiny test_fraction: hold out one row all the same
        larger = max(("half1", "half2"), key=lambda h: len(splits[h]))
        splits["test"].append(splits[larger].pop())
    if not all(splits.values()):
        raise ConfigError(f"w2s needs at least one row with gold per split (test, half 1, half 2); got {len(usable)} usable "
                          "row(s): add rows or fix eval.gold")
    return {k: sorted(v) for k, v in splits.items()}


def build_data(config: W2sConfig, rows: list[dict[str, Any]], gold: list[Any] | None) -> W2sData:
    """Proposed answers, targets, splits and input texts for every row."""
    if gold is None:
        raise ConfigError("task w2s needs gold labels: set `eval: {gold: <column>}` (gold trains the weak students on half 1 "
                          "and measures every accuracy; it is never shown to the debaters)")
    if rows and config.text_field not in rows[0]:
        raise ConfigError(f"column {config.text_field!r} (task.text_field) not in the source; columns: {', '.join(sorted(rows[0]))}")
    if config.answer_field and rows and config.answer_field not in rows[0]:
        raise ConfigError(f"column {config.answer_field!r} (task.answer_field) not in the source; columns: {', '.join(sorted(rows[0]))}")
    data = W2sData(config.choices, *proposed_answers(config, rows, gold))
    if not data.usable:
        seen = sorted({str(g) for g in gold})[:5]
        how = "answers_from_gold" if config.answers_from_gold is not None else "gold_map"
        raise ConfigError(f"no gold value ({', '.join(seen)}) could be used; map them with `task.{how}`")
    data.answer_classes = answer_classes(config, data.answers)
    data.splits = split_examples(data, config.paired, config.test_fraction, config.seed)
    question, template = Prompt(config.question, "task.question"), Prompt(config.input_template, "task.input_template")
    for j, ans in zip(data.source, data.answers):
        row = rows[j]
        q = question.render(**{**row, "row": row})
        data.questions.append(q)
        variables = {**row, "row": row, "text": row.get(config.text_field), "question": q, "answer": ans}
        data.texts.append(template.render(**variables))
    return data


def answer_classes(config: W2sConfig, answers: list[str | None]) -> list[str]:
    """The two answers a `score_answers` student chooses between: `answers_from_gold`'s, else the ones the rows propose."""
    if config.answers_from_gold is not None:
        return list(dict.fromkeys(config.answers_from_gold.values()))
    seen = list(dict.fromkeys(a for a in answers if a is not None))
    if config.score_answers and len(seen) != 2:
        raise ConfigError(f"score_answers needs exactly two distinct proposed answers in {config.answer_field!r} "
                          f"(task.answer_field); found {len(seen)}: {', '.join(map(repr, seen[:5]))}. Set score_answers: false")
    return seen


def split_examples(data: W2sData, paired: bool, test_fraction: float, seed: int) -> dict[str, list[int]]:
    """The examples' splits: by example (stratified by target), or with pairs by source row, stratified by the row's
    true answer, so that both examples of a row always land in the same split (no answer leaks across splits)."""
    if not paired:
        return split_rows(data.usable, data.targets, test_fraction, seed)
    true: dict[int, str] = {data.source[i]: data.answers[i] for i in data.usable if data.targets[i] == 0}
    rows = sorted(true)
    by_row = split_rows(rows, [true.get(j) for j in range(max(rows) + 1)], test_fraction, seed)
    where = {j: name for name, idx in by_row.items() for j in idx}
    return {name: [i for i in data.usable if where[data.source[i]] == name] for name in by_row}


def with_transcript(text: str, transcript: list[dict[str, str]]) -> str:
    """The input text with a debate transcript appended ("Debate:" and one "Speaker: text" line per turn)."""
    if not transcript:
        return text
    turns = "\n".join(f"{t['speaker'].capitalize()}: {t['text']}" for t in transcript)
    return f"{text}\n\nDebate:\n{turns}"
