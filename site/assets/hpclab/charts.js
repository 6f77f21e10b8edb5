/* hpclab chart controls (issue 17): the y scale (linear or log) and smoothing (EMA, the
   raw curve faint underneath) of every metric chart on the run and compare pages, kept in
   the URL (?...&y=log&smooth=0.6) so a view can be shared and
   is restored on load. hpclab.js calls HPCLabCharts.spec / .values in embed() and
   .controls() above a page's charts; a log scale drops non-positive values (with a note
   under the controls), so Vega is never handed a log domain with 0 or less in it. */
(function () {
  "use strict";

  function state() {
    var p = new URLSearchParams(location.search);
    var w = parseFloat(p.get("smooth") || "0");
    return { y: p.get("y") === "log" ? "log" : "linear", smooth: isFinite(w) && w > 0 && w < 1 ? w : 0,
      robust: p.get("robust") === "1" };
  }

  function setState(s) {
    var p = new URLSearchParams(location.search);
    if (s.y === "log") { p.set("y", "log"); } else { p["delete"]("y"); }
    if (s.smooth > 0) { p.set("smooth", String(s.smooth)); } else { p["delete"]("smooth"); }
    if (s.robust) { p.set("robust", "1"); } else { p["delete"]("robust"); }
    var q = p.toString();
    history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
  }

  // a copy of the spec with the y scale of every "value" encoding set to the state's type
  function spec(s, st) {
    st = st || state();
    var out = JSON.parse(JSON.stringify(s));
    (function walk(node) {
      if (!node || typeof node !== "object") { return; }
      var y = node.encoding && node.encoding.y;
      if (y && y.field === "value") {
        y.scale = Object.assign({}, y.scale || {}, { type: st.y });
        if (st.y === "log") { delete y.scale.zero; }
      }
      (node.layer || []).forEach(walk);
      if (node.spec) { walk(node.spec); }
    })(out);
    if (st.smooth > 0 && out.layer) {
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
        smooth.name = "smoothed";
        smooth.encoding.y = Object.assign({}, smooth.encoding.y, { field: "smoothed" });
        layers.push(smooth);
      });
      out.layer = layers;
    }
    return out;
  }

  // the rows Vega may draw under the state, and how many were dropped
  function values(rows, st) {
    st = st || state();
    var kept = st.y !== "log" ? rows : rows.filter(function (r) { return r.value === null || r.value > 0; });
    if (st.smooth > 0) { kept = ema(kept, st.smooth); }
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

  // the controls: a y scale select; onChange(state) redraws the page's charts
  function controls(onChange) {
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
    box.appendChild(slabel);
    var rlabel = document.createElement("label");
    var robust = document.createElement("input");
    robust.className = "hl-chart-robust";
    robust.type = "checkbox";
    robust.checked = st.robust;
    rlabel.appendChild(robust);
    rlabel.appendChild(document.createTextNode(" robust y range (1st-99th percentile)"));
    box.appendChild(document.createTextNode(" "));
    box.appendChild(rlabel);
    var note = document.createElement("span");
    note.className = "hl-chart-note";
    box.appendChild(note);
    function changed() {
      var w = parseFloat(smooth.value);
      var s = { y: select.value === "log" ? "log" : "linear", smooth: isFinite(w) && w > 0 && w < 1 ? w : 0,
        robust: robust.checked };
      setState(s);
      onChange(s);
    }
    select.addEventListener("change", changed);
    smooth.addEventListener("change", changed);
    robust.addEventListener("change", changed);
    return box;
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

  window.HPCLabCharts = { diffLabels: diffLabels, state: state, spec: spec, values: values, withDomain: withDomain, controls: controls, note: note };
})();
