#!/usr/bin/env python
"""Per-scalar cost of logging: hpclab's run.log vs TensorBoard's SummaryWriter.add_scalar
vs appending raw float64 values to a file; and the training loop under a slow filesystem.

Same process, same N steps x M metrics, median of repeats:

    python scripts/bench_logging.py                 # 20,000 steps x 4 metrics, 5 repeats
    python scripts/bench_logging.py --steps 2000 --repeats 3

Each figure is wall time of the logging loop divided by N x M, including everything the
logger does in that time (hpclab's background flushes compete for the same GIL and are
counted; the final flush/close is reported separately).
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

NAMES = ("train/loss", "val/loss", "lr", "grad_norm")


def values(n: int) -> list[tuple[float, float, float, float]]:
    return [(1.0 / (i + 1), 2.0 / (i + 1), 1e-3, 0.5 + i * 1e-6) for i in range(n)]


def bench_raw(tmp: Path, vals: list[tuple[float, ...]]) -> tuple[float, float]:
    """Append each value as 8 raw bytes to a buffered binary file."""
    pack = struct.Struct("<d").pack
    with open(tmp / "raw.bin", "wb") as f:
        write = f.write
        t0 = time.perf_counter()
        for a, b, c, d in vals:
            write(pack(a))
            write(pack(b))
            write(pack(c))
            write(pack(d))
        t1 = time.perf_counter()
    return t1 - t0, time.perf_counter() - t1


def bench_hpclab(
    tmp: Path, vals: list[tuple[float, ...]], **settings: object
) -> tuple[float, float]:
    import hpclab

    run = hpclab.init(
        project="bench",
        store=str(tmp / "store"),
        settings={
            "snapshot_code": False,
            "snapshot_env": False,
            "sync_tensorboard": False,
            **settings,
        },
    )
    log = run.log
    n0, n1, n2, n3 = NAMES
    t0 = time.perf_counter()
    for step, (a, b, c, d) in enumerate(vals):
        log({n0: a, n1: b, n2: c, n3: d}, step)
    t1 = time.perf_counter()
    run.finish()
    return t1 - t0, time.perf_counter() - t1


def bench_tensorboard(tmp: Path, vals: list[tuple[float, ...]]) -> tuple[float, float]:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp / "tb"))
    add = writer.add_scalar
    n0, n1, n2, n3 = NAMES
    t0 = time.perf_counter()
    for step, (a, b, c, d) in enumerate(vals):
        add(n0, a, step)
        add(n1, b, step)
        add(n2, c, step)
        add(n3, d, step)
    t1 = time.perf_counter()
    writer.close()
    return t1 - t0, time.perf_counter() - t1


def median_us(
    fn: Callable[[Path], tuple[float, float]], repeats: int, scalars: int
) -> tuple[float, float]:
    loop, close = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
            a, b = fn(Path(d))
            loop.append(a)
            close.append(b)
    return statistics.median(loop) / scalars * 1e6, statistics.median(close) * 1e3


def slow_filesystem(tmp: Path, steps: int, delay: float) -> tuple[float, float]:
    """Time per training step (a fixed 200 µs of work) with a filesystem that takes
    ``delay`` seconds per flush, against the same loop with no logging at all."""
    import hpclab
    from hpclab.tracking.metrics import MetricWriter

    real = MetricWriter._write_pending

    def slow(self: MetricWriter) -> None:
        time.sleep(delay)
        real(self)

    def work() -> None:
        end = time.perf_counter() + 200e-6
        while time.perf_counter() < end:
            pass

    t0 = time.perf_counter()
    for _ in range(steps):
        work()
    bare = (time.perf_counter() - t0) / steps
    MetricWriter._write_pending = slow  # type: ignore[method-assign]
    try:
        run = hpclab.init(
            project="bench",
            store=str(tmp / "slow"),
            flush_interval=0.05,
            settings={"snapshot_code": False, "snapshot_env": False},
        )
        t0 = time.perf_counter()
        for step in range(steps):
            work()
            run.log({"train/loss": 1.0 / (step + 1), "lr": 1e-3}, step)
        logged = (time.perf_counter() - t0) / steps
        run.finish()
    finally:
        MetricWriter._write_pending = real  # type: ignore[method-assign]
    return bare * 1e6, logged * 1e6


def system_sample(n: int = 200) -> tuple[float, float, int]:
    """(CPU ms per sample, stored bytes per sample, series per sample) of the system
    sampler, with a busy child process (its share is summed in), on a 15 s cadence's
    data: the bytes are what ``n`` samples add to ``metrics.zarr``."""
    import subprocess

    from hpclab.tracking.metrics import MetricWriter
    from hpclab.tracking.system import SystemSampler

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        sampler = SystemSampler()
        sampler.sample()
        t = time.process_time()
        samples = [sampler.sample() for _ in range(n)]
        cpu_ms = (time.process_time() - t) / n * 1000
    finally:
        child.kill()
        child.wait()
    with tempfile.TemporaryDirectory() as d:
        w = MetricWriter(Path(d) / "metrics.zarr")
        for s in samples:
            w.log_samples(s)
        w.flush()
        stored = sum(f.stat().st_size for f in Path(d).rglob("*") if f.is_file())
    return cpu_ms, stored / n, len(samples[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--slow-delay", type=float, default=0.5, help="seconds per flush in the slow-FS test"
    )
    args = parser.parse_args()
    vals = values(args.steps)
    scalars = args.steps * len(NAMES)
    print(
        f"{args.steps:,} steps x {len(NAMES)} metrics, median of {args.repeats} "
        f"(python {sys.version.split()[0]})"
    )
    raw, _ = median_us(lambda d: bench_raw(d, vals), args.repeats, scalars)
    hp, hp_close = median_us(lambda d: bench_hpclab(d, vals), args.repeats, scalars)
    tb, tb_close = median_us(lambda d: bench_tensorboard(d, vals), args.repeats, scalars)
    print(f"{'logger':<34}{'us/scalar':>10}{'finish ms':>11}")
    print(f"{'raw float64 append to a file':<34}{raw:>10.3f}{'':>11}")
    print(f"{'hpclab run.log (Zarr)':<34}{hp:>10.3f}{hp_close:>11.1f}")
    print(f"{'torch SummaryWriter.add_scalar':<34}{tb:>10.3f}{tb_close:>11.1f}")
    print(f"hpclab is {tb / hp:.0f}x cheaper than SummaryWriter and {hp / raw:.1f}x the raw append")
    sample_ms, sample_bytes, n_series = system_sample()
    print(
        f"one system sample (hpclab.tracking.system, {n_series} series, the background "
        f"thread): {sample_ms:.2f} ms of CPU, {sample_bytes:.0f} bytes stored"
    )
    with tempfile.TemporaryDirectory() as d:
        bare, logged = slow_filesystem(Path(d), 5000, args.slow_delay)
    print(
        f"training step, no logging: {bare:.1f} us; with run.log and a "
        f"{args.slow_delay:.1f} s-per-flush filesystem: {logged:.1f} us ({(logged - bare):+.1f} us)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
