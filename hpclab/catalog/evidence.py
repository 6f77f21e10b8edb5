"""The evidence model (research-platform PRD §5.0): how runs confirm or refute hypotheses.

For each hypothesis, linked run and target metric with a value and a baseline value there
is one **evidence unit**:

* ``value``: the run's metric, aggregated as the target (or project.yaml) says (last by
  default); ``baseline``: the same for the baseline run: the run's DAG ``parent``, its
  ``root``, the ``best`` completed run of the project not linked to the hypothesis, or a
  fixed run id. No value or no baseline: no unit.
* ``delta``: maximize: value - baseline; minimize: baseline - value (positive = better).
* ``normalized_delta`` = delta / scale, ``scale`` = 1.4826 x MAD of the metric's values
  across the project's runs (robust to outliers); when that is 0 (few runs, ties):
  |baseline|, else 1.
* ``confidence`` = status_confidence x stability x agreement, in [0, 1]:
  status_confidence from :data:`STATUS_CONFIDENCE`; stability = 1 / (1 + noise / scale)
  with noise the std of successive differences of the last 20 values / sqrt(2);
  agreement = the share of the linked runs in the run's seed group (same config but the
  seed: seeds and reruns) whose delta has the same sign as this run's.
* ``contribution`` = confidence x weight x normalized_delta, weights summing to 1 over the
  hypothesis's targets. A run's experiment-level evidence is the sum over its metrics
  (PRD: E_experiment = sum w x normalized_delta, weighted by confidence); the hypothesis's
  evidence E is the sum over every unit (PRD: E_hypothesis = sum confidence_i x
  E_experiment_i).
* Status: a manual override wins; no linked run: Proposed; E > supported: Supported;
  E < refuted: Refuted; otherwise Testing while a linked run is unfinished, else
  Inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hpclab.catalog.hypotheses import Hypothesis, Target
from hpclab.store.record import ACTIVE_STATUSES

# How much a run's values count, by its status (every status of store.record.STATUSES).
STATUS_CONFIDENCE: dict[str, float] = {
    "completed": 1.0,
    "timeout": 0.75,  # ran its whole allotment: values are real, the curve is cut short
    "running": 0.5,
    "preempted": 0.5,
    "queued": 0.5,
    "planned": 0.5,
    "failed": 0.25,
    "cancelled": 0.25,
    "lost": 0.25,
}
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Unit:
    hypothesis_id: str
    run_id: str
    metric: str
    direction: str
    baseline_run: str
    baseline: float
    value: float
    delta: float
    scale: float
    normalized_delta: float
    weight: float
    status_confidence: float
    stability: float
    agreement: float
    confidence: float
    contribution: float


@dataclass(frozen=True)
class Verdict:
    hypothesis_id: str
    status: str
    computed_status: str
    override: str | None
    evidence: float
    n_runs: int
    n_units: int
    n_pending: int
    supported_at: float
    refuted_at: float
    reason: str


@dataclass(frozen=True)
class MetricFacts:
    """What the model needs of one run's metric."""

    value: float  # aggregated as asked
    noise: float


class Context:
    """A project's runs, as the evidence model sees them."""

    def __init__(
        self,
        status: Mapping[str, str],
        metric: Callable[[str, str, str | None, str], MetricFacts | None],
        parent: Callable[[str], str | None],
        root: Callable[[str], str],
        seed_group: Mapping[str, str],
        direction: Callable[[str], str],
    ) -> None:
        self.status = status
        self.metric = metric  # (run, metric, aggregation, direction) -> facts
        self.parent = parent
        self.root = root
        self.seed_group = seed_group
        self.direction = direction
        self._scales: dict[tuple[str, str | None, str], float] = {}

    def scale(self, metric: str, aggregation: str | None, direction: str) -> float:
        """1.4826 x MAD of the metric across the project (nan when it is 0)."""
        key = (metric, aggregation, direction)
        if key not in self._scales:
            values = [
                f.value
                for run in self.status
                if (f := self.metric(run, metric, aggregation, direction)) is not None
            ]
            scale = math.nan
            if len(values) >= 3:
                a = np.asarray(values)
                scale = MAD_TO_SIGMA * float(np.median(np.abs(a - np.median(a))))
            self._scales[key] = scale if scale > 0 else math.nan
        return self._scales[key]


