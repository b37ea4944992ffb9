"""report.html: self-contained, the rows table with filters, per-labeler views; checked in a real headless Chromium."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from agentlab.eval.html import markdown_to_html
from agentlab.eval.html_rows import label_flags, labeler_views, load_rows, table_data
from tests.conftest import run_recipe_cli
from tests.helpers.browser import Browser, why_no_browser

# a 1x1 PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
KEYWORDS = {"positive": ["loved", "wonderful", "great", "delightful"], "negative": ["terrible", "boring", "awful", "dull"]}


def label_recipe() -> dict:
    return {"name": "kw", "source": {"path": "data.jsonl"},
            "task": {"type": "label", "classes": ["positive", "negative"],
                     "labelers": [{"type": "keywords", "name": "kw_all", "votes": KEYWORDS},
                                  {"type": "keywords", "name": "kw_pos", "votes": {"positive": ["great", "clever"], "negative": ["loved"]}},
                                  {"type": "regex", "name": "re_neg", "votes": {"negative": ["(dull|waste|long)"]}}]},
            "aggregate": {"method": "majority"}, "eval": {"gold": "label"}}


def no_network_refs(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//[^"']*""", page) + re.findall(r"<script[^>]+src=", page)


# -- units -----------------------------------------------------------------------------------------
def test_markdown_report_becomes_html_with_images_inline(tmp_path):
    (tmp_path / "plot.png").write_bytes(PNG)
    md = "# Run `x`\n\nTask **label** over 3 rows.\n\n| a | b |\n|---|---|\n| 1 | <2> |\n\n- one\n- two\n\n```json\n{\"k\": 1}\n```\n\n![plot](plot.png)\n"
    out = markdown_to_html(md, tmp_path)
    assert "<h1>Run <code>x</code></h1>" in out and "<strong>label</strong>" in out
    assert "<td>&lt;2&gt;</td>" in out and "<li>two</li>" in out and '<pre>{"k": 1}</pre>' in out
    assert 'src="data:image/png;base64,' in out and "plot.png" not in out.replace('alt="plot"', "")
    assert "not found" in markdown_to_html("![x](../secret.png)", tmp_path)  # never outside the run directory


def test_flags_disagree_and_label_model_against_majority():
    assert label_flags({"a": "pos", "b": "pos", "c": None}, "pos") == (False, False)
    assert label_flags({"a": "pos", "b": "neg", "c": "neg"}, "pos") == (True, True)
    assert label_flags({"a": "pos", "b": "neg"}, "neg") == (True, False)  # a tie keeps both classes
    assert label_flags({"a": None}, None) == (False, False)


def test_table_columns_for_label_rows_and_other_tasks():
    rows = [{"id": 1, "text": "t", "label": "pos", "confidence": 0.9, "gold": "neg", "votes": {"a": "pos", "b": None},
             "label_probs": {"pos": 0.9, "neg": 0.1}, "_raw": None, "_error": None}]
    data = table_data(rows, ["pos", "neg"])
    keys = [c["key"] for c in data["columns"]]
    assert keys[:4] == ["text", "label", "confidence", "gold"] and "vote:a" in keys and "_raw" not in keys and "_error" not in keys
    assert data["rows"][0]["vote:b"] is None and data["label"]["classes"] == ["pos", "neg"]
    debate = [{"text": "c", "decision": "yes", "transcript": [{"speaker": "pro", "text": "x"}], "_error": "boom"}]
    d = table_data(debate)
    kinds = {c["key"]: c["kind"] for c in d["columns"]}
    assert d["label"] is None and kinds["transcript"] == "rich" and kinds["decision"] == "text" and "_error" in kinds


def test_views_confusion_and_agreement():
    rows = [{"label": "p", "gold": "p", "votes": {"a": "p", "b": "p"}}, {"label": "p", "gold": "n", "votes": {"a": "p", "b": "n"}},
            {"label": "n", "gold": "n", "votes": {"a": None, "b": "n"}}]
    v = labeler_views(rows, ["p", "n"])
    assert v["confusion"]["a"] == {"p": {"p": 1}, "n": {"p": 1, "(abstain)": 1}}
    assert v["agreement"]["a"]["b"] == (0.5, 2) and v["agreement"]["b"]["b"] == (1.0, 3)


