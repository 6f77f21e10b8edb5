/* hpclab's Runs table (issue 17): every run, with the columns the user picks (the run's
 * fields, its key and other summary metrics, its config values; by default the config
 * paths that vary among the runs shown when the page opens, and the key metrics),
 * sortable, filtered by text or by expressions (filter-expr.js) over all of them, the
 * view exported as CSV or JSON (made in the browser), runs ticked to compare. The view
 * (filter ?f=, columns &c=, sort &sort= &dir=) is kept in the URL, so it can be shared.
 * Loaded on the Runs page only, before the theme's script (site/overrides/main.html).
 *
 * Data (hpclab/site/pages.py runs_list_doc, hpclab/site/runs_table.py runs_config_doc):
 *   data/runs-list.json    {metrics, rows}: one compact array per run, [project, run_id,
 *                          status, name, sweep, step, created, duration_s, tags, ...key metrics]
 *   data/runs-config.json  {n, config, metrics, omitted}: one column per config path and
 *                          summary metric, rows in the list's order; a column is either
 *                          {key, dict, codes} (codes index dict, -1: no value) or {key, values}
 * The filter and the sort run over every row in memory; only the rows in view (and
 * OVERSCAN either side) are in the DOM, between two spacers as tall as the rows left out,
 * so that 10,000 runs cost what 60 do. Ticks live in memory (and in the page's history
 * entry), not in the rows: they survive filtering, sorting and scrolling.
 *
 * Every value from the data files is text: cells are made by hpclab.js's html`` tag
 * (escaped) and reach the DOM through setHTML; labels and notes through textContent.
 * hpclab.js calls window.hpclabRunsTable.start(box, helpers) with its helpers.
 */