def evaluate(
    h: Hypothesis,
    linked: Sequence[str],
    ctx: Context,
    *,
    supported_at: float,
    refuted_at: float,
) -> tuple[list[Unit], Verdict]:
    """The evidence units of one hypothesis and its verdict."""
    total_weight = sum(t.weight for t in h.targets)
    linked_set = set(linked)
    units: list[Unit] = []
    for target in h.targets:
        direction = target.direction or ctx.direction(target.name)
        weight = target.weight / total_weight
        scale = ctx.scale(target.name, target.aggregation, direction)
        raw: dict[str, tuple[str, float, MetricFacts, float]] = {}
        for run in linked:
            facts = ctx.metric(run, target.name, target.aggregation, direction)
            base_run = _baseline_run(h.baseline, run, target, direction, ctx, linked_set)
            if facts is None or base_run is None:
                continue
            base = ctx.metric(base_run, target.name, target.aggregation, direction)
            if base is None:
                continue
            delta = (
                facts.value - base.value if direction == "maximize" else base.value - facts.value
            )
            raw[run] = (base_run, base.value, facts, delta)
        for run, (base_run, base_value, facts, delta) in raw.items():
            s = scale if not math.isnan(scale) else (abs(base_value) or 1.0)
            group = ctx.seed_group.get(run)
            peers = [r for r in raw if group is not None and ctx.seed_group.get(r) == group] or [
                run
            ]
            agreement = sum(np.sign(raw[r][3]) == np.sign(delta) for r in peers) / len(peers)
            status_conf = STATUS_CONFIDENCE.get(ctx.status.get(run, ""), 0.25)
            stability = 1.0 / (1.0 + facts.noise / s)
            confidence = status_conf * stability * agreement
            nd = delta / s
            units.append(
                Unit(
                    h.id,
                    run,
                    target.name,
                    direction,
                    base_run,
                    base_value,
                    facts.value,
                    delta,
                    s,
                    nd,
                    weight,
                    status_conf,
                    stability,
                    float(agreement),
                    confidence,
                    confidence * weight * nd,
                )
            )
    return units, _verdict(h, linked, units, ctx, supported_at, refuted_at)


def _baseline_run(
    baseline: str,
    run: str,
    target: Target,
    direction: str,
    ctx: Context,
    linked: set[str],
) -> str | None:
    if baseline == "parent":
        found = ctx.parent(run)
    elif baseline == "root":
        found = ctx.root(run)
    elif baseline == "best":
        found = _best(target, direction, ctx, linked)
    else:
        found = baseline if baseline in ctx.status else None
    return None if found == run else found


def _best(target: Target, direction: str, ctx: Context, linked: set[str]) -> str | None:
    name, aggregation = target.name, target.aggregation
    best: tuple[float, str] | None = None
    for run, status in sorted(ctx.status.items()):
        if run in linked or status != "completed":
            continue
        facts = ctx.metric(run, name, aggregation, direction)
        if facts is None:
            continue
        key = -facts.value if direction == "maximize" else facts.value
        if best is None or key < best[0]:
            best = (key, run)
    return best[1] if best else None


def _verdict(
    h: Hypothesis,
    linked: Sequence[str],
    units: list[Unit],
    ctx: Context,
    supported_at: float,
    refuted_at: float,
) -> Verdict:
    evidence = float(sum(u.contribution for u in units))
    pending = sum(ctx.status.get(r) in ACTIVE_STATUSES for r in linked)
    n_runs = len({u.run_id for u in units})
    if not linked:
        computed, reason = "Proposed", "no linked runs yet"
    elif evidence > supported_at:
        computed = "Supported"
        reason = (
            f"evidence {evidence:+.3g} > {supported_at:g} from {len(units)} units, {n_runs} runs"
        )
    elif evidence < refuted_at:
        computed = "Refuted"
        reason = f"evidence {evidence:+.3g} < {refuted_at:g} from {len(units)} units, {n_runs} runs"
    elif pending:
        computed = "Testing"
        reason = f"evidence {evidence:+.3g} so far; {pending} linked run(s) not finished"
    else:
        computed = "Inconclusive"
        reason = (
            f"evidence {evidence:+.3g} between {refuted_at:g} and {supported_at:g}"
            if units
            else "no evidence: no linked run has the target metrics and a baseline"
        )
    status = h.status or computed
    if h.status:
        reason = f"set by hand (computed: {computed}: {reason})"
    return Verdict(
        h.id,
        status,
        computed,
        h.status,
        evidence,
        len(linked),
        len(units),
        pending,
        supported_at,
        refuted_at,
        reason,
    )
