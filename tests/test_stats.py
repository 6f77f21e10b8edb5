"""hpclab.catalog.stats against scipy, on generated data with a known answer.

Two kinds of check for the bootstrap: on the *same* resamples (our bootstrap distribution
handed to ``scipy.stats.bootstrap`` as ``bootstrap_result`` with ``n_resamples=0``) the BCa
and percentile endpoints must equal scipy's to rounding, which pins the formulas (bias
correction, jackknife acceleration per sample, quantiles); on independent resamples they
must agree within a few Monte-Carlo standard errors, which pins the resampling. The tests
and Hedges' g are compared exactly (1e-12); Holm against a worked example and its
definition; coverage and skewness by simulation against known answers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats as sp

from hpclab.catalog import stats
from hpclab.catalog.stats import compare, holm, mean_ci


def mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def paired_mean(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def scipy_on(distribution: np.ndarray, data: tuple[np.ndarray, ...], method: str, **kw: object):
    """scipy's interval computed from *our* bootstrap distribution (no resampling of its own)."""
    statistic = np.mean if len(data) == 1 else mean_diff
    given = SimpleNamespace(bootstrap_distribution=distribution)
    res = sp.bootstrap(data, statistic, n_resamples=0, bootstrap_result=given, method=method, **kw)
    return res.confidence_interval


def our_means(x: np.ndarray) -> np.ndarray:
    """The bootstrap distribution mean_ci draws for ``x`` (seeded by the data)."""
    return stats._resampled_means(stats._rng(x), x)


def our_diffs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The bootstrap distribution compare draws for unpaired ``a``, ``b``."""
    rng = stats._rng(a, b)
    return stats._resampled_means(rng, a) - stats._resampled_means(rng, b)


RNG = np.random.default_rng(20261202)
ONE_SAMPLE = [
    RNG.normal(0.0, 1.0, 20),  # BCA_MIN_N exactly
    RNG.normal(3.0, 0.2, 24),
    RNG.lognormal(0.0, 1.0, 22),  # skewed: acceleration far from 0
    RNG.exponential(2.0, 30),
    np.array([1.0, 1.0, 1.0, 2.0, 9.0, 9.0] * 4),  # ties
]
TWO_SAMPLE = [
    (RNG.normal(0.0, 1.0, 20), RNG.normal(0.5, 1.0, 20)),
    (RNG.normal(0.0, 1.0, 21), RNG.lognormal(0.0, 1.0, 25)),  # skewed on one side only
    (RNG.lognormal(0.0, 0.8, 30), RNG.normal(1.0, 0.1, 20)),
]


def expanded_level(ratio: float, df: float, level: float = 0.95) -> float:
    """The confidence level of the plain percentile interval that the expanded one is
    (Hesterberg 2015): tails at Phi(-sqrt(ratio) t_df(1 - alpha/2)), written with scipy's
    distributions independently of the module's scipy.special calls."""
    tail = sp.norm.cdf(-math.sqrt(ratio) * sp.t.ppf(0.5 + level / 2, df))
    return 1 - 2 * tail


