#!/usr/bin/env python
"""Time the catalog's statistics: ``compare`` and ``mean_ci`` at seed-group sizes.

    python scripts/bench_stats.py                 # 1,000 calls, n = 5 per side
    python scripts/bench_stats.py --n 10 --calls 200

Prints the time of CALLS ``compare`` calls on fresh data (unpaired, then paired), of CALLS
``mean_ci`` calls, and, for scale, the same work done with scipy's own functions
(``stats.bootstrap`` BCa of the difference, ``ttest_ind``, ``permutation_test``; with pairs
also ``ttest_rel`` and the sign-flip ``permutation_test``) on a sample of the calls. Each
figure is the best of ``--repeats`` rounds (the machine is shared).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from hpclab.catalog import stats


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """The fastest of ``repeats`` timings of ``fn()``, in seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def scipy_compare(a: np.ndarray, b: np.ndarray, paired: bool) -> float:
    """What ``stats.compare`` computes, with scipy's functions (returns the permutation p)."""
    from scipy import stats as sp

    def diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    sp.bootstrap((a, b), diff, n_resamples=stats.RESAMPLES, method="BCa", rng=0)
    sp.ttest_ind(a, b, equal_var=False)
    p = sp.permutation_test((a, b), diff, vectorized=True, n_resamples=stats.PERMUTATIONS, rng=0)
    if paired:

        def mean_d(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
            return np.mean(x - y, axis=axis)

        sp.ttest_rel(a, b)
        sp.permutation_test(
            (a, b),
            mean_d,
            permutation_type="samples",
            vectorized=True,
            n_resamples=stats.PERMUTATIONS,
            rng=0,
        )
    return float(p.pvalue)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5, help="values per side (seeds)")
    parser.add_argument("--calls", type=int, default=1000, help="calls timed")
    parser.add_argument("--scipy-calls", type=int, default=50, help="calls timed with scipy")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best is shown")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    data = [(rng.normal(0, 1, args.n), rng.normal(0.5, 1, args.n)) for _ in range(args.calls)]
    pairs = [list(zip(a, b, strict=True)) for a, b in data]
    stats.compare(*data[0])  # imports (scipy.special) and caches out of the timing

    unpaired = best_of(args.repeats, lambda: [stats.compare(a, b) for a, b in data])
    paired = best_of(
        args.repeats,
        lambda: [stats.compare(a, b, pairs=p) for (a, b), p in zip(data, pairs, strict=True)],
    )
    cis = best_of(args.repeats, lambda: [stats.mean_ci(a) for a, _ in data])
    sample = data[: args.scipy_calls]
    scipy_compare(*sample[0], True)
    ref = best_of(1, lambda: [scipy_compare(a, b, False) for a, b in sample]) / len(sample)
    ref_paired = best_of(1, lambda: [scipy_compare(a, b, True) for a, b in sample]) / len(sample)

    c = stats.compare(*data[0])
    print(
        f"n = {args.n} per side: CI {c.ci_method}, permutation "
        f"{'exact' if c.permutation_exact else 'random'}"
    )
    for what, seconds in [
        ("compare calls", unpaired),
        ("compare calls, paired", paired),
        ("mean_ci calls", cis),
    ]:
        each = seconds / args.calls * 1e6
        print(f"{args.calls} {what + ':':24s} {seconds:7.3f} s ({each:5.0f} us each)")
    print(
        f"scipy, per call: {ref * 1e6:7.0f} us unpaired, {ref_paired * 1e6:7.0f} us paired "
        f"({ref / (unpaired / args.calls):.0f}x and {ref_paired / (paired / args.calls):.0f}x ours)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
