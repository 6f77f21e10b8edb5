"""Statistics across seeds and runs: bootstrap confidence intervals, two-sample and paired
tests, effect size, Holm's correction, Pareto fronts. The method, with formulas and
references, is docs/statistics.md#intervals-and-tests. Every result is deterministic (the
catalog must come out the same on every re-index): resampling is seeded by the data.

* Confidence interval of a mean (:func:`mean_ci`): BCa bootstrap (Efron 1987) from
  BCA_MIN_N (20) values on (percentile when BCa's bias correction is undefined), the
  expanded percentile bootstrap (Hesterberg 2015) from BOOTSTRAP_MIN_N (5), Student's t
  interval below (a bootstrap of 3 values cannot reach outside their range); RESAMPLES
  resamples. ``method`` says which: bca, percentile, expanded, t, exact or none.
* Two groups (:func:`compare`): the difference of means with its CI (each group
  resampled separately, the same thresholds on the smaller group, Welch's t interval
  below 5; none with one value on a side; paired: the CI of the mean difference), Welch's
  t-test, a two-sided permutation test (exact when there are at most PERMUTATIONS
  relabellings), and with pairs the paired t-test and the sign-flip permutation test;
  Hedges' g, the pooled within-group std and the standard error of the difference.
* :func:`holm`: Holm's step-down adjustment of a family of p-values.

The methods are scipy's (``stats.bootstrap(method="BCa" | "percentile")``, ``stats.ttest_ind(
equal_var=False)``, ``stats.ttest_rel``, ``stats.permutation_test``, whose values these match:
tests/test_stats.py checks them against scipy), written here as a few numpy array operations
because the catalog runs hundreds of them on every index pass: scipy's calls have
milliseconds of set-up each, and its exact permutation test walks the partitions in Python.
"""

from __future__ import annotations

import functools
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
BCA_MIN_N = 20  # BCa from here on; below, the expanded percentile interval ...
BOOTSTRAP_MIN_N = 5  # ... and below this, Student's t interval (see _one_sample_ci)

Values = Sequence[float] | np.ndarray  # a group's values (lists or numpy arrays)


@dataclass(frozen=True)
class MeanCI:
    """Mean, sample std and CI of a group's finite values. ``method``: ``bca``,
    ``expanded`` (percentile), ``percentile`` (BCa undefined), ``t`` (Student), ``exact``
    (no spread: low = high = mean) or ``none`` (fewer than two values: no std, no CI)."""

    n: int
    mean: float
    std: float | None
    low: float | None
    high: float | None
    method: str
    level: float