def welch_ratio_df(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    plug = np.var(a, ddof=0) / len(a) + np.var(b, ddof=0) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return (va + vb) / plug, df


# -- bootstrap intervals: same resamples, scipy's formulas ------------------------------------
@pytest.mark.parametrize("x", ONE_SAMPLE, ids=lambda x: f"n{len(x)}")
def test_bca_ci_of_a_mean_is_scipys_on_the_same_resamples(x: np.ndarray) -> None:
    ci = mean_ci(x)
    assert ci.method == "bca" and ci.level == 0.95 and ci.n == len(x)
    ref = scipy_on(our_means(x), (x,), "BCa")
    assert ci.low == pytest.approx(ref.low, abs=1e-12, rel=1e-12)
    assert ci.high == pytest.approx(ref.high, abs=1e-12, rel=1e-12)
    assert ci.mean == pytest.approx(x.mean()) and ci.std == pytest.approx(np.std(x, ddof=1))
    ref90 = scipy_on(our_means(x), (x,), "BCa", confidence_level=0.9)
    ci90 = mean_ci(x, level=0.9)
    assert (ci90.low, ci90.high) == pytest.approx((ref90.low, ref90.high), abs=1e-12)
    assert ci.low < ci90.low and ci90.high < ci.high  # type: ignore[operator]


@pytest.mark.parametrize("x", [RNG.normal(0, 1, 5), RNG.normal(0, 1, 8), RNG.lognormal(0, 1, 19)])
def test_expanded_percentile_ci_below_bca_min_n_is_scipys_on_the_same_resamples(
    x: np.ndarray,
) -> None:
    ci = mean_ci(x)
    n = len(x)
    assert n < stats.BCA_MIN_N and ci.method == "expanded"
    level = expanded_level(n / (n - 1), n - 1)
    ref = scipy_on(our_means(x), (x,), "percentile", confidence_level=level)
    assert (ci.low, ci.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    plain = scipy_on(our_means(x), (x,), "percentile")  # the plain one is narrower
    assert ci.low < plain.low and plain.high < ci.high  # type: ignore[operator]


@pytest.mark.parametrize("a, b", TWO_SAMPLE, ids=lambda x: f"n{len(x)}")
def test_bca_ci_of_a_difference_is_scipys_with_a_jackknife_per_sample(
    a: np.ndarray, b: np.ndarray
) -> None:
    c = compare(a, b)
    assert c.ci_method == "bca" and not c.paired
    ref = scipy_on(our_diffs(a, b), (a, b), "BCa")
    assert c.low == pytest.approx(ref.low, abs=1e-12, rel=1e-12)
    assert c.high == pytest.approx(ref.high, abs=1e-12, rel=1e-12)
    # the acceleration is not zero here, so a one-jackknife-over-the-pool or a sign error in
    # b's influence would move the endpoints: the percentile interval differs
    pct = scipy_on(our_diffs(a, b), (a, b), "percentile")
    assert abs(c.low - pct.low) + abs(c.high - pct.high) > 1e-6


@pytest.mark.parametrize("n", [2, 3, 4])
def test_below_five_values_the_ci_is_students_t_as_scipys(n: int) -> None:
    """A bootstrap of fewer than 5 values cannot reach past their range: the t interval
    (ttest_1samp / ttest_ind(equal_var=False) / ttest_rel's confidence_interval)."""
    rng = np.random.default_rng(n)
    x = rng.normal(0, 1, n)
    ci = mean_ci(x)
    ref = sp.ttest_1samp(x, 0.0).confidence_interval(0.95)
    assert ci.method == "t" and (ci.low, ci.high) == pytest.approx((ref.low, ref.high))
    a, b = rng.normal(0, 1, 9), rng.normal(1, 2, n)
    c = compare(a, b)
    ref = sp.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert c.ci_method == "welch-t" and (c.low, c.high) == pytest.approx((ref.low, ref.high))
    a, b = a[:n], a[:n] + rng.normal(0.3, 0.1, n)
    c = compare(a, b, pairs=list(zip(a, b, strict=True)))
    ref = sp.ttest_rel(a, b).confidence_interval(0.95)
    assert c.ci_method == "t" and (c.low, c.high) == pytest.approx((ref.low, ref.high))


def test_ci_of_a_difference_is_expanded_percentile_when_one_side_is_small() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 8), rng.normal(1, 1, 6)
    c = compare(a, b)
    assert c.ci_method == "expanded"
    level = expanded_level(*welch_ratio_df(a, b))  # Welch-Satterthwaite df
    ref = scipy_on(our_diffs(a, b), (a, b), "percentile", confidence_level=level)
    assert (c.low, c.high) == pytest.approx((ref.low, ref.high), abs=1e-12)


@pytest.mark.parametrize("n", [6, 9, 22])
def test_paired_ci_is_the_bootstrap_of_the_differences(n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.normal(0.0, 1.0, n)
    b = a - 0.3 + rng.lognormal(0, 0.5, n) * 0.1  # b tracks a: pairing matters
    c = compare(a, b, pairs=list(zip(a, b, strict=True)))
    d = a - b
    assert c.paired and c.n_pairs == n
    assert c.ci_method == ("bca" if n >= stats.BCA_MIN_N else "expanded")
    method = "BCa" if n >= stats.BCA_MIN_N else "percentile"
    kw = {} if method == "BCa" else {"confidence_level": expanded_level(n / (n - 1), n - 1)}
    ref = scipy_on(our_means(d), (d,), method, **kw)
    assert (c.low, c.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    # scipy's own paired form (resampling the pairs, statistic mean(a - b)) is the same thing
    given = SimpleNamespace(bootstrap_distribution=our_means(d))
    paired = sp.bootstrap(
        (a, b), paired_mean, paired=True, n_resamples=0, bootstrap_result=given, method=method,
        **kw,
    ).confidence_interval  # fmt: skip
    assert (c.low, c.high) == pytest.approx((paired.low, paired.high), abs=1e-12)
    assert c.se == pytest.approx(np.std(d, ddof=1) / math.sqrt(n), rel=1e-12)
    # pairing removes the shared part: far narrower than the unpaired interval
    unpaired = compare(a, b)
    assert c.high - c.low < (unpaired.high - unpaired.low) / 3  # type: ignore[operator]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # scipy's NaN levels
def test_undefined_bca_falls_back_to_the_percentile_interval() -> None:
    """Every resampled mean above the observed: z0 is infinite, scipy's BCa gives NaN (with a
    DegenerateDataWarning); ours says percentile and gives the percentile interval."""
    estimates = np.linspace(1.0, 2.0, 2000)
    x = np.array([0.0, 0.5, 0.2, 0.9, 0.4])
    with pytest.warns(sp.DegenerateDataWarning):
        ref = scipy_on(estimates, (x,), "BCa")
    assert math.isnan(ref.low)
    low, high, method = stats._interval(estimates, 0.5, [x - x.mean()], 0.95, True)
    pct = scipy_on(estimates, (x,), "percentile")
    assert method == "percentile" and (low, high) == pytest.approx((pct.low, pct.high))


def test_quantiles_are_numpys_linear_ones_to_the_bit() -> None:
    """The endpoints come from a hand-written linear quantile (np.quantile costs tens of
    microseconds a call): the same floats as numpy's, ties and the ends included."""
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 2000, 2001):
        x = np.sort(rng.normal(size=n).round(1 if n > 3 else 12))
        for q in [*rng.uniform(size=200), 0.0, 1.0, 0.5, 0.025, 0.975, 1e-12, 1 - 1e-12]:
            assert stats._quantile(x, float(q)) == float(np.quantile(x, q))


# -- bootstrap intervals: independent resamples ---------------------------------------------
def quantile_mc_se(se_boot: float, level: float, resamples: int) -> float:
    """Monte-Carlo standard error of a bootstrap CI endpoint: the quantile's own
    ``sqrt(p(1-p)/B) / f(q)`` with f the (near-normal) density of the bootstrap distribution
    at the quantile, plus BCa's z0 noise (share of B estimates: sd ``0.5/sqrt(B)``, which
    moves the endpoint by about ``se_boot / (phi(0) sqrt(B))``)."""
    p = (1 - level) / 2
    quantile = se_boot * math.sqrt(p * (1 - p) / resamples) / sp.norm.pdf(sp.norm.ppf(p))
    bias = se_boot / (sp.norm.pdf(0.0) * math.sqrt(resamples))
    return math.hypot(quantile, bias)


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_intervals_agree_with_scipys_own_resampling(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BCa from BCA_MIN_N values; below, the expanded percentile interval is scipy's
    percentile interval at the expanded level."""
    resamples = 20000
    monkeypatch.setattr(stats, "RESAMPLES", resamples)
    rng = np.random.default_rng(2)
    x = rng.lognormal(0.0, 0.7, 24 if method == "BCa" else 6)
    ours = mean_ci(x)
    assert ours.method == ("bca" if method == "BCa" else "expanded")
    kw = {} if method == "BCa" else {"confidence_level": expanded_level(6 / 5, 5)}
    theirs = sp.bootstrap((x,), np.mean, method=method, n_resamples=resamples, rng=7, **kw)
    # two independent estimates: the difference has sqrt(2) times one's error; 5 of those
    tol = 5 * math.sqrt(2) * quantile_mc_se(theirs.standard_error, 0.95, resamples)
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=tol)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=tol)
    a, b = rng.normal(0, 1, 22), rng.lognormal(0, 1, 21)
    if method == "percentile":
        a, b = a[:7], b[:5]
    c = compare(a, b)
    assert c.ci_method == ("bca" if method == "BCa" else "expanded")
    kw = {} if method == "BCa" else {"confidence_level": expanded_level(*welch_ratio_df(a, b))}
    ref = sp.bootstrap((a, b), mean_diff, method=method, n_resamples=resamples, rng=8, **kw)
    tol = 5 * math.sqrt(2) * quantile_mc_se(ref.standard_error, 0.95, resamples)
    assert c.low == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert c.high == pytest.approx(ref.confidence_interval.high, abs=tol)


@pytest.mark.parametrize(("n", "method"), [(3, "t"), (6, "expanded"), (20, "bca")])
def test_ci_of_a_mean_covers_the_true_mean_as_the_method_should(n: int, method: str) -> None:
    """Normal values. The bootstrap distribution of a mean has the plug-in variance
    s^2 (n-1)/n^2: a plain percentile interval covers like ``mean +- 1.96 s
    sqrt((n-1)/n)/sqrt(n)``, P(|t_{n-1}| <= 1.96 sqrt((n-1)/n)): 0.74 at n=3. Below 5
    values the t interval is used (0.95, exact for normal data); the expanded percentile
    one is as wide as the t interval (0.95); BCa from 20 values covers
    P(|t_19| <= 1.96 sqrt(0.95)) = 0.93. A broken interval lands far away."""
    trials = 2000
    rng = np.random.default_rng(1234 + n)
    hits = 0
    for _ in range(trials):
        ci = mean_ci(rng.normal(5.0, 2.0, size=n))
        assert ci.method == method and ci.low < ci.mean < ci.high  # type: ignore[operator]
        hits += ci.low <= 5.0 <= ci.high  # type: ignore[operator]
    plug_in = 2 * sp.t.cdf(sp.norm.ppf(0.975) * math.sqrt((n - 1) / n), n - 1) - 1
    known = plug_in if method == "bca" else 0.95  # t: exact for normal data
    if n == 3:
        assert plug_in == pytest.approx(0.74, abs=0.01)  # what the plain one would cover
    binomial_se = math.sqrt(known * (1 - known) / trials)
    # 4 binomial SEs, plus 0.015 for the discreteness of few values' bootstrap distribution
    assert abs(hits / trials - known) <= 4 * binomial_se + 0.015


def test_bca_interval_is_asymmetric_for_skewed_data_like_scipys() -> None:
    """Right-skewed (lognormal) data: the BCa interval reaches further above the mean than
    below, and sits to the right of the percentile interval, in ours as in scipy's."""
    x = np.random.default_rng(99).lognormal(0.0, 1.0, 25)
    ours = mean_ci(x)
    theirs = sp.bootstrap((x,), np.mean, method="BCa", n_resamples=20000, rng=3)
    pct = sp.bootstrap((x,), np.mean, method="percentile", n_resamples=20000, rng=3)
    for low, high in [
        (ours.low, ours.high),
        (theirs.confidence_interval.low, theirs.confidence_interval.high),
    ]:
        assert high - x.mean() > 1.3 * (x.mean() - low)
        assert low > pct.confidence_interval.low and high > pct.confidence_interval.high


# -- tests ------------------------------------------------------------------------------------
WELCH_CASES = [
    (RNG.normal(0, 1, 2), RNG.normal(0.8, 2, 2)),
    (RNG.normal(0, 1, 3), RNG.normal(0.8, 2, 5)),
    (RNG.normal(0, 1, 6), RNG.normal(0.8, 2, 6)),
    (np.array([1.0, 1.0, 1.0]), np.array([1.2, 1.5, 1.1, 1.3])),  # no spread on one side
]


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy on [1, 1, 1]
@pytest.mark.parametrize("a, b", WELCH_CASES)
def test_welch_is_ttest_ind_unequal_var(a: np.ndarray, b: np.ndarray) -> None:
    c = compare(a, b)
    ref = sp.ttest_ind(a, b, equal_var=False).pvalue
    assert c.p_welch == pytest.approx(ref, abs=1e-12, rel=1e-12)
    se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    assert c.se == pytest.approx(se, rel=1e-12)


PERM_CASES = [
    (RNG.normal(0, 1, 2), RNG.normal(0.8, 2, 2)),
    (RNG.normal(0, 1, 3), RNG.normal(0.8, 2, 5)),
    (RNG.normal(0, 1, 5), RNG.normal(1.5, 1, 5)),
    (RNG.normal(0, 1, 6), RNG.normal(0.8, 2, 6)),  # C(12, 6) = 924
    (np.array([1.0, 1.0, 2.0]), np.array([1.0, 2.0, 2.0, 2.0])),  # ties
    (np.array([0.1, 0.2, 0.3]), np.array([0.3, 0.2, 0.1])),  # observed 0
]


@pytest.mark.parametrize("a, b", PERM_CASES)
def test_exact_permutation_test_is_scipys(a: np.ndarray, b: np.ndarray) -> None:
    c = compare(a, b)
    ref = sp.permutation_test(
        (a, b), mean_diff, permutation_type="independent", vectorized=True, n_resamples=10**6
    )
    assert c.permutation_exact
    assert c.p_permutation == pytest.approx(ref.pvalue, abs=1e-12)
    assert stats.permutation_p(a, b) == c.p_permutation


def test_randomized_permutation_test_agrees_with_scipys_within_sampling_error() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 12), rng.normal(0.7, 1, 12)  # C(24, 12) splits: random ones
    c = compare(a, b)
    assert not c.permutation_exact
    n = stats.PERMUTATIONS
    ref = sp.permutation_test((a, b), mean_diff, vectorized=True, n_resamples=n, rng=1)
    p = ref.pvalue
    # two-sided p = 2 min(one-sided): sd of each estimate 2 sqrt(q(1-q)/n), q = p/2
    sd = 2 * math.sqrt(p / 2 * (1 - p / 2) / n)
    assert c.p_permutation == pytest.approx(p, abs=5 * math.sqrt(2) * sd + 2 / n)
    # groups far apart: no random split is as extreme, and the observed one still counts
    # (Phipson & Smyth), as in scipy: p = 2 / (n + 1), never 0
    far = compare(a, b + 10.0)
    ref = sp.permutation_test((a, b + 10.0), mean_diff, vectorized=True, n_resamples=n, rng=1)
    assert far.p_permutation == ref.pvalue == 2 / (n + 1)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 12])
