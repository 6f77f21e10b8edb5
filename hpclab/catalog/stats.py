"""Statistics across seeds and runs: bootstrap confidence intervals, two-sample tests,
Pareto fronts. scipy does the statistics; this module picks the methods and makes every
result deterministic (the catalog must come out the same on every re-index).

* Confidence interval of a mean: percentile bootstrap (``scipy.stats.bootstrap``), 95%,
  2,000 resamples. With fewer than 5 values it is optimistic (too narrow): seeds are few
  in ML, so read it as a spread, not a guarantee.
* Difference of two groups' means: percentile bootstrap CI of ``mean_a - mean_b``
  (resampling each group separately), Welch's t-test (``equal_var=False``; needs two values
  per group) and a two-sided permutation test (exact when the groups are small; two values
  per group too).
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
PERMUTATIONS = 5000


@dataclass(frozen=True)
class MeanCI:
    n: int
    mean: float
    std: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Comparison:
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    low: float | None
    high: float | None
    p_welch: float | None
    p_permutation: float | None


def _rng(*groups: Any) -> np.random.Generator:
    """A generator seeded by the data: same inputs, same interval."""
    h = hashlib.sha256()
    for g in groups:
        h.update(np.asarray(g, dtype=np.float64).tobytes())
        h.update(b"|")
    return np.random.default_rng(int.from_bytes(h.digest()[:8], "little"))


def _finite(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    return a[np.isfinite(a)]


def mean_ci(values: Sequence[float], *, level: float = LEVEL) -> MeanCI:
    """Mean, sample std and bootstrap CI of the finite values (no CI for fewer than 2, and
    a zero-width one when every value is the same)."""
    from scipy import stats

    a = _finite(values)
    n = len(a)
    if n == 0:
        return MeanCI(0, math.nan, None, None, None)
    mean = float(a.mean())
    if n == 1:
        return MeanCI(1, mean, None, None, None)
    std = float(a.std(ddof=1))
    if std == 0.0:
        return MeanCI(n, mean, 0.0, mean, mean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (a,),
            np.mean,
            confidence_level=level,
            n_resamples=RESAMPLES,
            method="percentile",
            vectorized=True,
            rng=_rng(a),
        )
    return MeanCI(
        n, mean, std, float(res.confidence_interval.low), float(res.confidence_interval.high)
    )


def compare(
    a_values: Sequence[float], b_values: Sequence[float], *, level: float = LEVEL
) -> Comparison:
    """``mean(a) - mean(b)`` with a bootstrap CI, Welch's and a permutation p-value."""
    from scipy import stats

    a, b = _finite(a_values), _finite(b_values)
    if not len(a) or not len(b):
        raise ValueError("compare needs at least one finite value in each group")
    diff = float(a.mean() - b.mean())
    low = high = p_welch = p_perm = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(a) + len(b) >= 3:
            rng = _rng(a, b)
            ia = rng.integers(0, len(a), size=(RESAMPLES, len(a)))
            ib = rng.integers(0, len(b), size=(RESAMPLES, len(b)))
            diffs = a[ia].mean(axis=1) - b[ib].mean(axis=1)
            alpha = (1 - level) / 2
            low, high = (float(q) for q in np.quantile(diffs, [alpha, 1 - alpha]))
        if len(a) >= 2 and len(b) >= 2:
            perm = stats.permutation_test(
                (a, b),
                lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                permutation_type="independent",
                alternative="two-sided",
                n_resamples=PERMUTATIONS,
                vectorized=True,
                rng=_rng(b, a),
            )
            p_perm = float(perm.pvalue)
        if len(a) >= 2 and len(b) >= 2 and (a.std() > 0 or b.std() > 0):
            p_welch = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return Comparison(
        len(a), len(b), float(a.mean()), float(b.mean()), diff, low, high, p_welch, p_perm
    )


def pareto_ranks(points: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Non-dominated sorting layers of ``points`` (n x k): 0 for the Pareto front, 1 for
    the front once the first is removed, ... A point dominates another when it is at least
    as good in every objective and better in one."""
    x = np.asarray(points, dtype=np.float64).copy()
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    for j, up in enumerate(maximize):
        if up:
            x[:, j] = -x[:, j]  # everything minimised from here on
    le = np.ones((n, n), dtype=bool)
    lt = np.zeros((n, n), dtype=bool)
    for j in range(x.shape[1]):  # 2-D comparisons per objective: far faster than 3-D
        col = x[:, j]
        le &= col[:, None] <= col[None, :]
        lt |= col[:, None] < col[None, :]
    dominates = le & lt  # [i, j]: i dominates j
    count = dominates.sum(axis=0)
    ranks = np.full(n, -1, dtype=np.int64)
    layer = 0
    front = np.flatnonzero(count == 0)
    while len(front):
        ranks[front] = layer
        count = count - dominates[front].sum(axis=0)
        count[ranks >= 0] = -1
        front = np.flatnonzero(count == 0)
        layer += 1
    return ranks