@dataclass(frozen=True)
class Comparison:
    """Group a against group b (``diff = mean_a - mean_b``); None where a value is undefined
    at these sizes (see :func:`compare`)."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    std_a: float | None
    std_b: float | None
    diff: float
    low: float | None
    high: float | None
    ci_method: str
    level: float
    se: float | None
    pooled_std: float | None
    p_welch: float | None
    p_permutation: float | None
    permutation_exact: bool
    paired: bool
    n_pairs: int
    p_paired_t: float | None
    p_paired_permutation: float | None
    hedges_g: float | None


def _rng(*groups: Any) -> np.random.Generator:
    """A generator seeded by the data: same inputs, same interval."""
    h = hashlib.sha256()
    for g in groups:
        h.update(np.asarray(g, dtype=np.float64).tobytes())
        h.update(b"|")
    return np.random.default_rng(int.from_bytes(h.digest()[:8], "little"))


def _finite(values: Values) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    return a[np.isfinite(a)]


@dataclass(frozen=True)
class _Group:
    """A group's finite values with their moments, computed once (numpy's reductions cost
    microseconds each on a handful of values; compare needs each several times)."""

    x: np.ndarray
    n: int
    mean: float
    ss: float  # sum of squared deviations from the mean; exactly 0 when all values are equal

    @classmethod
    def of(cls, values: Values) -> _Group:
        x = _finite(values)
        if not len(x):
            return cls(x, 0, math.nan, 0.0)
        mean = float(x.mean())
        if x.min() == x.max():  # no spread: rounding in the mean must not invent any
            return cls(x, len(x), mean, 0.0)
        dev = x - mean
        return cls(x, len(x), mean, float(dev @ dev))

    @property
    def var(self) -> float:
        """Sample variance (ddof 1); needs n >= 2."""
        return self.ss / (self.n - 1)

    @property
    def std(self) -> float | None:
        return math.sqrt(self.var) if self.n >= 2 else None


# -- confidence intervals ----------------------------------------------------------------------
def mean_ci(values: Values, *, level: float = LEVEL) -> MeanCI:
    """Mean, sample std and bootstrap CI of the finite values (NaN and inf are dropped):
    no std or CI for fewer than 2 values, a zero-width ``exact`` one when every value is
    the same, BCa from BCA_MIN_N values on, else expanded percentile, t below 5."""
    g = _Group.of(values)
    if g.n < 2:
        return MeanCI(g.n, g.mean, None, None, None, "none", level)
    if g.ss == 0.0:
        return MeanCI(g.n, g.mean, 0.0, g.mean, g.mean, "exact", level)
    low, high, method = _one_sample_ci(g, level)
    return MeanCI(g.n, g.mean, g.std, low, high, method, level)


def _one_sample_ci(g: _Group, level: float) -> tuple[float, float, str]:
    """CI of the mean (n >= 2, some spread): BCa from BCA_MIN_N values, the expanded
    percentile interval from BOOTSTRAP_MIN_N, else Student's t interval: the bootstrap of
    a few values cannot reach outside their range (3 normal values: 75% coverage at best)."""
    if g.n < BOOTSTRAP_MIN_N:
        half = _t(g.n - 1, level) * math.sqrt(g.var / g.n)
        return g.mean - half, g.mean + half, "t"
    estimates = _resampled_means(_rng(g.x), g.x)
    # the jackknife's (n-1)(mean of the leave-one-outs - leave-one-out) is x_i - mean
    influence = [g.x - g.mean]
    widen = _expansion(g.n / (g.n - 1), g.n - 1, level)
    return _interval(estimates, g.mean, influence, level, g.n >= BCA_MIN_N, widen)


def _two_sample_ci(a: _Group, b: _Group, level: float) -> tuple[float, float, str] | None:
    """Bootstrap CI of ``mean(a) - mean(b)``, each group resampled separately; None with
    one value on a side (the bootstrap would give that side no variance at all)."""
    if a.n < 2 or b.n < 2:
        return None
    va, vb = a.var / a.n, b.var / b.n  # unbiased variances of the means
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))  # Welch-Satterthwaite
    if min(a.n, b.n) < BOOTSTRAP_MIN_N:  # Welch's t interval (see _one_sample_ci)
        half = _t(df, level) * math.sqrt(va + vb)
        return a.mean - b.mean - half, a.mean - b.mean + half, "welch-t"
    rng = _rng(a.x, b.x)
    estimates = _resampled_means(rng, a.x) - _resampled_means(rng, b.x)
    # one jackknife per sample, as scipy's _bca_interval: b's influence changes sign
    influence = [a.x - a.mean, b.mean - b.x]
    bca = min(a.n, b.n) >= BCA_MIN_N
    plug = va * (a.n - 1) / a.n + vb * (b.n - 1) / b.n  # the bootstrap's (plug-in) ones
    widen = _expansion((va + vb) / plug, df, level)
    return _interval(estimates, a.mean - b.mean, influence, level, bca, widen)


@functools.lru_cache(maxsize=4096)
def _t(df: float, level: float) -> float:
    """Student's two-sided quantile: t_df(0.5 + level/2) (remembered: scipy's inverse
    costs ~0.5 ms, and groups of the same size ask for the same one)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + level / 2))


def _expansion(ratio: float, df: float, level: float) -> float:
    """The expanded percentile interval's tail probability (Hesterberg 2015): the bootstrap
    distribution of a mean has the plug-in variance (n-1)/n s^2/n and normal tails, so its
    plain percentile interval is too narrow at few values (74% for "95%" at n=3).
    Percentiles at Phi(-sqrt(ratio) t_df) instead of alpha/2, with ratio the unbiased over
    the plug-in variance (n/(n-1) for one mean) and t_df Student's quantile, give the
    interval the width of the t interval while keeping the bootstrap's shape."""
    from scipy.special import ndtr

    return float(ndtr(-math.sqrt(ratio) * _t(df, level)))


