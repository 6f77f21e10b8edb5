#!/usr/bin/env python
"""Latency of hpclab watch: from a flushed metric point to a row a new query sees.

    python scripts/bench_watch.py [--repeats 10] [--interval 0.5]

Runs the watcher natively (inotify) and by polling, each on a fresh store in /tmp, logs
and flushes one point at a time, and times until ``connect()`` returns it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time


def measure(polling: bool, repeats: int, interval: float) -> list[float]:
    import hpclab
    from hpclab.catalog.connect import connect
    from hpclab.catalog.watch import Watcher
    from hpclab.store import Store

    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        stop = threading.Event()
        passes: list[object] = []
        watcher = Watcher(store, polling=polling, interval=interval, on_pass=passes.append)
        thread = threading.Thread(target=watcher.run, args=(stop,))
        thread.start()
        while not passes:
            time.sleep(0.01)
        run = hpclab.Run(
            project="bench", store=store, settings={"snapshot_code": False, "snapshot_env": False}
        )
        out = []
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
            out.append(time.perf_counter() - t0)
        run.finish()
        stop.set()
        thread.join()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5, help="polling interval (s)")
    args = parser.parse_args()
    for polling in (False, True):
        lat = measure(polling, args.repeats, args.interval)
        mode = f"polling every {args.interval} s" if polling else "native (inotify)"
        print(
            f"{mode:<24} flushed point -> queryable: median {statistics.median(lat):.2f} s, "
            f"max {max(lat):.2f} s over {len(lat)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
