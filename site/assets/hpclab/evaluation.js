/* The evaluation and latency parts of the run and compare pages (issue 19).
 *
 * Data: each run's details document (data/details/<project>/<run>.json: evaluation,
 * latency; hpclab/site/eval_pages.py), charts: the Vega-Lite specs in the page
 * (script.hl-eval-specs). hpclab.js draws the rest of these pages; this script adds its
 * cards once hpclab.js has drawn them (and again if it draws them anew).
 *
 * Every value is put on the page as text (createElement / textContent): nothing here
 * parses markup.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var ROOT = new URL("../../", script ? script.src : location.href);
  var PALETTE = ["#4c6ef5", "#e8710a", "#2e9d5b", "#d1453b", "#8e24aa", "#00a3bf",
                 "#f2a600", "#6d4c41", "#e64980", "#5c940d", "#1864ab", "#862e9c"];
  // the radar's spokes, in this order; scores are drawn as they are (R² clipped at 0),
  // errors as the selection's lowest over the run's (1: the best of these runs)
  var ORDER = ["accuracy", "macro_f1", "macro_precision", "macro_recall", "r2", "mae", "rmse"];
  var ERRORS = { mae: true, rmse: true };
  var LABELS = { accuracy: "accuracy", macro_f1: "macro F1", macro_precision: "macro precision",
    macro_recall: "macro recall", r2: "R²", mae: "MAE", rmse: "RMSE" };

  function url(path) { return new URL(path, ROOT).href; }

  function detailsPath(key) {
    return "data/details/" + key.split("/").map(encodeURIComponent).join("/") + ".json";
  }

  function fetchJSON(path) {
    return fetch(url(path), { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error(path + ": HTTP " + r.status); }
      return r.json();
    });
  }

  // el("td", {className: "x"}, ["text", otherNode]): strings become text nodes
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "className") { node.className = attrs[k]; }
      else if (k === "href") { node.setAttribute("href", attrs[k]); }
      else if (k === "title") { node.title = attrs[k]; }
      else { node.dataset[k] = attrs[k]; }
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) { return; }
      node.appendChild(typeof c === "object" && c.nodeType ? c : document.createTextNode(String(c)));
    });
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) { return "–"; }
    if (typeof v !== "number") { return String(v); }
    if (Number.isInteger(v) && Math.abs(v) < 1e15) { return v.toLocaleString("en-US"); }
    var a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
  }

  function ci(lo, hi) { return lo === null || lo === undefined ? "–" : "[" + fmt(lo) + ", " + fmt(hi) + "]"; }

  function table(headers, rows, cls) {
    var head = el("tr", {}, headers.map(function (h) { return el("th", {}, [h]); }));
    var body = el("tbody", {}, rows.map(function (r) {
      var tr = el("tr", r.className ? { className: r.className } : {}, r.cells.map(function (c) { return el("td", {}, [c]); }));
      return tr;
    }));
    return el("table", { className: "hl-table " + (cls || "") }, [el("thead", {}, [head]), body]);
  }

  function methodLink(text) {
    return el("a", { href: url("statistics.html#evaluation") }, [text]);
  }

  function specs() {
    var s = document.querySelector(".hl-eval-specs");
    return s ? JSON.parse(s.textContent) : {};
  }

  function chartConfig() {
    var style = getComputedStyle(document.body);
    var fg = style.color || "#333";
    var grid = "rgba(127,127,127,0.18)";
    return { background: null, font: style.fontFamily, view: { stroke: null },
      axis: { labelColor: fg, titleColor: fg, gridColor: grid, domainColor: grid, tickColor: grid,
        labelOverlap: "greedy", labelSeparation: 4 },
      legend: { labelColor: fg, titleColor: fg }, text: { color: fg }, range: { category: PALETTE } };
  }

  function draw(box, spec, datasets) {
    if (!window.vegaEmbed || !spec) { box.dataset.rendered = "0"; return Promise.resolve(); }
    var s = JSON.parse(JSON.stringify(spec));
    s.datasets = datasets;
    s.config = chartConfig();
    if (s.width === "container") { s.autosize = { type: "fit-x", contains: "padding" }; }
    var o = { actions: false, renderer: "svg", ast: true };
    var interpreter = (window.vega && window.vega.expressionInterpreter) || window.vegaExpressionInterpreter;
    if (interpreter) { o.expr = interpreter; }
    return window.vegaEmbed(box, s, o).then(function () { box.dataset.rendered = "1"; })
      .catch(function (e) { box.textContent = "Cannot draw the chart: " + e.message; });
  }

  /* -- the run page ------------------------------------------------------------------- */

  function evaluationCard(ev) {
    var card = el("div", { className: "hl-eval-card" }, [el("h2", {}, ["Evaluation"])]);
    card.appendChild(el("p", { className: "hl-facts" }, [
      ev.task + " · " + fmt(ev.n) + " examples · " + (ev.flagged ? ev.flagged + " slice rows flagged" : "no slice flagged")]));
    card.appendChild(table(["metric", "value", "95% CI"], ev.metrics.map(function (m) {
      return { cells: [LABELS[m.metric] || m.metric, fmt(m.value), ci(m.ci_low, m.ci_high)] };
    }), "hl-eval-metrics"));
    card.appendChild(el("p", { className: "hl-note" }, [
      "Intervals: " + (ev.method || "percentile bootstrap") + ", 95% (", methodLink("how"), ")."]));
    if (ev.slices.length) {
      card.appendChild(el("h3", {}, ["Slices"]));
      card.appendChild(table(["slice", "value", "n", "metric", "on the slice", "95% CI", "p (Holm)", ""],
        ev.slices.map(function (s) {
          return { className: s.flagged ? "hl-eval-flagged" : "",
            cells: [s.slice, s.slice_value, fmt(s.n), LABELS[s.metric] || s.metric, fmt(s.value), ci(s.ci_low, s.ci_high),
              fmt(s.p_value), s.flagged ? el("strong", { className: "hl-eval-flag" }, ["▼ below the rest"]) : ""] };
        }), "hl-eval-slices"));
      card.appendChild(el("p", { className: "hl-note" }, [
        "Flagged: significantly below the rest of the set (a one-sided permutation test of the slice against the other examples, Holm-corrected over the slice values of each metric, p < 0.05; ",
        methodLink("method"), ")."]));
    }
    var f = ev.failures || { examples: [] };
    if (f.examples.length) {
      card.appendChild(el("h3", {}, ["Worst examples"]));
      var extra = f.examples.some(function (e) { return "error" in e; }) ? "error" :
        f.examples.some(function (e) { return "true_class_score" in e; }) ? "true-class score" : null;
      var headers = ["#", "label", "prediction"].concat(extra ? [extra] : []).concat(["input"]);
      card.appendChild(table(headers, f.examples.map(function (e) {
        var cells = [fmt(e.index), JSON.stringify(e.label), JSON.stringify(e.prediction)];
        if (extra) { cells.push(fmt(extra === "error" ? e.error : e.true_class_score)); }
        cells.push(e.input === undefined ? "–" : el("code", {}, [JSON.stringify(e.input)]));
        return { cells: cells };
      }), "hl-eval-failures"));
      card.appendChild(el("p", { className: "hl-note" }, [
        "Ranked by " + (f.ranked_by || "badness") + "; " + f.examples.length + " of the " + fmt(f.total) + " kept."]));
    }
    return card;
  }

  function latencyRows(profiles) {
    return profiles.map(function (p) {
      return [p.name, fmt(p.calls), fmt(p.concurrency), fmt(p.p50_ms), fmt(p.p95_ms), fmt(p.p99_ms),
        fmt(p.mean_ms), fmt(p.throughput_per_s)];
    });
  }

  var LAT_HEAD = ["profile", "calls", "threads", "p50 ms", "p95 ms", "p99 ms", "mean ms", "calls/s"];

  function latencyCard(profiles) {
    var card = el("div", { className: "hl-latency-card" }, [el("h2", {}, ["Latency"])]);
    card.appendChild(table(LAT_HEAD, latencyRows(profiles).map(function (c) { return { cells: c }; }), "hl-latency"));
    var box = el("div", { className: "hl-live-chart hl-latency-curve" });
    card.appendChild(box);
    card.appendChild(el("p", { className: "hl-note" }, [
      "Each call timed on its own (perf_counter_ns), after untimed warm-up calls; percentiles over every timed call (NumPy, linear); calls/s: timed calls over their wall time (", el("a", { href: url("statistics.html#latency") }, ["method"]), ")."]));
    return { card: card, chart: box };
  }

  function curveRows(profiles, label) {
    var rows = [];
    profiles.forEach(function (p) {
      (p.curve || []).forEach(function (c) {
        if (c.ms > 0) { rows.push({ series: label(p), q: c.q, ms: c.ms }); }
      });
    });
    return rows;
  }

  function insertAfterMetrics(root, nodes) {
    var heads = Array.prototype.slice.call(root.querySelectorAll("h2"));
    var metrics = heads.filter(function (h) { return h.textContent === "Metrics" && h.parentNode === root; })[0];
    var next = null;
    if (metrics) {
      next = metrics.nextElementSibling;
      while (next && next.tagName !== "H2") { next = next.nextElementSibling; }
    }
    nodes.forEach(function (n) { root.insertBefore(n, next); });
  }

  function runPage(root) {
    var params = new URLSearchParams(location.search);
    var project = params.get("p"), runId = params.get("id");
    if (!project || !runId) { return; }
    var doc = null;
    function place() {
      if (!doc || root.querySelector(".hl-eval-card, .hl-latency-card") || !root.querySelector("h2")) { return; }
      var nodes = [], chart = null;
      if (doc.evaluation) { nodes.push(evaluationCard(doc.evaluation)); }
      if (doc.latency && doc.latency.length) {
        var lat = latencyCard(doc.latency);
        nodes.push(lat.card);
        chart = lat.chart;
      }
      if (!nodes.length) { return; }
      insertAfterMetrics(root, nodes);
      if (chart) {
        draw(chart, specs().curve, { latency_curve: curveRows(doc.latency, function (p) { return p.name; }) });
      }
    }
    new MutationObserver(place).observe(root, { childList: true });
    fetchJSON(detailsPath(project + "/" + runId)).then(function (d) {
      doc = { evaluation: d.evaluation || null, latency: d.latency || [] };
      root.dataset.evalLoaded = "1";
      place();
    }).catch(function () { root.dataset.evalLoaded = "0"; });  // hpclab.js reports it
  }

  /* -- the compare page --------------------------------------------------------------- */

  function compareKeys(max) {
    var raw = new URLSearchParams(location.search).get("r") || "";
    var seen = {};
    return raw.split(",").map(function (k) { return k.trim(); }).filter(function (k) {
      var ok = k && k.indexOf("/") > 0 && !seen[k];
      seen[k] = true;
      return ok;
    }).slice(0, max);
  }

  function radarData(runs) {
    var present = {};
    runs.forEach(function (r) { r.evaluation.metrics.forEach(function (m) { present[m.metric] = true; }); });
    var metrics = ORDER.filter(function (m) { return present[m]; });
    var k = metrics.length;
    var best = {};
    metrics.forEach(function (name) {
      if (!ERRORS[name]) { return; }
      runs.forEach(function (r) {
        var m = r.evaluation.metrics.filter(function (x) { return x.metric === name; })[0];
        if (m && m.value !== null && (best[name] === undefined || m.value < best[name])) { best[name] = m.value; }
      });
    });
    var rows = [];
    runs.forEach(function (r) {
      var points = metrics.map(function (name, i) {
        var m = r.evaluation.metrics.filter(function (x) { return x.metric === name; })[0] || {};
        var v = m.value === undefined ? null : m.value;
        var radius = v === null ? 0 : ERRORS[name] ? (v > 0 ? best[name] / v : 1) : Math.max(0, Math.min(1, v));
        return { run: r.label, metric: LABELS[name], i: i, k: k, r: radius, value: v,
          ci_low: m.ci_low === undefined ? null : m.ci_low, ci_high: m.ci_high === undefined ? null : m.ci_high };
      });
      points.forEach(function (p) { rows.push(p); });
      if (points.length) { rows.push(Object.assign({}, points[0], { i: k })); }  // the line closes
    });
    var grid = [];
    [0.25, 0.5, 0.75, 1].forEach(function (ring) {
      for (var i = 0; i <= k; i++) { grid.push({ ring: ring, i: i, k: k }); }
    });
    var axes = metrics.map(function (name, i) { return { metric: LABELS[name], i: i, k: k }; });
    return { metrics: metrics, rows: rows, grid: grid, axes: axes };
  }

  function evalCompareCard(runs) {
    var card = el("div", { className: "hl-eval-compare" }, [el("h2", {}, ["Evaluation"])]);
    var data = radarData(runs);
    card.appendChild(table(["run"].concat(data.metrics.map(function (m) { return LABELS[m]; })).concat(["flagged slice rows"]),
      runs.map(function (r) {
        return { cells: [r.label].concat(data.metrics.map(function (name) {
          var m = r.evaluation.metrics.filter(function (x) { return x.metric === name; })[0];
          return m ? fmt(m.value) + " " + ci(m.ci_low, m.ci_high) : "–";
        })).concat([fmt(r.evaluation.flagged)]) };
      }), "hl-eval-compare-table"));
    var box = null;
    if (data.metrics.length >= 3) {
      box = el("div", { className: "hl-eval-radar", runs: JSON.stringify(runs.map(function (r) { return r.label; })),
        metrics: JSON.stringify(data.metrics) });
      card.appendChild(box);
      card.appendChild(el("p", { className: "hl-note" }, [
        "Radar: a spoke per metric; the radius is the score itself (accuracy, F1, precision, recall; R² clipped at 0) and, for an error (MAE, RMSE), the lowest of these runs over the run's own (1: the best here). Values with their 95% percentile bootstrap intervals in the table (",
        methodLink("method"), ")."]));
    } else {
      card.appendChild(el("p", { className: "hl-note" }, ["Fewer than three metrics: no radar, the table only."]));
    }
    return { card: card, chart: box, data: data };
  }

  function latencyCompareCard(runs) {
    var card = el("div", { className: "hl-latency-compare" }, [el("h2", {}, ["Latency"])]);
    var rows = [];
    runs.forEach(function (r) {
      latencyRows(r.latency).forEach(function (c) { rows.push({ cells: [r.label].concat(c) }); });
    });
    card.appendChild(table(["run"].concat(LAT_HEAD), rows, "hl-latency-compare-table"));
    var box = el("div", { className: "hl-live-chart hl-latency-curve" });
    card.appendChild(box);
    card.appendChild(el("p", { className: "hl-note" }, [
      "Percentile curves of each run's profiles, as on each run's page (", el("a", { href: url("statistics.html#latency") }, ["method"]), ")."]));
    return { card: card, chart: box };
  }

  function comparePage(root) {
    var node = document.querySelector(".hl-compare-data");
    var info = node ? JSON.parse(node.textContent) : {};
    var known = {};  // only the runs the site has: hpclab.js names the others
    (info.runs || []).forEach(function (k) { known[k] = true; });
    var keys = compareKeys(info.max || 12).filter(function (k) { return known[k]; });
    if (!keys.length) { return; }
    var loaded = null;
    function place() {
      if (!loaded || root.querySelector(".hl-eval-compare, .hl-latency-compare") || !root.querySelector("h2")) { return; }
      var evs = loaded.filter(function (r) { return r.evaluation; });
      var lats = loaded.filter(function (r) { return r.latency.length; });
      if (evs.length) {
        var e = evalCompareCard(evs);
        root.appendChild(e.card);
        if (e.chart) {
          draw(e.chart, specs().radar, { radar: e.data.rows, radar_grid: e.data.grid, radar_axes: e.data.axes });
        }
      }
      if (lats.length) {
        var l = latencyCompareCard(lats);
        root.appendChild(l.card);
        var curve = [];
        lats.forEach(function (r) {
          curveRows(r.latency, function (p) { return r.label + " · " + p.name; }).forEach(function (x) { curve.push(x); });
        });
        draw(l.chart, specs().curve, { latency_curve: curve });
      }
    }
    new MutationObserver(place).observe(root, { childList: true });
    Promise.all(keys.map(function (k) {
      return fetchJSON(detailsPath(k)).then(function (d) {
        return { label: d.run && d.run.run_id ? d.run.run_id : k, evaluation: d.evaluation || null, latency: d.latency || [] };
      }).catch(function () { return null; });  // hpclab.js names the runs it cannot load
    })).then(function (runs) {
      loaded = runs.filter(function (r) { return r; });
      root.dataset.evalLoaded = "1";
      place();
    });
  }

  function start() {
    var run = document.getElementById("hl-run");
    var compare = document.getElementById("hl-compare");
    if (run) { runPage(run); }
    if (compare) { comparePage(compare); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
