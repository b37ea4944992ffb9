"""Bad input on `generate` (and `validate`): `Error: ...` naming the file, where, the field and the fix; exit 2;
no traceback; no run directory. Every case writes its own small files into a temp dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agentlab.cli import main

GOOD = "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in [("great film", "pos"), ("dull film", "neg")])
FAKE = {"m": {"backend": "fake", "default": "pos"}}
GEN = {"name": "bad", "source": {"path": "data.jsonl"}, "models": FAKE,
       "task": {"type": "generate", "prompt": "p.jinja", "model": "m"}}
DEBATE = {"name": "bad", "source": {"path": "data.jsonl"}, "models": FAKE,
          "task": {"type": "debate", "question": "Is this {{ modality }} positive?",
                   "debaters": [{"role": "pro", "model": "m"}, {"role": "con", "model": "m"}], "judge": {"model": "m"}}}
LABEL = {"name": "bad", "source": {"path": "data.jsonl"}, "models": FAKE,
         "task": {"type": "label", "classes": ["pos", "neg"], "labelers": [{"type": "prompt", "prompt": "p.jinja", "model": "m"}]}}


def _with(base: dict, **changes) -> dict:
    """A deep copy of `base` with dotted keys set (`source.path`, `task.seed`)."""
    out = json.loads(json.dumps(base))
    for dotted, value in changes.items():
        node, *path = out, *dotted.split("__")
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return out


# id, recipe (dict, or raw text for the recipe file), files {name: str | bytes}, the message's parts
CASES = [
    ("jsonl-malformed-line", GEN, {"data.jsonl": '{"text": "a"}\n{"text": "b",}\n{"text": "c"}\n'},
     ["data.jsonl (source.path), line 2, column", "not valid JSON", "Fix: correct or delete line 2"]),
    ("jsonl-line-not-object", GEN, {"data.jsonl": '{"text": "a"}\n[1, 2]\n'},
     ["data.jsonl (source.path), line 2", "JSON list where an object was expected"]),
    ("empty-file", GEN, {"data.jsonl": ""}, ["data.jsonl (source.path): the file is empty", "Fix: point to a file with rows"]),
    ("blank-lines-only", GEN, {"data.jsonl": "\n  \n\n"}, ["data.jsonl (source.path): the file is empty"]),
    ("binary-file", GEN, {"data.jsonl": b'{"text": "a"}\n\x00\x01\x02\xff\xfe binary\n'},
     ["data.jsonl (source.path), line 2", "binary data (a NUL byte)"]),
    ("non-utf8-csv", _with(GEN, source__path="data.csv"), {"data.csv": "text,label\ncaf\xe9 ok,pos\n".encode("latin-1")},
     ["data.csv (source.path), line 2, column 4", "not UTF-8 text (byte 0xe9)", "Fix: save the file as UTF-8"]),
    ("non-utf8-jsonl", GEN, {"data.jsonl": '{"text": "caf\xe9"}\n'.encode("latin-1")},
     ["data.jsonl (source.path), line 1, column 14", "not UTF-8 text"]),
    ("csv-ragged-row", _with(GEN, source__path="data.csv"), {"data.csv": "text,label\na,pos\nb,neg,extra\n"},
     ["data.csv (source.path), line 3", "3 fields but the header has 2 (text, label)", "Fix: quote fields"]),
    ("tsv-ragged-row", _with(GEN, source__path="data.tsv"), {"data.tsv": "text\tlabel\na\tpos\tx\ty\n"},
     ["data.tsv (source.path), line 2", "4 fields but the header has 2"]),
    ("csv-header-only", _with(GEN, source__path="data.csv"), {"data.csv": "text,label\n"},
     ["data.csv (source.path): no rows"]),
    ("json-not-rows", _with(GEN, source__path="data.json"), {"data.json": "42"},
     ["data.json (source.path): the file holds a JSON number, not rows", "Fix: write a list of objects"]),
    ("json-list-mixed", _with(GEN, source__path="data.json"), {"data.json": '[{"text": "a"}, 3]'},
     ["data.json (source.path): item 1 of the list is a JSON number, not an object"]),
    ("json-syntax-error", _with(GEN, source__path="data.json"), {"data.json": '[{"text": "a"},\n {"text": }]'},
     ["data.json (source.path), line 2, column", "not valid JSON"]),
    ("parquet-corrupt", _with(GEN, source__path="data.parquet"), {"data.parquet": b"PAR1 this is not parquet"},
     ["data.parquet (source.path): not a readable Parquet file", "Fix: check that the file is complete Parquet"]),
    ("hf-folder-not-a-dataset", _with(GEN, source__path="ds"), {"ds/readme.txt": "hello"},
     ["ds (source.path): not a dataset folder written by `save_to_disk`"]),
    ("wrench-label-not-index", _with(GEN, source__path="train.json"),
     {"train.json": '{"0": {"data": {"text": "a"}, "label": "spam", "weak_labels": [0]}}'},
     ["train.json (source.path): example '0': label 'spam' is not a class index", '"weak_labels": [-1, 1, ...]']),
    ("wrench-label-names-malformed", _with(GEN, source__path="train.json"),
     {"train.json": '{"0": {"data": {"text": "a"}, "label": 0, "weak_labels": [0]}}', "label.json": '{"0": "ham",'},
     ["label.json (source.path), line 1, column", "not valid JSON"]),
    ("missing-source-file", _with(GEN, source__path="nope.jsonl"), {},
     ["source.path: file or folder not found (got 'nope.jsonl')"]),
    ("unknown-extension", _with(GEN, source__path="data.txt"), {"data.txt": "hello"},
     ["source.format: cannot tell the format of 'data.txt'", "set source.format"]),
    ("wrong-text-field", _with(GEN, source__text_field="body"), {},
     ["source.text_field: column not in data.jsonl (got 'body')", "use one of: label, text"]),
    ("column-named-row", GEN, {"data.jsonl": '{"text": "a", "row": 1}\n', "p.jinja": "{{ row.text }}"},
     ["data.jsonl (source.fields): column 'row' has the name of a template variable", "generate templates get `row`",
      "Fix: rename the column, e.g. `source: {fields: {row_: row}}`"]),
    ("column-named-classes", LABEL, {"data.jsonl": '{"text": "a", "classes": "x"}\n',
                                     "p.jinja": "{{ text }} {{ classes | map(attribute='name') | join(',') }}"},
     ["column 'classes' has the name of a template variable: label templates get `classes`"]),
    ("column-named-class-names", _with(LABEL, task__labelers=[{"type": "prompt", "model": "m"}]),
     {"data.jsonl": '{"text": "a", "class_names": "x"}\n'},
     ["column 'class_names' has the name of a template variable"]),
    ("column-named-examples", _with(LABEL, task__labelers=[{"type": "prompt", "model": "m", "examples": 1,
                                                            "prompt": "prompts/label/few_shot.jinja"}],
                                    task__seed={"path": "seed.jsonl"}),
     {"data.jsonl": '{"text": "a", "examples": []}\n', "seed.jsonl": GOOD},
     ["column 'examples' has the name of a template variable: label templates get `examples`"]),
    ("backend-not-a-string", _with(GEN, models={"m": {"backend": {}}}), {},
     ["models.m.backend: must be a name, not a dict (got {})", "Fix: write one of:"]),
    ("task-type-not-a-string", _with(GEN, task__type=["generate"]), {},
     ["task.type: must be a name, not a list"]),
    ("labeler-type-not-a-string", _with(LABEL, task__labelers=[{"type": {"prompt": 1}}]), {},
     ["task.labelers[0].type: must be a name, not a dict"]),
    ("template-syntax-error", GEN, {"p.jinja": "Text: {{ text \nmore"},
     ["task.prompt: template", "p.jinja, line 2:", "fix the Jinja syntax"]),
    ("template-unknown-variable", GEN, {"p.jinja": "Text: {{ body }}"},
     ["p.jinja: 'body' is undefined; available: id, label, row, text"]),
    ("template-not-utf8", GEN, {"p.jinja": b"Text: {{ text }} \xff"}, ["p.jinja: not UTF-8 text", "save it as UTF-8"]),
    ("template-missing", _with(GEN, task__prompt="nope.jinja"), {}, ["task.prompt: template not found (got 'nope.jinja')"]),
    ("recipe-not-a-mapping", "- name\n- source\n", {}, ["a recipe must be a mapping (got 'list')"]),
    ("recipe-yaml-syntax", "name: bad\nsource:\n  path: data.jsonl\n   model: x\n", {},
     ["r.yaml, line 4, column 9: not valid YAML", "Fix: fix the YAML syntax there"]),
    ("recipe-empty", "", {}, ["r.yaml is empty", "Fix: start with `name:`"]),
    ("recipe-not-utf8", b"name: caf\xe9\n", {}, ["r.yaml, line 1: not UTF-8 text (byte 0xe9)"]),
    ("seed-file-missing", _with(LABEL, task__seed={"path": "nope.jsonl"}), {},
     ["task.seed.path: file or folder not found (got 'nope.jsonl')"]),
    ("seed-file-malformed", _with(LABEL, task__seed={"path": "seed.jsonl"},
                                  task__labelers=[{"type": "prompt", "model": "m", "examples": 2}]),
     {"seed.jsonl": '{"text": "a", "label": "pos"}\nnot json\n'}, ["seed.jsonl (task.seed.path), line 2", "not valid JSON"]),
    ("seed-label-column-missing", _with(LABEL, task__seed={"path": "seed.jsonl", "label_field": "gold"},
                                        task__labelers=[{"type": "prompt", "model": "m", "examples": 2}]),
     {"seed.jsonl": GOOD}, ["task.seed.label_field: column not in seed.jsonl (got 'gold')"]),
    ("seed-no-usable-label", _with(LABEL, task__seed={"path": "seed.jsonl"},
                                   task__labelers=[{"type": "prompt", "model": "m", "examples": 2}]),
     {"seed.jsonl": '{"text": "a", "label": "maybe"}\n'},
     ["seed.jsonl (task.seed.label_field): no row's 'label' is one of the classes (seen: maybe)"]),
    ("debate-question-unknown-variable", _with(DEBATE, task__question="Is {{ subject }} positive?"), {},
     ["template question: 'subject' is undefined; available: id, label, modality, row, text"]),
    ("debate-template-unknown-variable", _with(DEBATE, task__debaters=[{"role": "pro", "model": "m", "prompt": "p.jinja"},
                                                                      {"role": "con", "model": "m", "prompt": "p.jinja"}]),
     {"p.jinja": "{{ text }} {{ stance_text }}"}, ["p.jinja: 'stance_text' is undefined; available:"]),
    ("debate-column-named-modality", DEBATE, {"data.jsonl": '{"text": "a", "modality": "video"}\n'},
     ["column 'modality' has the name of a template variable: debate templates get `modality`"]),
    ("gold-column-missing", _with(GEN, eval={"gold": "answer"}), {}, ["eval.gold: column not in data.jsonl (got 'answer')", "use one of: id, label, text"]),
]


def _write(tmp: Path, recipe, files: dict) -> Path:
    (tmp / "data.jsonl").write_text(GOOD)
    (tmp / "p.jinja").write_text("Text: {{ text }}")
    for name, content in files.items():
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
    path = tmp / "r.yaml"
    if isinstance(recipe, bytes):
        path.write_bytes(recipe)
    else:
        path.write_text(recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, sort_keys=False))
    return path


def _outputs(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name in ("out", "outputs"))


@pytest.mark.parametrize("recipe, files, parts", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(tmp_path, monkeypatch, recipe, files, parts):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, recipe, files)
    res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out"])
    assert isinstance(res.exception, SystemExit), res.exception  # not an uncaught exception
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and "Traceback" not in res.output
    for part in parts:
        assert part in res.output, f"{part!r} not in:\n{res.output}"
    assert _outputs(tmp_path) == [], "a run directory was created"


def test_at_least_twenty_cases():
    assert len(CASES) >= 20 and len({c[0] for c in CASES}) == len(CASES)


RECIPE_ONLY = [c for c in CASES if c[0].startswith(("recipe-", "backend-", "task-type", "labeler-type", "template-syntax",
                                                    "template-missing", "seed-file-missing", "missing-source"))]


@pytest.mark.parametrize("recipe, files, parts", [c[1:] for c in RECIPE_ONLY], ids=[c[0] for c in RECIPE_ONLY])
def test_validate_reports_recipe_problems(tmp_path, monkeypatch, recipe, files, parts):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["validate", str(_write(tmp_path, recipe, files))])
    assert isinstance(res.exception, SystemExit) and res.exit_code == 2, res.output
    assert all(p in res.output for p in parts), res.output


def test_real_process_prints_no_traceback(tmp_path):
    """The installed entry point, in a fresh process: a malformed JSONL line and a non-string backend."""
    for recipe, files, part in [(GEN, {"data.jsonl": '{"text": "a"}\n{oops}\n'}, "data.jsonl (source.path), line 2"),
                                (_with(GEN, models={"m": {"backend": {}}}), {}, "models.m.backend: must be a name")]:
        path = _write(tmp_path, recipe, files)
        res = subprocess.run([sys.executable, "-m", "agentlab", "generate", str(path), "-q", "-o", "out"], check=False, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and part in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert not (tmp_path / "out").exists()


def test_clashing_column_the_templates_do_not_read_is_fine(tmp_path, monkeypatch):
    """A `row` column that no template reads stays reachable as `row.row`; the run goes ahead."""
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, GEN, {"data.jsonl": '{"text": "a", "row": 7}\n'})
    res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert rows[0]["row"] == 7 and rows[0]["output"] == "pos"


def test_streaming_bad_line_after_the_first_chunk_stops_there_and_resumes_after_the_fix(tmp_path, monkeypatch):
    """Only the first chunk is read before the run directory exists; a bad line later stops the run naming it,
    and the fixed file resumes: every row exactly once, in order."""
    monkeypatch.chdir(tmp_path)
    lines = [json.dumps({"text": f"t{i}"}) for i in range(8)]
    bad = [*lines[:5], '{"text": "t5"', *lines[6:]]  # line 6 malformed
    path = _write(tmp_path, _with(GEN, output={"chunk_size": 2}), {"data.jsonl": "\n".join(bad) + "\n"})
    res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out"])
    assert res.exit_code == 2 and "data.jsonl (source.path), line 6, column" in res.output, res.output
    done = [json.loads(x)["text"] for x in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert done == [f"t{i}" for i in range(len(done))] and len(done) <= 5  # committed chunks before the bad line, if any
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(main, ["generate", str(path), "-q", "-o", "out"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["text"] for x in (tmp_path / "out" / "data.jsonl").read_text().splitlines()] == [f"t{i}" for i in range(8)]
