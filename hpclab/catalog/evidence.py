"""The evidence model (research-platform PRD §5.0), on seed groups: docs/statistics.md.

An **evidence unit** is one comparison: a hypothesis x a target metric x a treatment
group (a seed group with linked runs) against its baseline group (the seed group of the
members' DAG ``parent``, of the ``root``, the ``best`` group not linked, or of a fixed run),
on the groups' samples (one completed run per seed):

* ``delta``: maximize: mean - baseline mean; minimize: baseline mean - mean (+ = better),
  with the bootstrap CI of the difference and the tests of :mod:`hpclab.catalog.stats`.
* ``normalized_delta`` = delta / scale, scale = the comparison's pooled within-group
  standard deviation / J, J = 1 - 3/(4(n_a+n_b)-9), so normalized_delta is Hedges' g (not
  the project's spread: unrelated runs change nothing), se its standard error
  sqrt((n_a+n_b)/(n_a n_b) + g^2/(2(n_a+n_b))); without spread, |baseline mean|
  (``baseline_abs``: a relative change), else 1 (``unit``).
* ``confidence`` = n_confidence x agreement x stability, in [0, 1]: n_confidence = m/(m+1)
  (m: the smaller number of samples); agreement 1 when Welch's and the permutation test
  both ran and agree at alpha, 0.5 when they disagree or one cannot run; stability =
  1 / (1 + noise / scale) with noise the median, over both groups' samples, of the
  curve's noise over its last ``stability_fraction`` of steps.
* ``weight`` = the target's weight (normalised over targets) / its number of units: the
  weights sum to 1.
* E (the hypothesis's evidence) = sum(weight x confidence x nd) = sum of contributions: a
  weighted mean of confidence-shrunk normalized deltas, so more seeds or groups narrow
  its interval (E +- z se(E), se(E) = sqrt(sum((weight x confidence x se)^2))) instead of
  growing a sum, and low confidence pulls it toward 0.
* Status: a manual override wins; no linked run: Proposed; E > T_support with a unit
  significantly ``better`` and none ``worse``: Supported; E < T_refute with a unit
  ``worse`` and none ``better``: Refuted; else Testing while a linked run is unfinished,
  else Inconclusive. The reason says why in words, with the CI, the tests and n per side.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hpclab.catalog.groups import Group, Grouping, pair_labels
from hpclab.catalog.hypotheses import Hypothesis, Target
from hpclab.catalog.stats import Comparison
from hpclab.catalog.verdicts import BETTER, WORSE, Judgement, judge_family
from hpclab.store.record import ACTIVE_STATUSES


def z_of(level: float) -> float:
    """The normal quantile of a two-sided interval at ``level`` (1.96 at 0.95)."""
    from scipy.special import ndtri

    return float(ndtri(0.5 + level / 2))


@dataclass(frozen=True)
class Unit:
    hypothesis_id: str
    metric: str
    direction: str
    group_id: str
    label: str
    baseline_group: str
    baseline_label: str
    run_id: str
    runs: list[str]
    baseline_runs: list[str]
    n: int
    n_baseline: int
    value: float
    baseline: float
    delta: float
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    scale: float
    scale_kind: str
    normalized_delta: float
    se: float | None
    paired: bool
    p_welch: float | None
    p_permutation: float | None
    p_paired_t: float | None
    p_paired_permutation: float | None
    hedges_g: float | None
    p_holm: float | None
    verdict: str
    weight: float
    stability: float
    agreement: float
    n_confidence: float
    confidence: float
    contribution: float


@dataclass(frozen=True)
class Verdict:
    hypothesis_id: str
    status: str
    computed_status: str
    override: str | None
    evidence: float
    evidence_low: float | None
    evidence_high: float | None
    n_runs: int
    n_units: int
    n_for: int
    n_against: int
    n_pending: int
    supported_at: float
    refuted_at: float
    alpha: float
    reason: str


@dataclass(frozen=True)
class Settings:
    supported_at: float
    refuted_at: float
    alpha: float
    level: float
    min_seeds: int


class Context:
    """A project's runs and seed groups, as the evidence model sees them."""

    def __init__(
        self,
        grouping: Grouping,
        status: Mapping[str, str],
        value: Callable[[str, str, str | None, str], float | None],
        noise: Callable[[str, str], float],
        parent: Callable[[str], str | None],
        root: Callable[[str], str],
        direction: Callable[[str], str],
        compare: Callable[
            [Sequence[float], Sequence[float], Sequence[tuple[float, float]] | None], Comparison
        ],
    ) -> None:
        self.grouping = grouping
        self.status = status
        self.value = value  # (run, metric, aggregation, direction) -> value
        self.noise = noise  # (run, metric) -> tail noise
        self.parent = parent
        self.root = root
        self.direction = direction
        self.compare = compare
        self.min_seeds = 2  # evaluate sets the project's
        self.best_cache: dict[tuple[str, str | None, str], Group | None] = {}

    def group_of(self, run: str | None) -> Group | None:
        role = self.grouping.roles.get(run or "")
        return self.grouping.groups[role.group_id] if role else None

    def seed_values(self, g: Group, target: Target, direction: str) -> dict[str, tuple[str, float]]:
        """seed -> (sample run, value) of the group's samples with a value."""
        out = {}
        for seed, run in g.samples.items():
            v = self.value(run, target.name, target.aggregation, direction)
            if v is not None and math.isfinite(v):
                out[seed] = (run, v)
        return out


