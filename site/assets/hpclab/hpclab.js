/* hpclab's lab website: charts from the runs' data files, the live Training view, the run
 * page, the compare page (runs ticked on the Runs list), sortable and filterable tables.
 * Plain JavaScript on top of the Vega bundle; no theme API is used, so the pages move to
 * another MkDocs theme unchanged.
 *
 * Data files (written by hpclab, never by MkDocs):
 *   data/live.json                      running, queued and recently ended runs (polled)
 *   data/runs/<project>/<run>.json      a run's metric series, downsampled
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
  var views = [];         // {el, view, runs, metrics, color}

  function url(path) { return new URL(path, ROOT).href; }

  function fetchJSON(path) {
    return fetch(url(path), { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error(path + ": HTTP " + r.status); }
      return r.json();
    });
  }

  function esc(v) {
    return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function fmt(v, digits) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) {
      return '<span class="hl-missing" title="missing (NaN or not logged)">–</span>';
    }
    if (typeof v !== "number") { return esc(v); }
    if (Number.isInteger(v)) { return String(v); }
    return String(Number(v.toPrecision(digits || 4)));
  }

  function badge(s) {
    s = String(s || "unknown");
    return '<span class="hl-badge hl-s-' + esc(s.toLowerCase()) + '">' + esc(s) + "</span>";
  }

  function runHref(project, runId) {
    return url("runs/run.html") + "?p=" + encodeURIComponent(project) + "&id=" + encodeURIComponent(runId);
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
      axis: { labelColor: fg, titleColor: fg, gridColor: grid, domainColor: grid, tickColor: grid },
      legend: { labelColor: fg, titleColor: fg },
      title: { color: fg },
      range: { category: PALETTE }
    };
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
    return fetchJSON("data/runs/" + key + ".json").then(function (doc) {
      seriesCache[key] = { version: doc.version, doc: doc };
      return doc;
    });
  }

  function seriesValues(runs, metrics, labels) {
    var values = [];
    runs.forEach(function (key) {
      var entry = seriesCache[key];
      if (!entry) { return; }
      var ms = entry.doc.metrics || {};
      Object.keys(ms).forEach(function (name) {
        if (metrics && metrics.indexOf(name) < 0) { return; }
        var m = ms[name];
        var run = (labels && labels[key]) || key.split("/")[1];
        var n = m.step.length;
        for (var i = 0; i < n; i++) {
          // a value with no neighbour to join is drawn as a dot (the spec's "lone" layer)
          var lone = m.value[i] !== null && (i === 0 || m.value[i - 1] === null) &&
            (i === n - 1 || m.value[i + 1] === null);
          values.push({ run: run, metric: name, key: key + "|" + name, step: m.step[i], value: m.value[i], lone: lone });
        }
      });
    });
    return values;
  }

  function setValues(v) {
    var values = seriesValues(v.runs, v.metrics, v.labels);
    if (!v.view) { return; }
    v.view.data("series", values).run();
    v.el.dataset.points = String(values.length);
    v.el.dataset.lastStep = String(values.reduce(function (m, x) { return Math.max(m, x.step); }, -1));
    v.el.dataset.series = String(new Set(values.map(function (x) { return x.key; })).size);
  }

  function embed(el, spec, opts) {
    spec = Object.assign({}, spec, { config: chartConfig(), autosize: { type: "fit-x", contains: "padding" } });
    var v = { el: el, view: null, runs: opts.runs || [], metrics: opts.metrics || null, labels: opts.labels || null };
    if (opts.runs) {
      // The data goes in with the spec: a line chart with no rows has no extent to draw.
      var values = seriesValues(v.runs, v.metrics, v.labels);
      if (!values.length) {
        el.innerHTML = '<p class="hl-empty">No points logged yet.</p>';
        el.dataset.rendered = "1";
        return Promise.resolve(v);
      }
      spec.data = { name: "series", values: values };
      el.dataset.points = String(values.length);
      el.dataset.lastStep = String(values.reduce(function (m, x) { return Math.max(m, x.step); }, -1));
    }
    return vegaEmbed(el, spec, { actions: false, renderer: "svg" }).then(function (res) {
      v.view = res.view;
      if (opts.runs) { views.push(v); }
      el.dataset.rendered = "1";
      return v;
    });
  }

  function renderStaticCharts() {
    var els = Array.prototype.slice.call(document.querySelectorAll(".hl-chart"));
    return Promise.all(els.map(function (el) {
      var holder = el.querySelector("script[type='application/json']");
      if (!holder) { return null; }
      var spec = JSON.parse(holder.textContent);
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

  function renderTraining(root) {
    var specs = chartSpecs();
    var jobs = root.querySelector(".hl-live-jobs");
    var sweepsEl = root.querySelector(".hl-live-sweeps");
    var runsEl = root.querySelector(".hl-live-runs");
    var shown = {};   // chart id -> true

    function onLive(live) {
      var runs = live.runs || [];
      var text = root.querySelector(".hl-live-text");
      var active = runs.filter(function (r) { return r.status === "running"; }).length;
      var waiting = runs.filter(function (r) { return r.status === "queued" || r.status === "planned"; }).length;
      text.textContent = active + " running, " + waiting + " queued · updated " +
        new Date(live.generated_at * 1000).toLocaleTimeString();
      root.dataset.live = "1";
      if (!runs.length) {
        jobs.innerHTML = '<p class="hl-empty">Nothing is running or queued.</p>';
      } else {
        var rows = runs.map(function (r) {
          var pct = r.total && r.step !== null ? Math.min(100, 100 * (r.step + 1) / r.total) : null;
          var bar = pct === null ? "–" :
            '<div class="hl-progress" title="' + (r.step + 1) + " / " + r.total + '"><span style="width:' + pct.toFixed(0) + '%"></span></div>';
          return "<tr><td>" + badge(r.status) + "</td><td><a class=\"hl-run\" href=\"" + runHref(r.project, r.run_id) + "\">" +
            esc(r.name || r.run_id) + "</a></td><td>" + esc(r.project) + "</td><td>" + esc(r.scheduler_state || "–") +
            (r.reason ? ' <span class="hl-note">' + esc(r.reason) + "</span>" : "") + "</td><td>" +
            fmt(r.step) + (r.total ? " / " + r.total : "") + "</td><td>" + bar + "</td><td>" +
            (r.rate ? r.rate.toPrecision(3) + "/s" : "–") + "</td><td>" + duration(r.eta_s) + "</td></tr>";
        }).join("");
        jobs.innerHTML = '<div class="hl-table-wrap"><table class="hl-table hl-jobs"><thead><tr><th>status</th><th>run</th>' +
          "<th>project</th><th>Slurm state</th><th>step</th><th>progress</th><th>rate</th><th>ETA</th></tr></thead><tbody>" +
          rows + "</tbody></table></div>";
      }
      var withData = runs.filter(function (r) { return r.metrics && r.metrics.length; });
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
            box.innerHTML = "<h3>" + esc(sk.split("/")[1]) + " · " + esc(m) + "</h3>";
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
          box.innerHTML = "<h3><a href=\"" + runHref(r.project, r.run_id) + "\">" + esc(r.name || r.run_id) + "</a> " + badge(r.status) + "</h3>";
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

  function table(headers, rows, cls) {
    return '<div class="hl-table-wrap"><table class="hl-table ' + (cls || "") + '"><thead><tr>' +
      headers.map(function (h) { return "<th>" + esc(h) + "</th>"; }).join("") + "</tr></thead><tbody>" +
      rows.map(function (r) { return "<tr>" + r.map(function (c) { return "<td>" + c + "</td>"; }).join("") + "</tr>"; }).join("") +
      "</tbody></table></div>";
  }

  function section(title, body) { return "<h2>" + esc(title) + "</h2>" + body; }
  function emptyP(t) { return '<p class="hl-empty">' + esc(t) + "</p>"; }
  function code(v) { return "<code>" + esc(v) + "</code>"; }

  function renderRun(root) {
    var params = new URLSearchParams(location.search);
    var project = params.get("p"), runId = params.get("id");
    if (!project || !runId) {
      root.innerHTML = emptyP("No run named: open a run from the Runs list.");
      return;
    }
    var key = project + "/" + runId;
    Promise.all([fetchJSON("data/details/" + key + ".json"), loadSeries(key).catch(function () { return null; })])
      .then(function (res) {
        var d = res[0], run = d.run;
        document.title = (run.name || run.run_id) + " · " + document.title;
        var h1 = document.querySelector("article h1, h1");
        if (h1) { h1.textContent = run.name ? run.name + " (" + run.run_id + ")" : run.run_id; }
        var facts = [badge(run.status), code(run.project), "step " + fmt(run.step),
          "created " + esc((run.created_at || "").slice(0, 16)), "duration " + duration(run.duration_s),
          "host " + esc(run.host || "–"), "scheduler " + esc(run.scheduler || "–") + (run.job_id ? " job " + esc(run.job_id) : "")];
        if (run.scheduler_state) { facts.push("Slurm " + esc(run.scheduler_state)); }
        if (run.parent) { facts.push('parent <a href="' + runHref(run.project, run.parent) + '">' + esc(run.parent) + "</a>"); }
        if (d.sweep) { facts.push("sweep " + code(d.sweep.id) + " point " + fmt(d.sweep.point)); }
        var html = '<p class="hl-facts">' + facts.join(" · ") + "</p>";
        if (run.error_type) { html += '<div class="admonition failure"><p class="admonition-title">' + esc(run.error_type) + "</p><p>" + esc(run.error_message) + "</p></div>"; }
        if (d.children && d.children.length) {
          html += '<p class="hl-facts">children: ' + d.children.map(function (c) { return '<a href="' + runHref(run.project, c) + '">' + esc(c) + "</a>"; }).join(", ") + "</p>";
        }
        html += section("Metrics", d.summary.length ? table(["metric", "last", "best", "min", "max", "points", "last step"],
          d.summary.map(function (m) { return [code(m.name), fmt(m.last), fmt(m.best), fmt(m.min), fmt(m.max), fmt(m.n), fmt(m.last_step)]; })) +
          '<div class="hl-run-charts"></div>' : emptyP("No metrics logged yet."));
        html += section("Config", (d.diff.length ? "<h3>Changed from the parent</h3>" + table(["path", "change", "parent", "this run"],
          d.diff.map(function (x) { return [code(x.path), esc(x.change), x.old === null ? "–" : code(x.old), x["new"] === null ? "–" : code(x["new"])]; }), "hl-diff") : "") +
          "<details class=\"hl-details\"" + (d.diff.length ? "" : " open") + "><summary>Full config (" + d.config.length + " values)</summary>" +
          table(["path", "value"], d.config.map(function (c) { return [code(c[0]), code(c[1])]; })) + "</details>");
        var c = d.code || {};
        html += section("Code", '<p class="hl-facts">' + [c.kind ? esc(c.kind) : "no snapshot", c.commit ? "commit " + code(c.commit.slice(0, 12)) : "",
          c.branch ? "branch " + code(c.branch) : "", c.dirty ? '<span class="hl-down">uncommitted changes</span>' : (c.commit ? "clean" : "")]
          .filter(Boolean).join(" · ") + "</p>" +
          (c.patch ? "<details class=\"hl-details\"><summary>Uncommitted changes (patch" + (c.patch_truncated ? ", cut" : "") + ")</summary><pre class=\"hl-patch\"><code>" + esc(c.patch) + "</code></pre></details>" : ""));
        html += section("Artifacts", d.artifacts.length ? table(["path", "sha256", "bytes"],
          d.artifacts.map(function (a) { return [code(a.path), '<code title="' + esc(a.sha256) + '">' + esc((a.sha256 || "").slice(0, 16)) + "…</code>", fmt(a.size)]; })) : emptyP("No artifacts."));
        html += section("Data", d.datasets.length ? table(["dataset", "path", "sha256", "files", "bytes"],
          d.datasets.map(function (s) { return [esc(s.name), code(s.path), '<code title="' + esc(s.sha256) + '">' + esc((s.sha256 || "").slice(0, 16)) + "…</code>", fmt(s.n_files), fmt(s.size)]; })) : emptyP("No data sets fingerprinted."));
        var notes = d.notes;
        html += section("Notes", notes ? ((notes.tags || []).map(function (t) { return '<span class="hl-tag">' + esc(t) + "</span>"; }).join(" ") +
          (notes.text ? '<pre class="hl-notes">' + esc(notes.text) + "</pre>" : "")) : emptyP("No notes (hpclab note " + run.run_id + " --append \"...\")."));
        html += section("Hypotheses", d.hypotheses.length ? table(["hypothesis", "status", "contribution"],
          d.hypotheses.map(function (h) { return [esc(h.title || h.id), badge(h.status), fmt(h.contribution, 3)]; })) : emptyP("This run is not evidence for any hypothesis."));
        html += section("Restore", "<pre class=\"hl-command\"><code>" + d.restore.map(esc).join("\n") + "</code></pre>");
        root.innerHTML = html;
        var names = d.summary.map(function (m) { return m.name; });
        var chartsEl = root.querySelector(".hl-run-charts");
        if (chartsEl && res[1]) {
          var specs = chartSpecs();
          var losses = names.filter(function (n) { return /loss/.test(n); });
          var groups = losses.length ? [losses] : [];
          names.filter(function (n) { return losses.indexOf(n) < 0; }).forEach(function (n) { groups.push([n]); });
          groups.forEach(function (g) {
            var box = document.createElement("div");
            box.className = "hl-live-chart hl-run-chart";
            box.innerHTML = "<h3>" + esc(g.join(", ")) + "</h3>";
            var target = document.createElement("div");
            box.appendChild(target);
            chartsEl.appendChild(box);
            embed(target, specs.run, { runs: [key], metrics: g });
          });
        }
        root.dataset.rendered = "1";
        if (run.status === "running" || run.status === "queued" || run.status === "planned") { poll(null); }
      })
      .catch(function (e) {
        root.innerHTML = emptyP("Cannot load run " + key + ": " + e.message +
          " (open the site through hpclab site serve or a web server; data files need HTTP).");
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
    root.innerHTML = '<div class="admonition warning hl-compare-msg"><p>' + esc(text) + "</p></div>" +
      '<p><a href="' + url("runs/index.html") + '">Runs</a></p>';
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
    Promise.all(keys.map(function (k) { return fetchJSON("data/details/" + k + ".json"); })).then(function (details) {
      // series only of runs with metrics: a run without any may have no series file
      return Promise.all(details.map(function (d, i) {
        return d.summary.length ? loadSeries(keys[i]).catch(function () { return null; }) : null;
      })).then(function () { return details; });
    }).then(function (details) {
      var runs = details.map(function (d) { return d.run; });
      // a run is its name in charts and tables, or its id where the name is missing or taken
      var labels = runs.map(function (r) {
        var twin = runs.filter(function (o) { return o.name && o.name === r.name; }).length > 1;
        return r.name && !twin ? r.name : (r.name ? r.name + " (" + r.run_id + ")" : r.run_id);
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
        return ['<span class="hl-swatch" style="background:' + PALETTE[i % PALETTE.length] + '"></span>',
          '<a class="hl-run" href="' + runHref(r.project, r.run_id) + '">' + esc(r.run_id) + "</a>"]
          .concat(named ? [esc(r.name || "")] : [])
          .concat([esc(r.project), badge(r.status), r.sweep_id ? '<a href="' +
            url("reports/" + encodeURIComponent(r.project) + "/" + encodeURIComponent(r.sweep_id) + ".html") + '">' +
            esc(r.sweep_id) + "</a>" : fmt(null)])
          .concat(columns.map(function (n) {
            var v = last[i][n] ? last[i][n].last : null;
            return v !== null && v === best[n] ? '<strong class="hl-best" title="best of these runs">' + fmt(v) + "</strong>" : fmt(v);
          }));
      });
      var html = '<p class="hl-facts">' + runs.length + " runs · last values; <strong>bold</strong>: the best of these runs on a key metric · " +
        '<a href="' + url("runs/index.html") + '">change the selection on the Runs tab</a></p>';
      if (notes.length) { html += '<div class="admonition warning hl-compare-msg"><p>' + esc(notes.join(" ")) + "</p></div>"; }
      var headers = ["", "run"].concat(named ? ["name"] : [], ["project", "status", "sweep"],
        columns.map(function (n) { return n + " (last)"; }));
      html += table(headers, head, "hl-compare-runs");
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
      html += section("Config differences", (runs.length < 2 ? emptyP("One run: nothing to compare it with.") :
        differ.length ? table(["path"].concat(labels), differ.map(function (k) {
          return [code(k)].concat(configs.map(function (c) { return cell(c, k); }));
        }), "hl-config-diff") : emptyP("The runs' configs are the same.")) +
        '<details class="hl-details"><summary>' + same.length + " of " + paths.length +
        " config values are the same in every run</summary>" +
        table(["path", "value"], same.map(function (k) { return [code(k), code(configs[0][k])]; }), "hl-config-same") + "</details>");
      html += section("Metrics", all.length ? '<div class="hl-compare-charts"></div>' : emptyP("None of these runs logged metrics yet."));
      root.innerHTML = html;
      document.title = "Compare " + runs.length + " runs · " + document.title;
      var chartsEl = root.querySelector(".hl-compare-charts");
      var specs = chartSpecs();
      var drawn = lossFirst(all).map(function (m) {
        var box = document.createElement("div");
        box.className = "hl-live-chart hl-compare-chart";
        box.dataset.metric = m;
        box.innerHTML = "<h3>" + esc(m) + "</h3>";
        var target = document.createElement("div");
        box.appendChild(target);
        chartsEl.appendChild(box);
        return embed(target, colourDomain(specs.sweep, labels), { runs: keys, metrics: [m], labels: labelOf });
      });
      return Promise.all(drawn).then(function () {
        root.dataset.rendered = "1";
        if (runs.some(function (r) { return r.status === "running" || r.status === "queued" || r.status === "planned"; })) { poll(null); }
      });
    }).catch(function (e) {
      compareMessage(root, "Cannot load the runs: " + e.message +
        " (open the site through hpclab site serve or a web server; data files need HTTP).");
    });
  }

  function chartSpecs() {  // written into the page by hpclab/site/pages.py (Altair)
    return JSON.parse(document.querySelector(".hl-chart-specs").textContent);
  }

  /* -- tables ------------------------------------------------------------------------ */

  function sortable(tbl) {
    var heads = tbl.querySelectorAll("th");
    heads.forEach(function (th, col) {
      if (th.dataset.sort === "none") { return; }
      th.classList.add("hl-sort");
      th.addEventListener("click", function () {
        var asc = th.dataset.dir !== "asc";
        heads.forEach(function (h) { delete h.dataset.dir; });
        th.dataset.dir = asc ? "asc" : "desc";
        var num = th.dataset.sort === "num";
        var body = tbl.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
          if (num) {
            var fx = parseFloat(x), fy = parseFloat(y);
            if (isNaN(fx)) { return 1; }
            if (isNaN(fy)) { return -1; }
            return asc ? fx - fy : fy - fx;
          }
          return asc ? x.localeCompare(y) : y.localeCompare(x);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  function filterable(input) {
    var tbl = document.querySelector("table.hl-runs");
    var count = document.querySelector(".hl-filter-count");
    if (!tbl) { return; }
    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var n = 0;
      Array.prototype.forEach.call(tbl.tBodies[0].rows, function (row) {
        var text = row.textContent.toLowerCase();
        var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
        row.style.display = ok ? "" : "none";
        if (ok) { n++; }
      });
      if (count) { count.textContent = n + " of " + tbl.tBodies[0].rows.length + " runs"; }
    }
    input.addEventListener("input", apply);
    apply();
  }

  // The Runs list's tick boxes: the ticked runs, in the order they were ticked, make the
  // Compare link. A filter only hides rows, so ticks on hidden rows stay (and are counted).
  function pickable(tbl) {
    var bar = document.querySelector(".hl-compare-bar");
    if (!bar) { return; }
    var link = bar.querySelector(".hl-compare");
    var clear = bar.querySelector(".hl-compare-clear");
    var hint = bar.querySelector(".hl-compare-hint");
    var max = parseInt(link.dataset.max, 10) || 12;
    var order = [];
    var boxes = Array.prototype.slice.call(tbl.querySelectorAll("input.hl-pick"));
    function update() {
      // a page restored from the history keeps its ticks without change events
      var ticked = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
      order = order.filter(function (k) { return ticked.indexOf(k) >= 0; });
      ticked.forEach(function (k) { if (order.indexOf(k) < 0) { order.push(k); } });
      var n = order.length;
      link.textContent = "Compare (" + n + ")";
      if (n >= 2) {
        link.href = "compare.html?r=" + order.map(function (k) {
          var i = k.indexOf("/");
          return encodeURIComponent(k.slice(0, i)) + "/" + encodeURIComponent(k.slice(i + 1));
        }).join(",");
        link.removeAttribute("aria-disabled");
      } else {
        link.removeAttribute("href");
        link.setAttribute("aria-disabled", "true");
      }
      boxes.forEach(function (b) { b.disabled = !b.checked && n >= max; });
      clear.hidden = n === 0;
      var hidden = boxes.filter(function (b) { return b.checked && b.closest("tr").style.display === "none"; }).length;
      hint.textContent = n >= max ? "at most " + max + " runs at a time" :
        n < 2 ? "tick 2 to " + max + " runs to compare them" : "";
      if (hidden) { hint.textContent += (hint.textContent ? " · " : "") + hidden + " ticked hidden by the filter"; }
    }
    tbl.addEventListener("change", function (ev) { if (ev.target.classList.contains("hl-pick")) { update(); } });
    clear.addEventListener("click", function () {
      boxes.forEach(function (b) { b.checked = false; });
      update();
    });
    var f = document.querySelector(".hl-filter-input");
    if (f) { f.addEventListener("input", update); }
    window.addEventListener("pageshow", update);
    update();
  }

  /* -- start ------------------------------------------------------------------------- */

  function start() {
    document.querySelectorAll("table.hl-sortable").forEach(sortable);
    var f = document.querySelector(".hl-filter-input");
    if (f) { filterable(f); }
    var runsTable = document.querySelector("table.hl-runs");
    if (runsTable) { pickable(runsTable); }
    var training = document.getElementById("hl-training");
    var run = document.getElementById("hl-run");
    var compare = document.getElementById("hl-compare");
    renderStaticCharts().catch(function (e) { console.error("hpclab: chart failed:", e); }).then(function () {
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