def test_paired_tests_are_ttest_rel_and_the_samples_permutation_test(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    a = rng.normal(0.0, 1.0, n)
    b = a + rng.normal(0.2, 0.3, n)
    c = compare(a, b, pairs=list(zip(a, b, strict=True)))
    assert c.p_paired_t == pytest.approx(sp.ttest_rel(a, b).pvalue, abs=1e-12, rel=1e-12)
    ref = sp.permutation_test(
        (a, b),
        paired_mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=stats.PERMUTATIONS,
    )
    assert 2**n <= stats.PERMUTATIONS  # scipy is exact here too
    assert c.p_paired_permutation == pytest.approx(ref.pvalue, abs=1e-12)
    assert c.p_paired_permutation >= 2 / 2**n  # the exact floor
    # the unpaired tests run on the same values, always
    assert c.p_welch == pytest.approx(sp.ttest_ind(a, b, equal_var=False).pvalue, abs=1e-12)


def test_sign_flip_test_is_randomized_past_permutations() -> None:
    n = 13  # 2^13 = 8192 > 5000 flips
    rng = np.random.default_rng(4)
    a = rng.normal(0.0, 1.0, n)
    b = a + rng.normal(0.15, 0.4, n)
    ours, exact = stats._sign_flip(a - b)
    assert not exact and stats.sign_flip_p(a - b) == ours
    m = stats.PERMUTATIONS
    ref = sp.permutation_test(
        (a, b), paired_mean, permutation_type="samples", vectorized=True, n_resamples=m, rng=4
    ).pvalue
    full = sp.permutation_test(  # all 8192 flips: the exact answer
        (a, b), paired_mean, permutation_type="samples", vectorized=True, n_resamples=2**n
    ).pvalue
    sd = 2 * math.sqrt(full / 2 * (1 - full / 2) / m)
    assert ours == pytest.approx(full, abs=5 * sd + 1 / m)
    assert ref == pytest.approx(full, abs=5 * sd + 1 / m)


def test_hedges_g_and_pooled_std_follow_the_formula() -> None:
    for a, b in [*WELCH_CASES[1:3], *TWO_SAMPLE]:
        na, nb = len(a), len(b)
        s = math.sqrt(((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2))
        g = (np.mean(a) - np.mean(b)) / s * (1 - 3 / (4 * (na + nb) - 9))
        c = compare(a, b)
        assert c.pooled_std == pytest.approx(s, rel=1e-12)
        assert c.hedges_g == pytest.approx(g, rel=1e-12)
    # a worked case: a = 1, 2, 3 (var 1), b = 3, 4, 5 (var 1): pooled 1, d = -2,
    # J = 1 - 3/(4*6 - 9) = 0.8, g = -1.6
    c = compare([1.0, 2.0, 3.0], [3.0, 4.0, 5.0])
    assert (c.pooled_std, c.hedges_g) == pytest.approx((1.0, -1.6), rel=1e-12)


# -- Holm -------------------------------------------------------------------------------------
def test_holm_worked_example() -> None:
    # sorted 0.005 0.01 0.03 0.04 (m = 4): x4 0.02, x3 0.03, x2 0.06, x1 0.04 -> max 0.06
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # None is no test: kept, not counted (m = 2): 0.02 x2 = 0.04, 0.5 x1 = 0.5
    assert holm([None, 0.5, 0.02, None]) == [None, pytest.approx(0.5), pytest.approx(0.04), None]
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped
    assert holm([]) == [] and holm([None]) == [None] and holm([0.03]) == [0.03]


def test_holm_by_its_definition() -> None:
    rng = np.random.default_rng(5)
    for m in (2, 5, 17):
        p = list(rng.uniform(0, 0.2, m) ** 2)
        adj = holm(p)
        order = np.argsort(p, kind="stable")
        expected = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * np.asarray(p)[order]))
        assert [adj[i] for i in order] == pytest.approx(list(expected))
        assert all(q is not None and p_ <= q <= 1.0 for p_, q in zip(p, adj, strict=True))
        ranked = [adj[i] for i in order]
        assert ranked == sorted(ranked)  # monotone in p