def evaluate(
    h: Hypothesis, linked: Sequence[str], ctx: Context, settings: Settings
) -> tuple[list[Unit], Verdict]:
    """The evidence units of one hypothesis and its verdict."""
    linked_set = set(linked)
    ctx.min_seeds, ctx.best_cache = settings.min_seeds, {}
    treatments = _linked_groups(linked, ctx)
    total_weight = sum(t.weight for t in h.targets)
    planned: list[tuple[Target, str, Group, Group, Comparison, dict, dict]] = []
    for target in h.targets:
        direction = target.direction or ctx.direction(target.name)
        for t in treatments:
            for b in _baselines(h.baseline, t, target, direction, ctx, linked_set):
                a_vals, b_vals = (
                    ctx.seed_values(t, target, direction),
                    ctx.seed_values(b, target, direction),
                )
                if not a_vals or not b_vals:
                    continue
                pairs = None
                if a_vals.keys() == b_vals.keys() and len(a_vals) >= 2:
                    pairs = [(a_vals[s][1], b_vals[s][1]) for s in sorted(a_vals)]
                c = ctx.compare(
                    [v for _, v in a_vals.values()], [v for _, v in b_vals.values()], pairs
                )
                planned.append((target, direction, t, b, c, a_vals, b_vals))
    per_target: dict[str, int] = {}
    for target, *_ in planned:
        per_target[target.name] = per_target.get(target.name, 0) + 1
    judged = judge_family(
        [(c, d, 1.0 if d == "maximize" else -1.0) for _, d, _, _, c, _, _ in planned],
        alpha=settings.alpha,
        min_seeds=settings.min_seeds,
    )
    partial = []
    for (target, direction, t, b, c, a_vals, b_vals), j in zip(planned, judged, strict=True):
        weight = target.weight / total_weight / per_target[target.name]
        partial.append(_unit(h, target, direction, t, b, c, a_vals, b_vals, j, weight, ctx))
    units = _contributions(partial)
    return units, _verdict(h, linked, units, judged, ctx, settings)


def _linked_groups(linked: Sequence[str], ctx: Context) -> list[Group]:
    seen: dict[str, Group] = {}
    for run in linked:
        g = ctx.group_of(run)
        if g is not None and g.samples:
            seen.setdefault(g.id, g)
    return [seen[k] for k in sorted(seen)]


def _baselines(
    baseline: str, t: Group, target: Target, direction: str, ctx: Context, linked: set[str]
) -> list[Group]:
    found: dict[str, Group] = {}
    if baseline in ("parent", "root"):
        for run in t.samples.values():
            other = ctx.parent(run) if baseline == "parent" else ctx.root(run)
            g = ctx.group_of(other)
            if g is not None:
                found.setdefault(g.id, g)
    elif baseline == "best":
        g = _best(target, direction, ctx, linked)
        if g is not None:
            found[g.id] = g
    else:
        g = ctx.group_of(baseline)
        if g is not None:
            found[g.id] = g
    return [g for gid, g in sorted(found.items()) if gid != t.id and g.samples]


