"""SPTAR: prompts, the tuning split, the example filter, soft prompt tuning (cached), journaled generation."""

from __future__ import annotations

import math

import pytest

from agentlab.queries.config import SoftPromptConfig
from agentlab.queries.softgen import generate_soft
from agentlab.queries.sptar import (
    candidate_sets,
    example_filter,
    render_prompt,
    split_pairs,
    tune,
)
from agentlab.store import CallCache
from tests.queries.conftest import DOCS, PAIRS


def test_render_prompt_shows_examples_then_the_open_slot():
    got = render_prompt([("coffee and the liver", "d5")], "Some document text", DOCS, doc_chars=20)
    assert got == ("Document: Coffee consumption i\nRelevant Query: coffee and the liver\n\n"
                   "Document: Some document text\nRelevant Query:")
    assert render_prompt([], "abc", DOCS, 100) == "Document: abc\nRelevant Query:"


def test_split_holds_out_the_tail_and_keeps_examples_out_of_training():
    s = split_pairs(PAIRS, k=2, val_fraction=0.34)
    assert s.held == PAIRS[4:] and s.examples == PAIRS[:2] and s.train == PAIRS[2:4] and s.pool == PAIRS[:4]
    assert split_pairs(PAIRS, k=0, val_fraction=0).held == []
    tiny = split_pairs(PAIRS[:3], k=2, val_fraction=0.2)  # nothing but the examples left: they train too
    assert tiny.held == PAIRS[2:3] and tiny.train == PAIRS[:2]


def test_candidate_sets_start_with_the_tuned_set_and_are_distinct():
    s = split_pairs(PAIRS, k=2, val_fraction=0.34)
    cands = candidate_sets(s, n=4, seed=0)
    assert cands[0] == PAIRS[:2] and len(cands) == 4
    assert len({tuple(sorted(c)) for c in cands}) == 4 and all(set(c) <= set(s.pool) for c in cands)
    assert len(candidate_sets(split_pairs(PAIRS, 4, 0.34), n=5, seed=0)) == 1  # one 4-subset of a 4-pair pool
    assert candidate_sets(split_pairs(PAIRS, 0, 0.34), n=3, seed=0) == [[]]


class _Scorer:
    """A stand-in LM: a gold query is cheaper after an example about the same organ system."""

    def __init__(self):
        self.seen: list[list[str]] = []

    def loss(self, pairs, max_length=384):
        self.seen.append([p.prompt for p in pairs])
        shots = [p.prompt.rsplit("Document:", 1)[0] for p in pairs]
        return [1.0 if "Vitamin D" in s else 2.0 + len(p.completion) / 100 for s, p in zip(shots, pairs)]


def test_example_filter_keeps_the_lower_loss_set():
    held = [("does sleep loss hurt memory", "d6"), ("vitamin d and bone fractures", "d2")]
    cands = [[PAIRS[0]], [PAIRS[1]], [PAIRS[3]]]  # aspirin, vitamin D, smoking
    scorer = _Scorer()
    best, scores = example_filter(scorer, cands, held, DOCS, doc_chars=200)
    assert best == 1 and scores[1] == 1.0 and scores[0] > 2 and scores[2] > 2
    # a held-out pair whose document is one of the set's examples is not scored for that set
    assert len(scorer.seen[1]) == 1 and "Document: Sleep" in scorer.seen[1][0]
    assert example_filter(scorer, [[PAIRS[0]], [PAIRS[0]]], held, DOCS, 200)[0] == 0  # ties keep the first


def _cfg(**kw) -> SoftPromptConfig:
    return SoftPromptConfig(**{"num_virtual_tokens": 4, "max_steps": 4, "batch_size": 2, "max_length": 96,
                               "learning_rate": 3e-2, **kw})