(function () {
  "use strict";

  var OVERSCAN = 20;
  var DEFAULT_CONFIG = 8;  // at most this many varying config paths shown by default
  var P = 0, ID = 1, STATUS = 2, NAME = 3, SWEEP = 4, STEP = 5, CREATED = 6, DUR = 7, TAGS = 8, METRICS = 9;
  var BEFORE = ["status", "run", "name", "project", "sweep"];  // then metrics, config, AFTER
  var AFTER = ["step", "created", "duration", "tags"];

  // ?q= is also the theme's search query (it would open the search box over the table):
  // a link's ?q=TEXT (runs/index.html?q=lab, pages.py runs_href) becomes ?f=TEXT here,
  // before the theme's script reads the URL.
  (function () {
    try {
      var url = new URL(location.href);
      if (!url.searchParams.has("q")) { return; }
      var q = url.searchParams.get("q");
      url.searchParams.delete("q");
      if (q && !url.searchParams.has("f")) { url.searchParams.set("f", q); }
      history.replaceState(history.state, "", url.href);
    } catch (e) { /* a sandboxed page: the filter is read from ?q= below */ }
  })();

  function start(box, H) {
    var html = H.html, setHTML = H.setHTML, plain = H.plain, fmt = H.fmt, numText = H.numText;
    var tbl = box.querySelector("table.hl-runs");
    var body = tbl.tBodies[0];
    var headRow = tbl.tHead.rows[0];
    var topPad = box.querySelector(".hl-runs-top"), bottomPad = box.querySelector(".hl-runs-bottom");
    var input = document.querySelector(".hl-filter-input");
    var count = document.querySelector(".hl-filter-count");
    var loading = document.querySelector(".hl-runs-loading");
    var bar = document.querySelector(".hl-compare-bar");
    var link = bar.querySelector(".hl-compare");
    var clear = bar.querySelector(".hl-compare-clear");
    var hint = bar.querySelector(".hl-compare-hint");
    var chooser = document.querySelector(".hl-cols-body");
    var chooserSummary = document.querySelector(".hl-cols summary");
    var note = document.querySelector(".hl-cols-note");
    var max = parseInt(link.dataset.max, 10) || 12;
    var rows = [], texts = null, keys = [], byKey = {};
    var all = [], byId = {};  // every column the page can show, in the table's order
    var shownCols = [];       // the columns in the table now
    var chosen = false;       // the user (or the URL) picked the columns
    var sort = null;          // {id, asc}
    var perm = [];            // every row index, in the sort order
    var shown = [];           // the rows the filter keeps, in the sort order
    var visible = [];         // row index -> kept by the filter
    var order = [];           // the ticked runs ("project/run"), in the order they were ticked
    var base = [];            // the rows the filter keeps before the brushes (parcoords.js)
    var brushTest = null;     // inside every brushed range of the parallel coordinates
    var pc = null;            // the parallel coordinates and scatter panel
    var rowH = 0, drawn = [-1, -1], frame = 0;

    /* -- columns ------------------------------------------------------------------- */

    function numCell(v) { var t = numText(v); return t === null ? fmt(null) : html`${t}`; }

    function valueCell(v) {  // a config value: a number, a boolean or text (never markup)
      if (v === null || v === undefined) { return fmt(null); }
      if (typeof v === "number") { return numCell(v); }
      var t = String(v);
      return html`<span class="hl-cfg" title="${t}">${t}</span>`;
    }

    function valueText(v) {  // a cell's text, for the free-text filter
      if (v === null || v === undefined) { return "–"; }
      return typeof v === "number" ? numText(v) || "–" : String(v);
    }

    function builtin(id) {
      var text = function (i) { return rows[i][{ name: NAME, project: P, sweep: SWEEP }[id]]; };
      switch (id) {
        case "status": return { value: function (i) { return rows[i][STATUS]; }, cell: function (i) { return H.badge(rows[i][STATUS]); } };
        case "run": return { value: function (i) { return rows[i][ID]; }, cell: function (i) {
          return html`<a class="hl-run" href="${H.runHref(rows[i][P], rows[i][ID])}">${rows[i][ID]}</a>`;
        } };
        case "step": return { type: "num", value: function (i) { return rows[i][STEP]; }, cell: function (i) { return numCell(rows[i][STEP]); } };
        case "created": return { value: function (i) { return rows[i][CREATED] || null; }, text: function (i) {
          return rows[i][CREATED] ? rows[i][CREATED].slice(0, 16) : "–";
        }, cell: function (i) {
          var c = rows[i][CREATED];
          return c ? html`<time title="${c + " UTC"}">${c.slice(0, 16)}</time>` : fmt(null);
        } };
        case "duration": return { type: "num", value: function (i) { return rows[i][DUR]; }, text: function (i) { return H.duration(rows[i][DUR]); },
          cell: function (i) { return rows[i][DUR] === null ? fmt(null) : html`${H.duration(rows[i][DUR])}`; } };
        case "tags": return { value: function (i) { return rows[i][TAGS]; }, text: function (i) { return rows[i][TAGS].join(" "); },
          cell: function (i) { return H.joinHtml(rows[i][TAGS].map(function (t) { return html`<span class="hl-tag">${t}</span>`; }), " "); } };
        default: return { value: text, cell: function (i) { return html`${text(i)}`; } };
      }
    }

    function columnOf(c) {  // a runs-config.json column -> value(row index)
      if (c.values) { return function (i) { var v = c.values[i]; return v === undefined ? null : v; }; }
      return function (i) { var k = c.codes[i]; return k === undefined || k < 0 ? null : c.dict[k]; };
    }

    function distinctOf(col, among) {  // how many distinct values a column has among rows
      var seen = {}, n = 0;
      for (var j = 0; j < among.length; j++) {
        var v = col.value(among[j]);
        if (v === null) { continue; }
        var k = typeof v + ":" + v;
        if (!seen[k]) { seen[k] = 1; n += 1; if (n > 1) { return n; } }
      }
      return n;
    }

    function makeColumns(doc, cfg) {
      function add(c) { c.type = c.type || "text"; all.push(c); byId[c.id] = c; }
      BEFORE.forEach(function (id) { add(Object.assign({ id: id, label: id, group: "run" }, builtin(id))); });
      (doc.metrics || []).forEach(function (name, j) {
        add({ id: "m:" + name, label: name, group: "key metric", key: true, type: "num",
          value: function (i) { return rows[i][METRICS + j]; }, cell: function (i) { return numCell(rows[i][METRICS + j]); } });
      });
      if (cfg) {
        (cfg.metrics || []).forEach(function (c) {
          if (byId["m:" + c.key]) { return; }
          var value = columnOf(c);
          add({ id: "m:" + c.key, label: c.key, group: "metric", type: "num", value: value, cell: function (i) { return numCell(value(i)); } });
        });
        (cfg.config || []).forEach(function (c) {
          var value = columnOf(c);
          var vals = c.dict || c.values;
          var numeric = vals.every(function (v) { return v === null || typeof v === "number"; });
          add({ id: "c:" + c.key, label: c.key, group: "config", config: true, type: numeric ? "num" : "text",
            value: value, cell: function (i) { return valueCell(value(i)); } });
        });
      }
      AFTER.forEach(function (id) { add(Object.assign({ id: id, label: id, group: "run" }, builtin(id))); });
      var seen = {};  // a config path or metric named like another column is shown by its id
      all.forEach(function (c) { seen[c.label] = (seen[c.label] || 0) + 1; });
      all.forEach(function (c) { if (seen[c.label] > 1 && c.group !== "run") { c.label = c.id; } });
    }

    function defaults(among) {  // the key metrics, and the config paths that vary among rows
      var varying = all.filter(function (c) { return c.config && distinctOf(c, among) > 1; }).slice(0, DEFAULT_CONFIG);
      return all.filter(function (c) { return c.group === "run" || c.key || varying.indexOf(c) >= 0; });
    }

    function setColumns(list) {  // list: columns, shown in the table's order; "run" always
      shownCols = all.filter(function (c) { return c.id === "run" || list.indexOf(c) >= 0; });
      texts = null;
      var heads = [html`<th data-sort="none"></th>`].concat(shownCols.map(function (c) {
        var dir = sort && sort.id === c.id ? (sort.asc ? "ascending" : "descending") : null;
        return html`<th class="hl-sort" tabindex="0" data-sort="${c.type}" data-col="${c.id}"${
          dir ? html` data-dir="${dir === "ascending" ? "asc" : "desc"}" aria-sort="${dir}"` : ""}>${c.label}</th>`;
      }));
      setHTML(headRow, html`${heads}`);
      if (chooser) {
        chooser.querySelectorAll("input.hl-col").forEach(function (b) { b.checked = shownCols.indexOf(byId[b.value]) >= 0; });
        chooserSummary.textContent = "Columns (" + shownCols.length + " of " + all.length + ")";
      }
    }

    function buildChooser(omitted) {
      if (!chooser) { return; }
      var groups = [["run", "Run"], ["key metric", "Key metrics"], ["metric", "Other metrics"], ["config", "Config"]];
      setHTML(chooser, html`<p class="hl-cols-actions"><button type="button" class="hl-cols-default">default columns</button>
        <button type="button" class="hl-cols-none">no config</button></p>${groups.map(function (g) {
        var cs = all.filter(function (c) { return c.group === g[0]; });
        if (!cs.length) { return ""; }
        return html`<fieldset class="hl-cols-group"><legend>${g[1]}</legend>${cs.map(function (c) {
          return html`<label><input type="checkbox" class="hl-col" value="${c.id}"${c.id === "run" ? html` disabled` : ""}> ${c.label}</label>`;
        })}</fieldset>`;
      })}${omitted && omitted.length ? html`<p class="hl-facts">not columns (too many distinct values): ${omitted.join(", ")}</p>` : ""}`);
      chooser.addEventListener("change", function (ev) {
        if (!ev.target.classList.contains("hl-col")) { return; }
        chosen = true;
        setColumns(Array.prototype.map.call(chooser.querySelectorAll("input.hl-col:checked"), function (b) { return byId[b.value]; }));
        writeUrl();
        apply(true);
      });
      chooser.querySelector(".hl-cols-default").addEventListener("click", function () {
        chosen = false;
        setColumns(defaults(shown));
        writeUrl();
        apply(true);
      });
      chooser.querySelector(".hl-cols-none").addEventListener("click", function () {
        chosen = true;
        setColumns(shownCols.filter(function (c) { return !c.config; }));
        writeUrl();
        apply(true);
      });
    }

    /* -- the URL: ?f=FILTER&c=COLUMN&c=...&sort=COLUMN&dir=asc|desc ----------------- */

    function readUrl() {
      var p = new URLSearchParams(location.search);
      var q = p.get("f") || p.get("q");
      if (q && !input.value) { input.value = q; }
      var wanted = p.getAll("c");
      var unknown = wanted.filter(function (id) { return !byId[id]; });
      var s = p.get("sort");
      if (s && byId[s]) { sort = { id: s, asc: p.get("dir") !== "desc" }; } else if (s) { unknown.push(s); }
      if (unknown.length && note) { note.textContent = "not in this site's data, left out of the view: " + unknown.join(", "); }
      if (wanted.length) { chosen = true; return wanted.filter(function (id) { return byId[id]; }).map(function (id) { return byId[id]; }); }
      return null;
    }

    function writeUrl() {
      var p = new URLSearchParams(location.search);
      p.delete("q");
      if (input.value) { p.set("f", input.value); } else { p.delete("f"); }
      p.delete("c");
      if (chosen) { shownCols.forEach(function (c) { p.append("c", c.id); }); }
      if (sort) { p.set("sort", sort.id); p.set("dir", sort.asc ? "asc" : "desc"); } else { p.delete("sort"); p.delete("dir"); }
      var qs = p.toString();
      try {
        history.replaceState(history.state, "", location.pathname + (qs ? "?" + qs : "") + location.hash);
      } catch (e) { /* a sandboxed page: the view is not kept */ }
    }

    /* -- rows ---------------------------------------------------------------------- */

    function pickBox(i) {
      var r = rows[i], k = keys[i], on = order.indexOf(k) >= 0;
      return html`<input type="checkbox" class="hl-pick" value="${k}" aria-label="${"compare " + (r[NAME] || r[ID])}"${
        on ? html` checked` : ""}${!on && order.length >= max ? html` disabled` : ""}>`;
    }

    function rowHtml(i) {
      return html`<tr><td>${pickBox(i)}</td>${shownCols.map(function (c) { return html`<td>${c.cell(i)}</td>`; })}</tr>`;
    }

    function draw(force) {
      var h = rowH || 30;
      var view = Math.max(box.clientHeight, 200);
      var first = Math.max(0, Math.floor(box.scrollTop / h) - OVERSCAN);
      var last = Math.min(shown.length, Math.ceil((box.scrollTop + view) / h) + OVERSCAN);
      first = Math.min(first, last);
      if (!force && first === drawn[0] && last === drawn[1]) { return; }
      var active = document.activeElement;
      var focused = active && body.contains(active) && active.classList.contains("hl-pick") ? active.value : null;
      setHTML(body, html`${shown.slice(first, last).map(rowHtml)}`);
      topPad.style.height = first * h + "px";
      bottomPad.style.height = (shown.length - last) * h + "px";
      drawn = [first, last];
      if (!rowH && body.rows.length) {
        rowH = body.rows[0].getBoundingClientRect().height || 30;
        if (Math.abs(rowH - h) > 0.5) { draw(true); return; }
      }
      if (focused !== null) {
        var again = Array.prototype.filter.call(body.querySelectorAll("input.hl-pick"), function (b) { return b.value === focused; })[0];
        if (again) { again.focus({ preventScroll: true }); }
      }
    }

    function update() {  // the compare bar, and which drawn boxes can still be ticked
      var n = order.length;
      link.textContent = "Compare (" + n + ")";
      if (n >= 2) {
        link.href = H.safeHref("compare.html?r=" + order.map(function (k) {
          var i = k.indexOf("/");
          return encodeURIComponent(k.slice(0, i)) + "/" + encodeURIComponent(k.slice(i + 1));
        }).join(","));
        link.removeAttribute("aria-disabled");
      } else {
        link.removeAttribute("href");
        link.setAttribute("aria-disabled", "true");
      }
      body.querySelectorAll("input.hl-pick").forEach(function (b) {
        b.checked = order.indexOf(b.value) >= 0;
        b.disabled = !b.checked && n >= max;
      });
      clear.hidden = n === 0;
      var hidden = order.filter(function (k) { return !visible[byKey[k]]; }).length;
      hint.textContent = n >= max ? "at most " + max + " runs at a time" :
        n < 2 ? "tick 2 to " + max + " runs to compare them" : "";
      if (hidden) { hint.textContent += (hint.textContent ? " · " : "") + hidden + " ticked hidden by the filter"; }
      try {  // back to this page from the compare page: the same ticks
        history.replaceState(Object.assign({}, history.state || {}, { hlTicks: order.slice() }), "");
      } catch (e) { /* a sandboxed page: ticks are kept for this visit only */ }
    }

    function index() {  // the filter's text of every row (its shown cells): made when needed
      if (texts) { return; }
      texts = rows.map(function (_, i) {
        return plain(shownCols.map(function (c) {
          return c.text ? c.text(i) : c.type === "num" || c.config ? valueText(c.value(i)) : plain(c.value(i));
        }).join(" ")).toLowerCase();
      });
    }

    var errLine = null;
    var FIELDS = { project: P, id: ID, run_id: ID, status: STATUS, name: NAME, sweep: SWEEP, step: STEP, created: CREATED, duration_s: DUR };
    function exprTest() {  // an expression (filter-expr.js) -> a row test, or null for free text
      var F = window.hpclabFilterExpr, text = input.value;
      if (!errLine) { errLine = document.createElement("div"); errLine.className = "hl-filter-error"; count.after(errLine); }
      errLine.textContent = "";
      if (!F || !F.isExpression(text)) { return null; }
      var ast;
      try { ast = F.parse(text); } catch (e) { errLine.textContent = e.message; return null; }
      var i = 0;
      var row = { tags: null, get: function (k) {  // the run's fields, then metrics, then config
        if (Object.prototype.hasOwnProperty.call(FIELDS, k)) { return rows[i][FIELDS[k]]; }
        var c = byId["m:" + k] || byId["c:" + k];
        return c ? c.value(i) : undefined;
      } };
      return function (j) { i = j; row.tags = rows[j][TAGS]; return F.evaluate(ast, row); };
    }

    function apply(keepScroll) {
      keep();
      count.textContent = H.thousands(shown.length) + " of " + H.thousands(rows.length) + " runs";
      if (keepScroll !== true) { box.scrollTop = 0; }
      draw(true);
      update();
      if (pc) { pc.update(); }
    }

    function keep() {  // the rows the filter keeps (shown), in the sort order
      var test = exprTest();
      var words = test || (errLine && errLine.textContent) ? [] : input.value.toLowerCase().split(/\s+/).filter(Boolean);
      if (words.length) { index(); }
      shown = [];
      base = [];
      perm.forEach(function (i) {
        var ok = test ? test(i) : !words.length || words.every(function (w) { return texts[i].indexOf(w) >= 0; });
        if (ok) { base.push(i); }
        ok = ok && (!brushTest || brushTest(i));
        visible[i] = ok;
        if (ok) { shown.push(i); }
      });
    }

    function compareValues(x, y) {  // missing values last (either way: the caller flips)
      var nx = typeof x === "number" && isFinite(x), ny = typeof y === "number" && isFinite(y);
      if (nx && ny) { return x - y; }
      if (nx !== ny) { return nx ? -1 : 1; }
      return collator.compare(plain(Array.isArray(x) ? x.join(" ") : x), plain(Array.isArray(y) ? y.join(" ") : y));
    }
    var collator = new Intl.Collator();

    function sorted() {  // perm in the view's sort order (the list's, newest first, by default)
      perm = rows.map(function (_, i) { return i; });
      if (!sort) { return; }
      var col = byId[sort.id], sign = sort.asc ? 1 : -1;
      var vals = perm.map(col.value);
      var missing = vals.map(function (v) {
        return v === null || v === undefined || v === "" || (typeof v === "number" && !isFinite(v)) || (col.type === "num" && typeof v !== "number");
      });
      perm.sort(function (a, b) {
        if (missing[a] || missing[b]) { return missing[a] === missing[b] ? a - b : missing[a] ? 1 : -1; }
        return sign * compareValues(vals[a], vals[b]) || a - b;
      });
    }

    function sortBy(id) {
      sort = { id: id, asc: !(sort && sort.id === id && sort.asc) };
      headRow.querySelectorAll("th").forEach(function (th) {
        delete th.dataset.dir;
        th.removeAttribute("aria-sort");
        if (th.dataset.col === id) {
          th.dataset.dir = sort.asc ? "asc" : "desc";
          th.setAttribute("aria-sort", sort.asc ? "ascending" : "descending");
        }
      });
      sorted();
      writeUrl();
      apply();
    }

    /* -- export: the view (rows the filter keeps, in order; the columns shown) ------- */

    function exportValue(c, i) {
      var v = c.value(i);
      return v === undefined ? null : v;
    }

    function csvField(v) {
      if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) { return ""; }
      var s = Array.isArray(v) ? v.join(" ") : String(v);
      // text a spreadsheet would run as a formula starts with a quote (numbers stay numbers)
      if (typeof v !== "number" && /^[=+\-@\t\r]/.test(s)) { s = "'" + s; }
      return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    }

    function exported() {  // the columns shown, and the run's project first if it is not
      return shownCols.indexOf(byId.project) >= 0 ? shownCols : [byId.project].concat(shownCols);
    }

    function viewCsv() {
      var cols = exported();
      var lines = [cols.map(function (c) { return c.label; }).map(csvField).join(",")];
      shown.forEach(function (i) {
        lines.push(cols.map(function (c) { return exportValue(c, i); }).map(csvField).join(","));
      });
      return lines.join("\r\n") + "\r\n";
    }

    function viewJson() {
      var cols = exported();
      return JSON.stringify(shown.map(function (i) {
        var out = {};
        cols.forEach(function (c) {
          var v = exportValue(c, i);
          out[c.label] = typeof v === "number" && !isFinite(v) ? null : v;
        });
        return out;
      }), null, 1) + "\n";
    }

    function download(button) {  // a Blob of the view, saved as runs.csv / runs.json
      var csv = button.dataset.format === "csv";
      var blob = new Blob([csv ? viewCsv() : viewJson()], { type: csv ? "text/csv" : "application/json" });
      if (button._hlUrl) { URL.revokeObjectURL(button._hlUrl); }
      button._hlBlob = blob;  // the last export, for scripts and the page's tests
      button._hlUrl = URL.createObjectURL(blob);
      var a = document.createElement("a");
      a.href = button._hlUrl;
      a.download = csv ? "runs.csv" : "runs.json";
      a.hidden = true;
      document.body.appendChild(a);
      a.click();
      a.remove();
    }

    /* -- start --------------------------------------------------------------------- */

    function ready(doc, cfg) {
      rows = doc.rows || [];
      if (cfg && cfg.n !== rows.length) {
        if (note) { note.textContent = "The config columns are out of date (data/runs-config.json lists " + cfg.n + " runs): rebuild the site."; }
        cfg = null;
      }
      makeColumns(doc, cfg);
      rows.forEach(function (r, i) {
        keys.push(r[P] + "/" + r[ID]);
        byKey[keys[i]] = i;
      });
      var saved = (history.state && history.state.hlTicks) || [];
      order = saved.filter(function (k) { return k in byKey; }).slice(0, max);
      buildChooser(cfg && cfg.omitted);
      var wanted = readUrl();
      sorted();
      if (!wanted) {  // the default: what varies among the runs the URL's filter keeps
        shownCols = all.filter(function (c) { return !c.config; });
        keep();
        wanted = defaults(shown);
      }
      setColumns(wanted);
      headRow.addEventListener("click", function (ev) {
        var th = ev.target.closest("th[data-col]");
        if (th) { sortBy(th.dataset.col); }
      });
      headRow.addEventListener("keydown", function (ev) {
        var th = ev.target.closest("th[data-col]");
        if (th && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); sortBy(th.dataset.col); }
      });
      body.addEventListener("change", function (ev) {
        var b = ev.target;
        if (!b.classList.contains("hl-pick")) { return; }
        order = order.filter(function (k) { return k !== b.value; });
        if (b.checked && order.length < max) { order.push(b.value); }
        update();
      });
      clear.addEventListener("click", function () { order = []; update(); });
      input.addEventListener("input", function () { writeUrl(); apply(); });
      document.querySelectorAll("button.hl-export").forEach(function (b) {
        b.addEventListener("click", function () { download(b); });
      });
      box.addEventListener("scroll", function () {
        if (frame) { return; }
        frame = requestAnimationFrame(function () { frame = 0; draw(false); });
      }, { passive: true });
      window.addEventListener("resize", function () { draw(false); });
      if (loading) { loading.hidden = true; }
      if (window.hpclabParcoords) {  // parcoords.js: brushing filters this table
        pc = window.hpclabParcoords.attach(box, {
          columns: function () {
            return shownCols.filter(function (c) { return c.type === "num" && (c.config || c.id.indexOf("m:") === 0); });
          },
          base: function () { return base; },
          setBrush: function (t) { brushTest = t; apply(true); }
        });
      }
      apply();
      box.dataset.ready = "1";
      (window.requestIdleCallback || setTimeout)(index);
    }

    var config = box.dataset.config ? H.fetchJSON(box.dataset.config).catch(function (e) {
      if (note) { note.textContent = "No config columns (" + e.message + ")."; }
      return null;
    }) : Promise.resolve(null);
    return Promise.all([H.fetchJSON(box.dataset.src), config]).then(function (docs) {
      ready(docs[0], docs[1]);
    }).catch(function (e) {
      if (loading) {
        loading.textContent = "Cannot load the runs (" + e.message + "): open the site through " +
          "hpclab site serve or any web server, not as a file.";
      }
    });
  }

  window.hpclabRunsTable = Object.freeze({ start: start });
})();