def _best(target: Target, direction: str, ctx: Context, linked: set[str]) -> Group | None:
    """The group not linked to the hypothesis with the best mean, among those with at
    least min_seeds samples (one lucky single run is no baseline). Once per target."""
    key = (target.name, target.aggregation, direction)
    if key not in ctx.best_cache:
        ctx.best_cache[key] = _find_best(target, direction, ctx, linked)
    return ctx.best_cache[key]


def _find_best(target: Target, direction: str, ctx: Context, linked: set[str]) -> Group | None:
    best: tuple[float, str] | None = None
    for gid, g in sorted(ctx.grouping.groups.items()):
        if len(g.samples) < ctx.min_seeds or not linked.isdisjoint(g.members):
            continue
        vals = [v for _, v in ctx.seed_values(g, target, direction).values()]
        if len(vals) < ctx.min_seeds:
            continue
        mean = sum(vals) / len(vals)
        key = -mean if direction == "maximize" else mean
        if best is None or key < best[0]:
            best = (key, gid)
    return ctx.grouping.groups[best[1]] if best else None


def _unit(
    h: Hypothesis,
    target: Target,
    direction: str,
    t: Group,
    b: Group,
    c: Comparison,
    a_vals: Mapping[str, tuple[str, float]],
    b_vals: Mapping[str, tuple[str, float]],
    j: Judgement,
    weight: float,
    ctx: Context,
) -> Unit:
    sign = 1.0 if direction == "maximize" else -1.0
    delta = sign * c.diff
    low, high = (c.low, c.high) if sign > 0 else (_neg(c.high), _neg(c.low))
    n_total = c.n_a + c.n_b
    se: float | None = None
    if c.pooled_std is not None and c.pooled_std > 0 and n_total >= 3:
        # pooled sd / J: delta / scale is Hedges' g (bias-corrected), with its large-sample
        # standard error (Hedges & Olkin 1985, eq. 5.14); with one value on a side (one
        # degree of freedom) J is not defined: the pooled sd itself, and no standard error
        two_a_side = min(c.n_a, c.n_b) >= 2
        bias = 1 - 3 / (4 * n_total - 9) if two_a_side else 1.0  # Hedges' J
        scale, kind = c.pooled_std / bias, "pooled_sd"
        g = delta / scale
        if two_a_side:
            se = math.sqrt(n_total / (c.n_a * c.n_b) + g * g / (2 * n_total))
    elif c.mean_b != 0 and math.isfinite(c.mean_b):
        scale, kind = abs(c.mean_b), "baseline_abs"
    else:
        scale, kind = 1.0, "unit"
    if kind != "pooled_sd" and c.se is not None:
        se = c.se / scale
    runs = [r for r, _ in a_vals.values()]
    base_runs = [r for r, _ in b_vals.values()]
    noise = statistics.median(ctx.noise(r, target.name) for r in runs + base_runs)
    stability = 1.0 / (1.0 + noise / scale)
    m = min(c.n_a, c.n_b)
    n_conf = m / (m + 1)
    label, base_label = pair_labels(t, b)
    return Unit(
        hypothesis_id=h.id,
        metric=target.name,
        direction=direction,
        group_id=t.id,
        label=label,
        baseline_group=b.id,
        baseline_label=base_label,
        run_id=min(runs),
        runs=sorted(runs),
        baseline_runs=sorted(base_runs),
        n=c.n_a,
        n_baseline=c.n_b,
        value=c.mean_a,
        baseline=c.mean_b,
        delta=delta,
        ci_low=low,
        ci_high=high,
        ci_method=c.ci_method,
        scale=scale,
        scale_kind=kind,
        normalized_delta=delta / scale,
        se=se,
        paired=c.paired,
        p_welch=c.p_welch,
        p_permutation=c.p_permutation,
        p_paired_t=c.p_paired_t,
        p_paired_permutation=c.p_paired_permutation,
        hedges_g=c.hedges_g,
        p_holm=j.p_holm,
        verdict=j.verdict,
        weight=weight,
        stability=stability,
        agreement=j.agreement,
        n_confidence=n_conf,
        confidence=n_conf * j.agreement * stability,
        contribution=math.nan,  # set once every unit is known
    )


