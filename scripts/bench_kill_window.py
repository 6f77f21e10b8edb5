"""What a SIGKILL loses from a tight, GIL-bound logging loop (issue 20, item 7).

A child process logs 20 metrics a step as fast as it can (the step's own work holds the
GIL) with ``flush_interval`` seconds between background flushes, and writes its last
logged step and time into a shared page after every step; this process samples how far
the stored commit lags behind, SIGKILLs the child after 10 intervals, and reports the
seconds of steps the store had not committed (the loss window) and the worst lag seen.

    python scripts/bench_kill_window.py [--flush 0.5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hpclab.errors import HpclabError
from hpclab.tracking.metrics import read_commit, read_metrics

TIGHT_LOOP = r"""
import mmap, os, struct, sys, time, hpclab
store, flush, side = sys.argv[1], float(sys.argv[2]), sys.argv[3]
fd = os.open(side, os.O_RDWR | os.O_CREAT)
os.ftruncate(fd, 16)
shared = mmap.mmap(fd, 16)  # written without a system call: the loop never drops the GIL
run = hpclab.init(project="p", store=store, flush_interval=flush,
                  settings={"snapshot_env": False, "system_interval": 0,
                            "capture_output": "off", "heartbeat_interval": 3600})
print(run.dir, flush=True)
names = [f"layer{i}/grad_norm" for i in range(20)]
pack, clock, log = struct.pack_into, time.time, run.log
s = 0
while True:
    loss = sum(i * 0.5 for i in range(200)) / (s + 1)  # a training step that holds the GIL
    log({n: loss for n in names}, step=s)
    pack("<qd", shared, 0, s, clock())
    s += 1
"""


def once(flush: float) -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix="hpclab-kill-"))
    side = root / "last-step"
    proc = subprocess.Popen(
        [sys.executable, "-c", TIGHT_LOOP, str(root / "store"), str(flush), str(side)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    zpath = Path(proc.stdout.readline().strip()) / "metrics.zarr"

    def logged() -> tuple[int, float]:
        with open(side, "rb") as f:
            step, at = struct.unpack("<qd", f.read(16))
        return step, at

    def committed() -> int:
        try:
            series = read_commit(zpath).get("series", {})
            return int(series.get("layer0/grad_norm", {}).get("last_step", -1))
        except HpclabError:
            return -1

    deadline = time.monotonic() + 60
    while not (side.exists() and side.stat().st_size == 16 and logged()[0] > 0):
        if time.monotonic() > deadline:
            raise SystemExit("the child never logged")
        time.sleep(0.01)
    first = logged()
    worst = 0.0
    while True:
        step, at = logged()
        stored = committed()
        rate = (step - first[0]) / max(at - first[1], 1e-9)
        if at - first[1] > 2 * flush and stored >= 0:
            worst = max(worst, (step - stored) / rate)
        if at - first[1] > 10 * flush:
            break
        time.sleep(0.02)  # a sampling period
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    last, at = logged()
    got = read_metrics(zpath)["layer0/grad_norm"]
    rate = (last - first[0]) / (at - first[1])
    return (last - int(got.step[-1])) / rate, worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flush", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for i in range(args.repeats):
        lost, worst = once(args.flush)
        print(
            f"run {i + 1}: lost {lost:.2f} s of steps ({lost / args.flush:.1f} flush intervals), "
            f"the store at most {worst:.2f} s behind (flush interval {args.flush} s)"
        )


if __name__ == "__main__":
    main()
