"""report.html: one self-contained page next to report.md (no network at view time).

It holds everything in report.md (converted, with its PNG plots inlined as base64), a paged,
sortable, filterable table of the rows (read from the run's data.jsonl), and for label runs a
confusion matrix per labeler against gold and a labeler x labeler agreement heatmap. The table's
script and style ship in `agentlab/eval/assets/` and are inlined.
"""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from agentlab.eval.html_rows import (
    MAX_ROWS,
    RowSampler,
    labeler_views,
    load_rows,
    row_budget,
    table_data,
)

_IMG = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def _asset(name: str) -> str:
    return resources.files("agentlab.eval").joinpath("assets", name).read_text(encoding="utf-8")


def _inline(text: str) -> str:
    """Escape, then **bold** and `code`."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _image(alt: str, src: str, run_dir: Path) -> str:
    """An image file of the run as a data: URI (never a link: the page must stand alone)."""
    path = (run_dir / src).resolve()
    if run_dir.resolve() not in path.parents or not path.is_file():
        return f"<p>[{html.escape(alt)}: {html.escape(src)} not found]</p>"
    kind = "svg+xml" if path.suffix == ".svg" else path.suffix.lstrip(".").lower() or "png"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/{kind};base64,{data}">'


def markdown_to_html(md: str, run_dir: Path) -> str:
    """The Markdown report.md uses (headings, pipe tables, lists, fenced code, images, paragraphs) as HTML."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1 : j]), quote=False) + "</pre>")
            i = j + 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out.append(_table(lines[i:j]))
            i = j
        elif line.startswith("- "):
            j = i
            while j < len(lines) and lines[j].startswith("- "):
                j += 1
            out.append("<ul>" + "".join(f"<li>{_inline(x[2:])}</li>" for x in lines[i:j]) + "</ul>")
            i = j
        elif _IMG.fullmatch(line.strip()):
            m = _IMG.fullmatch(line.strip())
            out.append(_image(m.group(1), m.group(2), run_dir))
            i += 1
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
            i += 1
        else:
            i += 1
    return "\n".join(out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    head, body = _cells(lines[0]), [_cells(x) for x in lines[1:] if not re.fullmatch(r"\|?[\s:|-]+\|?", x.strip())]
    th = "".join(f"<th>{_inline(c)}</th>" for c in head)
    trs = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _shade(x: float | None) -> str:
    if x is None:
        return "#f4f4f4"
    x = max(0.0, min(1.0, x))
    return f"rgb({int(255 - 150 * x)},{int(255 - 90 * x)},{int(255 - 20 * x)})"


def _confusion_html(name: str, m: dict[str, dict[str, int]], classes: list[str]) -> str:
    cols = [*classes, "(abstain)"] if any("(abstain)" in r for r in m.values()) else list(classes)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for g in classes:
        n = sum(m[g].values()) or 1
        cells = "".join(f'<td class="cell" style="background:{_shade(m[g].get(c, 0) / n)}">{m[g].get(c, 0)}</td>' for c in cols)
        body.append(f"<tr><th>{html.escape(g)}</th>{cells}</tr>")
    right = sum(m[g].get(g, 0) for g in classes)
    voted = sum(v for g in classes for c, v in m[g].items() if c != "(abstain)")
    acc = f"{right / voted:.3f} on {voted} voted rows" if voted else "no votes on gold rows"
    return (f'<div><h3>{html.escape(name)}</h3><table class="heat"><tr><th>gold \\ vote</th>{head}</tr>{"".join(body)}</table>'
            f"<small>accuracy {acc}</small></div>")


def views_html(views: dict[str, Any]) -> str:
    """Confusion matrices vs gold and the agreement heatmap, as tables with shaded cells."""
    out = []
    if views["confusion"]:
        out.append("<h2>Per labeler vs gold (confusion matrices; rows: gold)</h2><div class=\"views\">")
        out += [_confusion_html(n, m, views["classes"]) for n, m in views["confusion"].items()]
        out.append("</div>")
    else:
        out.append("<p>No gold labels in this run: confusion matrices need <code>eval.gold</code>.</p>")
    names = views["labelers"]
    if names:
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        rows = []
        for a in names:
            cells = []
            for b in names:
                rate, n = views["agreement"][a][b]
                text = "–" if rate is None else f"{rate:.2f}"
                cells.append(f'<td class="cell" style="background:{_shade(rate)}" title="{n} rows where both vote">{text}</td>')
            rows.append(f"<tr><th>{html.escape(a)}</th>{''.join(cells)}</tr>")
        out.append("<h2>Labeler × labeler agreement</h2><p>Share of rows where both labelers vote and vote the same class "
                   f"(hover a cell for how many rows both voted on).</p><table class=\"heat\"><tr><th></th>{head}</tr>{''.join(rows)}</table>")
    return "\n".join(out)


_CONTROLS = """
<div class="controls">
  <label>search <input id="f-search" type="search" placeholder="text in any column"></label>
  <label>rows per page <select id="f-page-size"><option>25</option><option selected>50</option><option>100</option><option>500</option></select></label>
  <span id="shown-count"></span>
</div>
<div class="controls" id="label-filters" hidden>
  <label>confidence ≥ <input id="f-conf-min" type="number" min="0" max="1" step="0.05"></label>
  <label>≤ <input id="f-conf-max" type="number" min="0" max="1" step="0.05"></label>
  <label><input id="f-disagree" type="checkbox"> labelers disagree</label>
  <label><input id="f-lm-majority" type="checkbox"> label model ≠ majority</label>
  <label id="f-gold-wrap"><input id="f-gold" type="checkbox"> label ≠ gold</label>
  <label>label <select id="f-class"></select></label>
  <label>labeler <select id="f-labeler"></select></label>
  <label>voted <select id="f-labeler-class"></select></label>
</div>
<div class="pager"><button id="prev-page">‹ prev</button><span id="page-info"></span><button id="next-page">next ›</button></div>
<div style="overflow-x:auto"><table id="rows-table"><thead id="rows-head"></thead><tbody id="rows-body"></tbody></table></div>
"""


def render_html(run_dir: Path, report_md: str, title: str, classes: list[str] | None = None,
                max_rows: int = MAX_ROWS, sampled: RowSampler | None = None) -> str:
    """The whole page for a run directory that holds data.jsonl (and the report's images). `sampled`: the
    rows already sampled while data.jsonl was written (a streaming run), instead of reading the file."""
    data_path = run_dir / "data.jsonl"
    if sampled is not None:
        rows, total, note = sampled.result()
    elif data_path.is_file():
        rows, total, note = load_rows(data_path, row_budget(data_path, max_rows))
    else:
        rows, total, note = [], 0, None
    data = table_data(rows, classes)
    is_label = data["label"] is not None
    views = views_html(labeler_views(rows, data["label"]["classes"])) if is_label and rows else ""
    payload = json.dumps(data, ensure_ascii=False, default=str).replace("</", "<\\/").replace("<!--", "<\\!--")
    nav = '<a href="#report">Report</a><a href="#rows">Rows</a>' + ('<a href="#labelers">Labelers</a>' if views else "")
    intro = f"All {total:,} rows." if note is None else note
    filters_help = (" Filters: confidence range, rows where labelers disagree, where the label model's label is not "
                    "among the most-voted classes, by label, and by what one labeler voted.") if is_label else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} — agentlab report</title>
<style>{_asset("report.css")}</style></head>
<body>
<header><h1>{html.escape(title)}</h1><p>agentlab report: one self-contained file (no network needed).</p></header>
<nav>{nav}</nav>
<main>
<section id="report">{markdown_to_html(report_md, run_dir)}</section>
<section id="rows"><h2>Rows</h2><p class="{'note' if note else ''}">{html.escape(intro)} Click a column header to sort.{filters_help}</p>
{_CONTROLS}</section>
{f'<section id="labelers">{views}</section>' if views else ""}
</main>
<script type="application/json" id="report-data">{payload}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""


def write_html_report(run_dir: Path, report_md: str, title: str, classes: list[str] | None = None,
                      sampled: RowSampler | None = None) -> Path:
    """Write report.html into the run directory; returns its path."""
    path = Path(run_dir) / "report.html"
    path.write_text(render_html(Path(run_dir), report_md, title, classes, sampled=sampled), encoding="utf-8")
    return path