def _contributions(units: list[Unit]) -> list[Unit]:
    """contribution = weight x confidence x normalized_delta; the weights sum to 1, so
    E (their sum) is a weighted mean of confidence-shrunk normalized deltas."""
    from dataclasses import replace

    return [replace(u, contribution=u.weight * u.confidence * u.normalized_delta) for u in units]


def _interval(units: list[Unit], level: float) -> tuple[float | None, float | None]:
    """E +- z se(E), se(E) = sqrt(sum((weight x confidence x se)^2)): treats the units as
    independent (units sharing a baseline group are positively correlated: then it is
    too narrow; docs/statistics.md says so)."""
    if not units or any(u.se is None for u in units):
        return None, None
    e = sum(u.contribution for u in units)
    se = math.sqrt(sum((u.weight * u.confidence * (u.se or 0.0)) ** 2 for u in units))
    z = z_of(level)
    return e - z * se, e + z * se


def _verdict(
    h: Hypothesis,
    linked: Sequence[str],
    units: list[Unit],
    judged: list[Judgement],
    ctx: Context,
    s: Settings,
) -> Verdict:
    evidence = float(sum(u.contribution for u in units)) if units else 0.0
    low, high = _interval(units, s.level)
    pending = sum(ctx.status.get(r) in ACTIVE_STATUSES for r in linked)
    n_for = sum(u.verdict == BETTER for u in units)
    n_against = sum(u.verdict == WORSE for u in units)
    e_words = f"E={evidence:+.3g}" + (
        f" ({round(100 * s.level)}% CI {low:.3g} to {high:.3g})"
        if low is not None and high is not None
        else ""
    )
    by_strength = sorted(zip(units, judged, strict=True), key=lambda uj: -abs(uj[0].contribution))
    if not linked:
        computed, reason = "Proposed", "no linked runs yet"
    elif not units:
        computed = "Testing" if pending else "Inconclusive"
        reason = (
            f"no evidence yet: {pending} linked run(s) not finished"
            if pending
            else "no evidence: no linked group has completed samples with the target "
            "metrics and a baseline group"
        )
    elif evidence > s.supported_at and n_for and not n_against:
        computed = "Supported"
        reason = f"supported: {_unit_words(by_strength, BETTER)}; {e_words} > {s.supported_at:g}"
    elif evidence < s.refuted_at and n_against and not n_for:
        computed = "Refuted"
        reason = f"refuted: {_unit_words(by_strength, WORSE)}; {e_words} < {s.refuted_at:g}"
    else:
        computed = "Testing" if pending else "Inconclusive"
        why = _why_not(units, by_strength, evidence, s, n_for, n_against)
        tail = f"; {pending} linked run(s) not finished" if pending else ""
        reason = f"{computed.lower()}: {why}; {e_words}{tail}"
    status = h.status or computed
    if h.status:
        reason = f"set by hand (computed: {computed}: {reason})"
    return Verdict(
        hypothesis_id=h.id,
        status=status,
        computed_status=computed,
        override=h.status,
        evidence=evidence,
        evidence_low=low,
        evidence_high=high,
        n_runs=len(linked),
        n_units=len(units),
        n_for=n_for,
        n_against=n_against,
        n_pending=pending,
        supported_at=s.supported_at,
        refuted_at=s.refuted_at,
        alpha=s.alpha,
        reason=reason,
    )


def _unit_words(by_strength: list[tuple[Unit, Judgement]], verdict: str) -> str:
    u, j = next((u, j) for u, j in by_strength if u.verdict == verdict)
    return f"{u.metric} {_after_colon(j.reason)}"


def _why_not(
    units: list[Unit],
    by_strength: list[tuple[Unit, Judgement]],
    evidence: float,
    s: Settings,
    n_for: int,
    n_against: int,
) -> str:
    if n_for and n_against:
        return f"{n_for} unit(s) significantly better and {n_against} worse"
    u, j = by_strength[0]
    if n_for or n_against:  # significant, but E within the thresholds
        return (
            f"{u.metric} {j.reason}, but E is not beyond "
            f"{s.supported_at if n_for else s.refuted_at:g}"
        )
    return f"{u.metric}: {j.reason}"


def _after_colon(reason: str) -> str:
    return reason.split(": ", 1)[1] if ": " in reason else reason


def _neg(v: float | None) -> float | None:
    return None if v is None else -v