# -- edge cases and None rules ----------------------------------------------------------------
def test_mean_ci_edge_cases() -> None:
    empty = mean_ci([])
    assert (empty.n, empty.method, empty.std, empty.low) == (0, "none", None, None)
    assert math.isnan(empty.mean)
    one = mean_ci([2.0, math.nan, math.inf, -math.inf])  # NaN and inf dropped
    assert (one.n, one.mean, one.std, one.low, one.high, one.method) == (
        1,
        2.0,
        None,
        None,
        None,
        "none",
    )
    two = mean_ci([1.0, 3.0, math.nan])
    assert (two.n, two.mean, two.method) == (2, 2.0, "t")
    ref = sp.ttest_1samp([1.0, 3.0], 0.0).confidence_interval(0.95)
    assert (two.low, two.high) == pytest.approx((ref.low, ref.high))  # reaches past 1 and 3
    same = mean_ci([3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    assert (same.low, same.high, same.std, same.method) == (3.0, 3.0, 0.0, "exact")
    x = [1.0, 2.0, 4.0, 8.0, 9.0]
    assert mean_ci(x) == mean_ci(list(x))  # deterministic: seeded by the data
    assert mean_ci(x) == mean_ci([*x, math.nan])
    assert mean_ci(x, level=0.8).level == 0.8


def test_compare_none_rules() -> None:
    with pytest.raises(ValueError, match="at least one finite value"):
        compare([math.nan], [1.0, 2.0])
    single = compare([1.0, 1.1, 0.9], [2.0])  # one baseline run: no CI, no tests
    assert (single.low, single.high, single.ci_method) == (None, None, "none")
    assert (single.p_welch, single.p_permutation, single.se, single.hedges_g) == (None,) * 4
    assert single.std_b is None and single.pooled_std == pytest.approx(0.1)
    assert not single.permutation_exact and not single.paired and single.n_pairs == 0
    tiny = compare([1.0], [2.0])
    assert (tiny.low, tiny.high, tiny.ci_method, tiny.pooled_std) == (None, None, "none", None)
    flat = compare([1.0, 1.0, 1.0], [2.0, 2.0])  # no spread anywhere
    assert (flat.low, flat.high, flat.ci_method) == (-1.0, -1.0, "exact")
    assert flat.p_welch is None and flat.hedges_g is None and flat.pooled_std == 0.0
    assert flat.p_permutation == pytest.approx(0.2)  # 2 of C(5, 2) = 10 splits as extreme
    assert flat.se == 0.0
    nan_side = compare([1.0, math.nan, 2.0, 3.0], [math.inf, 2.0, 3.0, 4.0])
    assert (nan_side.n_a, nan_side.n_b) == (3, 3)
    assert nan_side == compare([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])


def test_paired_none_rules() -> None:
    a, b = [1.0, 2.0, 3.0], [1.5, 2.5, 3.5]  # every difference -0.5: no spread
    c = compare(a, b, pairs=list(zip(a, b, strict=True)))
    assert c.paired and c.n_pairs == 3 and c.p_paired_t is None
    assert (c.low, c.high, c.ci_method, c.se) == (-0.5, -0.5, "exact", 0.0)
    assert c.p_paired_permutation == pytest.approx(2 / 8)  # both all-same-sign flips
    dropped = compare(a, b, pairs=[(1.0, 1.5), (math.nan, 2.5), (3.0, 3.5)])
    assert dropped.n_pairs == 2 and dropped.p_paired_permutation == pytest.approx(0.5)
    one = compare(a, b, pairs=[(1.0, 1.5)])
    assert one.paired and one.n_pairs == 1
    assert (one.low, one.se, one.p_paired_t, one.p_paired_permutation) == (None,) * 4
    unpaired = compare(a, b)
    assert (unpaired.paired, unpaired.p_paired_t, unpaired.p_paired_permutation) == (
        False,
        None,
        None,
    )


def test_a_real_difference_is_detected_and_no_difference_is_not() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.0, 1.0, 8), rng.normal(2.0, 1.0, 8)
    c = compare(a, b)
    assert c.diff == pytest.approx(a.mean() - b.mean())
    assert c.high is not None and c.high < 0  # the CI excludes 0
    assert c.p_welch is not None and c.p_welch < 0.01
    assert c.p_permutation is not None and c.p_permutation < 0.01
    assert c.hedges_g is not None and c.hedges_g < -1
    same = compare(rng.normal(0.0, 1.0, 8), rng.normal(0.0, 1.0, 8))
    assert same.low is not None and same.high is not None and same.low < 0 < same.high
    assert same.p_welch is not None and same.p_welch > 0.05
    assert same.p_permutation is not None and same.p_permutation > 0.05


def test_two_objective_pareto_ranks_are_the_matrix_ones() -> None:
    """The O(n log n) sort of two objectives gives the layers of the n x n dominance
    matrices (ties, duplicates and both directions included)."""
    from hpclab.catalog.stats import pareto_ranks

    def matrix_ranks(pts: np.ndarray, maximize: tuple[bool, bool]) -> list[int]:
        third = np.column_stack([pts, np.zeros(len(pts))])  # k = 3: the matrix path
        return pareto_ranks(third, (*maximize, False)).tolist()

    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 60, 400):
        pts = rng.integers(0, 6, size=(n, 2)).astype(float)  # many ties and duplicates
        for maximize in ((False, False), (True, False), (False, True), (True, True)):
            assert pareto_ranks(pts, maximize).tolist() == matrix_ranks(pts, maximize)
    pts = rng.normal(size=(300, 2))
    assert pareto_ranks(pts, (False, False)).tolist() == matrix_ranks(pts, (False, False))


