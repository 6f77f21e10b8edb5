#!/usr/bin/env python
"""Latency of hpclab watch: from a flushed metric point to a row a new query sees.

    python scripts/bench_watch.py [--repeats 10] [--interval 0.5] [--store DIR]

Runs the watcher natively (inotify) and by polling, each on a fresh store in /tmp (or on
``--store``, an indexed store such as a 10,000-run one from make_bench_store.py: the
latency must not grow with it; one run named ``bench-watch`` is added to it), logs and
flushes one point at a time, and times until ``connect()`` returns it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import threading
import time


def measure(
    polling: bool, repeats: int, interval: float, root: str | None = None
) -> tuple[list[float], list[float]]:
    """(flush -> the watcher's publish, flush -> a new connection's query returns it), in
    seconds, per point. The second includes the polling query's own time (connect and
    scan: ~50 ms at 10,000 runs)."""
    import hpclab
    from hpclab.catalog.connect import connect
    from hpclab.catalog.watch import Watcher
    from hpclab.store import Store

    with tempfile.TemporaryDirectory() as d:
        store = Store(root or d)
        stop = threading.Event()
        passes: list[object] = []
        published: list[float] = []

        def on_pass(report: object) -> None:
            passes.append(report)
            if getattr(report, "published", False):
                published.append(time.perf_counter())

        watcher = Watcher(store, polling=polling, interval=interval, on_pass=on_pass)
        thread = threading.Thread(target=watcher.run, args=(stop,))
        thread.start()
        while not passes:
            time.sleep(0.01)
        run = hpclab.Run(
            project="bench",
            name="bench-watch",
            store=store,
            settings={"snapshot_code": False, "snapshot_env": False},
        )
        deadline = time.monotonic() + 120  # the new run indexed, its knowledge layer too
        while time.monotonic() < deadline and (
            watcher.indexer.knowledge_waiting
            or not connect(store)
            .execute("SELECT 1 FROM runs WHERE run_id = ?", [run.id])
            .fetchone()
        ):
            time.sleep(0.05)
        time.sleep(2 * interval)
        to_publish, to_query = [], []
        for step in range(repeats):
            run.log({"loss": 1.0}, step=step)
            run.flush()
            t0 = time.perf_counter()
            while (
                connect(store)
                .execute("SELECT count(*) FROM metrics WHERE run_id = ?", [run.id])
                .fetchone()[0]
                <= step
            ):
                time.sleep(0.005)
            to_query.append(time.perf_counter() - t0)
            # the pass that published it reports once it is over, after its scheduler
            # sync (a query sees the point as soon as its metrics file is replaced)
            while not any(t > t0 for t in published) and time.perf_counter() - t0 < 60:
                time.sleep(0.005)
            to_publish.append(min((t for t in published if t > t0), default=math.inf) - t0)
            time.sleep(0.3)  # points a few hundred ms apart, as a training loop flushes
        run.finish()
        stop.set()
        thread.join()
    return to_publish, to_query


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5, help="polling interval (s)")
    parser.add_argument("--store", default=None, help="an existing store to watch")
    args = parser.parse_args()
    if args.store:
        from hpclab.store import Store

        print(f"store {args.store}: {sum(1 for _ in Store(args.store).iter_runs())} runs")
    for polling in (False, True):
        pub, query = measure(polling, args.repeats, args.interval, args.store)
        mode = f"polling every {args.interval} s" if polling else "native (inotify)"
        print(
            f"{mode:<24} flushed point -> published: median {statistics.median(pub) * 1000:.0f}"
            f" ms, max {max(pub) * 1000:.0f} ms; -> a query returns it: median "
            f"{statistics.median(query) * 1000:.0f} ms, max {max(query) * 1000:.0f} ms "
            f"(over {len(pub)} points)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
