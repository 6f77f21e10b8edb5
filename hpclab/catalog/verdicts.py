"""What a comparison of two seed groups says, and how it says it (docs/statistics.md).

* The tests that decide: Welch's t-test and the exact permutation test (valid whether or
  not seeds pair up). When both groups have the same seeds the paired t-test and the
  sign-flip test are computed and reported beside them, but do not decide: an exact
  sign-flip test of n pairs cannot go below 2/2^n (0.0625 at 5 seeds), so letting it
  decide would make a 5-vs-5 comparison never significant. ``p_combined`` is the larger
  of the two deciding p-values: significant only when both reject, a valid
  (conservative) test in its own right.
* ``p_holm``: Holm's step-down correction of ``p_combined`` over a family (a sweep report's
  metrics and groups, a hypothesis's evidence units).
* The verdict: ``too few seeds`` when a side has fewer than ``min_seeds`` samples, or
  when the exact permutation test cannot reach alpha at these sizes (its smallest
  two-sided p is 2 / C(n_a + n_b, n_a): 0.1 at 3 vs 3) (the tests are still shown);
  ``tests disagree`` when one deciding test rejects at alpha and the other does not;
  ``better`` / ``worse`` (a against b, by the metric's direction) when ``p_holm < alpha``;
  else ``not significant``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hpclab.catalog.stats import Comparison, holm

TOO_FEW = "too few seeds"
DISAGREE = "tests disagree"
BETTER = "better"
WORSE = "worse"
NOT_SIGNIFICANT = "not significant"
VERDICTS = (BETTER, WORSE, NOT_SIGNIFICANT, TOO_FEW, DISAGREE)


@dataclass(frozen=True)
class Judgement:
    verdict: str
    p_holm: float | None
    agreement: float  # 1: the tests used agree at alpha; 0.5: they do not, or cannot run
    reason: str


def tests_used(c: Comparison) -> list[tuple[str, float | None]]:
    """The tests that decide (Welch and permutation)."""
    return [("Welch", c.p_welch), ("permutation", c.p_permutation)]


def paired_tests(c: Comparison) -> list[tuple[str, float | None]]:
    """The paired tests, reported beside when both groups have the same seeds."""
    if not c.paired:
        return []
    return [("paired t", c.p_paired_t), ("sign-flip", c.p_paired_permutation)]


def smallest_permutation_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p an exact permutation test can give (distinct values)."""
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def p_combined(c: Comparison) -> float | None:
    ps = [p for _, p in tests_used(c) if p is not None and math.isfinite(p)]
    return max(ps) if ps else None


def too_few_seeds(c: Comparison, *, alpha: float, min_seeds: int) -> bool:
    """Below min_seeds a side, or sizes at which an exact permutation test cannot reach
    alpha: never significant, whatever the values (decided by n alone, not the data)."""
    return min(c.n_a, c.n_b) < min_seeds or smallest_permutation_p(c.n_a, c.n_b) >= alpha


def judge_family(
    comparisons: Sequence[tuple[Comparison, str, float]],
    *,
    alpha: float,
    min_seeds: int,
    untested: int = 0,
) -> list[Judgement]:
    """Judge each ``(comparison, direction, sign)`` of one family; ``sign`` (+1 or -1)
    times ``a - b`` is the difference the reason shows (+ = better).

    Holm runs over the comparisons that can be significant at all (those with too few
    seeds are never rejected, decided by n alone, so they do not count) plus ``untested``
    hypotheses of the family that are not shown, taken as p = 1 (Holm's adjusted p-values
    only grow with any input, so this is conservative): a sweep's comparisons with its
    best group count every pair of its groups, so choosing the best after seeing the data
    does not inflate the error rate. When m x the smallest possible p is not below alpha
    no comparison of the family can be significant: "too few seeds" for this family."""
    few = [too_few_seeds(c, alpha=alpha, min_seeds=min_seeds) for c, _, _ in comparisons]
    testable = [i for i, f in enumerate(few) if not f]
    ps = [p_combined(comparisons[i][0]) for i in testable]
    adjusted = holm([*ps, *([1.0] * untested)])
    m = sum(p is not None for p in ps) + untested
    floors = [
        smallest_permutation_p(comparisons[i][0].n_a, comparisons[i][0].n_b) for i in testable
    ]
    blocked = bool(floors) and m * min(floors) >= alpha
    p_holm: list[float | None] = [None] * len(comparisons)
    for i, p in zip(testable, adjusted, strict=False):
        p_holm[i] = p
    return [
        judge(
            c, direction, sign, p_holm[i], alpha=alpha, min_seeds=min_seeds, family_size=m,
            family_blocked=blocked and not few[i],
        )
        for i, (c, direction, sign) in enumerate(comparisons)
    ]  # fmt: skip


