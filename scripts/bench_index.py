#!/usr/bin/env python
"""Catalog benchmark: cold index, one changed run re-indexed, and a typical query.

    python scripts/make_bench_store.py /tmp/bench --runs 1000 --steps 10000 --metrics 4
    python scripts/bench_index.py /tmp/bench

Cold: delete <store>/.catalog and index everything. Incremental: append 100 steps to one
run (the real MetricWriter, resuming the run) and index again. Query: the best run per
sweep by the last value of the first metric, on a fresh connection.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--project", default="bench")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from hpclab.catalog.connect import connect
    from hpclab.catalog.indexer import Indexer
    from hpclab.store import Store
    from hpclab.tracking.metrics import MetricWriter, read_commit

    store = Store(args.store)
    shutil.rmtree(store.catalog_dir, ignore_errors=True)
    t0 = time.perf_counter()
    with Indexer(store) as ix:
        report = ix.index()
        cold = time.perf_counter() - t0
        con = connect(store)
        rows = con.execute("SELECT count(*) FROM metrics").fetchone()[0]
        print(f"cold index: {report.indexed} runs, {rows:,} metric rows in {cold:.1f} s")

        run_id = store.run_ids(args.project)[0]
        paths = store.run_paths(args.project, run_id)
        names = sorted(read_commit(paths.metrics_zarr)["series"])
        times = []
        for _ in range(args.repeats):
            writer = MetricWriter(paths.metrics_zarr)
            start = writer.step + 1
            for s in range(start, start + 100):
                writer.log({n: 0.5 for n in names}, step=s)
            writer.flush()
            t = time.perf_counter()
            r = ix.index()
            times.append(time.perf_counter() - t)
            assert r.indexed == 1, r
        print(
            f"one run changed (+100 steps x {len(names)} metrics), re-indexed: "
            f"median {statistics.median(times) * 1000:.0f} ms over {args.repeats} "
            f"(whole pass over {report.scanned} runs, publish included)"
        )

    metric = names[0]
    query = f"""
        SELECT r.sweep_id, s.run_id, s.last FROM metric_summary s
        JOIN runs r USING (project, run_id) WHERE s.name = '{metric}'
        QUALIFY row_number() OVER (PARTITION BY r.sweep_id ORDER BY s.last) = 1
    """
    qtimes = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        result = connect(store).execute(query).fetchall()
        qtimes.append(time.perf_counter() - t)
    print(
        f"best run per sweep by last {metric}: {len(result)} rows, median "
        f"{statistics.median(qtimes) * 1000:.0f} ms (connect included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
