/* hpclab's parallel coordinates and scatter on the Runs page (issue 17): one vertical axis
 * per numeric column the table shows (config values and summary metrics), one line per
 * run the filter keeps, coloured by a chosen column; dragging along an axis brushes a
 * range, and the table keeps only the runs inside every brushed range (a click on an axis
 * clears its brush). Below, a scatter of any two of those columns. A positive column spanning
 * a decade or more (learning rates) is drawn on a log axis; the hyperparameters come first,
 * the metrics last (on the right, where the eye ends). Drawn in SVG by hand
 * (no Vega: the lines follow the table's filter on every keystroke), only while the panel
 * is open, at most MAX_LINES runs (the first in the table's order; said under the plot).
 *
 * runs-table.js calls attach(host, api) once its columns are known:
 *   api.columns()  the numeric columns shown: [{id, label, value(i)}]
 *   api.base()     the row indices the text/expression filter keeps (before brushing)
 *   api.setBrush(test or null)  filter the table further (test(i): inside every brush)
 * and the returned object's update() after each filter, sort or column change.
 * Labels reach the DOM through textContent: they are user text.
 *
 * The view is kept in the URL so a filtered view can be shared: each brush as
 * ?pcb=COLUMN@LO,HI (repeated), the colour and the scatter's axes as ?pcc=, ?pcx=, ?pcy=
 * (column ids: c:optim.lr, m:val/loss). A page opened with brushes opens the panel and
 * filters the table by them; a brush on a column the table does not show is left out.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var MAX_LINES = 2000, MAX_AXES = 12, H = 260, PAD = 28, SC = 300;
  var RPAD = 64;  // room right of the last axis for its tick labels
  var SL = 60, SR = 16, ST = 24, SB = 40;  // the scatter's margins: its ticks and titles

  function el(tag, attrs, parent) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function finite(v) { return typeof v === "number" && isFinite(v); }

  function extent(col, rows) {
    var lo = Infinity, hi = -Infinity;
    rows.forEach(function (i) {
      var v = col.value(i);
      if (finite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    });
    if (lo === Infinity) { return null; }
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    var out = [lo, hi];
    out.log = lo > 0 && hi / lo >= 10;  // learning rates, weight decays: a log axis
    return out;
  }

  function unit(e, v) {  // a value's place on its axis, 0 (low) to 1 (high)
    return e.log ? Math.log(v / e[0]) / Math.log(e[1] / e[0]) : (v - e[0]) / (e[1] - e[0]);
  }

  function fromUnit(e, t) {
    return e.log ? e[0] * Math.pow(e[1] / e[0], t) : e[0] + t * (e[1] - e[0]);
  }

  function ramp(t) {  // blue (low) to orange (high), readable on light and dark themes
    var a = [26, 115, 232], b = [232, 113, 10];
    var c = a.map(function (x, k) { return Math.round(x + (b[k] - x) * t); });
    return "rgb(" + c.join(",") + ")";
  }

  function short(v) {
    return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : String(+v.toPrecision(4));
  }

  // text cut (with an ellipsis) to at most max pixels wide, the whole of it as a tooltip:
  // the labels of neighbouring axes never run into each other
  function fit(t, text, max) {
    t.textContent = text;
    if (!(max > 0) || t.getComputedTextLength() <= max) { return t; }
    var lo = 0, hi = text.length;
    while (lo < hi) {  // the longest prefix that fits with its ellipsis
      var mid = Math.ceil((lo + hi) / 2);
      t.textContent = text.slice(0, mid) + "…";
      if (t.getComputedTextLength() <= max) { lo = mid; } else { hi = mid - 1; }
    }
    t.textContent = lo ? text.slice(0, lo) + "…" : "";
    el("title", {}, t).textContent = text;
    return t;
  }

  // about n round values spanning e (powers of ten, and 2 and 5 times them, on a log
  // axis; 1, 2 or 5 times a power of ten apart on a linear one)
  function ticks(e, n) {
    var out = [];
    if (e.log) {
      var mult = Math.log(e[1] / e[0]) / Math.LN10 < 2 ? [1, 2, 5] : [1];
      for (var p = Math.floor(Math.log(e[0]) / Math.LN10); p <= Math.ceil(Math.log(e[1]) / Math.LN10); p++) {
        mult.forEach(function (m) {
          var v = m * Math.pow(10, p);
          if (v >= e[0] && v <= e[1]) { out.push(+v.toPrecision(6)); }
        });
      }
      return out;
    }
    var raw = (e[1] - e[0]) / n, mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; }).filter(function (st) { return st >= raw; })[0];
    for (var v = Math.ceil(e[0] / step) * step; v <= e[1] + step * 1e-9; v += step) { out.push(+v.toPrecision(12)); }
    return out;
  }

  // of the labels, those that would overlap one kept before them are left out (Vega's
  // "greedy" label overlap), so no two tick labels of an axis ever run into each other
  function dropOverlaps(texts) {
    var kept = [];
    texts.forEach(function (t) {
      var b = t.getBBox();
      var hit = kept.some(function (k) {
        return b.x < k.x + k.width + 2 && k.x < b.x + b.width + 2 && b.y < k.y + k.height && k.y < b.y + b.height;
      });
      if (hit) { t.parentNode.removeChild(t); } else { kept.push(b); }
    });
  }

  function attach(host, api) {
    var panel = document.createElement("details");
    panel.className = "hl-parcoords";
    var summary = document.createElement("summary");
    summary.textContent = "Parallel coordinates and scatter";
    panel.appendChild(summary);
    var controls = document.createElement("div");
    controls.className = "hl-pc-controls";
    function select(cls, label) {
      var l = document.createElement("label");
      l.textContent = label + " ";
      var s = document.createElement("select");
      s.className = cls;
      l.appendChild(s);
      controls.appendChild(l);
      controls.appendChild(document.createTextNode(" "));
      s.addEventListener("change", function () { writeUrl(); draw(); });
      return s;
    }
    var colour = select("hl-pc-colour", "colour by"), sx = select("hl-pc-x", "scatter x"), sy = select("hl-pc-y", "y");
    var clear = document.createElement("button");
    clear.type = "button";
    clear.className = "hl-pc-clear";
    clear.textContent = "clear brushes";
    controls.appendChild(clear);
    panel.appendChild(controls);
    var plot = el("svg", { "class": "hl-pc", height: String(H), width: "100%" });
    panel.appendChild(plot);
    var noteEl = document.createElement("p");
    noteEl.className = "hl-note hl-pc-note";
    panel.appendChild(noteEl);
    var scatter = el("svg", { "class": "hl-pc-scatter", height: String(SC), width: "100%" });
    panel.appendChild(scatter);
    host.parentNode.insertBefore(panel, host);

    var brushes = {};  // column id -> [lo, hi] in the column's values
    var cols = [], byId = {};
    var wanted = readUrl(), restoring = true;

    // the URL's view: {brushes: {id: [lo, hi]}, colour, x, y} (ids checked on update)
    function readUrl() {
      var p = new URLSearchParams(location.search), out = { brushes: {} };
      p.getAll("pcb").forEach(function (b) {
        var at = b.lastIndexOf("@"), lh = at > 0 ? b.slice(at + 1).split(",") : [];
        var lo = parseFloat(lh[0]), hi = parseFloat(lh[1]);
        if (lh.length === 2 && isFinite(lo) && isFinite(hi)) { out.brushes[b.slice(0, at)] = [Math.min(lo, hi), Math.max(lo, hi)]; }
      });
      out.colour = p.get("pcc");
      out.x = p.get("pcx");
      out.y = p.get("pcy");
      return out;
    }

    function writeUrl() {
      var p = new URLSearchParams(location.search);
      ["pcb", "pcc", "pcx", "pcy"].forEach(function (k) { p["delete"](k); });
      Object.keys(brushes).forEach(function (id) { p.append("pcb", id + "@" + brushes[id][0] + "," + brushes[id][1]); });
      if (cols.length) {
        p.set("pcc", colour.value);
        p.set("pcx", sx.value);
        p.set("pcy", sy.value);
      }
      var qs = p.toString();
      try {
        history.replaceState(history.state, "", location.pathname + (qs ? "?" + qs : "") + location.hash);
      } catch (e) { /* a sandboxed page: the view is not kept */ }
    }

    function brushTest() {
      var ids = Object.keys(brushes).filter(function (id) { return byId[id]; });
      if (!ids.length) { return null; }
      return function (i) {
        return ids.every(function (id) {
          var v = byId[id].value(i), b = brushes[id];
          return finite(v) && v >= b[0] && v <= b[1];
        });
      };
    }

    function options(s, keep, want) {
      var was = s.value;
      if (want && cols.some(function (c) { return c.id === want; })) { was = want; }
      s.textContent = "";
      cols.forEach(function (c) {
        var o = document.createElement("option");
        o.value = c.id;
        o.textContent = c.label;
        s.appendChild(o);
      });
      s.value = cols.some(function (c) { return c.id === was; }) ? was : keep;
    }

    function update() {
      var given = api.columns();
      cols = given.filter(function (c) { return c.id.indexOf("m:") !== 0; })
        .concat(given.filter(function (c) { return c.id.indexOf("m:") === 0; })).slice(0, MAX_AXES);
      byId = {};
      cols.forEach(function (c) { byId[c.id] = c; });
      var first = restoring && cols.length > 0;
      if (first) {  // the URL's brushes on the columns shown
        restoring = false;
        Object.keys(wanted.brushes).forEach(function (id) { if (byId[id]) { brushes[id] = wanted.brushes[id]; } });
      }
      var dropped = Object.keys(brushes).filter(function (id) { return !byId[id]; });
      dropped.forEach(function (id) { delete brushes[id]; });
      var metric = cols.filter(function (c) { return c.id.indexOf("m:") === 0; }).pop();
      options(colour, metric ? metric.id : (cols[0] || {}).id, first && wanted.colour);
      options(sx, (cols[0] || {}).id, first && wanted.x);
      options(sy, (metric || cols[1] || cols[0] || {}).id, first && wanted.y);
      if (first && Object.keys(brushes).length) {
        panel.open = true;  // its toggle draws it
        api.setBrush(brushTest());  // the table filtered by them (calls update again)
        return;
      }
      if (dropped.length) { writeUrl(); api.setBrush(brushTest()); return; }
      if (panel.open) { draw(); }
    }

    function draw() {
      var rows = api.base(), inside = brushTest();
      plot.textContent = "";
      scatter.textContent = "";
      panel.dataset.axes = String(cols.length);
      if (cols.length < 2) {
        noteEl.textContent = "Show two or more numeric columns (Columns: config values, metrics) to draw them.";
        panel.dataset.lines = "0";
        return;
      }
      var w = plot.getBoundingClientRect().width || 900;
      var drawnRows = rows.slice(0, MAX_LINES);
      var slot = (w - PAD - RPAD) / (cols.length - 1);
      var xs = cols.map(function (_, k) { return PAD + k * slot; });
      var ext = cols.map(function (c) { return extent(c, rows); });
      function y(k, v) {
        var e = ext[k];
        return H - PAD - unit(e, v) * (H - 2 * PAD);
      }
      var cIdx = cols.map(function (c) { return c.id; }).indexOf(colour.value);
      var lines = el("g", { "class": "hl-pc-lines" }, plot);
      var n = 0, kept = 0;
      drawnRows.forEach(function (i) {
        var pts = [];
        for (var k = 0; k < cols.length; k++) {
          var v = cols[k].value(i);
          if (!finite(v) || !ext[k]) { pts = null; break; }
          pts.push(xs[k].toFixed(1) + "," + y(k, v).toFixed(1));
        }
        if (!pts) { return; }
        var ok = !inside || inside(i);
        var cv = cIdx >= 0 ? cols[cIdx].value(i) : null, e = cIdx >= 0 ? ext[cIdx] : null;
        var stroke = ok ? (finite(cv) && e ? ramp(unit(e, cv)) : "#888") : "#bbb";
        el("polyline", { points: pts.join(" "), fill: "none", stroke: stroke,
          "stroke-opacity": ok ? "0.7" : "0.15", "class": ok ? "hl-pc-in" : "hl-pc-out" }, lines);
        n += 1;
        if (ok) { kept += 1; }
      });
      cols.forEach(function (c, k) {
        var g = el("g", { "class": "hl-pc-axis", "data-col": c.id }, plot);
        el("line", { x1: xs[k], x2: xs[k], y1: PAD, y2: H - PAD, stroke: "currentColor", "stroke-opacity": "0.5" }, g);
        // the title centred on its axis (the first one's starting at the edge), each
        // within its share of the width
        var first = k === 0, half = Math.min(slot / 2 - 3, w - xs[k] - 2);
        var t = el("text", { x: first ? 2 : xs[k], y: PAD - 10, "text-anchor": first ? "start" : "middle",
          "font-size": "11", fill: "currentColor", "class": "hl-pc-title" }, g);
        fit(t, c.label, first ? xs[k] - 2 + slot / 2 - 3 : 2 * half);
        if (ext[k]) {
          [[ext[k][1], PAD + 4], [ext[k][0], H - PAD + 14]].forEach(function (p) {
            var tick = el("text", { x: xs[k] + 4, y: p[1], "font-size": "10", fill: "currentColor", "fill-opacity": "0.7",
              "class": "hl-pc-tick" }, g);
            fit(tick, short(p[0]) + (ext[k].log && p[1] > PAD + 4 ? " (log)" : ""),
              k === cols.length - 1 ? w - xs[k] - 6 : slot - 10);
          });
        }
        var b = brushes[c.id];
        if (b && ext[k]) {
          el("rect", { x: xs[k] - 7, width: 14, y: y(k, b[1]), height: Math.max(2, y(k, b[0]) - y(k, b[1])),
            fill: "#e8710a", "fill-opacity": "0.25", stroke: "#e8710a", "class": "hl-pc-brush" }, g);
          g.setAttribute("data-lo", String(b[0]));
          g.setAttribute("data-hi", String(b[1]));
        }
        var hit = el("rect", { x: xs[k] - 12, width: 24, y: PAD, height: H - 2 * PAD, fill: "transparent",
          "class": "hl-pc-hit", style: "cursor: ns-resize" }, g);
        if (ext[k]) { brushable(hit, k, c, y); }
      });
      panel.dataset.lines = String(n);
      panel.dataset.kept = String(kept);
      noteEl.textContent = (rows.length > MAX_LINES ? "The first " + MAX_LINES + " of " + rows.length +
        " runs, in the table's order. " : "") + "Drag along an axis to keep the runs in a range; a click clears it.";
      drawScatter(rows, inside);

      function brushable(hit, k, c) {
        hit.addEventListener("mousedown", function (ev) {
          ev.preventDefault();
          var top = plot.getBoundingClientRect().top, y0 = ev.clientY - top, y1 = y0;
          function value(py) {
            var t = (H - PAD - Math.min(H - PAD, Math.max(PAD, py))) / (H - 2 * PAD);
            return fromUnit(ext[k], t);
          }
          function move(e2) { y1 = e2.clientY - top; }
          function up() {
            document.removeEventListener("mousemove", move);
            document.removeEventListener("mouseup", up);
            if (Math.abs(y1 - y0) < 3) { delete brushes[c.id]; } else {
              var a = value(y0), b2 = value(y1);
              brushes[c.id] = [Math.min(a, b2), Math.max(a, b2)];
            }
            api.setBrush(brushTest());
            writeUrl();
            draw();
          }
          document.addEventListener("mousemove", move);
          document.addEventListener("mouseup", up);
        });
      }
    }

    function drawScatter(rows, inside) {
      var cx = byId[sx.value], cy = byId[sy.value];
      if (!cx || !cy) { scatter.dataset.points = "0"; return; }
      var w = scatter.getBoundingClientRect().width || 900;
      var pts = rows.slice(0, MAX_LINES).filter(function (i) { return finite(cx.value(i)) && finite(cy.value(i)); });
      var ex = extent(cx, pts), ey = extent(cy, pts);
      scatter.dataset.points = String(pts.length);
      if (!ex || !ey) { return; }
      var g = el("g", {}, scatter);
      function px(v) { return SL + unit(ex, v) * (w - SL - SR); }
      function py(v) { return SC - SB - unit(ey, v) * (SC - ST - SB); }
      var axes = el("g", { "class": "hl-pc-scatter-axes", "fill-opacity": "0.7" }, scatter);
      el("line", { x1: SL, x2: w - SR, y1: SC - SB, y2: SC - SB, stroke: "currentColor", "stroke-opacity": "0.4" }, axes);
      el("line", { x1: SL, x2: SL, y1: ST, y2: SC - SB, stroke: "currentColor", "stroke-opacity": "0.4" }, axes);
      var xt = el("g", { "class": "hl-pc-xticks" }, axes), yt = el("g", { "class": "hl-pc-yticks" }, axes);
      dropOverlaps(ticks(ex, Math.max(2, Math.floor((w - SL - SR) / 80))).map(function (v) {
        el("line", { x1: px(v), x2: px(v), y1: SC - SB, y2: SC - SB + 4, stroke: "currentColor" }, xt);
        var t = el("text", { x: px(v), y: SC - SB + 15, "text-anchor": "middle", "font-size": "10", fill: "currentColor" }, xt);
        return fit(t, short(v), 0);
      }));
      dropOverlaps(ticks(ey, 5).map(function (v) {
        el("line", { x1: SL - 4, x2: SL, y1: py(v), y2: py(v), stroke: "currentColor" }, yt);
        var t = el("text", { x: SL - 6, y: py(v) + 3, "text-anchor": "end", "font-size": "10", fill: "currentColor" }, yt);
        return fit(t, short(v), SL - 8);
      }));
      pts.forEach(function (i) {
        var ok = !inside || inside(i);
        var c = el("circle", {
          cx: px(cx.value(i)).toFixed(1),
          cy: py(cy.value(i)).toFixed(1),
          r: "3.5", fill: ok ? "#1a73e8" : "#bbb", "fill-opacity": ok ? "0.8" : "0.3"
        }, g);
        var title = el("title", {}, c);
        title.textContent = cx.label + " " + short(cx.value(i)) + ", " + cy.label + " " + short(cy.value(i));
      });
      var lx = el("text", { x: SL + (w - SL - SR) / 2, y: SC - 6, "text-anchor": "middle", "font-size": "11",
        fill: "currentColor", "class": "hl-pc-xtitle" }, scatter);
      fit(lx, cx.label + " (" + short(ex[0]) + " to " + short(ex[1]) + (ex.log ? ", log" : "") + ")", w - SL - SR);
      var ly = el("text", { x: 4, y: 14, "font-size": "11", fill: "currentColor", "class": "hl-pc-ytitle" }, scatter);
      fit(ly, cy.label + " (" + short(ey[0]) + " to " + short(ey[1]) + (ey.log ? ", log" : "") + ")", w - 8);
    }

    panel.addEventListener("toggle", function () { if (panel.open) { draw(); } });
    clear.addEventListener("click", function () { brushes = {}; api.setBrush(null); writeUrl(); draw(); });
    window.addEventListener("resize", function () { if (panel.open) { draw(); } });
    return { update: update, draw: draw };
  }

  window.hpclabParcoords = Object.freeze({ attach: attach });
})();