def test_paired_p_values_are_compares() -> None:
    """What a comparison reports beside its unpaired tests is compare's paired analysis."""
    from hpclab.catalog.stats import paired_p_values

    rng = np.random.default_rng(8)
    for n in (1, 2, 5, 14):
        a = rng.normal(0, 1, n)
        b = a + rng.normal(0.2, 0.1, n)
        pairs = [*zip(a, b, strict=True), (math.nan, 1.0)]
        c = compare(a, b, pairs=pairs)
        assert paired_p_values(pairs) == (c.n_pairs, c.p_paired_t, c.p_paired_permutation)
    flat = [(1.0, 1.5), (2.0, 2.5), (3.0, 3.5)]  # no spread in the differences
    assert paired_p_values(flat) == (3, None, pytest.approx(2 / 8))


def test_pareto_ranks_of_three_objectives_are_the_peeled_fronts() -> None:
    """The blocked ranking of k >= 3 objectives (block x n matrices, blocks smaller than
    the input here) gives the layers of peeling non-dominated fronts one by one."""
    from hpclab.catalog.stats import _pareto_ranks_blocked, pareto_ranks

    def peeled(pts: np.ndarray, maximize: tuple[bool, ...]) -> list[int]:
        x = np.where(np.asarray(maximize), -pts, pts)
        ranks = [-1] * len(x)
        left = set(range(len(x)))
        layer = 0
        while left:
            front = [
                i
                for i in left
                if not any((x[j] <= x[i]).all() and (x[j] < x[i]).any() for j in left if j != i)
            ]
            for i in front:
                ranks[i] = layer
            left -= set(front)
            layer += 1
        return ranks

    rng = np.random.default_rng(5)
    for n, k in ((1, 3), (2, 3), (9, 3), (150, 3), (120, 4)):
        pts = rng.integers(0, 4, size=(n, k)).astype(float)  # ties and duplicates
        for maximize in ((False,) * k, (True,) + (False,) * (k - 1)):
            expected = peeled(pts, maximize)
            assert pareto_ranks(pts, maximize).tolist() == expected
            x = np.where(np.asarray(maximize), -pts, pts)
            assert _pareto_ranks_blocked(x, block=7).tolist() == expected
    pts = rng.normal(size=(200, 3))
    assert _pareto_ranks_blocked(pts, block=16).tolist() == peeled(pts, (False,) * 3)