def test_large_runs_embed_a_sample_plus_the_least_confident_rows(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"i": i, "text": f"r{i}", "confidence": 1 - i / 1000}) + "\n" for i in range(1000)))
    rows, total, note = load_rows(path, max_rows=100)
    idx = [r["i"] for r in rows]
    assert total == 1000 and len(rows) == 100 and idx == sorted(idx) and len(set(idx)) == 100
    assert set(range(980, 1000)) <= set(idx)  # the 20 least confident rows
    assert "1,000 rows" in note and "least confident" in note
    assert load_rows(path, max_rows=5000)[2] is None


# -- a real run ------------------------------------------------------------------------------------
@pytest.fixture
def label_run(workdir) -> Path:
    rows, _ = run_recipe_cli(workdir, label_recipe())
    assert len(rows) == 6
    return workdir / "out"


def test_run_writes_a_self_contained_report_html(label_run):
    page = (label_run / "report.html").read_text()
    assert no_network_refs(page) == []
    assert "Labelers" in page and "Label models vs gold" in page  # everything in report.md
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.DOTALL).group(1))
    assert len(data["rows"]) == 6 and {c["key"] for c in data["columns"]} >= {"text", "label", "gold", "vote:kw_all", "vote:re_neg"}
    assert "Labeler × labeler agreement" in page and "gold \\ vote" in page


def test_report_html_in_headless_chromium(label_run, tmp_path):
    why = why_no_browser()
    if why:
        pytest.skip(f"browser test skipped: {why}")
    with Browser() as b:
        b.open(label_run / "report.html")
        count = "document.querySelectorAll('#rows-body tr').length"
        assert b.eval(count) == 6 and b.eval("document.getElementById('shown-count').textContent") == "6 of 6 rows match"
        assert b.eval("document.querySelectorAll('#rows-head th').length") >= 8
        b.eval("var el = document.getElementById('f-disagree'); el.checked = true; el.dispatchEvent(new Event('change'))")
        disagree = b.eval(count)
        assert 0 < disagree < 6
        b.eval("var el = document.getElementById('f-disagree'); el.checked = false; el.dispatchEvent(new Event('change'))")
        b.eval("var s = document.getElementById('f-class'); s.value = 'negative'; s.dispatchEvent(new Event('change'))")
        negative = b.eval(count)
        assert 0 < negative < 6
        b.eval("document.querySelector('#rows-head th[data-key=confidence]').click()")
        conf = b.eval("Array.from(document.querySelectorAll('#rows-body tr td.num')).map(td => parseFloat(td.textContent))")
        assert conf == sorted(conf)
        shot = b.screenshot(tmp_path / "report.png", height=900)
        assert shot.stat().st_size > 10_000
        assert b.errors == []


def test_other_tasks_show_their_own_rows_in_chromium(workdir):
    """A debate run: the generic table with the transcript folded per row; search filters rows."""
    from tests.tasks.test_debate import ROWS, recipe

    why = why_no_browser()
    if why:
        pytest.skip(f"browser test skipped: {why}")
    (workdir / "c.jsonl").write_text("".join(json.dumps({"text": t, "gold": g}) + "\n" for t, g in ROWS))
    run_recipe_cli(workdir, recipe())
    with Browser() as b:
        b.open(workdir / "out" / "report.html")
        assert b.eval("document.querySelectorAll('#rows-body tr').length") == 4
        heads = b.eval("Array.from(document.querySelectorAll('#rows-head th')).map(th => th.textContent)")
        assert {"text", "decision", "transcript", "single_judge_decision"} <= set(heads)
        assert b.eval("document.querySelectorAll('#rows-body details').length") >= 4  # transcripts fold open
        assert b.eval("document.getElementById('label-filters').hidden") is True
        b.eval("var s = document.getElementById('f-search'); s.value = 'free stuff'; s.dispatchEvent(new Event('input'))")
        assert b.eval("document.querySelectorAll('#rows-body tr').length") == 1
        assert b.errors == []