def judge(
    c: Comparison,
    direction: str,
    sign: float,
    p_holm: float | None,
    *,
    alpha: float,
    min_seeds: int,
    family_size: int = 1,
    family_blocked: bool = False,
) -> Judgement:
    tests = [(name, p) for name, p in tests_used(c) if p is not None and math.isfinite(p)]
    rejects = [p < alpha for _, p in tests]
    agree = len(rejects) == 2 and len(set(rejects)) == 1  # both deciding tests ran, agree
    floor = smallest_permutation_p(c.n_a, c.n_b)
    if too_few_seeds(c, alpha=alpha, min_seeds=min_seeds) or family_blocked:
        verdict = TOO_FEW
    elif len(set(rejects)) > 1:
        verdict = DISAGREE
    elif p_holm is not None and p_holm < alpha and all(rejects) and rejects:
        better = (c.diff > 0) == (direction == "maximize")
        verdict = BETTER if better else WORSE
    else:
        verdict = NOT_SIGNIFICANT
    words = [
        _delta_words(c, sign),
        f"{c.n_a} vs {c.n_b} {'seed' if c.n_b == 1 else 'seeds'}",
        *[f"{name} p={fmt_p(p)}" for name, p in tests],
        *[f"{name} p={fmt_p(p)}" for name, p in paired_tests(c) if p is not None],
    ]
    if p_holm is not None and family_size > 1:
        words.append(f"Holm p={fmt_p(p_holm)} over {family_size}")
    detail = ", ".join(w for w in words if w)
    if verdict == TOO_FEW and min(c.n_a, c.n_b) < min_seeds:
        reason = f"{TOO_FEW} ({c.n_a} vs {c.n_b}, fewer than {min_seeds} a side): {detail}"
    elif verdict == TOO_FEW and floor >= alpha:
        reason = (
            f"{TOO_FEW} ({c.n_a} vs {c.n_b}: an exact permutation test cannot go below "
            f"p={fmt_p(floor)}, not below alpha={alpha:g}): {detail}"
        )
    elif verdict == TOO_FEW:
        reason = (
            f"{TOO_FEW} for {family_size} comparisons ({c.n_a} vs {c.n_b}: Holm's smallest "
            f"possible p is {family_size} x {fmt_p(floor)}, not below alpha={alpha:g}): {detail}"
        )
    elif not tests:
        reason = f"{verdict}: {detail} (no test: no spread or one run a side)"
    else:
        reason = f"{verdict}: {detail}"
    return Judgement(verdict, p_holm, 1.0 if agree else 0.5, reason)


def _delta_words(c: Comparison, sign: float) -> str:
    delta = sign * c.diff  # a direction-signed delta: its CI flips with it
    low, high = (c.low, c.high) if sign > 0 else (_neg(c.high), _neg(c.low))
    ci = ""
    if low is not None and high is not None:
        ci = f" ({round(100 * c.level)}% CI {fmt(low)} to {fmt(high)})"
    return f"{delta:+.3g}{ci}"


def _neg(v: float | None) -> float | None:
    return None if v is None else -v


def fmt(v: float) -> str:
    return f"{v:.3g}"


def fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"
