#!/usr/bin/env python
"""Time reading every metric of a store: the zarr API vs the catalog's chunk reader.

    python scripts/make_bench_store.py /tmp/bench-store --runs 1000 --steps 10000
    python scripts/bench_read.py /tmp/bench-store
    python scripts/bench_read.py /tmp/bench-store --zarr-runs 100   # sample the slow path

Prints, for ``hpclab.tracking.metrics.read_metrics`` (zarr API, the reference) and
``hpclab.catalog.metrics_reader.read_run_metrics``, the total time over the runs and the
time per array, after checking on a sample that both return the same rows. Then the
incremental case the indexer meets while runs train: one run (copied to a temporary
directory, the store is not modified) gets 100 more steps from the real ``MetricWriter``
and only the new rows are read. The fast reader is timed three times: with the page cache
as found (possibly cold), then with the files cached but every array's metadata parsed
again (the figure compared with the zarr API, which also runs on cached files), then
with its metadata cache warm (a re-index).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hpclab.catalog import metrics_reader
from hpclab.catalog.metrics_reader import read_run_metrics
from hpclab.store import Store
from hpclab.tracking.metrics import MetricSeries, MetricWriter, read_commit, read_metrics


def as_rows(s: MetricSeries) -> np.ndarray:
    """The (n, 3) rows of a reference series, as the fast reader returns them."""
    return np.column_stack([s.step, s.value, s.wall_time])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="store root made by make_bench_store.py")
    parser.add_argument("--project", default=None, help="default: every project")
    parser.add_argument(
        "--zarr-runs", type=int, default=0, help="time the zarr API on this many runs (0: all)"
    )
    parser.add_argument("--check-runs", type=int, default=20, help="runs compared for equality")
    parser.add_argument("--repeats", type=int, default=20, help="repeats of the tail read")
    args = parser.parse_args(argv)

    store = Store(args.dir)
    runs = [paths.metrics_zarr for _, paths in store.iter_runs(args.project)]
    runs = [p for p in runs if (p / "zarr.json").exists()]
    if not runs:
        print(f"no runs with metrics in {store.root}", file=sys.stderr)
        return 1

    # -- equality on a sample --------------------------------------------------------------
    for path in runs[: args.check_runs]:
        fast = read_run_metrics(path)
        ref = read_metrics(path)
        assert fast.keys() == ref.keys(), path
        for name, series in ref.items():
            assert np.array_equal(fast[name], as_rows(series), equal_nan=True), (path, name)

    # -- everything, fast reader -------------------------------------------------------------
    def fast_pass(paths: list[Path]) -> tuple[float, int, int]:
        arrays = rows = 0
        t0 = time.perf_counter()
        for path in paths:
            for data in read_run_metrics(path).values():
                arrays += 1
                rows += len(data)
        return time.perf_counter() - t0, arrays, rows

    # this VM reclaims cold page cache (DAMON), so the first pass may read from disk
    found, arrays, rows = fast_pass(runs)
    metrics_reader._layouts.clear()
    first, _, _ = fast_pass(runs)  # files in the page cache, every zarr.json parsed again
    again, _, _ = fast_pass(runs)  # metadata cached too, as when re-indexing
    # -- zarr API (files in the page cache) ------------------------------------------------------
    zruns = runs[: args.zarr_runs] if args.zarr_runs else runs
    z_arrays = 0
    t0 = time.perf_counter()
    for path in zruns:
        z_arrays += len(read_metrics(path))
    zarr_s = time.perf_counter() - t0

    def per(seconds: float, n: int) -> str:
        return f"{seconds:6.2f} s, {seconds / n * 1e3:.3f} ms per array"

    print(f"store {store.root}: {len(runs)} runs, {arrays} arrays, {rows:,} rows")
    print(f"zarr API (read_metrics), {len(zruns)} runs:      {per(zarr_s, z_arrays)}")
    print(f"read_run_metrics, {len(runs)} runs:")
    print(f"  page cache as found:                  {per(found, arrays)}")
    print(f"  files cached, metadata parsed:        {per(first, arrays)}")
    print(f"  files and metadata cached:            {per(again, arrays)}")
    speedup = (zarr_s / z_arrays) / (first / arrays)
    print(f"speed-up per array (files cached, metadata parsed): {speedup:.1f}x")

    # -- incremental tail ----------------------------------------------------------------------
    with tempfile.TemporaryDirectory(prefix="hpclab-bench-read-") as tmp:
        copy = Path(tmp) / "metrics.zarr"
        shutil.copytree(runs[0], copy)
        since = {n: int(i["length"]) for n, i in read_commit(copy)["series"].items()}
        read_run_metrics(copy)  # the indexer has seen this run before
        writer = MetricWriter(copy)
        names = list(since)
        last = writer.step
        for k in range(1, 101):
            writer.log({n: 1.0 / k for n in names}, step=last + k)
        assert writer.flush()
        t0 = time.perf_counter()
        tail = read_run_metrics(copy, since=since)
        tail_first = time.perf_counter() - t0
        assert all(len(v) == 100 for v in tail.values()), {n: len(v) for n, v in tail.items()}
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            read_run_metrics(copy, since=since)
            times.append(time.perf_counter() - t0)
        full = []
        for _ in range(max(3, args.repeats // 4)):
            t0 = time.perf_counter()
            read_run_metrics(copy)
            full.append(time.perf_counter() - t0)
    print(
        f"tail read of one run after 100 more steps ({len(names)} metrics x 100 rows): "
        f"{tail_first * 1e3:.3f} ms first, {statistics.median(times) * 1e3:.3f} ms median "
        f"of {args.repeats}; whole run re-read {statistics.median(full) * 1e3:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
