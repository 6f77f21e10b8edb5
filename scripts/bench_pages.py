#!/usr/bin/env python
"""How fast each tab of a built site is usable in headless Chromium (issue 16: every page
interactive in 1 s at 10,000 runs).

    python scripts/bench_pages.py /tmp/site/html            # a built site's html/
    python scripts/bench_pages.py /tmp/site/html --repeat 3

The site is served on 127.0.0.1 (``hpclab site serve``'s server). Each page is opened in a
fresh tab, ``--repeat`` times; per page: the HTML's size, the time to DOMContentLoaded,
and the time until the page's script says it is ready (``body[data-hl-ready]``, set once
its rows and charts are drawn: the Runs list's rows come from ``data/runs-list.json``),
both from the start of the navigation (Navigation Timing, ``performance.now()`` in the
page), and the elements in its DOM. On the Runs page, the time for a filter keystroke, a
sort over every run and a scroll to the middle (each timed in the page); on the Graph
page, the time to open a closed group until its runs are drawn. The median of
the repeats is printed, one line per page.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from hpclab.site.chromium import Chromium
from hpclab.site.serve import make_server, serve_in_thread, url_of

PAGES = [
    "index.html",
    "runs/index.html",
    "graph.html",
    "board.html",
    "training.html",
    "reports/index.html",
    "hypotheses.html",
]
# Recorded from the start of each document: when the page's script marks it ready.
PROBE = """
new MutationObserver(function (_, obs) {
  if (document.body && document.body.dataset.hlReady === '1') {
    window.__hlReadyAt = performance.now(); obs.disconnect();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-hl-ready']});
"""
TIMINGS = """(() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {dcl: n.domContentLoadedEventEnd, ready: window.__hlReadyAt || null,
          nodes: document.getElementsByTagName('*').length};
})()"""
RUNS_ACTIONS = """(() => {
  const input = document.querySelector('.hl-filter-input');
  let t = performance.now();
  input.value = 'completed'; input.dispatchEvent(new Event('input'));
  const filter = performance.now() - t;
  input.value = ''; input.dispatchEvent(new Event('input'));
  const th = Array.from(document.querySelectorAll('table.hl-runs th'))
    .find(h => h.dataset.sort === 'num');
  t = performance.now();
  if (th) th.click();
  const sort = performance.now() - t;
  const box = document.querySelector('.hl-runs-scroll');
  t = performance.now();
  if (box) { box.scrollTop = box.scrollHeight / 2; box.dispatchEvent(new Event('scroll')); }
  const frame = new Promise(res => requestAnimationFrame(() => res(performance.now() - t)));
  return frame.then(scroll => ({
          filter_ms: filter, sort_ms: sort, scroll_ms: scroll,
          rows_in_dom: document.querySelectorAll('table.hl-runs tbody tr').length,
          count: (document.querySelector('.hl-filter-count') || {}).textContent}));
})()"""
# The Graph: open the first closed group, until its SVG is drawn (fetched and rendered).
GRAPH_OPEN = """new Promise(res => {
  const d = document.querySelector('details.hl-graph-group:not([open])');
  if (!d) { res({}); return; }
  const t = performance.now();
  d.open = true;
  (function check() {
    if (d.dataset.drawn === '1') {
      const nodes = d.querySelectorAll('g.hl-node').length;
      res({open_group_ms: performance.now() - t, group_nodes: nodes});
    } else { requestAnimationFrame(check); }
  })();
})"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, help="the built site's html/ directory")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    server = make_server(args.html, port=0)
    serve_in_thread(server)
    base = url_of(server)
    results = {}
    with Chromium(timeout=args.timeout) as browser:
        for path in PAGES:
            if not (args.html / path).is_file():
                continue
            runs = []
            for _ in range(args.repeat):
                page = browser.new_page()
                page.send("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
                start = time.perf_counter()
                page.goto(base + path, timeout=args.timeout)
                page.wait_for("window.__hlReadyAt", timeout=args.timeout)
                row = page.evaluate(TIMINGS)
                row["wall_s"] = time.perf_counter() - start
                if path == "runs/index.html":
                    row.update(page.evaluate(RUNS_ACTIONS))
                if path == "graph.html":
                    row.update(page.evaluate(GRAPH_OPEN))
                runs.append(row)
                page.close()
            median = {
                k: statistics.median(r[k] for r in runs)
                for k in runs[0]
                if isinstance(runs[0][k], int | float)
            }
            median["html_kb"] = round((args.html / path).stat().st_size / 1024)
            results[path] = median
            shown = {k: round(v, 1) if isinstance(v, float) else v for k, v in median.items()}
            print(path, json.dumps(shown), flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
