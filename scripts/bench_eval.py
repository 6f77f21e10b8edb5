"""What ``hpclab.eval.evaluate`` costs (issue 19): seconds for N examples, 1,000
bootstrap resamples, and one slice of S values (each value: its own bootstrap and a
1,000-permutation test against the rest), classification with 10 classes and regression.

    python scripts/bench_eval.py [--n 1000 10000 100000] [--slices 5] [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from hpclab.eval import evaluate
from hpclab.tracking import Run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--slices", type=int, default=5)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hpclab-bench-eval-"))
    rng = np.random.default_rng(0)
    print(f"{'n':>8} {'task':>15} {'no slices s':>12} {f'{args.slices} values s':>12}")
    for n in args.n:
        y = rng.integers(0, 10, n)
        p = np.where(rng.random(n) < 0.8, y, rng.integers(0, 10, n))
        yr = rng.normal(size=n)
        pr = yr + rng.normal(scale=0.3, size=n)
        group = rng.integers(0, args.slices, n)
        for task, pred, lab in (("classification", p, y), ("regression", pr, yr)):
            with Run(store=root, project="bench") as run:
                t = time.perf_counter()
                evaluate(run, pred, lab, task=task, n_boot=args.n_boot)
                plain = time.perf_counter() - t
                t = time.perf_counter()
                evaluate(run, pred, lab, task=task, slices={"g": group}, n_boot=args.n_boot)
                sliced = time.perf_counter() - t
            print(f"{n:>8} {task:>15} {plain:>12.2f} {sliced:>12.2f}")


if __name__ == "__main__":
    main()