def _resampled_means(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    """Means of RESAMPLES samples of ``a`` drawn with replacement. The draws are laid out
    (len(a), RESAMPLES) so the sums run along the long axis: several times faster than
    summing each resample's few values."""
    n = len(a)
    index = rng.integers(0, n, size=(n, RESAMPLES), dtype=np.int16 if n < 2**15 else np.intp)
    return np.asarray(a[index].sum(axis=0) / n)


def _interval(
    estimates: np.ndarray,
    observed: float,
    influence: Sequence[np.ndarray],
    level: float,
    bca: bool,
    expanded_tail: float | None = None,
) -> tuple[float, float, str]:
    """The CI from a bootstrap distribution: BCa levels when asked and defined, else the
    expanded percentile ones (``expanded_tail``), else the plain percentile ones."""
    alpha = (1 - level) / 2
    levels = _bca_levels(estimates, observed, influence, alpha) if bca else None
    ordered = np.sort(estimates)
    if levels is not None:
        method = "bca"
    elif expanded_tail is not None and not bca:
        levels, method = (expanded_tail, 1 - expanded_tail), "expanded"
    else:
        levels, method = (alpha, 1 - alpha), "percentile"
    low, high = levels
    return _quantile(ordered, low), _quantile(ordered, high), method


def _quantile(ordered: np.ndarray, q: float) -> float:
    """numpy's (and scipy.stats.quantile's) default "linear" quantile of sorted values,
    with numpy's arithmetic; np.quantile itself costs tens of microseconds a call."""
    n = len(ordered)
    virtual = (n - 1) * q  # numpy's virtual index for "linear"
    below = min(max(math.floor(virtual), 0), n - 1)
    above = min(below + 1, n - 1)
    t = virtual - math.floor(virtual) if 0 <= virtual < n - 1 else 0.0
    lo, hi = float(ordered[below]), float(ordered[above])
    step = hi - lo
    return hi - step * (1 - t) if t >= 0.5 else lo + step * t  # numpy's _lerp


def _bca_levels(
    estimates: np.ndarray, observed: float, influence: Sequence[np.ndarray], alpha: float
) -> tuple[float, float] | None:
    """BCa's adjusted quantile levels (Efron 1987; Efron & Tibshirani 1993, 14.3), as
    scipy's ``_bca_interval``: bias correction z0 from the share of estimates below the
    observed (ties counted half), acceleration from the jackknife influence values summed
    over the samples. None when undefined (every estimate on one side of the observed)."""
    from scipy.special import ndtr, ndtri

    below = np.count_nonzero(estimates < observed) + np.count_nonzero(estimates <= observed)
    z0 = float(ndtri(below / (2 * len(estimates))))
    num = sum(float(u @ (u * u)) / len(u) ** 3 for u in influence)
    den = sum(float(u @ u) / len(u) ** 2 for u in influence)
    if not math.isfinite(z0) or den <= 0:
        return None
    accel = num / (6 * den**1.5)
    z = float(ndtri(alpha))
    out = []
    for zz in (z, -z):
        # |accel| < 1/6 for a mean (its skewness is bounded by n), so this never divides
        # by zero or flips sign; checked anyway, as a non-finite level would be garbage
        step = z0 + zz
        out.append(float(ndtr(z0 + step / (1 - accel * step))))
    if not all(math.isfinite(x) for x in out):
        return None
    return out[0], out[1]


# -- two groups --------------------------------------------------------------------------------
def compare(
    a_values: Values,
    b_values: Values,
    *,
    pairs: Sequence[tuple[float, float]] | None = None,
    level: float = LEVEL,
) -> Comparison:
    """``mean(a) - mean(b)`` with its bootstrap CI, standard error, tests and effect size,
    over the finite values of each group (at least one each: else ValueError).

    ``pairs`` (a_i, b_i matched by seed; given only when both groups have the same seeds)
    makes it paired: the CI and se are then those of the mean of the differences, and
    the paired t and sign-flip tests are run on them (pairs with a non-finite side are
    dropped). Welch's and the permutation test are always run on the groups.

    None rules: CI of an unpaired diff with 2 values a side (BCa when both have BCA_MIN_N,
    ``exact`` when neither group has spread); se and the tests need 2 values a side
    (Welch also some spread, the paired tests 2 pairs, paired t spread in the
    differences); pooled_std needs n_a + n_b >= 3; Hedges' g 2 values a side and
    pooled_std > 0."""
    a, b = _Group.of(a_values), _Group.of(b_values)
    if not a.n or not b.n:
        raise ValueError("compare needs at least one finite value in each group")
    p_welch = p_perm = None
    exact = False
    if a.n >= 2 and b.n >= 2:
        p_perm, exact = _permutation(a.x, b.x)
        if a.ss > 0 or b.ss > 0:
            p_welch = _welch_p(a, b)
    p_t = p_flip = None
    low = high = None
    method = "none"
    if pairs is not None:
        d = _differences(pairs)
        n_pairs = d.n
        se = None
        if d.n >= 2:
            se = math.sqrt(d.var / d.n)
            p_flip, _ = _sign_flip(d.x)
            if d.ss > 0:
                p_t = _paired_t_p(d)
                low, high, method = _one_sample_ci(d, level)
            else:
                low = high = d.mean
                method = "exact"
    else:
        n_pairs = 0
        se = _welch_se(a, b)
        if min(a.n, b.n) >= 2:
            if a.ss == 0 and b.ss == 0:
                low = high = a.mean - b.mean
                method = "exact"
            elif (ci := _two_sample_ci(a, b, level)) is not None:
                low, high, method = ci
    return Comparison(
        n_a=a.n,
        n_b=b.n,
        mean_a=a.mean,
        mean_b=b.mean,
        std_a=a.std,
        std_b=b.std,
        diff=a.mean - b.mean,
        low=low,
        high=high,
        ci_method=method,
        level=level,
        se=se,
        pooled_std=_pooled_std(a, b),
        p_welch=p_welch,
        p_permutation=p_perm,
        permutation_exact=exact,
        paired=pairs is not None,
        n_pairs=n_pairs,
        p_paired_t=p_t,
        p_paired_permutation=p_flip,
        hedges_g=_hedges_g(a, b),
    )


def welch_se(a: Values, b: Values) -> float | None:
    """``sqrt(s_a^2/n_a + s_b^2/n_b)``, the standard error of Welch's t (None below 2
    values a side)."""
    return _welch_se(_Group.of(a), _Group.of(b))


def pooled_std(a: Values, b: Values) -> float | None:
    """``sqrt(((n_a-1)s_a^2 + (n_b-1)s_b^2) / (n_a+n_b-2))``: both groups' squared
    deviations from their own means over the pooled degrees of freedom (None when
    n_a + n_b < 3)."""
    return _pooled_std(_Group.of(a), _Group.of(b))


def hedges_g(a: Values, b: Values) -> float | None:
    """Hedges' g (Hedges 1981): ``(mean_a - mean_b) / pooled_std * (1 - 3/(4(n_a+n_b)-9))``,
    Cohen's d with the small-sample bias correction (None below 2 values a side or with
    no spread)."""
    return _hedges_g(_Group.of(a), _Group.of(b))


def welch_p(a: Values, b: Values) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances), as scipy's ttest_ind (2
    values a side, some spread)."""
    return _welch_p(_Group.of(a), _Group.of(b))


def _differences(pairs: Sequence[tuple[float, float]]) -> _Group:
    """``a_i - b_i`` of the pairs whose two sides are finite."""
    pa = np.asarray([p[0] for p in pairs], dtype=np.float64).reshape(-1)
    pb = np.asarray([p[1] for p in pairs], dtype=np.float64).reshape(-1)
    keep = np.isfinite(pa) & np.isfinite(pb)
    return _Group.of(pa[keep] - pb[keep])


def paired_p_values(
    pairs: Sequence[tuple[float, float]],
) -> tuple[int, float | None, float | None]:
    """(pairs used, paired t p, sign-flip p) under compare's None rules, without the
    rest of compare (no interval, no unpaired tests): what a comparison reports beside
    its deciding unpaired tests."""
    d = _differences(pairs)
    if d.n < 2:
        return d.n, None, None
    return d.n, (_paired_t_p(d) if d.ss > 0 else None), _sign_flip(d.x)[0]


def paired_t_p(d: Values) -> float:
    """Two-sided p-value of the paired t-test on the differences ``d`` (at least 2, some
    spread), as scipy's ttest_rel: ``t = mean(d) / (s_d / sqrt(n))``, n - 1 dof."""
    return _paired_t_p(_Group.of(d))


