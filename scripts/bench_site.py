#!/usr/bin/env python
"""Benchmark of the lab website: build time for a large store, and the latency of a live
update (a run's flush -> the new point in the Training chart of a real browser).

    python scripts/bench_site.py /tmp/bench-site --runs 1000 --steps 1000
    python scripts/bench_site.py /tmp/bench            # an existing store: reused as is

The store is made by ``scripts/make_bench_store.py`` when the directory does not exist,
then indexed. ``hpclab site build`` is timed cold (a fresh site directory) and again
(pages and data rewritten over the previous build). The live part needs Chromium: a run
in project ``live`` logs from this process, ``hpclab watch --site``'s watcher runs in a
thread (native mode), the site is served on 127.0.0.1 and the Training page is open in
headless Chromium; for each of ``--updates`` flushes the time until the chart shows the
flushed step is measured (the page polls ``data/live.json`` every second). The first two
updates wait out the watcher's start (a full pass, then an inotify watch per run
directory) and are reported apart.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=10)
    args = parser.parse_args()

    from hpclab.catalog.indexer import index_store
    from hpclab.site.build import build
    from hpclab.store import Store

    if not args.store.exists():
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(HERE / "make_bench_store.py"),
                str(args.store),
                "--runs",
                str(args.runs),
                "--steps",
                str(args.steps),
                "--metrics",
                "4",
            ],
            check=True,
        )
        print(f"store made in {time.perf_counter() - t:.1f} s")
    store = Store(args.store)
    t = time.perf_counter()
    report = index_store(store)
    print(f"indexed {report.indexed} runs in {time.perf_counter() - t:.1f} s")

    out = Path(tempfile.mkdtemp(prefix="hpclab-bench-site-"))
    try:
        for label in ("cold", "again"):
            r = build(store, out)
            print(
                f"site build ({label}): {r.runs} runs, {r.pages} pages in {r.seconds:.1f} s "
                f"(pages + MkDocs {r.mkdocs_seconds:.1f} s, data files {r.data_seconds:.1f} s)"
            )
        size = sum(p.stat().st_size for p in (out / "html").rglob("*") if p.is_file())
        print(f"site size: {size / 1e6:.0f} MB")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    live_latency(store, args.updates)


def live_latency(store, updates: int) -> None:  # type: ignore[no-untyped-def]
    import hpclab
    from hpclab.catalog.watch import Watcher
    from hpclab.site.build import build
    from hpclab.site.chromium import Chromium, find_chromium
    from hpclab.site.live import LiveSite
    from hpclab.site.serve import make_server, serve_in_thread, url_of

    if find_chromium() is None:
        print("live update: skipped (no Chromium)")
        return
    run = hpclab.init("live", {"train": {"steps": 10_000}}, store=store.root, flush_interval=60)
    step = 0
    for _ in range(50):
        run.log({"train/loss": 1.0 / (step + 1)}, step=step)
        step += 1
    run.flush()
    from hpclab.catalog.indexer import index_store

    index_store(store)
    build(store)
    stop = threading.Event()
    watcher = Watcher(store, polling=False, site_hook=LiveSite(store, min_rebuild=3600))
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    server = make_server(store.site_dir / "html", port=0)
    serve_in_thread(server)
    latencies: list[float] = []
    startup: list[float] = []
    try:
        with Chromium() as browser:
            page = browser.new_page()
            page.goto(url_of(server) + "training.html")
            sel = f".hl-live-run[data-run='live/{run.id}'] [data-last-step]"
            page.wait_for(f'document.querySelector("{sel}") !== null', timeout=60)
            # the first two updates wait out the watcher's start (its first pass, then an
            # inotify watch on each run directory): reported apart from the steady state
            for i in range(updates + 2):
                run.log({"train/loss": 1.0 / (step + 1)}, step=step)
                run.flush()
                flushed = time.perf_counter()
                page.wait_for(
                    f'+document.querySelector("{sel}").dataset.lastStep >= {step}',
                    timeout=120,
                    interval=0.02,
                )
                (latencies if i >= 2 else startup).append(time.perf_counter() - flushed)
                step += 1
    finally:
        run.finish()
        stop.set()
        thread.join(60)
        server.shutdown()
    print(
        f"live update, flush -> point in the browser's chart ({len(latencies)} updates, "
        f"{len(list(store.iter_runs()))} runs in the store): median "
        f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s; the first two "
        f"after the watcher started: {', '.join(f'{x:.1f}' for x in startup)} s"
    )


if __name__ == "__main__":
    main()
