/* hpclab's lab website: charts from the runs' data files, the live Training view, the run
 * page, the compare page (runs ticked on the Runs list), sortable and filterable tables.
 * Plain JavaScript on top of the Vega bundle; no theme API is used, so the pages move to
 * another MkDocs theme unchanged.
 *
 * Data files (written by hpclab, never by MkDocs):
 *   data/live.json                      running, queued and recently ended runs (polled)
 *   data/series/<project>/<run>.parquet a run's metric series, downsampled (series.js)
 *   data/details/<project>/<run>.json   a run's config, code, artifacts, notes, ...
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var ROOT = new URL("../../", script ? script.src : location.href);
  var POLL_MS = 1000;
  var PALETTE = ["#4c6ef5", "#e8710a", "#2e9d5b", "#d1453b", "#8e24aa", "#00a3bf",
                 "#f2a600", "#6d4c41", "#e64980", "#5c940d", "#1864ab", "#862e9c"];
  var seriesCache = {};   // "project/run" -> {version, doc}
  var fullCache = {};     // "project/run" -> {version, doc}: every point (zoomed charts)
  var ZOOM_POINTS = 2000;  // points per series a zoomed chart draws from the full file
  var views = [];         // {el, view, runs, metrics, color}

  function url(path) { return new URL(path, ROOT).href; }

  function fetchJSON(path) {
    return fetch(url(path), { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error(path + ": HTTP " + r.status); }
      return r.json();
    });
  }

  /* -- building HTML: one escaping path ------------------------------------------------ */

  // Every value read from a data file (names, tags, notes, config, patches, messages) is
  // untrusted text. Markup is made only by the html`...` tag, which escapes each ${value}
  // unless it is already SafeHtml, and reaches the DOM only through setHTML, which takes
  // nothing else: a plain string cannot become markup by accident.
  var TOKEN = {};

  function SafeHtml(markup, token) {
    if (token !== TOKEN) { throw new TypeError("SafeHtml is made by html`...`, not by hand"); }
    this.markup = markup;
    Object.freeze(this);
  }

  var ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };
  // Bidi controls and zero-width format characters make text read in another order than
  // it is stored, or hide part of it ("Trojan Source"): they are shown as their code points,
  // "⟨U+202E⟩", the same set and form as the pages' Python side (hpclab/site/html.py).
  var INVISIBLE = /[\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\u061C\uFEFF]/g;

  function plain(v) {  // a value as display text (for textContent, or escaped by html``)
    return String(v === null || v === undefined ? "" : v).replace(INVISIBLE, function (c) {
      return "⟨U+" + ("000" + c.charCodeAt(0).toString(16).toUpperCase()).slice(-4) + "⟩";
    });
  }

  // A chart spec with invisible characters made visible in every string (data, labels,
  // domains and expressions alike, so that they still match): SVG text is text too.
  function visibleStrings(node) {
    if (typeof node === "string") { return plain(node); }
    if (Array.isArray(node)) { return node.map(visibleStrings); }
    if (node && typeof node === "object") {
      var out = {};
      Object.keys(node).forEach(function (k) { out[plain(k)] = visibleStrings(node[k]); });
      return out;
    }
    return node;
  }

  function piece(v) {
    if (v === null || v === undefined) { return ""; }
    if (v instanceof SafeHtml) { return v.markup; }
    if (Array.isArray(v)) { return v.map(piece).join(""); }
    return plain(v).replace(/[&<>"'`]/g, function (c) { return ESCAPES[c]; });
  }

  // html`<b>${name}</b>`: the literal parts are markup (they come from this file), every
  // interpolation is escaped text unless SafeHtml; an array is its items, each the same
  // way; null and undefined are "". Attribute values are always written in double quotes.
  function html(strings) {
    if (!Array.isArray(strings) || !strings.raw) { throw new TypeError("html is a template tag: html`...`"); }
    var out = strings[0];
    for (var i = 1; i < strings.length; i++) { out += piece(arguments[i]) + strings[i]; }
    return new SafeHtml(out, TOKEN);
  }

  function joinHtml(items, sep) {  // items (each escaped unless SafeHtml) with sep between
    return new SafeHtml(items.map(piece).join(piece(sep)), TOKEN);
  }

  function setHTML(el, safe) {  // the only way markup reaches the DOM
    if (!(safe instanceof SafeHtml)) { throw new TypeError("setHTML takes SafeHtml (from html`...`), not " + typeof safe); }
    el.innerHTML = safe.markup;
  }

  // A link made from data: http(s):, mailto:, a link into this site, or a relative URL;
  // any other scheme (javascript:, data:, vbscript:, ...) gives "#". The scheme is read
  // the way a browser reads it: leading and trailing controls and spaces trimmed, every
  // tab and newline removed (java, a tab, script: is javascript:); and any ":" before the
  // first "/", "?" or "#" counts as a scheme even with characters a browser would reject.
  var SCHEMES = ["http", "https", "mailto"];

  function safeHref(u) {
    if (u === null || u === undefined) { return "#"; }
    var s = String(u).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "").replace(/[\t\n\r]/g, "");
    if (s.indexOf(ROOT.href) === 0) { return s; }  // this site's own pages (also as file:)
    var bare = s.replace(/[\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200F\u2028-\u202F\u205F-\u206F\u3000\uFEFF]/g, "");
    var m = /^([^\/?#]*):/.exec(bare);
    if (!m) { return s; }
    return SCHEMES.indexOf(m[1].toLowerCase()) >= 0 ? s : "#";
  }

  window.hpclab = Object.freeze({ html: html, joinHtml: joinHtml, setHTML: setHTML, safeHref: safeHref, SafeHtml: SafeHtml });

  function fmt(v, digits) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) {
      return html`<span class="hl-missing" title="missing (NaN or not logged)">–</span>`;
    }
    if (typeof v !== "number") { return html`${v}`; }
    if (Number.isInteger(v)) { return html`${String(v)}`; }
    return html`${String(Number(v.toPrecision(digits || 4)))}`;
  }

  // The run status vocabulary (hpclab/store/record.py), written into every page by
  // hpclab/site/page.py: which statuses are active, waiting, ended, failed. Never named here.
  function statuses() {
    var el = document.querySelector("script.hl-statuses");
    return el ? JSON.parse(el.textContent) : { all: [], active: [], waiting: [], ended: [], failed: [] };
  }

  function statusIn(group, s) { return statuses()[group].indexOf(s) >= 0; }

  function isRunning(s) { return statusIn("active", s) && !statusIn("waiting", s); }

  function badge(s) {
    s = String(s || "unknown");
    return html`<span class="hl-badge hl-s-${s.toLowerCase().replace(/[^a-z0-9_-]/g, "-")}">${s}</span>`;
  }

  function runHref(project, runId) {
    return safeHref(url("runs/run.html") + "?p=" + encodeURIComponent(project) + "&id=" + encodeURIComponent(runId));
  }

  function dataPath(kind, key, ext) {  // data/<kind>/<project>/<run><ext: .json>, parts URL-encoded
    return "data/" + kind + "/" + key.split("/").map(encodeURIComponent).join("/") + (ext || ".json");
  }

  function duration(s) {
    if (s === null || s === undefined || !isFinite(s)) { return "–"; }
    if (s < 60) { return Math.round(s) + " s"; }
    if (s < 3600) { return (s / 60).toFixed(1) + " min"; }
    return (s / 3600).toFixed(1) + " h";
  }

  /* -- charts ------------------------------------------------------------------------ */

  function chartConfig() {
    var style = getComputedStyle(document.body);
    var fg = style.color || "#333";
    var grid = "rgba(127,127,127,0.18)";
    return {
      background: null,
      font: style.fontFamily,
      view: { stroke: null },
      // tick labels that would run into a neighbour are left out (greedily, on every axis:
      // Vega-Lite's default leaves a nominal axis' labels as they fall), 4 px apart at least
      axis: { labelColor: fg, titleColor: fg, gridColor: grid, domainColor: grid, tickColor: grid,
        labelOverlap: "greedy", labelSeparation: 4 },
      legend: { labelColor: fg, titleColor: fg },
      title: { color: fg },
      range: { category: PALETTE }
    };
  }

  // The spec less its layer of lone points (filtered on datum.lone) when no row is one:
  // an empty layer's extent is infinite, and Vega warns of it once per field and chart.
  function withoutLone(spec) {
    if (!spec.layer) { return spec; }
    var layers = spec.layer.filter(function (l) {
      return !(l.transform || []).some(function (t) { return t.filter === "datum.lone"; });
    });
    return layers.length === spec.layer.length ? spec : Object.assign({}, spec, { layer: layers });
  }

  // A copy of a line spec whose colours follow ``labels`` in order (label i gets
  // PALETTE[i]): the same run keeps its colour in every chart, also one it has no data in.
  function colourDomain(spec, labels) {
    spec = JSON.parse(JSON.stringify(spec));
    (function walk(node) {
      if (!node || typeof node !== "object") { return; }
      if (node.encoding && node.encoding.color) {
        node.encoding.color.scale = Object.assign({}, node.encoding.color.scale, { domain: labels });
      }
      Object.keys(node).forEach(function (k) { walk(node[k]); });
    })(spec);
    return spec;
  }

  function loadSeries(key) {
    return window.hpclabSeries.load(url(dataPath("series", key, ".parquet"))).then(function (doc) {
      var cut = key.indexOf("/");
      doc.project = key.slice(0, cut);
      doc.run_id = key.slice(cut + 1);
      seriesCache[key] = { version: doc.version, doc: doc };
      return doc;
    });
  }

  // a run's full-resolution file, for a zoomed chart of a run whose series file was cut
  function loadFull(key) {
    var have = fullCache[key], entry = seriesCache[key];
    if (have && entry && have.version === entry.version) { return Promise.resolve(have.doc); }
    return window.hpclabSeries.load(url(dataPath("series-full", key, ".parquet"))).then(function (doc) {
      fullCache[key] = { version: entry ? entry.version : doc.version, doc: doc };
      return doc;
    });
  }

  function isCut(key, metrics) {
    var entry = seriesCache[key];
    if (!entry) { return false; }
    var ms = entry.doc.metrics || {};
    return Object.keys(ms).some(function (n) {
      return (!metrics || metrics.indexOf(n) >= 0) && ms[n].n > ms[n].step.length;
    });
  }

  // a series for a zoomed x range [lo, hi]: the full file's points inside it (cut to
  // ZOOM_POINTS by min/max buckets, as the site's files are) and the overview's outside
  function zoomed(key, name, m, zoom) {
    var full = zoom && fullCache[key] && fullCache[key].doc.metrics[name];
    if (!full || m.n <= m.step.length) { return m; }
    var lo = zoom[0], hi = zoom[1], inside = [];
    full.step.forEach(function (s, i) { if (s >= lo && s <= hi) { inside.push(i); } });
    inside = minMaxBuckets(inside, full.value, ZOOM_POINTS);
    var out = { n: m.n, step: [], value: [], time: [], full: inside.length };
    var t = m.time || [], ft = full.time || [];
    m.step.forEach(function (s, i) {
      if (s < lo) { out.step.push(s); out.value.push(m.value[i]); out.time.push(t[i]); }
    });
    inside.forEach(function (i) { out.step.push(full.step[i]); out.value.push(full.value[i]); out.time.push(ft[i]); });
    m.step.forEach(function (s, i) {
      if (s > hi) { out.step.push(s); out.value.push(m.value[i]); out.time.push(t[i]); }
    });
    return out;
  }

  // indices (into values) to keep: all when few, else per bucket the lowest and highest
  function minMaxBuckets(idx, values, max) {
    if (idx.length <= max) { return idx; }
    var buckets = Math.max(1, Math.floor(max / 2) - 1), width = Math.ceil(idx.length / buckets), keep = {};
    keep[idx[0]] = true;
    keep[idx[idx.length - 1]] = true;
    for (var b = 0; b < buckets; b++) {
      var lo = null, hi = null;
      for (var j = b * width; j < Math.min(idx.length, (b + 1) * width); j++) {
        var v = values[idx[j]];
        if (v === null || !isFinite(v)) { continue; }
        if (lo === null || v < values[lo]) { lo = idx[j]; }
        if (hi === null || v > values[hi]) { hi = idx[j]; }
      }
      if (lo !== null) { keep[lo] = true; keep[hi] = true; }
    }
    return idx.filter(function (i) { return keep[i]; });
  }

  function seriesValues(runs, metrics, labels, zoom) {
    var values = [];
    runs.forEach(function (key) {
      var entry = seriesCache[key];
      if (!entry) { return; }
      var ms = entry.doc.metrics || {};
      var start = entry.doc.start_time;
      // the x axis (charts.js): another metric of the same run, by step
      var xm = window.HPCLabCharts ? window.HPCLabCharts.state().x : "step", xOf = null;
      if (xm.indexOf("m:") === 0 && ms[xm.slice(2)]) {
        xOf = {};
        ms[xm.slice(2)].step.forEach(function (s, i) { xOf[s] = ms[xm.slice(2)].value[i]; });
      }
      Object.keys(ms).forEach(function (name) {
        if (metrics && metrics.indexOf(name) < 0) { return; }
        var m = zoomed(key, name, ms[name], zoom);
        var t = m.time || [];
        // run and metric are what the legend and tooltip show: display text
        var run = plain((labels && labels[key]) || key.split("/")[1]), metric = plain(name);
        var n = m.step.length;
        for (var i = 0; i < n; i++) {
          // a value with no neighbour to join is drawn as a dot (the spec's "lone" layer)
          var lone = m.value[i] !== null && (i === 0 || m.value[i - 1] === null) &&
            (i === n - 1 || m.value[i + 1] === null);
          var row = { run: run, metric: metric, key: key + "|" + name, step: m.step[i], value: m.value[i], lone: lone };
          if (t[i] !== null && t[i] !== undefined) {
            row.rel = t[i];
            if (start !== null && start !== undefined) { row.wall = (start + t[i]) * 1000; }  // ms: Vega's time
          }
          if (xOf) { row.xv = m.step[i] in xOf ? xOf[m.step[i]] : null; }
          values.push(row);
        }
      });
    });
    return values;
  }

  function setValues(v) {
    var values = seriesValues(v.runs, v.metrics, v.labels, v.zoom);
    if (v.controls) { values = window.HPCLabCharts.values(values, undefined, v.opts.groupOf, v.opts.colourOf).rows; }  // charts.js
    if (!v.view) { return; }
    v.view.data("series", values).run();
    v.el.dataset.points = String(values.length);
    v.el.dataset.lastStep = String(values.reduce(function (m, x) { return Math.max(m, x.step); }, -1));
    v.el.dataset.series = String(new Set(values.map(function (x) { return x.key; })).size);
  }

  // the chart zoomed or panned (its x scale bound to an interval: charts.js): the runs
  // whose files were cut get their full-resolution points for the range, once it settles
  function onZoom(v) {
    var timer = null;
    return function (name, value) {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var range = value && value.step && value.step.length === 2 ? value.step : null;
        var need = range ? v.runs.filter(function (k) { return isCut(k, v.metrics); }) : [];
        Promise.all(need.map(function (k) { return loadFull(k).catch(function () { return null; }); }))
          .then(function () {
            v.zoom = range;
            setValues(v);
            var full = 0;  // points drawn from full-resolution files, for the tests
            need.forEach(function (k) {
              var doc = fullCache[k] && fullCache[k].doc;
              Object.keys((doc && doc.metrics) || {}).forEach(function (n) {
                if (v.metrics && v.metrics.indexOf(n) < 0) { return; }
                var inside = doc.metrics[n].step.filter(function (s) { return s >= range[0] && s <= range[1]; });
                full += Math.min(inside.length, ZOOM_POINTS);
              });
            });
            v.el.dataset.fullPoints = String(full);
            v.el.dataset.zoom = range ? JSON.stringify(range) : "";
          });
      }, 200);
    };
  }

  // Under the site's Content-Security-Policy (no 'unsafe-eval') Vega must not compile its
  // expressions to functions: with ast it interprets them, with vega-interpreter where
  // the bundle has it, else with the interpreter Vega-Embed 7 carries.
  function embedOptions() {
    var o = { actions: false, renderer: "svg", ast: true };
    var interpreter = (window.vega && window.vega.expressionInterpreter) || window.vegaExpressionInterpreter;
    if (interpreter) { o.expr = interpreter; }
    return o;
  }

  function embed(el, spec, opts) {
    var base = spec;
    var grouped = !!(opts.controls && opts.groupOf && window.HPCLabCharts.state().group);
    var coloured = !!(opts.controls && opts.colourOf && window.HPCLabCharts.state().color && !grouped);
    if (opts.controls) { spec = window.HPCLabCharts.spec(spec, undefined, grouped, coloured); }  // y scale from the URL (charts.js)
    spec = Object.assign({}, spec, { config: chartConfig(), autosize: { type: "fit-x", contains: "padding" } });
    var v = { el: el, view: null, runs: opts.runs || [], metrics: opts.metrics || null, labels: opts.labels || null,
      controls: opts.controls || null, base: base, opts: opts };
    if (opts.runs) {
      // The data goes in with the spec: a line chart with no rows has no extent to draw.
      var values = seriesValues(v.runs, v.metrics, v.labels);
      if (opts.controls) {
        var kept = window.HPCLabCharts.values(values, undefined, grouped ? opts.groupOf : null,
          coloured ? opts.colourOf : null);
        values = kept.rows;
        if (grouped) {  // each group's label and how many runs it is over, for the tests
          var sizes = {};
          values.forEach(function (x) { sizes[x.run] = Math.max(sizes[x.run] || 0, x.n); });
          el.dataset.groups = JSON.stringify(sizes);
        } else { el.dataset.groups = ""; }
        if (coloured) {  // each colour's label and how many runs have it, for the tests
          var colours = {}, seen = {};
          values.forEach(function (x) {
            var run = x.key.slice(0, x.key.indexOf("|"));
            if (!seen[run]) { seen[run] = true; colours[x.cby] = (colours[x.cby] || 0) + 1; }
          });
          el.dataset.colours = JSON.stringify(colours);
        } else { el.dataset.colours = ""; }
        v.dropped = kept.dropped;
        spec = window.HPCLabCharts.withDomain(spec, kept.domain);
        if (kept.domain) { el.dataset.ydomain = JSON.stringify(kept.domain); }
      }
      if (!values.length) {
        setHTML(el, emptyP("No points logged yet."));
        el.dataset.rendered = "1";
        return Promise.resolve(v);
      }
      if (!values.some(function (r) { return r.lone; })) { spec = withoutLone(spec); }
      spec.data = { name: "series", values: values };
      el.dataset.points = String(values.length);
      el.dataset.lastStep = String(values.reduce(function (m, x) { return Math.max(m, x.step); }, -1));
    }
    return vegaEmbed(el, spec, embedOptions()).then(function (res) {
      v.view = res.view;
      if (opts.runs) { views.push(v); }
      if (opts.runs && opts.controls && window.HPCLabCharts.state().x === "step") {
        try { res.view.addSignalListener("zoom", onZoom(v)); } catch (e) { /* no zoom */ }
      }
      if (opts.controls) {  // what Vega drew, for the tests
        el.dataset.yscale = res.view.scale("y").type;
        el.dataset.ydrawn = JSON.stringify(res.view.scale("y").domain());
        el.dataset.xdrawn = JSON.stringify(res.view.scale("x").domain().map(Number));
        el.dataset.xscale = res.view.scale("x").type;
      }
      el.dataset.rendered = "1";
      return v;
    });
  }

  // The chart controls above a page's charts (charts.js): a change redraws those charts.
  function chartControls(holder, groupKeys, xMetrics, relayout, colourKeys) {
    var box = window.HPCLabCharts.controls(function () {
      if (relayout && relayout()) { return; }  // the page drew its charts again itself
      var mine = views.filter(function (v) { return v.controls === box; });
      views = views.filter(function (v) { return v.controls !== box; });
      Promise.all(mine.map(function (v) {
        if (v.view) { v.view.finalize(); }
        v.el.dataset.rendered = "";
        return embed(v.el, v.base, v.opts);
      })).then(function (vs) { noteDropped(box, vs); });
    }, groupKeys, xMetrics, !!relayout, colourKeys);
    holder.parentNode.insertBefore(box, holder);
    return box;
  }

  function noteDropped(box, vs) {
    window.HPCLabCharts.note(box, vs.reduce(function (n, v) { return n + ((v && v.dropped) || 0); }, 0));
  }

  function renderStaticCharts() {
    var els = Array.prototype.slice.call(document.querySelectorAll(".hl-chart"));
    return Promise.all(els.map(function (el) {
      var holder = el.querySelector("script[type='application/json']");
      if (!holder) { return null; }
      var spec = visibleStrings(JSON.parse(holder.textContent));
      var target = document.createElement("div");
      target.className = "hl-chart-view";
      el.appendChild(target);
      var runs = el.dataset.runs ? el.dataset.runs.split(",").filter(Boolean) : null;
      var metrics = el.dataset.metrics ? JSON.parse(el.dataset.metrics) : null;
      var ready = runs ? Promise.all(runs.map(function (k) {
        return loadSeries(k).catch(function () { return null; });
      })) : Promise.resolve();
      return ready.then(function () {
        return embed(target, spec, { runs: runs, metrics: metrics });
      }).then(function () { el.dataset.rendered = "1"; });
    }));
  }

  /* -- live updates ------------------------------------------------------------------ */

  var lastLive = null;

  function refreshChanged(live) {
    var stale = [];
    (live.runs || []).forEach(function (r) {
      var key = r.project + "/" + r.run_id;
      var entry = seriesCache[key];
      if (entry && entry.version !== r.version) { stale.push(key); }
    });
    if (!stale.length) { return Promise.resolve(); }
    return Promise.all(stale.map(function (k) { return loadSeries(k).catch(function () { return null; }); }))
      .then(function () {
        views.forEach(function (v) {
          if (v.runs.some(function (k) { return stale.indexOf(k) >= 0; })) { setValues(v); }
        });
      });
  }

  function poll(onLive) {
    function tick() {
      fetchJSON("data/live.json").then(function (live) {
        lastLive = live;
        return Promise.resolve(onLive ? onLive(live) : null).then(function () { return refreshChanged(live); });
      }).catch(function (e) {
        var t = document.querySelector(".hl-live-text");
        if (t) { t.textContent = "cannot read live data (" + e.message + ")"; }
      }).then(function () { setTimeout(tick, POLL_MS); });
    }
    tick();
  }

  /* -- Training ---------------------------------------------------------------------- */

  function lossMetrics(names) {
    var losses = names.filter(function (n) { return /loss/.test(n); });
    return (losses.length ? losses : names).slice(0, 4);
  }

  function lastValue(m) {  // the series' last finite value, or null
    for (var i = m.value.length - 1; i >= 0; i--) { if (m.value[i] !== null) { return m.value[i]; } }
    return null;
  }

  var SPARK_W = 96, SPARK_H = 20, SPARK_POINTS = 64;

  function sparkline(name, m) {  // an SVG of the series' shape: at most SPARK_POINTS points
    var pts = [];
    var stride = Math.max(1, Math.ceil(m.step.length / SPARK_POINTS));
    for (var i = 0; i < m.step.length; i += stride) {
      if (m.value[i] !== null) { pts.push([m.step[i], m.value[i]]); }
    }
    var last = m.step.length - 1;
    if (last >= 0 && m.value[last] !== null && (!pts.length || pts[pts.length - 1][0] !== m.step[last])) {
      pts.push([m.step[last], m.value[last]]);
    }
    if (pts.length < 2) { return html``; }
    var x0 = pts[0][0], x1 = pts[pts.length - 1][0];
    var ys = pts.map(function (p) { return p[1]; });
    var lo = Math.min.apply(null, ys), hi = Math.max.apply(null, ys);
    var d = pts.map(function (p, k) {
      var x = x1 > x0 ? (p[0] - x0) / (x1 - x0) * (SPARK_W - 2) + 1 : 1;
      var y = hi > lo ? SPARK_H - 1 - (p[1] - lo) / (hi - lo) * (SPARK_H - 2) : SPARK_H / 2;
      return (k ? "L" : "M") + x.toFixed(1) + "," + y.toFixed(1);
    }).join(" ");
    return html`<svg width="${SPARK_W}" height="${SPARK_H}" viewBox="${"0 0 " + SPARK_W + " " + SPARK_H}" role="img" aria-label="${"trend of " + name}" data-points="${pts.length}"><path d="${d}"/></svg>`;
  }

  function fillJobCells(root, runs) {  // last values and sparklines, from the loaded series
    runs.forEach(function (r) {
      var key = r.project + "/" + r.run_id;
      var entry = seriesCache[key];
      if (!entry) { return; }
      var ms = entry.doc.metrics || {};
      var names = lossMetrics(Object.keys(ms)).slice(0, 2);
      var texts = names.map(function (n) {
        var v = lastValue(ms[n]);
        return v === null ? null : n + " " + numText(v);
      }).filter(function (t) { return t !== null; });
      root.querySelectorAll('.hl-last[data-key="' + CSS.escape(key) + '"]').forEach(function (el) {
        el.textContent = texts.length ? texts.join(" · ") : "–";
      });
      root.querySelectorAll('.hl-spark[data-key="' + CSS.escape(key) + '"]').forEach(function (el) {
        if (!names.length) { return; }
        el.title = names[0];
        setHTML(el, sparkline(names[0], ms[names[0]]));
      });
    });
  }

  function recentBody(recent, seconds) {  // runs that just ended: collapsed under the job table
    if (!recent.length) { return html``; }
    var rows = recent.map(function (r) {
      var key = r.project + "/" + r.run_id;
      return [badge(r.status), html`<a class="hl-run" href="${runHref(r.project, r.run_id)}">${r.name || r.run_id}</a>`,
        r.project, r.ended_at ? new Date(r.ended_at).toLocaleTimeString() : "–",
        html`<span class="hl-last" data-key="${key}">–</span>`,
        html`<span class="hl-spark" data-key="${key}"></span>`];
    });
    var d = document.querySelector("details.hl-recent");  // the reader's choice, across polls
    var open = !!(d && d.open);
    var within = seconds ? " in the last " + Math.round(seconds / 60) + " minutes" : " recently";
    return html`<details class="hl-recent"${open ? html` open` : ""}><summary>${recent.length + " finished" + within}</summary>${table(["status", "run", "project", "ended", "last values", "trend"], rows, "hl-jobs hl-recent-jobs")}</details>`;
  }

  function renderTraining(root) {
    var specs = chartSpecs();
    var jobs = root.querySelector(".hl-live-jobs");
    var sweepsEl = root.querySelector(".hl-live-sweeps");
    var runsEl = root.querySelector(".hl-live-runs");
    var recentEl = root.querySelector(".hl-live-recent");
    var shown = {};   // chart id -> true

    function onLive(live) {
      var runs = live.runs || [];
      var text = root.querySelector(".hl-live-text");
      var active = runs.filter(function (r) { return isRunning(r.status); }).length;
      var waiting = runs.filter(function (r) { return statusIn("waiting", r.status); }).length;
      text.textContent = active + " running, " + waiting + " queued · updated " +
        new Date(live.generated_at * 1000).toLocaleTimeString();
      root.dataset.live = "1";
      if (!runs.length) {
        setHTML(jobs, emptyP("Nothing is running or queued."));
      } else {
        var rows = runs.map(function (r) {
          var pct = typeof r.percent === "number" ? r.percent : null;  // hpclab.store.views.progress
          var bar = pct === null ? "–" :
            html`<div class="hl-progress" title="${(r.step + 1) + " / " + r.total}"><span style="width:${pct.toFixed(0)}%"></span></div>`;
          var key = r.project + "/" + r.run_id;
          return [badge(r.status), html`<a class="hl-run" href="${runHref(r.project, r.run_id)}">${r.name || r.run_id}</a>`,
            r.project, html`${r.scheduler_state || "–"}${r.reason ? html` <span class="hl-note">${r.reason}</span>` : ""}`,
            html`${fmt(r.step)}${r.total ? " / " + r.total : ""}`, bar,
            r.rate ? r.rate.toPrecision(3) + "/s" : "–", duration(r.eta_s),
            html`<span class="hl-last" data-key="${key}">–</span>`,
            html`<span class="hl-spark" data-key="${key}"></span>`];
        });
        setHTML(jobs, table(["status", "run", "project", "Slurm state", "step", "progress", "rate", "ETA", "last values", "trend"], rows, "hl-jobs"));
      }
      setHTML(recentEl, recentBody(live.recent || [], live.recent_s));
      fillJobCells(root, runs.concat(live.recent || []));
      // live.runs: running and queued only (the table); live.recent: just ended, charts only
      var withData = runs.concat(live.recent || []).filter(function (r) { return r.metrics && r.metrics.length; });
      var sweeps = {};
      withData.forEach(function (r) {
        if (!r.sweep_id) { return; }
        var k = r.project + "/" + r.sweep_id;
        (sweeps[k] = sweeps[k] || []).push(r);
      });
      var pending = [];
      withData.forEach(function (r) {
        var key = r.project + "/" + r.run_id;
        if (!seriesCache[key]) { pending.push(loadSeries(key).catch(function () { return null; })); }
      });
      return Promise.all(pending).then(function () {
        fillJobCells(root, runs.concat(live.recent || []));
        Object.keys(sweeps).forEach(function (sk) {
          var members = sweeps[sk];
          if (members.length < 2) { return; }
          lossMetrics(members[0].metrics).forEach(function (m) {
            var id = "sweep:" + sk + ":" + m;
            var keys = members.map(function (r) { return r.project + "/" + r.run_id; });
            var existing = views.filter(function (v) { return v.id === id; })[0];
            if (existing) {
              if (existing.runs.join() !== keys.join()) { existing.runs = keys; setValues(existing); }
              return;
            }
            if (shown[id]) { return; }
            shown[id] = true;
            var box = document.createElement("div");
            box.className = "hl-live-chart hl-live-sweep";
            box.dataset.sweep = sk;
            box.dataset.metric = m;
            setHTML(box, html`<h3>${sk.split("/")[1]} · ${m}</h3>`);
            var target = document.createElement("div");
            box.appendChild(target);
            sweepsEl.appendChild(box);
            embed(target, specs.sweep, { runs: keys, metrics: [m] }).then(function (v) { v.id = id; });
          });
        });
        withData.forEach(function (r) {
          var key = r.project + "/" + r.run_id;
          var id = "run:" + key;
          if (shown[id]) { return; }
          shown[id] = true;
          var box = document.createElement("div");
          box.className = "hl-live-chart hl-live-run";
          box.dataset.run = key;
          setHTML(box, html`<h3><a href="${runHref(r.project, r.run_id)}">${r.name || r.run_id}</a> ${badge(r.status)}</h3>`);
          var target = document.createElement("div");
          box.appendChild(target);
          runsEl.appendChild(box);
          embed(target, specs.run, { runs: [key], metrics: lossMetrics(r.metrics) }).then(function (v) { v.id = id; });
        });
      });
    }
    poll(onLive);
  }

  /* -- the run page ------------------------------------------------------------------ */

  function table(headers, rows, cls) {  // rows: arrays of cells, each SafeHtml or text
    return html`<div class="hl-table-wrap"><table class="hl-table ${cls || ""}"><thead><tr>${
      headers.map(function (h) { return html`<th>${h}</th>`; })}</tr></thead><tbody>${
      rows.map(function (r) { return html`<tr>${r.map(function (c) { return html`<td>${c}</td>`; })}</tr>`; })
    }</tbody></table></div>`;
  }

  function section(title, body) { return html`<h2>${title}</h2>${body}`; }
  function emptyP(t) { return html`<p class="hl-empty">${t}</p>`; }
  function code(v) { return html`<code>${v}</code>`; }
  function shortHash(h) { return html`<code title="${h}">${String(h || "").slice(0, 16)}…</code>`; }

  // The tail of a run's captured stdout/stderr (site/logtail.py): each line escaped text.
  function outputBody(logs) {
    if (!logs || (!(logs.stdout || []).length && !(logs.stderr || []).length)) {
      return emptyP("No output captured (capture_output was off, or nothing printed yet).");
    }
    var parts = [];
    ["stderr", "stdout"].forEach(function (s) {
      var lines = logs[s] || [];
      if (!lines.length) { return; }
      parts.push(html`<h3>${s + " (last " + lines.length + " lines)"}</h3><pre class="hl-log" data-stream="${s}"><code>${joinHtml(lines, "\n")}</code></pre>`);
    });
    if (logs.redacted) { parts.push(html`<p class="hl-facts hl-down">${logs.redacted + " line(s) with secrets redacted"}</p>`); }
    return html`${parts}`;
  }

  // A link to a section of the method (docs/statistics.md, published as statistics.html),
  // beside each number it defines: hpclab.site.html.stats_link on the Python side.
  function statsLink(anchor, label) {
    return html`<a class="hl-stats-link" href="${safeHref(url("statistics.html") + (anchor ? "#" + anchor : ""))}">${label || "how this is computed"}</a>`;
  }

  function seedText(seed) {  // {"seed": 0} -> seed=0; {"data.seed": 1, "seed": 2} -> data.seed=1 seed=2
    if (!seed || typeof seed !== "object") { return seed === null || seed === undefined ? "no seed" : String(seed); }
    var keys = Object.keys(seed).sort();
    return keys.length ? keys.map(function (k) { return k + "=" + JSON.stringify(seed[k]); }).join(" ") : "no seed";
  }

  // The run's seed group (data/details: seed_group): its label, the run's role in it (a
  // sample, a reproduction of the sample of its seed, or pending), the group's size in
  // samples, and links to its other samples and to this run's reproductions.
  function seedGroupBody(run, g) {
    var members = g.members || [];
    var role = g.role === "reproduction" && g.of_run ?
      html`<span class="hl-sg-role" data-role="reproduction">reproduction of <a class="hl-run" href="${runHref(run.project, g.of_run)}">${g.of_run}</a> (same seed: shown beside, not an extra sample)</span>` :
      g.role === "pending" ? html`<span class="hl-sg-role" data-role="pending">pending (not completed: not a sample yet)</span>` :
      html`<span class="hl-sg-role" data-role="${g.role}">${g.role}</span>`;
    var size = html`<span class="hl-sg-size">${fmt(g.size)} ${g.size === 1 ? "sample" : "samples"}</span>`;
    var facts = [html`label ${code(g.label)}`, html`${code(seedText(g.seed))}`, role, size, statsLink("seed-groups", "seed groups")];
    function runs(list) {
      return joinHtml(list.map(function (m) {
        return html`<a class="hl-run" href="${runHref(run.project, m.run_id)}">${m.run_id}</a> (${seedText(m.seed)})`;
      }), ", ");
    }
    var others = members.filter(function (m) { return m.role === "sample" && m.run_id !== run.run_id; });
    var repros = members.filter(function (m) { return m.role === "reproduction" && m.of_run === run.run_id; });
    var lines = [html`<p class="hl-facts hl-sg-facts">${joinHtml(facts, " · ")}</p>`];
    var more = (g.n_members || members.length) - members.length;  // the details list the first 50
    var rest = more > 0 ? html` <span class="hl-note">and ${fmt(more)} more in the group</span>` : "";
    lines.push(others.length ? html`<p class="hl-facts hl-sg-samples">other samples: ${runs(others)}${rest}</p>` :
      html`<p class="hl-facts hl-sg-samples">no other sample: ${g.role === "sample" ? "the only seed of this config, code and data" : "none completed"}</p>`);
    if (repros.length) { lines.push(html`<p class="hl-facts hl-sg-repros">reproductions of this run: ${runs(repros)}</p>`); }
    return html`<div class="hl-seed-group" data-group="${g.group_id}">${lines}</div>`;
  }

  function pct(v) { return typeof v === "number" && isFinite(v) ? Math.round(100 * v) + "%" : "–"; }

  function mb(v) {
    if (typeof v !== "number" || !isFinite(v)) { return "–"; }
    return v >= 1024 ? (v / 1024).toFixed(1) + " GB" : Math.round(v) + " MB";
  }

  function gpuUsed(r) {  // utilisation (accounting) and GPU-hours used, with where they came from
    var parts = [];
    if (r.gpu_util_pct !== null && r.gpu_util_pct !== undefined) { parts.push(r.gpu_util_pct + "% utilisation"); }
    if (typeof r.gpu_hours_used === "number") {
      parts.push(hoursText(r.gpu_hours_used) + " GPU-h used (from " + (r.gpu_used_source === "samples" ? "the run's GPU samples" : "accounting") + ")");
    }
    return parts.length ? parts.join(" · ") : "–";
  }

  function resourcesBody(r) {  // the Slurm job's accounting (run_resources): asked, used, share
    var facts = [html`job <code>${r.job_id}</code>`, r.state, r.elapsed_s === null ? null : duration(r.elapsed_s),
      r.node_list ? html`on <code>${r.node_list}</code>` : null].filter(function (x) { return x !== null && x !== undefined; });
    var rows = [
      ["CPU", (r.alloc_cpus === null ? "–" : String(r.alloc_cpus)) + " allocated", r.cpu_used_s === null ? "–" : duration(r.cpu_used_s) + " CPU time",
        pct(r.cpu_efficiency), r.cpu_hours === null ? "–" : hoursText(r.cpu_hours) + " CPU-h"],
      ["memory", mb(r.req_mem_mb === null ? r.alloc_mem_mb : r.req_mem_mb) + " asked", mb(r.max_rss_mb) + " peak (MaxRSS)",
        pct(r.mem_efficiency), ""],
      ["GPU", String(r.alloc_gpus || 0) + " allocated", gpuUsed(r),
        typeof r.gpu_hours_used === "number" && r.gpu_hours ? pct(r.gpu_hours_used / r.gpu_hours) : "",
        r.gpu_hours === null ? "–" : hoursText(r.gpu_hours) + " GPU-h"]
    ];
    var warn = r.advice ? html`<div class="admonition warning hl-advice"><p class="admonition-title">Ask for less</p><p>${r.advice}</p></div>` : "";
    return html`<p class="hl-facts">${joinHtml(facts, " · ")}</p>${table(["resource", "asked", "used", "efficiency", "charged"], rows, "hl-resources")}${warn}<p class="hl-note">From Slurm accounting over every step of the job (sacct): efficiency is CPU time over allocated CPUs × elapsed, and peak resident memory over the memory requested, as seff computes them (elapsed is in whole seconds: a job of a few seconds can show over 100%).</p>`;
  }

  /* -- media (hpclab/site/media.py): images by step, histogram ridgelines, tables ------ */

  function mediaSrc(run, file) {
    return url("data/media/" + encodeURIComponent(run.project) + "/" + encodeURIComponent(run.run_id) + "/" + file);
  }

  function stepSlider(kind, name, n) {  // a range over a name's steps (wired by wireMedia)
    return n > 1 ? html`<input type="range" class="hl-media-step" data-kind="${kind}" data-name="${name}" min="0" max="${n - 1}" value="${n - 1}" step="1">` : "";
  }

  function ridgeline(items) {  // one filled curve per step, later steps lower, on a shared x
    if (!items.length) { return html``; }
    var lo = Math.min.apply(null, items.map(function (h) { return h.low; }));
    var hi = Math.max.apply(null, items.map(function (h) { return h.high; }));
    var W = 420, rowH = 14, peak = 36, H = peak + rowH * (items.length - 1) + 16;
    var span = hi > lo ? hi - lo : 1;
    var paths = items.map(function (h, k) {
      var top = Math.max.apply(null, h.counts.concat([1]));
      var base = peak + rowH * k, bins = h.counts.length, width = (h.high - h.low) || span / bins;
      var pts = h.counts.map(function (c, i) {
        var x = ((h.low + (i + 0.5) * width / bins) - lo) / span * (W - 2) + 1;
        return x.toFixed(1) + "," + (base - c / top * peak).toFixed(1);
      });
      var x0 = ((h.low - lo) / span * (W - 2) + 1).toFixed(1), x1 = ((h.low + width - lo) / span * (W - 2) + 1).toFixed(1);
      var d = "M" + x0 + "," + base + " L" + pts.join(" L") + " L" + x1 + "," + base + " Z";
      return html`<path d="${d}" data-step="${String(h.step)}"><title>${"step " + h.step}</title></path>`;
    });
    return html`<svg class="hl-ridgeline" width="${W}" height="${H}" viewBox="${"0 0 " + W + " " + H}" role="img" aria-label="histograms by step">${paths}<text x="1" y="${H - 2}">${numText(lo)}</text><text x="${W - 1}" y="${H - 2}" text-anchor="end">${numText(hi)}</text></svg>`;
  }

  function mediaTable(t) {
    if (!t) { return html``; }
    var more = t.n_rows > t.rows.length ? html`<p class="hl-note">${"first " + t.rows.length + " of " + t.n_rows + " rows"}</p>` : "";
    return html`${table(t.columns, t.rows.map(function (r) { return r.map(function (v) { return v === null ? "–" : String(v); }); }), "hl-media-rows")}${more}`;
  }

  function mediaBody(run, m) {
    var out = [];
    Object.keys(m.images || {}).forEach(function (name) {
      var items = m.images[name], last = items[items.length - 1];
      if (!last) { return; }
      out.push(html`<figure class="hl-media-image" data-name="${name}"><figcaption><code>${name}</code> · <span class="hl-media-label">${"step " + last.step}</span></figcaption><img src="${mediaSrc(run, last.file)}" alt="${name + " at step " + last.step}">${stepSlider("image", name, items.length)}</figure>`);
    });
    Object.keys(m.histograms || {}).forEach(function (name) {
      var items = m.histograms[name];
      out.push(html`<figure class="hl-media-hist" data-name="${name}"><figcaption><code>${name}</code> · ${items.length + " steps, the latest lowest"}</figcaption>${ridgeline(items)}</figure>`);
    });
    Object.keys(m.tables || {}).forEach(function (name) {
      var items = m.tables[name], last = items[items.length - 1];
      if (!last) { return; }
      out.push(html`<figure class="hl-media-table" data-name="${name}"><figcaption><code>${name}</code> · <span class="hl-media-label">${"step " + last.step}</span></figcaption>${stepSlider("table", name, items.length)}<div class="hl-media-rows-box">${mediaTable(last)}</div></figure>`);
    });
    return out.length ? html`${out}` : emptyP("No media.");
  }

  function wireMedia(root, run, m) {
    root.querySelectorAll("input.hl-media-step").forEach(function (input) {
      var kind = input.dataset.kind, name = input.dataset.name;
      var items = (kind === "image" ? m.images : m.tables)[name] || [];
      var fig = input.closest("figure");
      input.addEventListener("input", function () {
        var item = items[Number(input.value)];
        if (!item) { return; }
        fig.querySelector(".hl-media-label").textContent = "step " + item.step;
        if (kind === "image") {
          var img = fig.querySelector("img");
          img.src = mediaSrc(run, item.file);
          img.alt = name + " at step " + item.step;
        } else {
          setHTML(fig.querySelector(".hl-media-rows-box"), mediaTable(item));
        }
      });
    });
  }

  function hoursText(h) { return h >= 1 || h === 0 ? h.toFixed(2) : h.toPrecision(3); }

  function renderRun(root) {
    var params = new URLSearchParams(location.search);
    var project = params.get("p"), runId = params.get("id");
    if (!project || !runId) {
      setHTML(root, emptyP("No run named: open a run from the Runs list."));
      return;
    }
    var key = project + "/" + runId;
    Promise.all([fetchJSON(dataPath("details", key)), loadSeries(key).catch(function () { return null; })])
      .then(function (res) {
        var d = res[0], run = d.run;
        document.title = plain(run.name || run.run_id) + " · " + document.title;
        var h1 = document.querySelector("article h1, h1");
        if (h1) { h1.textContent = plain(run.name ? run.name + " (" + run.run_id + ")" : run.run_id); }
        var facts = [badge(run.status), code(run.project), html`step ${fmt(run.step)}${run.total_steps ? html` of ${fmt(run.total_steps)}` : ""}`,
          "created " + String(run.created_at || "").slice(0, 16), "duration " + duration(run.duration_s),
          "host " + (run.host || "–"), "scheduler " + (run.scheduler || "–") + (run.job_id ? " job " + run.job_id : "")];
        if (run.scheduler_state) {  // reconciled by hpclab index/watch: "Slurm PENDING (Resources)"
          facts.push("Slurm " + run.scheduler_state + (run.scheduler_reason ? " (" + run.scheduler_reason + ")" : ""));
        }
        if (run.parent) { facts.push(html`parent <a href="${runHref(run.project, run.parent)}">${run.parent}</a>`); }
        if (d.sweep) { facts.push(html`sweep ${code(d.sweep.id)} point ${fmt(d.sweep.point)}`); }
        var parts = [html`<p class="hl-facts">${joinHtml(facts, " · ")}</p>`];
        if (run.error_type) {
          parts.push(html`<div class="admonition failure"><p class="admonition-title">${run.error_type}</p><p>${run.error_message}</p></div>`);
        }
        if (d.children && d.children.length) {
          parts.push(html`<p class="hl-facts">children: ${joinHtml(d.children.map(function (c) {
            return html`<a href="${runHref(run.project, c)}">${c}</a>`;
          }), ", ")}</p>`);
        }
        if (d.dropped && d.dropped.length) {  // the step rule's drops (store.views.dropped_warnings)
          parts.push(html`<div class="admonition warning hl-dropped"><p class="admonition-title">Dropped points</p>${
            joinHtml(d.dropped.map(function (line) { return html`<p>${line}</p>`; }), "")}</div>`);
        }
        parts.push(section("Metrics", d.summary.length ? html`${table(["metric", "last", "best", "min", "max", "points", "last step", "source"],
          d.summary.map(function (m) { return [code(m.name), fmt(m.last), fmt(m.best), fmt(m.min), fmt(m.max), fmt(m.n), fmt(m.last_step), m.source || "logged"]; }))
          }<div class="hl-run-charts"></div>` : emptyP("No metrics logged yet.")));
        if (d.seed_group) { parts.push(section("Seed group", seedGroupBody(run, d.seed_group))); }
        if (d.resources) { parts.push(section("Resources", resourcesBody(d.resources))); }
        var changed = d.diff.length ? html`<h3>Changed from the parent</h3>${table(["path", "change", "parent", "this run"],
          d.diff.map(function (x) { return [code(x.path), x.change, x.old === null ? "–" : code(x.old), x["new"] === null ? "–" : code(x["new"])]; }),
          "hl-diff")}` : "";
        var full = table(["path", "value"], d.config.map(function (c) { return [code(c[0]), code(c[1])]; }));
        parts.push(section("Config", html`${changed}<details class="hl-details"${d.diff.length ? "" : html` open`}><summary>${
          "Full config (" + d.config.length + " values)"}</summary>${full}</details>`));
        var c = d.code || {};
        if (c.published === false) {
          parts.push(section("Code", html`<p class="hl-facts">Not published: this project has ${
            code("site: {publish_code: false}")} in its project.yaml. ${
            code("hpclab restore " + run.run_id)} brings the code back from the store.</p>`));
        }
        var codeFacts = [c.kind ? c.kind : "no snapshot", c.commit ? html`commit ${code(String(c.commit).slice(0, 12))}` : "",
          c.branch ? html`branch ${code(c.branch)}` : "", c.dirty ? html`<span class="hl-down">uncommitted changes</span>` : (c.commit ? "clean" : "")];
        var patch = c.patch ? html`<details class="hl-details"><summary>${"Uncommitted changes (patch" + (c.patch_truncated ? ", cut" : "") + ")"
          }</summary><pre class="hl-patch"><code>${c.patch}</code></pre></details>` : "";
        if (c.origin) {
          codeFacts.push(c.changed_since_submit ? html`<span class="hl-down" title="isolate_code was off: the task ran in the working tree, which differed from the tree at submission">${c.origin}</span>` : c.origin);
        }
        (c.imported_outside || []).forEach(function (m) {
          codeFacts.push(html`<span class="hl-down" title="imported from the working tree, not the sweep's code copy">${"module " + m + " imported from the working tree"}</span>`);
        });
        if (c.redacted) {
          codeFacts.push(html`<span class="hl-down" title="replaced by [redacted: rule] markers before publishing">${
            c.redacted + " secret" + (c.redacted === 1 ? "" : "s") + " redacted"}</span>`);
        }
        if (c.published !== false) {
          parts.push(section("Code", html`<p class="hl-facts">${joinHtml(codeFacts.filter(Boolean), " · ")}</p>${patch}`));
        }
        parts.push(section("Artifacts", d.artifacts.length ? table(["path", "sha256", "bytes"],
          d.artifacts.map(function (a) { return [code(a.path), shortHash(a.sha256), fmt(a.size)]; })) : emptyP("No artifacts.")));
        parts.push(section("Data", d.datasets.length ? table(["dataset", "path", "sha256", "files", "bytes"],
          d.datasets.map(function (s) { return [s.name, code(s.path), shortHash(s.sha256), fmt(s.n_files), fmt(s.size)]; })) : emptyP("No data sets fingerprinted.")));
        if ((d.text || []).length) {  // run.log_text / TensorBoard add_text
          parts.push(section("Text", table(["tag", "step", "text"], d.text.map(function (t) {
            return [t.tag, t.step === null ? "" : fmt(t.step), html`<pre class="hl-notes">${t.text}</pre>`]; }))));
        }
        var notes = d.notes;
        parts.push(section("Notes", notes ? html`${joinHtml((notes.tags || []).map(function (t) { return html`<span class="hl-tag">${t}</span>`; }), " ")}${
          notes.text ? html`<pre class="hl-notes">${notes.text}</pre>` : ""}` : emptyP("No notes (hpclab note " + run.run_id + " --append \"...\").")));
        parts.push(section("Hypotheses", d.hypotheses.length ? table(["hypothesis", "status", "evidence units (comparisons of seed groups) with this run as a sample"],
          d.hypotheses.map(function (h) { return [h.title || h.id, badge(h.status), (h.units || []).length ? (h.units || []).join("; ") : "not a sample of any unit (a reproduction, or no baseline)"]; })) : emptyP("This run is not evidence for any hypothesis.")));
        if (d.media) { parts.push(section("Media", mediaBody(run, d.media))); }
        parts.push(section("Restore", html`<pre class="hl-command"><code>${joinHtml(d.restore, "\n")}</code></pre>`));
        parts.push(section("Output", html`<div class="hl-run-output">${outputBody(d.logs)}</div>`));
        setHTML(root, html`${parts}`);
        if (d.media) { wireMedia(root, run, d.media); }
        // a metric only returned by the task has no series to chart
        var names = d.summary.filter(function (m) { return m.source !== "return"; }).map(function (m) { return m.name; });
        var chartsEl = root.querySelector(".hl-run-charts");
        if (chartsEl && res[1]) {
          // one chart per metric (each its own y axis: val/loss is not squashed beside
          // train/loss), or the losses in one when "combine" is ticked (?combine=1)
          var specs = chartSpecs(), combined = null, controls = null;
          var layoutRun = function () {
            var now = window.HPCLabCharts.state().combine;
            if (combined === now) { return false; }
            combined = now;
            views = views.filter(function (v) {
              if (v.controls === controls && v.view) { v.view.finalize(); }
              return v.controls !== controls;
            });
            chartsEl.textContent = "";
            var losses = names.filter(function (n) { return /loss/.test(n); });
            var groups = combined && losses.length > 1 ? [losses] : losses.map(function (n) { return [n]; });
            names.filter(function (n) { return losses.indexOf(n) < 0; }).forEach(function (n) { groups.push([n]); });
            var drawnRun = groups.map(function (g) {
              var box = document.createElement("div");
              box.className = "hl-live-chart hl-run-chart";
              setHTML(box, html`<h3>${g.join(", ")}</h3>`);
              var target = document.createElement("div");
              box.appendChild(target);
              chartsEl.appendChild(box);
              return embed(target, specs.run, { runs: [key], metrics: g, controls: controls });
            });
            Promise.all(drawnRun).then(function (vs) { noteDropped(controls, vs); });
            return true;
          };
          controls = chartControls(chartsEl, null, names, layoutRun);
          layoutRun();
        }
        root.dataset.rendered = "1";
        var logsVersion = d.logs ? d.logs.version : null;
        function refreshLogs() {  // while the run is active: its log tail (data/logs/...)
          return fetchJSON(dataPath("logs", key)).then(function (doc) {
            var el = root.querySelector(".hl-run-output");
            if (el && doc.version !== logsVersion) { logsVersion = doc.version; setHTML(el, outputBody(doc)); }
          }).catch(function () { return null; });
        }
        if (statusIn("active", run.status)) { poll(refreshLogs); }
      })
      .catch(function (e) {
        setHTML(root, emptyP("Cannot load run " + key + ": " + e.message +
          " (open the site through hpclab site serve or a web server; data files need HTTP)."));
      });
  }

  /* -- the compare page -------------------------------------------------------------- */

  // compare.html?r=PROJECT/RUN,PROJECT/RUN,... -> {keys: ["project/run", ...]} or
  // {error: "..."}. The raw query is split before decoding, so an encoded "," or "/"
  // inside a name is not taken for a separator.
  function compareKeys(search) {
    var raw = null;
    search.replace(/^\?/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if ((i < 0 ? kv : kv.slice(0, i)) === "r" && raw === null) { raw = i < 0 ? "" : kv.slice(i + 1); }
    });
    var how = "open this page from the Runs tab: tick the runs, then Compare.";
    if (raw === null || !raw.replace(/[,\s]/g, "")) { return { error: "No runs to compare: " + how }; }
    var keys = [], bad = [];
    raw.split(",").filter(Boolean).forEach(function (item) {
      var text = item.replace(/\+/g, " "), parts;
      try {
        parts = text.indexOf("/") >= 0 ? text.split("/").map(decodeURIComponent) : decodeURIComponent(text).split("/");
      } catch (e) { parts = []; }
      if (parts.length !== 2 || !parts[0] || !parts[1]) { bad.push(text); return; }
      var key = parts[0] + "/" + parts[1];
      if (keys.indexOf(key) < 0) { keys.push(key); }
    });
    if (bad.length) {
      return { error: "Cannot read " + bad.map(function (b) { return '"' + b + '"'; }).join(", ") +
        " as PROJECT/RUN (the page expects compare.html?r=PROJECT/RUN,PROJECT/RUN,...): " + how };
    }
    return { keys: keys };
  }

  function lossFirst(names) {
    var losses = names.filter(function (n) { return /loss/.test(n); }).sort();
    return losses.concat(names.filter(function (n) { return losses.indexOf(n) < 0; }).sort());
  }

  function compareMessage(root, text) {
    setHTML(root, html`<div class="admonition warning hl-compare-msg"><p>${text}</p></div><p><a href="${safeHref(url("runs/index.html"))}">Runs</a></p>`);
    root.dataset.rendered = "1";
  }

  function renderCompare(root) {
    var info = JSON.parse(document.querySelector(".hl-compare-data").textContent);
    var parsed = compareKeys(location.search);
    if (parsed.error) { return compareMessage(root, parsed.error); }
    var known = new Set(info.runs);
    var unknown = parsed.keys.filter(function (k) { return !known.has(k); });
    var keys = parsed.keys.filter(function (k) { return known.has(k); });
    var notes = [];
    if (unknown.length) {
      notes.push("Not in this site, left out: " + unknown.join(", ") + " (a run indexed since the last build, or a mistyped id).");
    }
    if (keys.length > info.max) {
      notes.push("Showing the first " + info.max + " of " + keys.length + " runs: at most " + info.max + " are compared at a time.");
      keys = keys.slice(0, info.max);
    }
    if (!keys.length) { return compareMessage(root, notes.join(" ")); }
    Promise.all(keys.map(function (k) { return fetchJSON(dataPath("details", k)); })).then(function (details) {
      // series only of runs with metrics: a run without any may have no series file
      return Promise.all(details.map(function (d, i) {
        return d.summary.length ? loadSeries(keys[i]).catch(function () { return null; }) : null;
      })).then(function () { return details; });
    }).then(function (details) {
      var runs = details.map(function (d) { return d.run; });
      // a run is its name in charts and tables, or its id where the name is missing or taken
      var labels = runs.map(function (r) {
        var twin = runs.filter(function (o) { return o.name && o.name === r.name; }).length > 1;
        return plain(r.name && !twin ? r.name : (r.name ? r.name + " (" + r.run_id + ")" : r.run_id));
      });
      var labelOf = {};
      keys.forEach(function (k, i) { labelOf[k] = labels[i]; });
      var last = details.map(function (d) {
        var m = {};
        d.summary.forEach(function (x) { m[x.name] = x; });
        return m;
      });
      // key metrics of the runs' projects, then every other metric all the runs have
      var keyMetrics = [], direction = {};
      runs.forEach(function (r) {
        (info.key_metrics[r.project] || []).forEach(function (m) {
          if (keyMetrics.indexOf(m.name) < 0) { keyMetrics.push(m.name); direction[m.name] = m.direction; }
        });
      });
      var all = [];
      last.forEach(function (m) { Object.keys(m).forEach(function (n) { if (all.indexOf(n) < 0) { all.push(n); } }); });
      var shared = lossFirst(all.filter(function (n) {
        return keyMetrics.indexOf(n) < 0 && last.every(function (m) { return n in m; });
      }));
      var columns = keyMetrics.filter(function (n) { return all.indexOf(n) >= 0; }).concat(shared);
      var best = {};
      columns.forEach(function (n) {
        if (!direction[n]) { return; }
        var vs = last.map(function (m) { return m[n] ? m[n].last : null; }).filter(function (v) { return v !== null; });
        if (vs.length > 1) { best[n] = direction[n] === "maximize" ? Math.max.apply(null, vs) : Math.min.apply(null, vs); }
      });
      var named = runs.some(function (r) { return r.name; });
      var head = runs.map(function (r, i) {
        var sweep = r.sweep_id ? html`<a href="${safeHref(url("reports/" + encodeURIComponent(r.project) + "/" +
          encodeURIComponent(r.sweep_id) + ".html"))}">${r.sweep_id}</a>` : fmt(null);
        return [html`<span class="hl-swatch" style="background:${PALETTE[i % PALETTE.length]}"></span>`,
          html`<a class="hl-run" href="${runHref(r.project, r.run_id)}">${r.run_id}</a>`]
          .concat(named ? [r.name || ""] : [])
          .concat([r.project, badge(r.status), sweep])
          .concat(columns.map(function (n) {
            var v = last[i][n] ? last[i][n].last : null;
            return v !== null && v === best[n] ? html`<strong class="hl-best" title="best of these runs">${fmt(v)}</strong>` : fmt(v);
          }));
      });
      var change = html`<a href="${safeHref(url("runs/index.html"))}">change the selection on the Runs tab</a>`;
      var parts = [html`<p class="hl-facts">${runs.length} runs · last values; <strong>bold</strong>: the best of these runs on a key metric · ${change}</p>`];
      if (notes.length) { parts.push(html`<div class="admonition warning hl-compare-msg"><p>${notes.join(" ")}</p></div>`); }
      var headers = ["", "run"].concat(named ? ["name"] : [], ["project", "status", "sweep"],
        columns.map(function (n) { return n + " (last)"; }));
      parts.push(table(headers, head, "hl-compare-runs"));
      // config: the paths whose values are not the same in every run (missing counts)
      var configs = details.map(function (d) {
        var c = {};
        d.config.forEach(function (pv) { c[pv[0]] = pv[1]; });
        return c;
      });
      var paths = [];
      configs.forEach(function (c) { Object.keys(c).forEach(function (k) { if (paths.indexOf(k) < 0) { paths.push(k); } }); });
      paths.sort();
      var differ = paths.filter(function (k) {
        return configs.some(function (c) { return !(k in c) || c[k] !== configs[0][k]; });
      });
      var same = paths.filter(function (k) { return differ.indexOf(k) < 0; });
      var cell = function (c, k) { return k in c ? code(c[k]) : fmt(null); };
      var diffTable = runs.length < 2 ? emptyP("One run: nothing to compare it with.") :
        differ.length ? table(["path"].concat(labels), differ.map(function (k) {
          return [code(k)].concat(configs.map(function (c) { return cell(c, k); }));
        }), "hl-config-diff") : emptyP("The runs' configs are the same.");
      var sameText = same.length + " of " + paths.length + " config values are the same in every run";
      parts.push(section("Config differences", html`${diffTable}<details class="hl-details"><summary>${sameText}</summary>${
        table(["path", "value"], same.map(function (k) { return [code(k), code(configs[0][k])]; }), "hl-config-same")}</details>`));
      if (details.some(function (d) { return d.resources; })) {  // Slurm accounting, side by side
        parts.push(section("Efficiency", html`${table(["run", "job", "elapsed", "CPU efficiency", "memory peak / asked",
          "memory efficiency", "CPU-h", "GPU-h", "advice"], details.map(function (d, i) {
          var r = d.resources;
          if (!r) { return [labels[i], "–", "–", "–", "–", "–", "–", "–", "no accounting (not a Slurm job, or not ended)"]; }
          return [labels[i], html`<code>${r.job_id}</code>`, r.elapsed_s === null ? "–" : duration(r.elapsed_s),
            pct(r.cpu_efficiency), mb(r.max_rss_mb) + " / " + mb(r.req_mem_mb === null ? r.alloc_mem_mb : r.req_mem_mb),
            pct(r.mem_efficiency), r.cpu_hours === null ? "–" : hoursText(r.cpu_hours),
            r.gpu_hours === null ? "–" : hoursText(r.gpu_hours), r.advice || ""];
        }), "hl-compare-efficiency")}<p class="hl-note">From Slurm accounting over every step of each job (sacct), as on each run's page.</p>`));
      }
      var front = selectionFront(info, keys, details, labels);
      parts.push(section("Pareto front", front.body));
      parts.push(section("Metrics", all.length ? html`<div class="hl-compare-charts"></div>` : emptyP("None of these runs logged metrics yet.")));
      setHTML(root, html`${parts}`);
      document.title = "Compare " + runs.length + " runs · " + document.title;
      var chartsEl = root.querySelector(".hl-compare-charts");
      // group by a config path that differs, a tag some of the runs have ("tag:NAME") or
      // the runs' tag sets ("tags:", when they are not all the same); colour by a path
      var tagsOf = {}, tagNames = [];
      keys.forEach(function (k, i) {
        tagsOf[k] = ((details[i].notes && details[i].notes.tags) || []).map(String);
        tagsOf[k].forEach(function (t) { if (tagNames.indexOf(t) < 0) { tagNames.push(t); } });
      });
      tagNames.sort();
      var tagKeys = tagNames.filter(function (t) {
        return keys.some(function (k) { return tagsOf[k].indexOf(t) < 0; });
      }).map(function (t) { return "tag:" + t; });
      if (tagKeys.length) { tagKeys.push("tags:"); }
      var specs = chartSpecs(), controls = chartsEl ? chartControls(chartsEl, differ.concat(tagKeys), all, null, differ) : null;
      var legend = window.HPCLabCharts.diffLabels(configs, differ, labels), legendOf = {};  // charts.js
      var configOf = {};
      keys.forEach(function (k, i) { legendOf[k] = legend[i]; configOf[k] = configs[i]; });
      var valueOf = function (path, k) {
        var c = configOf[k] || {};
        return path.split(".").pop() + "=" + (path in c ? c[path] : "–");
      };
      // grouped (the controls' "group by"): a run's group is its value of the path, or its tags
      var groupOf = function (k) {
        var g = window.HPCLabCharts.state().group;
        if (tagKeys.indexOf(g) >= 0) { return window.HPCLabCharts.tagGroup(g, tagsOf[k]); }
        if (differ.indexOf(g) < 0) { return legendOf[k]; }  // a path these runs share: each its own
        return valueOf(g, k);
      };
      var colourOf = function (k) {
        var c = window.HPCLabCharts.state().color;
        return differ.indexOf(c) < 0 ? legendOf[k] : valueOf(c, k);
      };
      var drawn = lossFirst(all).map(function (m) {
        var box = document.createElement("div");
        box.className = "hl-live-chart hl-compare-chart";
        box.dataset.metric = m;
        setHTML(box, html`<h3>${m}</h3>`);
        var target = document.createElement("div");
        box.appendChild(target);
        chartsEl.appendChild(box);
        return embed(target, colourDomain(specs.sweep, legend), { runs: keys, metrics: [m], labels: legendOf, controls: controls, groupOf: groupOf, colourOf: colourOf });
      });
      var paretoEl = root.querySelector(".hl-compare-pareto");
      if (paretoEl && front.values.length) {
        drawn.push(embed(paretoEl, front.spec, {}));
      } else if (paretoEl) {
        paretoEl.dataset.rendered = "1";
      }
      return Promise.all(drawn).then(function () {
        root.dataset.rendered = "1";
        if (runs.some(function (r) { return statusIn("active", r.status); })) { poll(null); }
      });
    }).catch(function (e) {
      compareMessage(root, "Cannot load the runs: " + e.message +
        " (open the site through hpclab site serve or a web server; data files need HTTP).");
    });
  }

  // The Pareto front of the selected runs only (not the project's): the runs' values on
  // their project's two Pareto objectives (data/details: pareto, the catalog's values),
  // directions from the page (hpclab/site/pages.py pareto_objectives). A run is on the
  // front when no other selected run is at least as good on both objectives and better on
  // one (hpclab.catalog.stats.pareto_ranks, rank 0). Runs of another project's objectives,
  // or without a value of each (not completed, a NaN), are named and left out.
  function dominates(a, b, maximize) {
    var better = false;
    for (var j = 0; j < a.length; j++) {
      var x = maximize[j] ? -a[j] : a[j], y = maximize[j] ? -b[j] : b[j];
      if (x > y) { return false; }
      if (x < y) { better = true; }
    }
    return better;
  }

  function paretoFront(points, maximize) {  // points: arrays of numbers -> on the front?
    return points.map(function (p, i) {
      return !points.some(function (q, j) { return j !== i && dominates(q, p, maximize); });
    });
  }

  function selectionFront(info, keys, details, labels) {
    var objectives = null, used = [], left = [];
    details.forEach(function (d, i) {
      var obj = (info.pareto || {})[d.run.project];
      var point = d.pareto;
      var names = obj ? obj.map(function (o) { return o.name; }) : null;
      if (!obj || !point || JSON.stringify(point.objectives) !== JSON.stringify(names)) {
        left.push([labels[i], obj ? "no value of every objective (not completed, or a missing value)" : "its project has no Pareto objectives"]);
        return;
      }
      if (objectives === null) { objectives = obj; }
      if (JSON.stringify(obj) !== JSON.stringify(objectives)) { left.push([labels[i], "its project's objectives differ"]); return; }
      used.push({ key: keys[i], label: labels[i], run: d.run, values: point.values });
    });
    var how = statsLink("pareto", "how the front is computed");
    var leftOut = left.length ? html`<p class="hl-facts hl-pareto-left">left out: ${joinHtml(left.map(function (l) { return l[0] + " (" + l[1] + ")"; }), "; ")}</p>` : "";
    if (!objectives || used.length < 1) {
      return { values: [], body: html`${emptyP("No Pareto front: none of these runs has a value of each Pareto objective.")}${leftOut}<p class="hl-facts">${how}</p><div class="hl-compare-pareto"></div>` };
    }
    var x = objectives[0], y = objectives[1];
    var maximize = objectives.map(function (o) { return o.direction === "maximize"; });
    var on = paretoFront(used.map(function (u) { return u.values; }), maximize);
    var ON = "front of this selection";
    var values = used.map(function (u, i) { return { run: u.label, x: u.values[0], y: u.values[1], front: on[i] ? ON : "dominated" }; });
    var arrow = function (o) { return o.name + (o.direction === "maximize" ? " ↑" : " ↓"); };
    var n = on.filter(Boolean).length;
    var note = html`<p class="hl-facts hl-pareto-note">The Pareto front of <strong>this selection</strong> (${used.length} ${used.length === 1 ? "run" : "runs"}, ${n} on the front) on ${arrow(x)} and ${arrow(y)}: computed over the selected runs only, so it can differ from the project's front · ${how}</p>`;
    var rows = used.map(function (u, i) {
      return [html`<a class="hl-run" href="${runHref(u.run.project, u.run.run_id)}">${u.label}</a>`, fmt(u.values[0]), fmt(u.values[1]),
        on[i] ? html`<strong class="hl-on-front">on the front</strong>` : "dominated"];
    });
    var spec = JSON.parse(JSON.stringify(((chartSpecsOf(".hl-compare-specs") || {}).pareto) || {}));
    (function title(node) {  // the fields x and y are the objectives: axes and tooltips
      if (!node || typeof node !== "object") { return; }
      ["x", "y"].forEach(function (ch) {
        var enc = node.encoding && node.encoding[ch];
        if (enc && (enc.field === "x" || enc.field === "y")) { enc.title = plain(enc.field === "x" ? x.name : y.name); }
      });
      (node.encoding && node.encoding.tooltip || []).forEach(function (t) {
        if (t.field === "x" || t.field === "y") { t.title = plain(t.field === "x" ? x.name : y.name); }
      });
      (node.layer || []).forEach(title);
    })(spec);
    spec.data = { name: "pareto", values: visibleStrings(values) };
    var frontRuns = used.filter(function (u, i) { return on[i]; }).map(function (u) { return u.key; });
    return {
      values: values,
      spec: spec,
      body: html`${note}${leftOut}<div class="hl-live-chart hl-compare-pareto" data-front="${frontRuns.join(",")}"></div>${
        table(["run", arrow(x), arrow(y), "Pareto"], rows, "hl-pareto-selection")}`
    };
  }

  function chartSpecsOf(selector) {
    var el = document.querySelector(selector);
    return el ? JSON.parse(el.textContent) : null;
  }

  function chartSpecs() {  // written into the page by hpclab/site/pages.py (Altair)
    return JSON.parse(document.querySelector(".hl-chart-specs").textContent);
  }

  /* -- the Runs list ----------------------------------------------------------------- */

  // The table is site/assets/hpclab/runs-table.js (loaded before this file): it is given
  // this file's escaping and formatting helpers.
  function g4(v) {  // Python's "%.4g" (hpclab/site/html.py num), for the same text on both sides
    var r = Number(v.toPrecision(4));
    var e = r === 0 ? 0 : Math.floor(Math.log10(Math.abs(r)));
    if (e >= -4 && e < 4) { return String(r); }
    var parts = r.toExponential(3).split("e");
    var x = parseInt(parts[1], 10);
    return parts[0].replace(/\.?0+$/, "") + "e" + (x < 0 ? "-" : "+") + (Math.abs(x) < 10 ? "0" : "") + Math.abs(x);
  }

  function numText(v) {
    if (typeof v !== "number" || !isFinite(v)) { return null; }
    return Number.isInteger(v) && Math.abs(v) < 1e12 ? String(v) : g4(v);
  }

  function runsList(box) {
    return window.hpclabRunsTable.start(box, {
      html: html, joinHtml: joinHtml, setHTML: setHTML, plain: plain, fmt: fmt, badge: badge,
      runHref: runHref, safeHref: safeHref, duration: duration, fetchJSON: fetchJSON, numText: numText,
      thousands: function (n) { return n.toLocaleString("en-US"); }
    });
  }

  /* -- the Graph --------------------------------------------------------------------- */

  // One group of a project's DAG (hpclab/site/graph.py): a sweep's runs, laid out by the
  // build, drawn from data/graph/<project>/<group>.json the first time the group is open.
  // Nodes: [run_id, x, y, status, ring, label, title]; edges: [x1, y1, x2, y2].
  // "colour by": a key metric's value per node, on a dark (best) to light (worst) ramp
  var RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];  // viridis

  function rampColour(t) {  // t in [0, 1]: 0 the best end
    var x = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
    var i = Math.min(RAMP.length - 2, Math.floor(x));
    var f = x - i;
    var c = RAMP[i].map(function (v, k) { return Math.round(v + f * (RAMP[i + 1][k] - v)); });
    return "rgb(" + c.join(",") + ")";
  }

  function graphColourBy() {
    var sel = document.querySelector("select.hl-graph-colour");
    return sel ? sel.value : "";
  }

  function colourGroup(el) {  // recolour a drawn group by the page's "colour by" choice
    var g = el._graph;
    if (!g) { return; }
    var metric = graphColourBy();
    var at = (g.metrics || []).map(function (m) { return m.name; }).indexOf(metric);
    var scale = el.querySelector(".hl-graph-scale");
    var values = at < 0 ? [] : g.nodes.map(function (n) { return (n[7] || [])[at]; })
      .filter(function (v) { return typeof v === "number" && isFinite(v); });
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    var maximize = at >= 0 && g.metrics[at].direction === "maximize";
    el.querySelectorAll("g.hl-node").forEach(function (node, i) {
      var circle = node.querySelector("circle");
      var v = at < 0 ? null : (g.nodes[i][7] || [])[at];
      if (at < 0) {
        circle.style.removeProperty("fill");
        circle.classList.remove("hl-fill-none");
      } else if (typeof v !== "number" || !isFinite(v)) {
        circle.style.removeProperty("fill");
        circle.classList.add("hl-fill-none");
      } else {
        var t = hi > lo ? (v - lo) / (hi - lo) : 0;
        circle.classList.remove("hl-fill-none");
        circle.style.fill = rampColour(maximize ? 1 - t : t);
      }
    });
    if (!scale) { return; }
    if (at < 0) { setHTML(scale, html``); return; }
    if (!values.length) { setHTML(scale, html`${metric}: no run of this group has a value`); return; }
    var best = maximize ? hi : lo, worst = maximize ? lo : hi;
    setHTML(scale, html`<span class="hl-ramp"></span> ${metric}: ${numText(best)} (dark, best) to ${numText(worst)} (light)`);
  }

  function graphGroup(el) {
    if (el.dataset.drawn) { return Promise.resolve(); }
    el.dataset.drawn = "0";
    var wrap = el.querySelector(".hl-graph-wrap");
    return fetchJSON(el.dataset.src).then(function (g) {
      var edges = g.edges.map(function (e) {
        var mx = Math.round((e[0] + e[2]) / 2);
        var d = "M" + e[0] + "," + e[1] + " C" + mx + "," + e[1] + " " + mx + "," + e[3] + " " + e[2] + "," + e[3];
        return html`<path class="hl-edge" d="${d}"/>`;
      });
      var nodes = g.nodes.map(function (n) {
        var ring = n[4] > 0 ? " hl-node-up" : n[4] < 0 ? " hl-node-down" : "";
        var text = n[5] ? html`<text x="${n[1] + 12}" y="${n[2] + 4}">${n[5]}</text>` : "";
        var dot = html`<circle cx="${n[1]}" cy="${n[2]}" r="8" class="${"hl-fill-" + n[3]}"/>`;
        return html`<a href="${runHref(g.project, n[0])}"><g class="${"hl-node" + ring}" data-run="${n[0]}"><title>${n[6]}</title>${dot}${text}</g></a>`;
      });
      setHTML(wrap, html`<p class="hl-facts hl-graph-scale"></p><svg class="hl-graph" data-project="${g.project}" viewBox="${"-20 -20 " + g.width + " " + g.height}" width="${g.width}" height="${g.height}" role="img" aria-label="${"experiment DAG of " + g.project + " · " + el.dataset.group}">${edges}${nodes}</svg>`);
      el._graph = g;
      colourGroup(el);
      el.dataset.drawn = "1";
    }).catch(function (e) {
      delete el.dataset.drawn;
      setHTML(wrap, emptyP("Cannot draw this group (" + e.message + "): open the site through hpclab site serve or any web server."));
    });
  }

  function graphGroups() {
    var groups = Array.prototype.slice.call(document.querySelectorAll("details.hl-graph-group"));
    groups.forEach(function (el) {
      el.addEventListener("toggle", function () { if (el.open) { graphGroup(el); } });
    });
    var sel = document.querySelector("select.hl-graph-colour");
    if (sel) {
      var wanted = new URLSearchParams(location.search).get("colour");
      if (wanted && Array.prototype.some.call(sel.options, function (o) { return o.value === wanted; })) {
        sel.value = wanted;
      }
      sel.addEventListener("change", function () {
        var q = new URLSearchParams(location.search);
        if (sel.value) { q.set("colour", sel.value); } else { q.delete("colour"); }
        var qs = q.toString();
        history.replaceState(null, "", location.pathname + (qs ? "?" + qs : "") + location.hash);
        groups.forEach(colourGroup);
      });
    }
    return Promise.all(groups.filter(function (el) { return el.open; }).map(graphGroup));
  }

  /* -- start ------------------------------------------------------------------------- */

  function start() {
    var runsBox = document.querySelector(".hl-runs-scroll");
    var listed = Promise.all([runsBox ? runsList(runsBox) : null, graphGroups()]);
    // reports' Print button (the CSP forbids an inline onclick)
    document.querySelectorAll(".hl-print").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
    var training = document.getElementById("hl-training");
    var run = document.getElementById("hl-run");
    var compare = document.getElementById("hl-compare");
    var charted = renderStaticCharts().catch(function (e) { console.error("hpclab: chart failed:", e); });
    Promise.all([charted, listed]).then(function () {
      var hasSeries = views.length > 0;
      if (training) { renderTraining(training); } else if (hasSeries && !run) { poll(null); }
      if (run) { renderRun(run); }
      if (compare) { renderCompare(compare); }
      document.body.dataset.hlReady = "1";
    });
    // (Chart text follows the light/dark palette through hpclab.css, no redraw needed.)
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
