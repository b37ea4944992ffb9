// agentlab report.html: the rows table (paged, sortable, filterable). Plain JS, no network.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var cols = data.columns, all = data.rows, lab = data.label;
  var state = { search: "", confMin: null, confMax: null, disagree: false, lmNeMajority: false, goldMismatch: false,
                labeler: "", labelerClass: "", labelClass: "", sortKey: null, sortDir: 1, page: 0, pageSize: 50 };
  var $ = function (id) { return document.getElementById(id); };

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function isTurns(v) { return Array.isArray(v) && v.length && v.every(function (t) { return t && typeof t === "object" && ("text" in t) && ("speaker" in t || "role" in t); }); }
  function rich(v) {
    if (v === null || v === undefined) return '<span class="vote-abstain">–</span>';
    if (isTurns(v)) {
      var turns = v.map(function (t) { return '<div class="turn"><b>' + esc(t.speaker || t.role) + ":</b> " + esc(t.text) + "</div>"; }).join("");
      return "<details><summary>" + v.length + " turns</summary>" + turns + "</details>";
    }
    if (Array.isArray(v)) {
      if (!v.length) return '<span class="vote-abstain">[]</span>';
      var items = v.map(function (x) {
        if (Array.isArray(x)) return esc(x.join(" — "));
        if (x && typeof x === "object") return esc(Object.keys(x).map(function (k) { return k + ": " + (typeof x[k] === "object" ? JSON.stringify(x[k]) : x[k]); }).join("; "));
        return esc(x);
      });
      return v.length > 3 ? "<details><summary>" + v.length + " items</summary>" + items.join("<br>") + "</details>" : items.join("<br>");
    }
    if (typeof v === "object") {
      var keys = Object.keys(v);
      var body = keys.map(function (k) { return esc(k) + ": " + esc(typeof v[k] === "object" ? JSON.stringify(v[k]) : v[k]); }).join("<br>");
      return keys.length > 4 ? "<details><summary>" + keys.length + " fields</summary>" + body + "</details>" : body;
    }
    return esc(v);
  }
  function cell(c, r) {
    var v = r[c.key];
    if (c.kind === "num") return '<td class="num">' + (v === null || v === undefined ? "" : (typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(3)) : esc(v))) + "</td>";
    if (c.kind === "vote") return "<td>" + (v === null || v === undefined ? '<span class="vote-abstain">abstain</span>' : esc(v)) + "</td>";
    if (c.kind === "label") {
      var bad = lab && lab.gold && r[lab.gold] !== null && r[lab.gold] !== undefined && v !== null && String(v).toLowerCase() !== String(r[lab.gold]).toLowerCase();
      return "<td" + (bad ? ' class="mismatch" title="differs from gold"' : "") + ">" + (v === null || v === undefined ? '<span class="vote-abstain">none</span>' : esc(v)) + "</td>";
    }
    if (c.kind === "bool") return "<td>" + (v ? "yes" : "") + "</td>";
    if (c.kind === "text") return '<td class="text">' + (v === null || v === undefined ? "" : esc(typeof v === "string" ? v : JSON.stringify(v))) + "</td>";
    return "<td>" + rich(v) + "</td>";
  }
  function keep(r) {
    if (state.search) {
      var hay = cols.map(function (c) { var v = r[c.key]; return typeof v === "string" ? v : JSON.stringify(v); }).join(" ").toLowerCase();
      if (hay.indexOf(state.search) < 0) return false;
    }
    if (lab) {
      var conf = r[lab.confidence];
      if (state.confMin !== null && !(conf >= state.confMin)) return false;
      if (state.confMax !== null && !(conf <= state.confMax)) return false;
      if (state.disagree && !r[lab.disagree]) return false;
      if (state.lmNeMajority && !r[lab.lm_ne_majority]) return false;
      if (state.goldMismatch && !(lab.gold && r[lab.gold] !== null && r[lab.gold] !== undefined && String(r[lab.label]).toLowerCase() !== String(r[lab.gold]).toLowerCase())) return false;
      if (state.labelClass && r[lab.label] !== state.labelClass) return false;
      if (state.labeler) {
        var vote = r[state.labeler];
        if (state.labelerClass === "" ? (vote === null || vote === undefined) : (state.labelerClass === "(abstain)" ? (vote !== null && vote !== undefined) : vote !== state.labelerClass)) return false;
      } else if (state.labelerClass && state.labelerClass !== "(abstain)") {
        if (!lab.labelers.some(function (l) { return r[l.key] === state.labelerClass; })) return false;
      }
    }
    return true;
  }
  function compare(a, b) {
    var x = a[state.sortKey], y = b[state.sortKey];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    if (typeof x === "object") x = JSON.stringify(x);
    if (typeof y === "object") y = JSON.stringify(y);
    return (x < y ? -1 : 1) * state.sortDir;
  }
  function render() {
    var rows = all.filter(keep);
    if (state.sortKey) rows = rows.slice().sort(compare);
    var pages = Math.max(1, Math.ceil(rows.length / state.pageSize));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * state.pageSize, shown = rows.slice(start, start + state.pageSize);
    $("rows-body").innerHTML = shown.map(function (r) { return "<tr>" + cols.map(function (c) { return cell(c, r); }).join("") + "</tr>"; }).join("");
    $("shown-count").textContent = rows.length + " of " + all.length + " rows match";
    $("page-info").textContent = "page " + (state.page + 1) + " of " + pages;
    $("prev-page").disabled = state.page === 0;
    $("next-page").disabled = state.page >= pages - 1;
    Array.prototype.forEach.call(document.querySelectorAll("#rows-table th"), function (th) {
      th.className = th.dataset.key === state.sortKey ? (state.sortDir > 0 ? "sorted-asc" : "sorted-desc") : "";
    });
  }
  function header() {
    $("rows-head").innerHTML = "<tr>" + cols.map(function (c) { return '<th data-key="' + esc(c.key) + '" title="click to sort">' + esc(c.label) + "</th>"; }).join("") + "</tr>";
    Array.prototype.forEach.call(document.querySelectorAll("#rows-table th"), function (th) {
      th.addEventListener("click", function () {
        if (state.sortKey === th.dataset.key) state.sortDir = -state.sortDir; else { state.sortKey = th.dataset.key; state.sortDir = 1; }
        render();
      });
    });
  }
  function options(sel, values, first) {
    sel.innerHTML = '<option value="">' + esc(first) + "</option>" + values.map(function (v) { return '<option value="' + esc(v[0]) + '">' + esc(v[1]) + "</option>"; }).join("");
  }
  function bind(id, ev, fn) { var el = $(id); if (el) el.addEventListener(ev, function () { fn(el); state.page = 0; render(); }); }
  function num(el) { return el.value === "" ? null : parseFloat(el.value); }

  header();
  if (lab) {
    $("label-filters").hidden = false;
    var classes = lab.classes.map(function (c) { return [c, c]; });
    options($("f-class"), classes, "any label");
    options($("f-labeler"), lab.labelers.map(function (l) { return [l.key, l.name]; }), "any labeler");
    options($("f-labeler-class"), classes.concat([["(abstain)", "(abstain)"]]), "votes anything");
    if (!lab.gold) $("f-gold-wrap").hidden = true;
  }
  bind("f-search", "input", function (el) { state.search = el.value.trim().toLowerCase(); });
  bind("f-conf-min", "input", function (el) { state.confMin = num(el); });
  bind("f-conf-max", "input", function (el) { state.confMax = num(el); });
  bind("f-disagree", "change", function (el) { state.disagree = el.checked; });
  bind("f-lm-majority", "change", function (el) { state.lmNeMajority = el.checked; });
  bind("f-gold", "change", function (el) { state.goldMismatch = el.checked; });
  bind("f-class", "change", function (el) { state.labelClass = el.value; });
  bind("f-labeler", "change", function (el) { state.labeler = el.value; });
  bind("f-labeler-class", "change", function (el) { state.labelerClass = el.value; });
  bind("f-page-size", "change", function (el) { state.pageSize = parseInt(el.value, 10) || 50; });
  $("prev-page").addEventListener("click", function () { state.page = Math.max(0, state.page - 1); render(); });
  $("next-page").addEventListener("click", function () { state.page += 1; render(); });
  render();
  window.agentlabReport = { rendered: true, total: all.length };
})();
