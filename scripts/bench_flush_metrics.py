"""Flush cost against the number of metrics (issue 20, item 5): a run logs one point of N
metrics per step for a few steps; each flush's seconds and the process's peak RSS.

Before the first fix a flush listed the metrics group once per series (O(n^2)): 100
metrics took 8 s a flush, 300 took 67 s, 1,000 never finished; before the second, each
metric's tail chunk went through zarr (resize, read, rewrite): 10,000 metrics took 30 s a
flush and 2.2 GB. Now a flush writes one chunk file per metric (docs/scaling.md).

    python scripts/bench_flush_metrics.py [--metrics 100 1000 10000] [--steps 3]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from hpclab.tracking.metrics import MetricWriter, read_commit


def bench(n: int, steps: int) -> tuple[float, float, int]:
    root = Path(tempfile.mkdtemp(prefix="hpclab-flush-"))
    try:
        writer = MetricWriter(root / "metrics.zarr")
        names = [f"layer{i}/grad_norm" for i in range(n)]
        times = []
        for step in range(steps):
            writer.log({name: float(step) for name in names}, step=step)
            t = time.perf_counter()
            assert writer.flush(), writer.last_error
            times.append(time.perf_counter() - t)
        stored = len(read_commit(root / "metrics.zarr")["series"])
        return times[0], max(times[1:] or times), stored
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metrics", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    print("| metrics | first flush (creates the arrays) | later flush | peak RSS |")
    print("| --- | --- | --- | --- |")
    for n in args.metrics:
        first, later, stored = bench(n, args.steps)
        assert stored == n, (stored, n)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"| {n:,} | {first:.2f} s | {later:.2f} s | {rss:,.0f} MB |")


if __name__ == "__main__":
    main()
