"""The autobench task end to end: a scripted proposer, candidates and grader (fake backend), one real embedded run.

The fake backend answers by the first rule whose substring occurs in the last user message. The proposer's
request holds the history ("- volcanoes: ..."), so rules keyed on history lines script each iteration; the
question writer's request holds the document; a candidate's holds the question (with a `[q-..]` marker).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_recipe_cli

DOCS = {
    "v1": "Volcanoes: Mount Vesuvius erupted in 79 AD and buried the Roman town of Pompeii under ash.",
    "v2": "Volcanoes form where magma rises; Kilauea in Hawaii erupts basaltic lava almost continuously.",
    "b1": "Honey bees communicate the direction of flowers with a waggle dance inside the hive.",
    "b2": "Honey bees are ruled by a single queen that lays up to 2000 eggs per day.",
    "g1": "Glaciers in the Alps have lost about half of their volume since 1900.",
    "g2": "Glaciers carve U-shaped valleys as they slowly move downhill.",
    "x1": "The violin has four strings tuned in perfect fifths.",
    "x2": "Chess openings such as the Sicilian Defence begin with the move e4 c5.",
}
LEAKED = "How much volume have Alpine glaciers lost since 1900? [q-g1]"


def props(*names):
    return json.dumps({"categories": [{"category": n, "parent": "", "requirement": ""} for n in names]})


PROPOSER = {  # first match wins: later iterations are keyed on the newest history line
    "- glaciers": props("volcanoes", "glaciers"), "- volcanoes": props("glaciers", "Volcanoes"),
    "start broad": props("volcanoes", "honey bees"), "varied set": props("volcanoes", "glaciers", "honey bees"),
    "Vesuvius": "Question: Which town was buried in AD 79? [q-v1]\nAnswer: Pompeii",
    "Kilauea": "Question: What does the Hawaiian volcano erupt? [q-v2]\nAnswer: basaltic lava",
    "waggle": "Question: How do workers share flower directions? [q-b1]\nAnswer: waggle dance",
    "queen": "Question: How many eggs a day? [q-b2]\nAnswer: 5000 eggs",                  # not in the document
    "Alps": f"Question: {LEAKED}\nAnswer: half",                                          # planted leak
    "U-shaped": "Question: What shape of valley do they carve? [q-g2]\nAnswer: U-shaped",
    "Category: volcanoes": "Question: Name an active volcano in Sicily. [q-nd]\nAnswer: Etna",  # no documents
}
GOOD = {"[q-v1]": "Pompeii", "[q-v2]": "lava", "[q-b1]": "a waggle dance", "[q-g2]": "round"}
BAD = {"[q-v1]": "Rome", "[q-v2]": "ash", "[q-b1]": "they sing", "[q-g2]": "U-shaped valley"}


def fake(rules, default="ok"):
    return {"backend": "fake", "rules": rules, "default": default}


@pytest.fixture
def adir(workdir):
    (workdir / "corpus.jsonl").write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in DOCS.items()))
    (workdir / "train.jsonl").write_text(json.dumps({"question": LEAKED, "answer": "half"}) + "\n")
    return workdir


def recipe(**task):
    return {"name": "ab", "source": {"path": "corpus.jsonl"},
            "models": {"prop": fake(PROPOSER), "good": fake(GOOD), "bad": fake(BAD), "judge": fake({"Answer to grade: lava": "yes"}, "no")},
            "task": {"type": "autobench", "proposer": "prop", "grader": "judge", "answer_mode": "write",
                     "candidates": ["good", {"name": "weak", "model": "bad", "system": "Answer briefly."}],
                     "iterations": 4, "categories_per_iteration": 2, "proposals_per_iteration": 2, "questions_per_category": 2,
                     "leakage": {"against": ["train.jsonl"], "embedding_similarity": None}, **task}}


run = run_recipe_cli  # (workdir, recipe, code=0) -> (rows, manifest), or the error output


def test_search_stops_without_repeats_and_scores_categories(adir):
    rows, man = run(adir, recipe())
    m = man["metrics"]
    trace = m["search"]
    assert [t["kept"] for t in trace] == [["volcanoes", "honey bees"], ["glaciers"], []]
    assert trace[1]["repeats_dropped"][0] == "Volcanoes"                  # a repeat (any case) is dropped; retries re-ask
    assert set(trace[1]["repeats_dropped"]) == {"Volcanoes", "glaciers"} and "stopped" in trace[2]   # nothing new: the loop ends
    assert sorted(m["categories"]) == ["glaciers", "honey bees", "volcanoes"]
    cats = m["categories"]
    assert cats["volcanoes"]["accuracy"] == {"good": 1.0, "weak": 0.0}        # exact match + grader; F1 0 + grader "no"
    assert cats["glaciers"]["accuracy"] == {"good": 0.0, "weak": 1.0}         # token F1 0.8 counts as correct
    assert cats["glaciers"]["novelty"] == 2.0                                 # reverses what the other categories predict
    assert cats["volcanoes"]["novelty"] is None                               # the others predict a tie: no ranking
    assert cats["honey bees"]["difficulty"] == 0.0 and cats["honey bees"]["questions"] == 1
    assert m["novelty"] == 2.0 and m["difficulty"] == 0.0
    assert m["leaderboard"] == {"good": 0.75, "weak": 0.25}
    assert m["autobench"]["rejected"] == {"not grounded": 1, "leakage: ngram overlap": 1}
    assert {r["question"][-6:] for r in rows} == {"[q-v1]", "[q-v2]", "[q-b1]", "[q-g2]"}
    row = next(r for r in rows if r["question"].endswith("[q-v2]"))
    assert row["doc_id"] == "v2" and row["grounded"] is True and row["category"] == "volcanoes" and row["difficulty"] == 0.0
    assert row["answers"] == {"good": "lava", "weak": "ash"} and row["grading"] == {"good": "grader", "weak": "grader"}
    out = adir / "out"
    assert (out / "leaderboard.csv").read_text().splitlines()[0] == "candidate,overall,volcanoes,honey bees,glaciers"
    assert len((out / "search_trace.jsonl").read_text().splitlines()) == 3
    assert {json.loads(x)["rejected"] for x in (out / "rejected.jsonl").read_text().splitlines()} == {"not grounded", "leakage: ngram overlap"}
    assert "# ab: an AutoBencher benchmark" in (out / "dataset_card.md").read_text()
    report = (out / "report.md").read_text()
    assert "## AutoBencher" in report and "![accuracy per category](accuracy_by_category.png)" in report
    assert (out / "accuracy_by_category.png").stat().st_size > 1000 and (out / "objective_by_iteration.png").is_file()
    assert (out / "dataset").is_dir()


def test_ablations_run_in_the_same_run(adir):
    rows, man = run(adir, recipe(iterations=2, ablations={"no_documents": True, "no_adaptive": True}))
    ab = man["metrics"]["ablations"]
    assert set(ab) == {"autobench", "no_documents", "no_adaptive"}
    assert ab["no_adaptive"]["iterations"] == 1 and ab["no_adaptive"]["categories"] == 3       # all proposed at once
    nd = [json.loads(x) for x in (adir / "out" / "ablation_no_documents.jsonl").read_text().splitlines()]
    assert nd and all(p["doc_id"] is None and p["grounded"] is None for p in nd)
    assert ab["no_documents"]["grounded_fraction"] is None
    assert all(r["doc_id"] is not None for r in rows)                       # data.jsonl holds the search's benchmark only


def test_reference_accuracies_drive_novelty(adir):
    (adir / "ref.csv").write_text("candidate,benchmark,accuracy\ngood,mmlu,0.2\nweak,mmlu,0.6\n")
    _, man = run(adir, recipe(reference_accuracies="ref.csv"))
    cats = man["metrics"]["categories"]
    assert cats["volcanoes"]["novelty"] == 2.0 and cats["glaciers"]["novelty"] == 0.0


def test_multiple_choice_scored_by_options(adir):
    rows, _ = run(adir, recipe(question_format="multiple_choice", choices=3, grader=None, verify_answers=False))
    assert rows and all(r["answer"] in r["choices"] and len(r["choices"]) <= 3 for r in rows)
    assert all(set(r["grading"].values()) <= {"choice"} for r in rows)


def test_verify_answers_keeps_only_checked_questions(adir):
    models = recipe()["models"]
    models["prop"] = fake({"Question: Which town": "Pompeii", **PROPOSER})  # the answer check repeats the question
    rows, _ = run(adir, {**recipe(question_format="multiple_choice", choices=3, grader=None, iterations=1), "models": models})
    assert [r["question"] for r in rows] == ["Which town was buried in AD 79? [q-v1]"]
    assert rows[0]["answer"] == "Pompeii" and len(rows[0]["choices"]) == 3
    rejected = [json.loads(x) for x in (adir / "out" / "rejected.jsonl").read_text().splitlines()]
    reasons = {r["rejected"] for r in rejected}
    assert "question not about the answer's sentence" in reasons  # "Hawaiian volcano" vs "Kilauea in Hawaii erupts"
    assert "question not about the answer's sentence" in (adir / "out" / "report.md").read_text()  # reasons are reported


def test_extract_mode_answers_are_document_phrases(adir):
    models = recipe()["models"]
    models["prop"] = fake({"Question: Which town": "Pompeii", **PROPOSER})     # the extract request repeats the question
    rows, man = run(adir, {**recipe(answer_mode="extract", iterations=1), "models": models})
    v1 = next(r for r in rows if r["doc_id"] == "v1")
    assert v1["answer"] == "Pompeii" and v1["answer_source"] == "extracted"
    assert all(r["grounded"] for r in rows)
    assert man["metrics"]["autobench"]["grounded_fraction"] == 1.0


@pytest.mark.parametrize("task, message", [
    ({"candidates": ["good"]}, "task.candidates"),
    ({"candidates": ["good", {"model": "good"}]}, "candidate names must be unique"),
    ({"candidates": ["good", "nope"]}, "task.candidates[1].model: unknown model 'nope'"),
    ({"target_accuracy": [0.5, 0.2]}, "target_accuracy"),
    ({"salience": "pageviews"}, "task.salience"),
])
def test_invalid_recipes(adir, task, message):
    assert message in run(adir, recipe(**task), code=2)


def test_tiny_real_run_with_the_embedded_model(adir):
    """Every role on SmolLM2: the pipeline runs, answers are document phrases, results are recorded (not judged)."""
    small = {"backend": "embedded", "n_threads": 1, "n_ctx": 1024}
    data = {"name": "ab-real", "source": {"path": "corpus.jsonl"}, "models": {"small": small},
            "task": {"type": "autobench", "proposer": "small", "grader": "small",
                     "candidates": ["small", {"name": "terse", "model": "small", "system": "One word only."}],
                     "iterations": 1, "categories_per_iteration": 1, "proposals_per_iteration": 2, "questions_per_category": 2,
                     "question_format": "multiple_choice", "choices": 3, "doc_chars": 200, "temperature": 0,
                     "leakage": {"embedding_similarity": None}}}
    rows, man = run(adir, data)
    m = man["metrics"]
    assert len(m["search"]) == 1 and len(m["categories"]) <= 1
    assert m["search"][0]["proposed"]            # JSON-constrained proposals always parse (whether BM25 finds documents varies)
    assert man["counts"]["llm_calls"] >= 1 and any("SmolLM2" in c for c in man["caveats"])
    assert m["question_style"]["style"] == "cloze"  # auto: the embedded proposer gets cloze questions
    for r in rows:
        assert r["answer_source"] == "cloze" and r["grounded"] is True and r["doc_id"] in DOCS
        assert "____" in r["question"] and r["verified"] == r["answer"]
        assert set(r["correct"]) == {"small", "terse"} and r["answer"] in r["choices"]
