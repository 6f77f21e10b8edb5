/* hpclab chart controls (issue 17): the y scale (linear or log), smoothing (EMA, the
   raw curve faint underneath), a robust y range and, on the compare page, grouping by a
   config path (one line per group: the mean, with a min-max band) of every metric chart
   on the run and compare pages, kept in the URL (?...&y=log&smooth=0.6&group=optim.lr)
   so a view can be shared and
   is restored on load. hpclab.js calls HPCLabCharts.spec / .values in embed() and
   .controls() above a page's charts; a log scale drops non-positive values (with a note
   under the controls), so Vega is never handed a log domain with 0 or less in it. */
(function () {
  "use strict";

  function state() {
    var p = new URLSearchParams(location.search);
    var w = parseFloat(p.get("smooth") || "0"), k = parseInt(p.get("mean") || "0", 10);
    return { y: p.get("y") === "log" ? "log" : "linear", smooth: isFinite(w) && w > 0 && w < 1 ? w : 0,
      mean: isFinite(k) && k >= 2 ? Math.min(k, 10000) : 0, combine: p.get("combine") === "1",
      robust: p.get("robust") === "1", group: p.get("group") || "", color: p.get("color") || "",
      x: xParam(p.get("x")) };
  }

  // the x axis: step (default), rel (seconds since the run's first point), wall (the
  // time of day, UTC) or m:NAME (another metric of the run, by step: tokens seen)
  function xParam(x) {
    return x === "rel" || x === "wall" || (x && x.indexOf("m:") === 0 && x.length > 2) ? x : "step";
  }

  function setState(s) {
    var p = new URLSearchParams(location.search);
    if (s.y === "log") { p.set("y", "log"); } else { p["delete"]("y"); }
    if (s.smooth > 0) { p.set("smooth", String(s.smooth)); } else { p["delete"]("smooth"); }
    if (s.mean >= 2) { p.set("mean", String(s.mean)); } else { p["delete"]("mean"); }
    if (s.combine) { p.set("combine", "1"); } else { p["delete"]("combine"); }
    if (s.robust) { p.set("robust", "1"); } else { p["delete"]("robust"); }
    if (s.group) { p.set("group", s.group); } else { p["delete"]("group"); }
    if (s.color) { p.set("color", s.color); } else { p["delete"]("color"); }
    if (s.x && s.x !== "step") { p.set("x", s.x); } else { p["delete"]("x"); }
    var q = p.toString();
    history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
  }

  // a copy of the spec with the y scale of every "value" encoding set to the state's type;
  // grouped (st.group and the page can group), one line per group with its min-max band;
  // coloured (st.color and the page can colour), each run's line in its value's colour
  // (the rows' "cby" field: "lr=0.01"), still one line per run
  function spec(s, st, grouped, coloured) {
    st = st || state();
    var out = JSON.parse(JSON.stringify(s));
    (function walk(node) {
      if (!node || typeof node !== "object") { return; }
      var y = node.encoding && node.encoding.y;
      if (y && y.field === "value") {
        y.scale = Object.assign({}, y.scale || {}, { type: st.y });
        if (st.y === "log") { delete y.scale.zero; }
      }
      var color = node.encoding && node.encoding.color;
      if (grouped && color && color.scale) { delete color.scale.domain; }  // the groups' labels
      if (coloured && !grouped && color && color.field === "run") {
        node.encoding.color = Object.assign({}, color, { field: "cby", scale: {} });
      }
      var x = node.encoding && node.encoding.x;
      if (x && x.field === "step" && st.x !== "step") { node.encoding.x = xEncoding(x, st.x); }
      (node.layer || []).forEach(walk);
      if (node.spec) { walk(node.spec); }
    })(out);
    if (grouped && out.layer) {
      var line = out.layer.filter(function (l) {
        return l.mark && (l.mark === "line" || l.mark.type === "line");
      })[0];
      if (line) {
        var band = JSON.parse(JSON.stringify(line));
        band.name = "band";
        band.mark = { type: "area", opacity: 0.18, interpolate: "linear" };
        band.encoding.y = Object.assign({}, band.encoding.y, { field: "lo", title: null });
        band.encoding.y2 = { field: "hi" };
        if (band.encoding.color) {  // the legend's symbols as the lines', not the faint band's
          var legend = Object.assign({}, band.encoding.color.legend || {}, { symbolOpacity: 1 });
          band.encoding.color = Object.assign({}, band.encoding.color, { legend: legend });
        }
        band.encoding.tooltip = [{ field: "run", type: "nominal", title: "group" },
          { field: "n", type: "quantitative", title: "runs" },
          { field: "lo", type: "quantitative", title: "min", format: ".5g" },
          { field: "hi", type: "quantitative", title: "max", format: ".5g" }];
        out.layer.unshift(band);
      }
    }
    var hover = st.x === "step" && out.layer && hoverLayer(out.layer, st);
    if (hover) { out.layer.push(hover); }
    if (st.x === "step" && out.layer) {  // zoom (wheel) and pan (drag) along x
      var first = out.layer.filter(function (l) {
        return l.mark && (l.mark === "line" || l.mark.type === "line");
      })[0];
      if (first) {
        first.params = (first.params || []).concat([{ name: "zoom", select: { type: "interval", encodings: ["x"] },
          bind: "scales" }]);
      }
    }
    if ((st.smooth > 0 || st.mean >= 2) && out.layer) {
      // the smoothed line over the raw one, drawn faint underneath
      var layers = [];
      out.layer.forEach(function (l) {
        var line = l.mark && (l.mark === "line" || l.mark.type === "line") && l.encoding && l.encoding.y;
        if (!line) { layers.push(l); return; }
        var raw = JSON.parse(JSON.stringify(l));
        raw.name = "raw";
        raw.mark = Object.assign({}, typeof l.mark === "string" ? { type: "line" } : l.mark, { opacity: 0.25 });
        layers.push(raw);
        var smooth = JSON.parse(JSON.stringify(l));
        delete smooth.params;  // the zoom is the raw layer's: one signal of a name
        smooth.name = "smoothed";
        smooth.encoding.y = Object.assign({}, smooth.encoding.y, { field: "smoothed" });
        layers.push(smooth);
      });
      out.layer = layers;
    }
    return out;
  }

  // hovering a chart: a rule at the nearest step and a tooltip with every series' value
  // there (the rows pivoted by the legend's field: one column per run, or per metric)
  function hoverLayer(layers, st) {
    var line = layers.filter(function (l) {
      return l.mark && (l.mark === "line" || l.mark.type === "line") && l.encoding && l.encoding.color;
    })[0];
    if (!line) { return null; }
    var by = line.encoding.color.field === "cby" ? "run" : line.encoding.color.field;
    var field = st.smooth > 0 || st.mean >= 2 ? "smoothed" : "value";
    return {
      name: "hover",
      transform: [{ pivot: by, value: field, groupby: ["step"] }],
      mark: { type: "rule", color: "#888", strokeWidth: 1, tooltip: { content: "data" } },
      encoding: {
        x: { field: "step", type: "quantitative" },
        opacity: { condition: { param: "hover", value: 0.6, empty: false }, value: 0 }
      },
      params: [{ name: "hover", select: { type: "point", fields: ["step"], nearest: true,
        on: "pointerover", clear: "pointerout" } }]
    };
  }

  // the x encoding of the chosen axis, keeping the step axis' label settings
  function xEncoding(x, which) {
    var out = Object.assign({}, x);
    if (which === "rel") {
      Object.assign(out, { field: "rel", type: "quantitative", title: "seconds since the run's first point" });
    } else if (which === "wall") {
      Object.assign(out, { field: "wall", type: "temporal", title: "time (UTC)", scale: { type: "utc" } });
    } else {
      Object.assign(out, { field: "xv", type: "quantitative", title: which.slice(2) });
    }
    return out;
  }

  // the rows Vega may draw under the state, and how many were dropped; with groupOf
  // (run key -> its group's label) and a group chosen, one row per group and step; with
  // colourOf (run key -> the label of its value of st.color) each row's "cby"
  function values(rows, st, groupOf, colourOf) {
    st = st || state();
    if (st.x !== "step") {  // a point without the chosen x (no time, no value of that metric)
      var field = st.x === "rel" ? "rel" : st.x === "wall" ? "wall" : "xv";
      rows = rows.filter(function (r) { return r[field] !== null && r[field] !== undefined && isFinite(r[field]); });
    }
    if (st.group && groupOf) {
      rows = group(rows, groupOf);
    } else if (st.color && colourOf) {
      rows = rows.map(function (r) { return Object.assign({}, r, { cby: colourOf(r.key.slice(0, r.key.indexOf("|"))) }); });
    }
    var kept = st.y !== "log" ? rows : rows.filter(function (r) { return r.value === null || r.value > 0; });
    if (st.y === "log") {  // a band down to 0 or below has no place on a log axis
      kept = kept.map(function (r) { return r.lo !== undefined && !(r.lo > 0) ? Object.assign({}, r, { lo: null, hi: null }) : r; });
    }
    if (st.smooth > 0) { kept = ema(kept, st.smooth); } else if (st.mean >= 2) { kept = runningMean(kept, st.mean); }
    return { rows: kept, dropped: rows.length - kept.length, domain: st.robust ? robustDomain(kept) : null };
  }

  // the 1st to 99th percentile of the values: the y domain that outliers do not squash;
  // null when it would be empty (fewer than two distinct values)
  function robustDomain(rows) {
    var xs = rows.map(function (r) { return r.value; }).filter(function (x) { return x !== null && isFinite(x); });
    xs.sort(function (a, b) { return a - b; });
    if (xs.length < 2) { return null; }
    var lo = xs[Math.floor(0.01 * (xs.length - 1))], hi = xs[Math.ceil(0.99 * (xs.length - 1))];
    return lo < hi ? [lo, hi] : null;
  }

  // the spec with its y domain clipped to the robust range (the marks clipped to it)
  function withDomain(s, domain) {
    if (!domain) { return s; }
    var out = JSON.parse(JSON.stringify(s));
    (out.layer || [out]).forEach(function (l) {
      var y = l.encoding && l.encoding.y;
      if (!y) { return; }
      y.scale = Object.assign({}, y.scale || {}, { domain: domain, nice: false });
      l.mark = Object.assign({}, typeof l.mark === "string" ? { type: l.mark } : l.mark, { clip: true });
    });
    return out;
  }

  // the runs' rows (key "project/run|metric") folded into one series per group and
  // metric: at each step the mean of the group's runs that have a value there, with the
  // min and max (the band) and how many runs it is over (n)
  function group(rows, groupOf) {
    var buckets = {}, order = [];
    rows.forEach(function (r) {
      var bar = r.key.indexOf("|");
      var g = groupOf(r.key.slice(0, bar));
      var k = g + "|" + r.metric;
      var id = k + "|" + r.step;
      var b = buckets[id];
      if (!b) {
        b = buckets[id] = { run: g, metric: r.metric, key: k, step: r.step, sum: 0, n: 0, lo: null, hi: null,
          xs: { rel: [], wall: [], xv: [] } };
        order.push(b);
      }
      ["rel", "wall", "xv"].forEach(function (f) { if (r[f] !== undefined && r[f] !== null) { b.xs[f].push(r[f]); } });
      if (r.value === null || !isFinite(r.value)) { return; }
      b.sum += r.value;
      b.n += 1;
      b.lo = b.lo === null ? r.value : Math.min(b.lo, r.value);
      b.hi = b.hi === null ? r.value : Math.max(b.hi, r.value);
    });
    order.sort(function (a, b) { return a.key < b.key ? -1 : a.key > b.key ? 1 : a.step - b.step; });
    return order.map(function (b) {
      var o = { run: b.run, metric: b.metric, key: b.key, step: b.step, value: b.n ? b.sum / b.n : null,
        lo: b.lo, hi: b.hi, n: b.n, lone: false };
      ["rel", "wall", "xv"].forEach(function (f) {  // the group's x at that step: the mean of its runs'
        var xs = b.xs[f];
        if (xs.length) { o[f] = xs.reduce(function (a, c) { return a + c; }, 0) / xs.length; }
      });
      return o;
    });
  }

  // an exponential moving average of each series (rows come grouped by key, in step
  // order) into a "smoothed" field; a missing value stays missing and does not reset it
  function ema(rows, w) {
    var last = {};
    return rows.map(function (r) {
      var o = Object.assign({}, r);
      if (r.value === null || !isFinite(r.value)) { o.smoothed = null; return o; }
      var prev = last[r.key];
      o.smoothed = prev === undefined ? r.value : w * prev + (1 - w) * r.value;
      last[r.key] = o.smoothed;
      return o;
    });
  }

  // a trailing running mean over the last k values of each series (rows grouped by key,
  // in step order) into "smoothed"; a missing value is skipped, not counted as zero
  function runningMean(rows, k) {
    var windows = {};
    return rows.map(function (r) {
      var o = Object.assign({}, r);
      if (r.value === null || !isFinite(r.value)) { o.smoothed = null; return o; }
      var w = windows[r.key] || (windows[r.key] = { xs: [], sum: 0 });
      w.xs.push(r.value);
      w.sum += r.value;
      if (w.xs.length > k) { w.sum -= w.xs.shift(); }
      o.smoothed = w.sum / w.xs.length;
      return o;
    });
  }

  // the controls: a y scale select, smoothing, the robust range, and (groupKeys: the
  // config paths the page can group its runs by) a group-by select; onChange(state)
  // redraws the page's charts
  function controls(onChange, groupKeys, xMetrics, combinable, colourKeys) {
    var st = state();
    var box = document.createElement("div");
    box.className = "hl-chart-controls";
    var label = document.createElement("label");
    label.textContent = "y scale ";
    var select = document.createElement("select");
    select.className = "hl-chart-y";
    ["linear", "log"].forEach(function (t) {
      var o = document.createElement("option");
      o.value = t;
      o.textContent = t;
      select.appendChild(o);
    });
    select.value = st.y;
    label.appendChild(select);
    box.appendChild(label);
    var slabel = document.createElement("label");
    slabel.textContent = " smoothing ";
    var smooth = document.createElement("input");
    smooth.className = "hl-chart-smooth";
    smooth.type = "number";
    smooth.min = "0";
    smooth.max = "0.99";
    smooth.step = "0.05";
    smooth.value = String(st.smooth);
    slabel.appendChild(smooth);
    var mlabel = document.createElement("label");
    mlabel.textContent = " running mean of ";
    var mean = document.createElement("input");
    mean.className = "hl-chart-mean";
    mean.type = "number";
    mean.min = "0";
    mean.step = "1";
    mean.value = String(st.mean);
    mlabel.appendChild(mean);
    mlabel.appendChild(document.createTextNode(" points"));
    var clabel = null, combine = null;
    if (combinable) {
      clabel = document.createElement("label");
      combine = document.createElement("input");
      combine.className = "hl-chart-combine";
      combine.type = "checkbox";
      combine.checked = st.combine;
      clabel.appendChild(combine);
      clabel.appendChild(document.createTextNode(" combine the losses in one chart"));
    }
    box.appendChild(slabel);
    box.appendChild(mlabel);
    if (clabel) { box.appendChild(document.createTextNode(" ")); box.appendChild(clabel); }
    var rlabel = document.createElement("label");
    var robust = document.createElement("input");
    robust.className = "hl-chart-robust";
    robust.type = "checkbox";
    robust.checked = st.robust;
    rlabel.appendChild(robust);
    rlabel.appendChild(document.createTextNode(" robust y range (1st-99th percentile)"));
    box.appendChild(document.createTextNode(" "));
    box.appendChild(rlabel);
    var xlabel = document.createElement("label");
    xlabel.textContent = " x axis ";
    var xselect = document.createElement("select");
    xselect.className = "hl-chart-x";
    [["step", "step"], ["rel", "time since start"], ["wall", "wall time (UTC)"]]
      .concat((xMetrics || []).map(function (m) { return ["m:" + m, m]; }))
      .forEach(function (pair) {
        var o = document.createElement("option");
        o.value = pair[0];
        o.textContent = pair[1];
        xselect.appendChild(o);
      });
    xselect.value = st.x;
    if (xselect.value !== st.x) { xselect.value = "step"; }
    xlabel.appendChild(xselect);
    box.appendChild(xlabel);
    xselect.addEventListener("change", function () { changed(); });
    var gselect = null;
    if (groupKeys && groupKeys.length) {
      var glabel = document.createElement("label");
      glabel.textContent = " group by ";
      gselect = document.createElement("select");
      gselect.className = "hl-chart-group";
      [""].concat(groupKeys).forEach(function (k) {
        var o = document.createElement("option");
        o.value = k;
        o.textContent = groupText(k);
        gselect.appendChild(o);
      });
      gselect.value = groupKeys.indexOf(st.group) >= 0 ? st.group : "";
      glabel.appendChild(gselect);
      box.appendChild(glabel);
      gselect.addEventListener("change", function () { changed(); });
    }
    var cselect = null;
    if (colourKeys && colourKeys.length) {
      var colabel = document.createElement("label");
      colabel.textContent = " colour by ";
      cselect = document.createElement("select");
      cselect.className = "hl-chart-colour";
      [""].concat(colourKeys).forEach(function (k) {
        var o = document.createElement("option");
        o.value = k;
        o.textContent = k || "(each run)";
        cselect.appendChild(o);
      });
      cselect.value = colourKeys.indexOf(st.color) >= 0 ? st.color : "";
      colabel.appendChild(cselect);
      box.appendChild(colabel);
      cselect.addEventListener("change", function () { changed(); });
    }
    var note = document.createElement("span");
    note.className = "hl-chart-note";
    box.appendChild(note);
    function changed() {
      var w = parseFloat(smooth.value), k = parseInt(mean.value, 10);
      if (this === mean && k >= 2) { smooth.value = "0"; w = 0; }  // one smoothing at a time
      if (this === smooth && w > 0) { mean.value = "0"; k = 0; }
      var s = { y: select.value === "log" ? "log" : "linear", smooth: isFinite(w) && w > 0 && w < 1 ? w : 0,
        mean: isFinite(k) && k >= 2 ? k : 0, combine: combine ? combine.checked : false,
        robust: robust.checked, group: gselect ? gselect.value : "", color: cselect ? cselect.value : "",
        x: xParam(xselect.value) };
      setState(s);
      onChange(s);
    }
    select.addEventListener("change", changed);
    smooth.addEventListener("change", changed);
    mean.addEventListener("change", changed);
    if (combine) { combine.addEventListener("change", changed); }
    robust.addEventListener("change", changed);
    return box;
  }

  // a group-by option's text: a config path, a tag ("tag:NAME": the runs with it and the
  // others) or the runs' whole tag sets ("tags:")
  function groupText(k) {
    if (!k) { return "(each run)"; }
    if (k === "tags:") { return "tags (each set of tags)"; }
    return k.indexOf("tag:") === 0 ? "tag " + k.slice(4) : k;
  }

  // a run's group under a tag option (see groupText), from the run's tags
  function tagGroup(k, tags) {
    tags = (tags || []).slice().sort();
    if (k === "tags:") { return tags.length ? "tags=" + tags.join(",") : "untagged"; }
    var t = k.slice(4);
    return tags.indexOf(t) >= 0 ? t : "not " + t;
  }

  // the note under the controls: how many non-positive points a log scale left out
  function note(box, dropped) {
    var el = box && box.querySelector(".hl-chart-note");
    if (!el) { return; }
    el.textContent = dropped ? " " + dropped + " non-positive value" + (dropped === 1 ? "" : "s") +
      " not drawn on the log scale" : "";
  }

  // legends that name runs by what differs between them ("lr=0.05 seed=1"): the config
  // paths that differ, each by its last part where that is unique; a run's own label
  // where nothing differs or two runs would read the same
  function diffLabels(configs, differ, labels) {
    var tails = differ.map(function (k) { return k.split(".").pop(); });
    var names = differ.map(function (k, i) {
      return tails.filter(function (t) { return t === tails[i]; }).length > 1 ? k : tails[i];
    });
    var out = configs.map(function (c, i) {
      if (!differ.length) { return labels[i]; }
      return differ.slice(0, 4).map(function (k, j) { return names[j] + "=" + (k in c ? c[k] : "–"); }).join(" ");
    });
    return out.map(function (l, i) {
      return out.indexOf(l) !== out.lastIndexOf(l) ? l + " (" + labels[i] + ")" : l;
    });
  }

  window.HPCLabCharts = { diffLabels: diffLabels, tagGroup: tagGroup, state: state, spec: spec, values: values, group: group,
    withDomain: withDomain, controls: controls, note: note };
})();