def _welch_se(a: _Group, b: _Group) -> float | None:
    if a.n < 2 or b.n < 2:
        return None
    return math.sqrt(a.var / a.n + b.var / b.n)


def _pooled_std(a: _Group, b: _Group) -> float | None:
    dof = a.n + b.n - 2
    return math.sqrt((a.ss + b.ss) / dof) if dof >= 1 else None


def _hedges_g(a: _Group, b: _Group) -> float | None:
    s = _pooled_std(a, b)
    if a.n < 2 or b.n < 2 or not s:
        return None
    return (a.mean - b.mean) / s * (1 - 3 / (4 * (a.n + b.n) - 9))


def _welch_p(a: _Group, b: _Group) -> float:
    from scipy.special import stdtr

    va, vb = a.var / a.n, b.var / b.n
    t = (a.mean - b.mean) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    return float(min(1.0, 2.0 * stdtr(df, -abs(t))))


def _paired_t_p(d: _Group) -> float:
    from scipy.special import stdtr

    t = d.mean / math.sqrt(d.var / d.n)
    return float(min(1.0, 2.0 * stdtr(d.n - 1, -abs(t))))


def permutation_p(a: Values, b: Values) -> float:
    """Two-sided p-value of ``mean(a) - mean(b)`` under relabelling, as scipy's
    permutation_test (independent samples): every split of the pooled values when there
    are at most PERMUTATIONS of them, else PERMUTATIONS random ones plus the observed;
    twice the smaller one-sided p-value, at most 1."""
    return _permutation(_finite(a), _finite(b))[0]


