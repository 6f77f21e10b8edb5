/* hpclab: a run's series file, data/series/<project>/<run>.parquet (written by
 * hpclab/site/series.py: one row per kept point, metric, step, value (null: NaN or inf,
 * drawn as a gap), the point's seconds since the run's first point (time), the series'
 * point count n, and the document's version, last_step, rate, last_time and start_time,
 * the same in every row; a run without points has one row, its metric null), read with
 * the vendored hyparquet (assets/vendor/hyparquet.js) into the document the charts take:
 *   {version, step, rate, last_time, start_time,
 *    metrics: {name: {n, step: [...], value: [...], time: [...]}}}
 * Loaded before hpclab.js, whose loadSeries calls window.hpclabSeries.load.
 */
(function () {
  "use strict";

  var COLUMNS = ["metric", "step", "value", "n", "version", "last_step", "rate", "last_time", "time", "start_time"];

  function num(v) {  // INT64 columns come as BigInt
    return v === null || v === undefined ? null : Number(v);
  }

  function toDoc(rows) {
    var byName = {};
    rows.forEach(function (row) {
      if (row[0] === null || row[0] === undefined) { return; }  // a run without points
      var m = byName[row[0]] || (byName[row[0]] = { n: num(row[3]), points: [] });
      m.points.push([num(row[1]), row[2] === null || row[2] === undefined ? null : Number(row[2]),
        row[8] === null || row[8] === undefined ? null : Number(row[8])]);
    });
    var metrics = {};
    Object.keys(byName).sort().forEach(function (name) {
      var m = byName[name], pts = m.points;
      // the bulk writer does not promise an order: by step, as the charts draw them
      pts.sort(function (a, b) { return a[0] - b[0]; });
      metrics[name] = {
        n: m.n,
        step: pts.map(function (p) { return p[0]; }),
        value: pts.map(function (p) { return p[1]; }),
        time: pts.map(function (p) { return p[2]; })  // seconds since start_time
      };
    });
    var first = rows[0] || [];
    return {
      version: first[4] === undefined ? null : first[4],
      step: num(first[5]),
      rate: num(first[6]),
      last_time: num(first[7]),
      start_time: first[9] === undefined ? null : num(first[9]),
      metrics: metrics
    };
  }

  function load(href) {
    return fetch(href, { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error(href + ": HTTP " + r.status); }
      return r.arrayBuffer();
    }).then(function (buf) {
      var rows = [];
      return window.hyparquet.parquetRead({
        file: buf, columns: COLUMNS, onComplete: function (r) { rows = r; }
      }).then(function () { return toDoc(rows); });
    });
  }

  window.hpclabSeries = { load: load, toDoc: toDoc };
})();
