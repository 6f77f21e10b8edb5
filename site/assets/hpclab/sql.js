// The SQL page (issue 17): DuckDB-WASM, vendored into assets/vendor/duckdb/ at build time,
// over the catalog's tables published as Parquet (data/catalog/*.parquet). Offline: the
// worker and its .wasm come from this site, the tables are fetched from it and registered
// as in-memory files (no HTTP range reads, no extension downloads). sql.html?q=<query>
// (or sql.html#q=) runs the query on load; the box keeps the URL's #q= current. Results are escaped (html``).
// The metric points (metrics: every point the catalog holds, data/catalog/metrics/*.parquet
// listed in data/catalog/metrics.json, hpclab/site/sql_tables.py) are fetched only when a
// query names the table, once, and go in as Arrow tables (core DuckDB-WASM, no extension).
(function () {
  "use strict";
  var script = document.currentScript;
  var assets = new URL("../", script.src).href;
  var root = new URL("../../", script.src).href;
  var TABLES = ["runs", "metric_summary"];
  var MAX_ROWS = 1000;
  var MAX_METRIC_BYTES = 512 * 1024 * 1024;  // more points than a browser tab should hold
  var METRIC_COLUMNS = ["project", "run_id", "name", "step", "value", "wall_time"];
  var conn = null, metrics = null;

  function el(id) { return document.getElementById(id); }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src; s.onload = resolve; s.onerror = function () { reject(new Error("cannot load " + src)); };
      document.head.appendChild(s);
    });
  }

  function connect() {
    if (conn) { return conn; }
    conn = loadScript(assets + "vendor/duckdb/Arrow.es2015.min.js").then(function () {
      return import(assets + "vendor/duckdb/duckdb-browser.mjs");
    }).then(function (duckdb) {
      var worker = new Worker(assets + "vendor/duckdb/duckdb-browser-eh.worker.js");
      var db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), worker);
      return db.instantiate(assets + "vendor/duckdb/duckdb-eh.wasm").then(function () { return db.connect(); }).then(function (c) {
        // Parquet is an extension DuckDB-WASM would download: the tables are read with the
        // site's hyparquet instead and inserted as Arrow tables (core DuckDB-WASM).
        return Promise.all(TABLES.map(function (t) {
          return fetch(root + "data/catalog/" + t + ".parquet").then(function (r) {
            if (!r.ok) { throw new Error("data/catalog/" + t + ".parquet: HTTP " + r.status); }
            return r.arrayBuffer();
          }).then(function (buf) {
            var rows = [];
            return window.hyparquet.parquetRead({ file: buf, rowFormat: "object", onComplete: function (r) { rows = r; } })
              .then(function () { return { name: t, rows: rows, meta: window.hyparquet.parquetMetadata(buf) }; });
          });
        })).then(function (loaded) {
          return loaded.reduce(function (p, t) {
            return p.then(function () {
              return createTable(c, t.name, t.meta, t.rows);
            });
          }, c.query("SET autoinstall_known_extensions = false")).then(function () { return c; });
        });
      });
    });
    return conn;
  }

  var SQL_TYPES = { INT64: "BIGINT", INT32: "INTEGER", DOUBLE: "DOUBLE", FLOAT: "FLOAT", BOOLEAN: "BOOLEAN" };

  // The table's columns from the Parquet schema (flat columns and lists of a leaf type).
  function columnsOf(meta) {
    var schema = meta.schema, cols = [];
    for (var i = 1; i < schema.length; i++) {
      var el = schema[i];
      if (el.num_children) {  // LIST -> repeated group "list" -> "element"
        cols.push({ name: el.name, type: (SQL_TYPES[schema[i + 2].type] || "VARCHAR") + "[]" });
        i += 2;
      } else {
        cols.push({ name: el.name, type: SQL_TYPES[el.type] || "VARCHAR" });
      }
    }
    return cols;
  }

  function literal(v) {  // a value as an SQL literal (strings quoted, quotes doubled)
    if (v === null || v === undefined) { return "NULL"; }
    if (typeof v === "bigint") { return v.toString(); }
    if (typeof v === "number") { return isFinite(v) ? String(v) : "'" + String(v).replace("Infinity", "inf") + "'::DOUBLE"; }
    if (typeof v === "boolean") { return v ? "TRUE" : "FALSE"; }
    if (Array.isArray(v)) { return "[" + v.map(literal).join(", ") + "]"; }
    return "'" + String(v).replace(/'/g, "''") + "'";
  }

  function ident(name) { return '"' + name.replace(/"/g, '""') + '"'; }

  // Parquet is an extension DuckDB-WASM would download: the rows hyparquet read go in as
  // typed INSERTs, 500 rows a statement.
  function createTable(c, name, meta, rows) {
    var cols = columnsOf(meta);
    var p = c.query("CREATE TABLE " + ident(name) + " (" + cols.map(function (col) { return ident(col.name) + " " + col.type; }).join(", ") + ")");
    for (var i = 0; i < rows.length; i += 500) {
      (function (chunk) {
        p = p.then(function () {
          return c.query("INSERT INTO " + ident(name) + " VALUES " + chunk.map(function (r) {
            return "(" + cols.map(function (col) { return literal(r[col.name]); }).join(", ") + ")";
          }).join(", "));
        });
      })(rows.slice(i, i + 500));
    }
    return p;
  }

  // the metrics table, loaded on first use: each file decoded by hyparquet, its columns
  // typed (VARCHAR, BIGINT, DOUBLE; missing values NULL) and inserted as an Arrow table
  function loadMetrics(c) {
    if (metrics) { return metrics; }
    var A = window.Arrow;
    metrics = fetch(root + "data/catalog/metrics.json", { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error("data/catalog/metrics.json: HTTP " + r.status + " (a site built before the metrics table)"); }
      return r.json();
    }).then(function (index) {
      if (index.bytes > MAX_METRIC_BYTES) {
        throw new Error("metrics: " + Math.round(index.bytes / 1048576) + " MB of points, more than this page loads (" +
          MAX_METRIC_BYTES / 1048576 + " MB): query them with hpclab sql");
      }
      el("hl-sql-status").textContent = "Loading " + index.rows + " metric points…";
      var made = c.query("CREATE TABLE metrics (project VARCHAR, run_id VARCHAR, name VARCHAR, step BIGINT, " +
        "value DOUBLE, wall_time DOUBLE)");
      var bufs = Promise.all(index.files.map(function (f) {
        return fetch(root + "data/catalog/" + f.path).then(function (r) {
          if (!r.ok) { throw new Error("data/catalog/" + f.path + ": HTTP " + r.status + " (the site changed: reload)"); }
          return r.arrayBuffer();
        });
      }));
      return Promise.all([made, bufs]).then(function (done) {
        return done[1].reduce(function (p, buf) {
          return p.then(function () {
            var chunks = {};  // column name -> its chunks (one a row group), read column-wise
            return window.hyparquet.parquetRead({ file: buf, columns: METRIC_COLUMNS, onChunk: function (ch) {
              (chunks[ch.columnName] = chunks[ch.columnName] || []).push(ch);
            } }).then(function () {
              var cols = {}, n = 0;
              METRIC_COLUMNS.forEach(function (name, j) {
                var xs = [];
                (chunks[name] || []).sort(function (a, b) { return a.rowStart - b.rowStart; }).forEach(function (ch) {
                  for (var i = 0; i < ch.columnData.length; i++) { xs.push(ch.columnData[i]); }
                });
                n = xs.length;
                cols[name] = A.makeVector(arrowData(A, xs, j < 3 ? "utf8" : j === 3 ? "int64" : "float64"));
              });
              return n ? c.insertArrowTable(new A.Table(cols), { name: "metrics", create: false }) : null;
            });
          });
        }, Promise.resolve());
      });
    });
    metrics.catch(function () { metrics = null; });  // a failed load is tried again next query
    return metrics;
  }

  // a column's values as Arrow data, built from typed arrays: Arrow's builders
  // (vectorFromArray) compile a function from a string, which the site's CSP forbids;
  // a text is encoded once however many rows repeat it (run ids, metric names)
  function arrowData(A, xs, kind) {
    var n = xs.length, bitmap = new Uint8Array((n + 7) >> 3), nulls = 0, i, v;
    var values = kind === "int64" ? new BigInt64Array(n) : kind === "float64" ? new Float64Array(n) : null;
    var texts = kind === "utf8" ? new Array(n) : null, enc = new TextEncoder(), seen = new Map(), none = new Uint8Array(0);
    for (i = 0; i < n; i++) {
      v = xs[i];
      if (v === null || v === undefined) { nulls++; if (texts) { texts[i] = none; } continue; }
      bitmap[i >> 3] |= 1 << (i & 7);
      if (texts) {
        var b = seen.get(v);
        if (!b) { b = enc.encode(String(v)); seen.set(v, b); }
        texts[i] = b;
      } else { values[i] = kind === "int64" ? BigInt(v) : v; }
    }
    var base = { length: n, nullCount: nulls, nullBitmap: nulls ? bitmap : null };
    if (!texts) {
      return A.makeData(Object.assign(base, { type: kind === "int64" ? new A.Int64() : new A.Float64(), data: values }));
    }
    var offsets = new Int32Array(n + 1), size = 0;
    for (i = 0; i < n; i++) { size += texts[i].length; offsets[i + 1] = size; }
    var bytes = new Uint8Array(size);
    for (i = 0; i < n; i++) { bytes.set(texts[i], offsets[i]); }
    return A.makeData(Object.assign(base, { type: new A.Utf8(), valueOffsets: offsets, data: bytes }));
  }

  function show(v) {
    if (v === null || v === undefined) { return ""; }
    if (typeof v === "bigint") { return v.toString(); }
    if (v instanceof Date) { return v.toISOString(); }
    if (typeof v === "object" && typeof v.toArray === "function") { return JSON.stringify(Array.from(v.toArray(), function (x) { return typeof x === "bigint" ? x.toString() : x; })); }
    if (typeof v === "object") { return JSON.stringify(v, function (k, x) { return typeof x === "bigint" ? x.toString() : x; }); }
    return String(v);
  }

  function render(table) {
    var H = window.hpclab;
    var cols = table.schema.fields.map(function (f) { return f.name; });
    var n = table.numRows;
    var rows = [];
    for (var i = 0; i < Math.min(n, MAX_ROWS); i++) {
      var row = table.get(i);
      rows.push(H.html`<tr>${H.joinHtml(cols.map(function (c) { return H.html`<td>${show(row[c])}</td>`; }))}</tr>`);
    }
    H.setHTML(el("hl-sql-result"), H.html`<table class="hl-sql-table"><thead><tr>${H.joinHtml(cols.map(function (c) { return H.html`<th>${c}</th>`; }))}</tr></thead><tbody>${H.joinHtml(rows)}</tbody></table>`);
    chart(table, cols);
    el("hl-sql-status").textContent = n + (n === 1 ? " row" : " rows") + (n > MAX_ROWS ? " (first " + MAX_ROWS + " shown)" : "");
  }

  function plain(v) { return typeof v === "bigint" ? Number(v) : (v instanceof Date ? v.toISOString() : v); }

  // A chart when the result has columns named x and y (and, optionally, series: a line
  // each); drawn with the site's Vega bundle, loaded on this page.
  function chart(table, cols) {
    var box = el("hl-sql-chart");
    box.textContent = ""; delete box.dataset.rendered;
    if (cols.indexOf("x") < 0 || cols.indexOf("y") < 0 || !window.vegaEmbed) { return; }
    var values = [];
    for (var i = 0; i < Math.min(table.numRows, 5000); i++) {
      var r = table.get(i);
      values.push({ x: plain(r.x), y: plain(r.y), series: cols.indexOf("series") >= 0 ? show(r.series) : "" });
    }
    var numeric = values.every(function (d) { return typeof d.x === "number"; });
    var spec = {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      width: "container", height: 260, data: { values: values },
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "x", type: numeric ? "quantitative" : "ordinal" },
        y: { field: "y", type: "quantitative" },
        color: cols.indexOf("series") >= 0 ? { field: "series", type: "nominal" } : { value: "#3f51b5" }
      }
    };
    var o = { actions: false, renderer: "svg", ast: true };
    var interp = (window.vega && window.vega.expressionInterpreter) || window.vegaExpressionInterpreter;
    if (interp) { o.expr = interp; }
    window.vegaEmbed(box, spec, o).then(function () { box.dataset.rendered = "1"; });
  }

  function run(q) {
    var err = el("hl-sql-error");
    err.hidden = true; err.textContent = "";
    el("hl-sql-status").textContent = "Running…";
    var url = new URL(window.location.href);
    url.search = "";
    url.hash = "q=" + encodeURIComponent(q);
    window.history.replaceState(null, "", url.href);
    return connect().then(function (c) {
      // the metric points only for a query that names them (an identifier, not in a string)
      var names = /(^|[^\w."'])"?metrics"?($|[^\w])/i.test(q.replace(/'(?:[^']|'')*'/g, "''"));
      return (names ? loadMetrics(c) : Promise.resolve()).then(function () { return c.query(q); });
    }).then(render).catch(function (e) {
      el("hl-sql-status").textContent = "";
      el("hl-sql-result").textContent = "";
      err.textContent = String((e && e.message) || e).split("\n")[0];
      err.hidden = false;
    });
  }

  // ?q= is also the theme's search query (it would open the search box over the page):
  // taken here, before the theme's script runs, and kept in the URL's #q= instead.
  var initial = (function () {
    var url = new URL(window.location.href);
    var q = url.searchParams.get("q");
    if (q === null && url.hash.indexOf("#q=") === 0) { q = decodeURIComponent(url.hash.slice(3)); }
    if (url.searchParams.has("q")) {
      url.searchParams.delete("q");
      if (q) { url.hash = "q=" + encodeURIComponent(q); }
      window.history.replaceState(null, "", url.href);
    }
    return q;
  })();

  function init() {
    var box = el("hl-sql-q");
    if (!box) { return; }
    var q = initial;
    el("hl-sql-run").addEventListener("click", function () { run(box.value); });
    box.addEventListener("keydown", function (ev) { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(box.value); } });
    if (q) { box.value = q; run(q); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