def test_tuning_changes_the_loss_and_a_rerun_reuses_it(tiny_llama, tmp_path):
    split = split_pairs(PAIRS, k=1, val_fraction=0.34)
    cfg = _cfg(base=str(tiny_llama))
    lm, info = tune(split, DOCS, cfg, doc_chars=200, seed=0, parent=tmp_path)
    assert not info["reused"] and info["steps"] == 4 and info["train_pairs"] == 3 and info["val_pairs"] == 2
    assert math.isfinite(info["val_loss"]) and info["val_loss"] != info["init_val_loss"]
    again, info2 = tune(split, DOCS, cfg, doc_chars=200, seed=0, parent=tmp_path)
    assert info2["reused"] and info2["key"] == info["key"] and info2["val_loss"] == info["val_loss"]
    pairs = [("Document: x\nRelevant Query:", " a query")]
    assert again.loss(pairs) == pytest.approx(lm.loss(pairs), abs=1e-4)
    changed = tune(split, DOCS, cfg.model_copy(update={"max_steps": 3}), doc_chars=200, seed=0, parent=tmp_path)[1]
    assert not changed["reused"] and changed["key"] != info["key"]
    assert len(list(tmp_path.glob("soft-*"))) == 2 and not list(tmp_path.glob(".soft-*"))


def test_soft_prompt_batched_generation_matches_one_by_one(tiny_llama, tmp_path):
    lm, _ = tune(split_pairs(PAIRS, 1, 0.34), DOCS, _cfg(base=str(tiny_llama)), 200, 0, tmp_path)
    prompts = [render_prompt([], DOCS[d], DOCS, 200) for d in ("d1", "d4", "d6")]
    prompts[1] = prompts[1] + " " + DOCS["d2"]  # different lengths: the batch is left-padded
    batched = lm.generate(prompts, max_new_tokens=6, batch_size=3)
    assert batched == [lm.generate([p], max_new_tokens=6)[0] for p in prompts]


def test_generation_is_journaled_and_resumes(tiny_llama, tmp_path):
    lm, info = tune(split_pairs(PAIRS, 1, 0.34), DOCS, _cfg(base=str(tiny_llama)), 200, 0, tmp_path)
    rows = [{"id": d, "text": DOCS[d]} for d in ("d3", "d4", "d5", "d6")]
    cache = CallCache(tmp_path / "journal.sqlite")
    kw = {"soft_key": info["key"], "doc_chars": 200, "per_doc": 1, "max_tokens": 6, "temperature": 0.0, "seed": 0,
          "batch_size": 2, "cache": cache}
    first = generate_soft(lm, rows[:2], [PAIRS[0]], DOCS, **kw)  # a run killed after two documents
    assert first.resumed == 0 and first.generated_calls >= 2
    full = generate_soft(lm, rows, [PAIRS[0]], DOCS, **kw)
    assert full.resumed >= 2 and full.raws[:2] == first.raws and len(full.queries) == 4
    again = generate_soft(lm, rows, [PAIRS[0]], DOCS, **kw)
    assert again.generated_calls == 0 and again.raws == full.raws and again.queries == full.queries
    other = generate_soft(lm, rows[:1], [PAIRS[1]], DOCS, **kw)  # other examples: another prompt, not resumed
    assert other.resumed == 0
    sampled = generate_soft(lm, rows[:1], [PAIRS[0]], DOCS, **{**kw, "per_doc": 2, "temperature": 1.0})
    assert len(sampled.raws[0]) == 2


def test_smollm2_soft_prompt_real_path(tmp_path):
    """The embedded model through transformers: one prompt-tuning step moves the held-out loss; it writes text."""
    split = split_pairs(PAIRS, k=1, val_fraction=0.17)
    lm, info = tune(split, DOCS, _cfg(num_virtual_tokens=8, max_steps=1, max_length=128), doc_chars=200, seed=0,
                    parent=tmp_path)
    assert info["val_loss"] != info["init_val_loss"] and info["steps"] == 1 and info["val_pairs"] == 1
    gen = generate_soft(lm, [{"id": "d3", "text": DOCS["d3"]}], [PAIRS[0]], DOCS, soft_key=info["key"], doc_chars=200,
                        per_doc=1, max_tokens=12, temperature=0.0, seed=0, batch_size=1, cache=CallCache(None))
    assert len(gen.raws[0]) == 1 and gen.raws[0][0].strip()
