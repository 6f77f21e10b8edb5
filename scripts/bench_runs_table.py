#!/usr/bin/env python
"""The Runs table at 10,000 runs (issue 17): the size of its data files and how fast its
columns, sort, filter and export are in headless Chromium.

    python scripts/bench_runs_table.py /tmp/rt            # 10,000 runs
    python scripts/bench_runs_table.py /tmp/rt --runs 30000 --repeat 3

A small store (``make_bench_store.py``: 24 runs of two sweeps, one key metric) is indexed
and its site built under DIR; its runs are then repeated under new ids to ``--runs``
(each copy keeps its config, with ``optim.lr`` drawn log-uniform per run in ``--random``
of them, the worst case for the columnar file: one distinct number a run) and the Runs
list's two data files rewritten from them (``runs_list_doc``, ``runs_config_doc``).
Printed: each file's size, the time until the table is drawn (from the start of the
navigation), a config expression filter, a sort by a config column and the CSV export of
the view (each timed in the page), the median of ``--repeat`` page loads.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from hpclab.catalog.indexer import index_store
from hpclab.site.build import build
from hpclab.site.chromium import Chromium
from hpclab.site.data import SiteData, load
from hpclab.site.layout import SiteLayout
from hpclab.site.pages import list_metrics, runs_list_doc
from hpclab.site.runs_table import runs_config_doc
from hpclab.site.series import write_json
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

REPO = Path(__file__).resolve().parents[1]
PROBE = """
new MutationObserver(function (_, obs) {
  const b = document.querySelector('.hl-runs-scroll');
  if (b && b.dataset.ready === '1') { window.__hlReadyAt = performance.now(); obs.disconnect(); }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-ready']});
"""
ACTIONS = """(() => {
  const input = document.querySelector('.hl-filter-input');
  let t = performance.now();
  input.value = 'optim.lr < 0.001 and val/loss < 1'; input.dispatchEvent(new Event('input'));
  const filter = performance.now() - t;
  const count = document.querySelector('.hl-filter-count').textContent;
  input.value = ''; input.dispatchEvent(new Event('input'));
  const th = Array.from(document.querySelectorAll('table.hl-runs th'))
    .find(h => h.textContent === 'optim.lr');
  t = performance.now();
  th.click();
  const sort = performance.now() - t;
  const b = document.querySelector('button.hl-export[data-format=csv]');
  t = performance.now();
  b.click();
  const csv = performance.now() - t;
  const cols = document.querySelectorAll('table.hl-runs thead th').length - 1;
  return {filter_ms: filter, sort_ms: sort, csv_ms: csv, csv_kb: b._hlBlob.size / 1024,
          columns: cols, count: count};
})()"""


def grown(data: SiteData, n: int, random_share: float, seed: int) -> SiteData:
    """``data``'s runs repeated under new ids to ``n`` runs."""
    rng = random.Random(seed)
    runs, features, summary = [], {}, {}
    for i in range(n):
        r = data.runs[i % len(data.runs)]
        rid = f"{r['run_id']}-{i:06d}"
        key, old = (r["project"], rid), (r["project"], r["run_id"])
        runs.append({**r, "run_id": rid})
        f = dict(data.features.get(old, {}))
        if "optim.lr" in f and rng.random() < random_share:
            f["optim.lr"] = json.dumps(round(10 ** rng.uniform(-5, -1), 8))
        features[key] = f
        summary[key] = data.summary.get(old, {})
    return replace(data, runs=runs, features=features, summary=summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a new directory for the store and site")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--random", type=float, default=0.5, help="share of random-search lrs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    store_root, site = args.dir / "store", args.dir / "site"
    make = [sys.executable, str(REPO / "scripts" / "make_bench_store.py"), str(store_root)]
    subprocess.run([*make, "--runs", "24", "--steps", "100", "--sweeps", "2"], check=True)
    store = Store(store_root)
    # one key metric: the others are the file's summary-metric columns
    key = {"key_metrics": [{"name": "val/loss", "direction": "minimize"}]}
    store.project_yaml("bench").write_text(json.dumps(key))
    index_store(store)
    layout = SiteLayout(site)
    build(store, layout.dir)
    data = grown(load(store), args.runs, args.random, seed=0)
    t = time.perf_counter()
    config = runs_config_doc(data, list_metrics(data))
    made_s = time.perf_counter() - t
    write_json(layout.runs_list_json, runs_list_doc(data))
    write_json(layout.runs_config_json, config)
    sizes = {
        p.name: round(p.stat().st_size / 1024)
        for p in (layout.runs_list_json, layout.runs_config_json)
    }
    as_values = sum("values" in c for c in config["config"])
    print(f"{args.runs:,} runs: files (KB) {json.dumps(sizes)}, made in {made_s:.2f} s")
    print(
        f"  {len(config['config'])} config columns ({as_values} as values),"
        f" {len(config['metrics'])} metric columns, omitted: {config['omitted']}"
    )
    server = make_server(layout.html, port=0)
    serve_in_thread(server)
    results = []
    try:
        with Chromium(timeout=120) as browser:
            for _ in range(args.repeat):
                page = browser.new_page()
                page.send("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
                page.goto(url_of(server) + "runs/index.html", timeout=120)
                page.wait_for("window.__hlReadyAt", timeout=120)
                row = {"ready_ms": page.evaluate("window.__hlReadyAt")}
                row.update(page.evaluate(ACTIONS))
                results.append(row)
                page.close()
    finally:
        server.shutdown()
    median = {
        k: round(statistics.median(r[k] for r in results), 1)
        for k in results[0]
        if isinstance(results[0][k], int | float)
    }
    print("Runs page (median of", args.repeat, "loads):", json.dumps(median), results[0]["count"])


if __name__ == "__main__":
    main()