def sign_flip_p(d: Values) -> float:
    """Two-sided p-value of ``mean(d)`` under flipping the signs of the paired differences
    (swapping a_i and b_i), as scipy's permutation_test(permutation_type="samples"): all
    2^n flips when 2^n <= PERMUTATIONS, else PERMUTATIONS random ones plus the observed."""
    return _sign_flip(_finite(d))[0]


def _chunk(n: int) -> int:
    """Arrangements of n values a null distribution is computed for at a time: each
    chunk's arrays stay under 64 KB (the allocator's heap), where whole (PERMUTATIONS, n)
    ones (megabytes, allocated and freed by every test) were handed back to the system and
    faulted in again (~400 page faults, most of the test's time, in a fresh process).
    Each arrangement's null value, and the random stream, are the same either way."""
    return max(16, (1 << 16) // (8 * max(n, 1)))


def _permutation(a: np.ndarray, b: np.ndarray) -> tuple[float, bool]:
    pooled = np.concatenate([a, b])
    n, k = len(pooled), len(a)
    observed = float(a.mean() - b.mean())
    exact = math.comb(n, k) <= PERMUTATIONS
    null = np.empty(math.comb(n, k) if exact else PERMUTATIONS)
    if exact:
        # the splits in scipy's order of elements (combinations, complement ascending),
        # so each null value is the same float as scipy's
        chosen, rest = _splits(n, k)
        step = _chunk(n)
        for lo in range(0, len(null), step):
            hi = min(lo + step, len(null))
            null[lo:hi] = pooled[chosen[lo:hi]].mean(axis=1) - pooled[rest[lo:hi]].mean(axis=1)
    else:
        rng, step = _rng(b, a), _chunk(n)
        order = np.tile(np.arange(n), (step, 1))
        for lo in range(0, len(null), step):
            hi = min(lo + step, len(null))
            perm = rng.permuted(order[: hi - lo], axis=1)  # rows shuffled one after another
            null[lo:hi] = pooled[perm[:, :k]].mean(axis=1) - pooled[perm[:, k:]].mean(axis=1)
    return _two_sided(null, observed, exact), exact


def _sign_flip(d: np.ndarray) -> tuple[float, bool]:
    n = len(d)
    exact = 2**n <= PERMUTATIONS
    # b_i - a_i is exactly -(a_i - b_i) in floating point: these are scipy's null values
    if exact:
        null = (_all_signs(n) * d).mean(axis=1)  # at most PERMUTATIONS x 12 values
    else:
        rng, flips, step = _rng(d, [2.0]), np.array([1.0, -1.0]), _chunk(n)
        null = np.empty(PERMUTATIONS)
        for lo in range(0, PERMUTATIONS, step):
            hi = min(lo + step, PERMUTATIONS)
            null[lo:hi] = (rng.choice(flips, size=(hi - lo, n)) * d).mean(axis=1)
    return _two_sided(null, float(d.mean()), exact), exact


def _two_sided(null: np.ndarray, observed: float, exact: bool) -> float:
    """scipy's two-sided p-value: ties within 100 ulps of the observed count as at least as
    extreme; a random null counts the observed arrangement too (Phipson & Smyth 2010)."""
    gamma = abs(observed) * np.finfo(np.float64).eps * 100
    extra = 0 if exact else 1
    less = (np.count_nonzero(null <= observed + gamma) + extra) / (len(null) + extra)
    greater = (np.count_nonzero(null >= observed - gamma) + extra) / (len(null) + extra)
    return float(min(1.0, 2.0 * min(less, greater)))


@functools.lru_cache(maxsize=64)
def _splits(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every choice of k of n positions, and each one's complement (ascending)."""
    chosen = np.array(list(itertools.combinations(range(n), k)), dtype=np.intp)
    mask = np.ones((len(chosen), n), dtype=bool)
    np.put_along_axis(mask, chosen, False, axis=1)
    rest = np.nonzero(mask)[1].reshape(len(chosen), n - k)
    return chosen, rest


@functools.lru_cache(maxsize=16)
def _all_signs(n: int) -> np.ndarray:
    """The 2^n sign vectors of n pairs."""
    return np.array(list(itertools.product((1.0, -1.0), repeat=n)), dtype=np.float64)


# -- families ----------------------------------------------------------------------------------
def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (Holm 1979) over the p-values given (None and NaN are no
    test: None, and not counted): the i-th smallest of m becomes
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``; monotone in p, never below p, at most 1."""
    ranked = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p))
    m = len(ranked)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (m - rank) * float(p)))
        out[i] = running
    return out


# -- Pareto ------------------------------------------------------------------------------------
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
    if x.shape[1] == 2:
        return _pareto_ranks_2d(x)
    return _pareto_ranks_blocked(x)


PARETO_BLOCK = 256  # points compared at once: a block x n matrix per objective


def _pareto_ranks_blocked(x: np.ndarray, block: int = PARETO_BLOCK) -> np.ndarray:
    """The layers of three or more minimised objectives with block x n matrices, not n x n
    (10,000 runs: ~2.5 MB instead of 330 MB): a point's layer is one more than the
    highest layer of the points dominating it (the longest chain of dominators ending at
    it), and every dominator comes first in lexicographic order, so points are ranked in
    that order, a block at a time: against the ranked points before the block in one
    matrix, then within the block by relaxing until nothing changes."""
    unique, inverse = np.unique(x, axis=0, return_inverse=True)  # lexicographic order
    m = len(unique)
    layer = np.zeros(m, dtype=np.int64)
    for start in range(0, m, block):
        stop = min(start + block, m)
        rows = unique[start:stop]
        if start:
            before = unique[:start]
            le = np.ones((stop - start, start), dtype=bool)
            lt = np.zeros((stop - start, start), dtype=bool)
            for j in range(unique.shape[1]):
                le &= before[None, :, j] <= rows[:, None, j]
                lt |= before[None, :, j] < rows[:, None, j]
            dominated_by = le & lt  # [i, j]: earlier point j dominates block point i
            layer[start:stop] = np.where(dominated_by, layer[None, :start] + 1, 0).max(axis=1)
        le = np.ones((stop - start, stop - start), dtype=bool)
        lt = np.zeros((stop - start, stop - start), dtype=bool)
        for j in range(unique.shape[1]):
            le &= rows[None, :, j] <= rows[:, None, j]
            lt |= rows[None, :, j] < rows[:, None, j]
        inner = le & lt  # [i, j]: block point j dominates block point i
        own = layer[start:stop]
        while True:  # relax until no chain within the block lifts a layer (<= its length)
            lifted = np.maximum(own, np.where(inner, own[None, :] + 1, 0).max(axis=1))
            if np.array_equal(lifted, own):
                break
            own = lifted
        layer[start:stop] = own
    return layer[np.asarray(inverse).reshape(-1)]


def _pareto_ranks_2d(x: np.ndarray) -> np.ndarray:
    """The layers of two minimised objectives in O(n log n), without the n x n matrices
    (330 MB at 10,000 runs): points by (x, y); identical points share a layer; a point
    goes to the first layer whose smallest y so far is above its y (an earlier point of
    that layer has x no larger, so one with y no larger would dominate it), and lowers
    that layer's smallest y. The layers' smallest ys stay increasing, so a binary search
    finds it (the patience sorting of a longest increasing subsequence)."""
    import bisect

    unique, inverse = np.unique(x, axis=0, return_inverse=True)  # sorted by x, then y
    lowest: list[float] = []  # per layer, the smallest y of its points so far
    layer = np.empty(len(unique), dtype=np.int64)
    for i, y in enumerate(unique[:, 1].tolist()):
        k = bisect.bisect_right(lowest, y)  # first layer with no point of y <= this one
        if k == len(lowest):
            lowest.append(y)
        else:
            lowest[k] = y
        layer[i] = k
    return layer[np.asarray(inverse).reshape(-1)]
