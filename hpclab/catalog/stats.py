"""Statistics across seeds and runs: bootstrap confidence intervals, two-sample tests,
Pareto fronts. Every result is deterministic (the catalog must come out the same on every
re-index): resampling is seeded by the data.

* Confidence interval of a mean: percentile bootstrap, 95%, 2,000 resamples. With fewer
  than 5 values it is optimistic (too narrow): seeds are few in ML, so read it as a spread,
  not a guarantee.
* Difference of two groups' means: percentile bootstrap CI of ``mean_a - mean_b``
  (resampling each group separately), Welch's t-test (needs two values per group) and a
  two-sided permutation test (exact when the groups are small; two values per group too).

The methods are scipy's (``stats.bootstrap(method="percentile")``, ``stats.ttest_ind(
equal_var=False)``, ``stats.permutation_test``, whose p-values these match: the tests check
them against scipy), written here as a few numpy array operations because the catalog runs
hundreds of them on every fresh start: on a 1,000-run store scipy's calls took 5.6 s of a
6 s ``hpclab index`` (its exact permutation test walks the partitions in Python, and each
call has milliseconds of set-up), where these take a few hundred ms.
"""

from __future__ import annotations

import hashlib
import itertools
import math
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
    low, high = _percentiles(_resampled_means(_rng(a), a), level)
    return MeanCI(n, mean, std, low, high)


def compare(
    a_values: Sequence[float], b_values: Sequence[float], *, level: float = LEVEL
) -> Comparison:
    """``mean(a) - mean(b)`` with a bootstrap CI, Welch's and a permutation p-value."""
    a, b = _finite(a_values), _finite(b_values)
    if not len(a) or not len(b):
        raise ValueError("compare needs at least one finite value in each group")
    diff = float(a.mean() - b.mean())
    low = high = p_welch = p_perm = None
    if len(a) + len(b) >= 3:
        rng = _rng(a, b)
        low, high = _percentiles(_resampled_means(rng, a) - _resampled_means(rng, b), level)
    if len(a) >= 2 and len(b) >= 2:
        p_perm = permutation_p(a, b)
        if a.std() > 0 or b.std() > 0:
            p_welch = welch_p(a, b)
    return Comparison(
        len(a), len(b), float(a.mean()), float(b.mean()), diff, low, high, p_welch, p_perm
    )


def _resampled_means(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    """Means of RESAMPLES samples of ``a`` drawn with replacement."""
    return np.asarray(a[rng.integers(0, len(a), size=(RESAMPLES, len(a)))].mean(axis=1))


def _percentiles(estimates: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    low, high = np.quantile(estimates, [alpha, 1 - alpha])
    return float(low), float(high)


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances), as scipy's ttest_ind."""
    from scipy.special import stdtr

    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return float(min(1.0, 2.0 * stdtr(df, -abs(t))))


def permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of ``mean(a) - mean(b)`` under relabelling, as scipy's
    permutation_test (independent samples): every split of the pooled values when there
    are at most PERMUTATIONS of them, else PERMUTATIONS random ones plus the observed;
    twice the smaller one-sided p-value, at most 1."""
    pooled = np.concatenate([a, b])
    n, k = len(pooled), len(a)
    observed = float(a.mean() - b.mean())
    exact = math.comb(n, k) <= PERMUTATIONS
    if exact:
        chosen = np.array(list(itertools.combinations(range(n), k)))
    else:
        order = np.tile(np.arange(n), (PERMUTATIONS, 1))
        chosen = _rng(b, a).permuted(order, axis=1)[:, :k]
    sums = pooled[chosen].sum(axis=1)
    null = sums / k - (pooled.sum() - sums) / (n - k)
    gamma = abs(observed) * np.finfo(np.float64).eps * 100  # scipy's tolerance for ties
    extra = 0 if exact else 1  # a random null counts the observed split too
    less = ((null <= observed + gamma).sum() + extra) / (len(null) + extra)
    greater = ((null >= observed - gamma).sum() + extra) / (len(null) + extra)
    return float(min(1.0, 2.0 * min(less, greater)))


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
