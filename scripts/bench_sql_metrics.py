#!/usr/bin/env python
"""The SQL tab's metrics table (issue 17): what publishing every point costs and how long
the page takes to load it and answer a query in headless Chromium.

    python scripts/bench_sql_metrics.py /tmp/sqlm                  # 300 runs x 1,000 steps x 4
    python scripts/bench_sql_metrics.py /tmp/sqlm --runs 1000 --steps 2000

A store from ``make_bench_store.py`` is indexed and its site built under DIR (DuckDB-WASM
must be vendored: scripts/vendor_duckdb.sh). Printed: the points, the store's Zarr bytes,
the published Parquet bytes (and bytes a point), the seconds ``write_metrics`` takes from
scratch and with nothing new, and in the page the seconds from navigation to the answer
of ``SELECT name, count(*), avg(value) FROM metrics GROUP BY name`` (fetch, decode,
insert, query), then a second query on the loaded table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from hpclab.catalog.indexer import index_store
from hpclab.site.build import build
from hpclab.site.chromium import Chromium
from hpclab.site.layout import SiteLayout
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.site.sql_tables import vendored, write_metrics
from hpclab.store import Store

QUERY = "SELECT name, count(*) AS n, avg(value) AS mean FROM metrics GROUP BY name ORDER BY name"
AGAIN = "SELECT count(DISTINCT run_id) AS runs FROM metrics WHERE value < 0.5"
DONE = (
    "document.getElementById('hl-sql-status').textContent.match(/\\d+ rows?/)"
    " || !document.getElementById('hl-sql-error').hidden"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--metrics", type=int, default=4)
    a = ap.parse_args()
    if vendored() is None:
        sys.exit("DuckDB-WASM is not vendored: run scripts/vendor_duckdb.sh")
    shutil.rmtree(a.dir, ignore_errors=True)
    root = a.dir / "store"
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("make_bench_store.py")), str(root),
         "--runs", str(a.runs), "--steps", str(a.steps), "--metrics", str(a.metrics),
         "--sweeps", "3", "--jobs", "2"],
        check=True, capture_output=True,
    )  # fmt: skip
    store = Store(root)
    index_store(store)
    layout = SiteLayout(a.dir / "site")
    build(store, layout.dir)
    zarr = sum(
        f.stat().st_size for f in root.rglob("*") if f.is_file() and "metrics.zarr" in str(f)
    )
    scratch = a.dir / "scratch"
    t = time.perf_counter()
    write_metrics(store, scratch)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    write_metrics(store, scratch)
    warm = time.perf_counter() - t
    files = list((layout.data / "catalog" / "metrics").glob("*.parquet"))
    size = sum(f.stat().st_size for f in files)
    import json

    rows = json.loads((layout.data / "catalog" / "metrics.json").read_text())["rows"]
    print(
        f"points {rows:,}  zarr {zarr / 1e6:.1f} MB  parquet {size / 1e6:.1f} MB"
        f" in {len(files)} files ({size / rows:.1f} B/point, {size / zarr:.2f}x zarr)"
    )
    print(f"write_metrics: {cold:.2f} s from scratch, {warm * 1000:.1f} ms with nothing new")
    server = make_server(layout.html, port=0)
    serve_in_thread(server)
    try:
        with Chromium() as b:
            page = b.new_page()
            t = time.perf_counter()
            page.goto(url_of(server) + "sql.html?q=" + quote(QUERY, safe=""))
            page.wait_for(DONE, timeout=600)
            first = time.perf_counter() - t
            err = page.evaluate("document.getElementById('hl-sql-error').textContent")
            if err:
                sys.exit(f"query failed: {err}")
            page.evaluate(
                "(() => { document.getElementById('hl-sql-status').textContent = '';"
                f" document.getElementById('hl-sql-q').value = {json.dumps(AGAIN)};"
                " document.getElementById('hl-sql-run').click(); })()"
            )
            t = time.perf_counter()
            page.wait_for(DONE, timeout=600)
            second = time.perf_counter() - t
            print(
                f"page: first metrics query {first:.2f} s (load included),"
                f" next {second * 1000:.0f} ms"
            )
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
