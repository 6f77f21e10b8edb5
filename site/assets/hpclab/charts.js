/* hpclab chart controls (issue 17): the y scale of every metric chart on the run and
   compare pages, linear or log, kept in the URL (?...&y=log) so a view can be shared and
   is restored on load. hpclab.js calls HPCLabCharts.spec / .values in embed() and
   .controls() above a page's charts; a log scale drops non-positive values (with a note
   under the controls), so Vega is never handed a log domain with 0 or less in it. */
(function () {
  "use strict";

  function state() {
    var p = new URLSearchParams(location.search);
    return { y: p.get("y") === "log" ? "log" : "linear" };
  }

  function setState(s) {
    var p = new URLSearchParams(location.search);
    if (s.y === "log") { p.set("y", "log"); } else { p["delete"]("y"); }
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
    return out;
  }

  // the rows Vega may draw under the state, and how many were dropped
  function values(rows, st) {
    st = st || state();
    if (st.y !== "log") { return { rows: rows, dropped: 0 }; }
    var kept = rows.filter(function (r) { return r.value === null || r.value > 0; });
    return { rows: kept, dropped: rows.length - kept.length };
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
    var note = document.createElement("span");
    note.className = "hl-chart-note";
    box.appendChild(note);
    select.addEventListener("change", function () {
      var s = { y: select.value === "log" ? "log" : "linear" };
      setState(s);
      onChange(s);
    });
    return box;
  }

  // the note under the controls: how many non-positive points a log scale left out
  function note(box, dropped) {
    var el = box && box.querySelector(".hl-chart-note");
    if (!el) { return; }
    el.textContent = dropped ? " " + dropped + " non-positive value" + (dropped === 1 ? "" : "s") +
      " not drawn on the log scale" : "";
  }

  window.HPCLabCharts = { state: state, spec: spec, values: values, controls: controls, note: note };
})();