@pytest.mark.parametrize("na, nb", [(6, 6), (8, 9), (12, 12), (40, 150)])
def test_null_distributions_in_chunks_are_the_whole_arrays(na: int, nb: int) -> None:
    """The permutation and sign-flip nulls are computed a few hundred arrangements at a
    time (small arrays): the same p-values, to the bit, as from whole (PERMUTATIONS, n)
    arrays drawn from the same seeded generator, the exact splits included."""
    rng = np.random.default_rng(na * 1000 + nb)
    a, b = rng.normal(0, 1, na), rng.normal(0.4, 1, nb)
    pooled, n, k = np.concatenate([a, b]), na + nb, na
    observed = float(a.mean() - b.mean())
    exact = math.comb(n, k) <= stats.PERMUTATIONS
    if exact:
        chosen, rest = stats._splits(n, k)
    else:
        order = np.tile(np.arange(n), (stats.PERMUTATIONS, 1))
        perm = stats._rng(b, a).permuted(order, axis=1)
        chosen, rest = perm[:, :k], perm[:, k:]
    null = pooled[chosen].mean(axis=1) - pooled[rest].mean(axis=1)
    assert stats._permutation(a, b) == (stats._two_sided(null, observed, exact), exact)
    d = (a[: min(na, nb)] - b[: min(na, nb)])[:14]
    m = len(d)
    if 2**m <= stats.PERMUTATIONS:
        signs = stats._all_signs(m)
    else:
        signs = stats._rng(d, [2.0]).choice(np.array([1.0, -1.0]), size=(stats.PERMUTATIONS, m))
    expected = stats._two_sided(
        (signs * d).mean(axis=1), float(d.mean()), 2**m <= stats.PERMUTATIONS
    )
    assert stats._sign_flip(d)[0] == expected


def test_tests_of_no_values_give_no_evidence_not_an_error() -> None:
    """Nothing finite on either side: a p-value of 0 from the one empty split, as before
    the nulls were computed in chunks (a chunk of zero values per arrangement)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's mean of an empty slice
        assert stats.permutation_p([], []) == 0.0
