"""The label task's model choice: `auto` by default, gold rows from `aggregate.dev` / `task.seed`."""

from __future__ import annotations

import json

from tests.tasks.test_label import _recipe, _run, label_dir  # noqa: F401 - the fixture

DEV = [("subscribe now http://a.example", "spam"), ("what a lovely song", "ham"),
       ("free stuff at http://b.example", "spam"), ("this song rocks", "ham")]


def test_default_is_auto_and_says_why(label_dir):  # noqa: F811
    recipe = _recipe()
    del recipe["aggregate"]
    rows, man = _run(label_dir, recipe)
    m = man["metrics"]
    assert m["used"] == "auto" and {"accuracy", "accuracy_all"} <= set(m["auto"])
    sel = m["aggregate_selection"]
    assert sel["by"] == "votes" and sel["picked"] in {"dawid_skene", "dawid_skene_groups", "weighted", "metal", "majority"}
    assert sel["reason"]
    assert "## Label model choice" in (label_dir / "out" / "report.md").read_text()
    assert len(rows) == 8


def test_dev_rows_pick_the_model_and_are_never_written_or_scored(label_dir):  # noqa: F811
    (label_dir / "dev.jsonl").write_text("".join(json.dumps({"text": t, "y": g, "weak": [None, None]}) + "\n" for t, g in DEV))
    recipe = _recipe({"aggregate": {"method": "all", "dev": {"path": "dev.jsonl", "gold": "y"}}})
    rows, man = _run(label_dir, recipe)
    assert len(rows) == 8 and all(r["text"] not in dict(DEV) for r in rows)  # one row per source row
    sel = man["metrics"]["aggregate_selection"]
    assert sel["by"] == "gold" and sel["gold_rows"] == 4 and sel["picked"] in sel["gold_accuracy"]
    assert man["metrics"]["used"] == "auto"


def test_a_dev_row_that_is_also_a_source_row_is_not_scored(label_dir):  # noqa: F811
    (label_dir / "dev.jsonl").write_text(json.dumps({"text": "I love this song so much", "y": "ham", "weak": [None, "ham"]}) + "\n")
    _, with_dev = _run(label_dir, _recipe({"aggregate": {"dev": {"path": "dev.jsonl", "gold": "y"}}}))
    assert with_dev["metrics"]["aggregate_selection"]["gold_rows"] == 1
    _, plain = _run(label_dir, _recipe({"aggregate": {"method": "majority"}}))
    # the source row that also chose the model drops out of every score: coverage is over 7 rows, not 8
    cov = with_dev["metrics"]["auto"]["coverage"]
    assert round(cov * 7) == cov * 7 and plain["metrics"]["majority"]["coverage"] * 8 == round(plain["metrics"]["majority"]["coverage"] * 8)


def test_dev_gold_column_missing_is_a_clear_error(label_dir):  # noqa: F811
    from tests.conftest import run_recipe_cli

    (label_dir / "dev.jsonl").write_text(json.dumps({"text": "x", "weak": [None, None]}) + "\n")
    out = run_recipe_cli(label_dir, _recipe({"aggregate": {"dev": {"path": "dev.jsonl", "gold": "y"}}}), code=2)
    assert "Error:" in out and "aggregate.dev.gold" in out and "Traceback" not in out
