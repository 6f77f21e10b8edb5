"""Runs become knowledge: the DAG, feature diffs, seed groups and their statistics, the
Pareto front and hypothesis evidence, computed from what the indexer holds.

Everything here is derived: from runs' records and configs, metric aggregates,
``project.yaml``, ``dag.yaml`` and ``hypotheses/*.yaml``. The indexer recomputes it when
any of those change; the costly parts (deepdiff, bootstrap, permutation tests) are cached
by their inputs, so a pass where one run logged a few points recomputes almost nothing.
Statistics across seeds use completed runs only (a running run's value is not final).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from hpclab.catalog.dag import Dag, RunNode, build_dag
from hpclab.catalog.diffs import DiffRow, diff_configs, under, unflatten, without
from hpclab.catalog.evidence import Context, MetricFacts, evaluate
from hpclab.catalog.hypotheses import Hypothesis, RunFacts, linked_runs
from hpclab.catalog.project_config import KeyMetric, ProjectConfig
from hpclab.catalog.rows import Row, renamed, row
from hpclab.catalog.run_metrics import Agg
from hpclab.catalog.stats import Comparison, MeanCI, compare, mean_ci, pareto_ranks

FeatureRow = tuple[str, str, float | None]
K = TypeVar("K")
V = TypeVar("V")
RUN_COLUMNS = ("duration_s", "step", "attempt")  # runs columns usable as Pareto objectives
CI_COLUMNS = {"low": "ci_low", "high": "ci_high"}  # MeanCI/Comparison field -> column


@dataclass
class RunInput:
    """One run as the knowledge layer sees it."""

    run_id: str
    status: str
    runs: Mapping[str, Any]  # the runs-table row (name, stored_parent, sweep_id, ...)
    features: Sequence[FeatureRow]
    aggs: Mapping[str, Agg]


@dataclass
class ProjectInput:
    name: str
    config: ProjectConfig
    runs: dict[str, RunInput]
    manual_parents: Mapping[str, str | None] = field(default_factory=dict)
    sweep_bases: Mapping[str, str | None] = field(default_factory=dict)
    point_overrides: Mapping[str, Sequence[str]] = field(default_factory=dict)  # run -> overrides
    hypotheses: Sequence[Hypothesis] = ()


@dataclass
class Result:
    """Per-run columns of the runs table, and rows of the knowledge tables."""

    run_columns: dict[tuple[str, str], dict[str, Any]]
    tables: dict[str, list[Row]]
    warnings: list[str] = field(default_factory=list)  # cycles broken in a DAG


KNOWLEDGE_TABLES = (
    "dag_edges",
    "feature_diffs",
    "hypotheses",
    "evidence",
    "hypothesis_status",
    "seed_groups",
    "seed_group_stats",
    "group_comparisons",
    "pareto",
)


class Knowledge:
    """Computes :class:`Result` for the whole store; keeps caches between passes."""

    def __init__(self) -> None:
        self._diffs: _Memo[tuple[int, int], list[DiffRow]] = _Memo()
        self._cis: _Memo[tuple[float, ...], MeanCI] = _Memo()
        self._comparisons: _Memo[tuple[tuple[float, ...], tuple[float, ...]], Comparison] = _Memo()
        self._group_keys: _Memo[int, tuple[str, str]] = _Memo()
        self._pareto_memo: _Memo[Any, np.ndarray] = _Memo()

    def compute(self, projects: Sequence[ProjectInput]) -> Result:
        result = Result({}, {t: [] for t in KNOWLEDGE_TABLES})
        for p in projects:
            self._project(p, result)
        for memo in (
            self._diffs,
            self._cis,
            self._comparisons,
            self._group_keys,
            self._pareto_memo,
        ):
            memo.rotate()  # forget what this pass did not use
        return result

    # -- one project -------------------------------------------------------------------
    def _project(self, p: ProjectInput, out: Result) -> None:
        runs = p.runs
        dag = build_dag(
            (
                RunNode(
                    r.run_id,
                    r.runs.get("name"),
                    r.runs.get("stored_parent"),
                    r.runs.get("sweep_id"),
                    str(r.runs.get("created_at") or ""),
                )
                for r in runs.values()
            ),
            manual=p.manual_parents,
            sweep_bases=p.sweep_bases,
            naming=p.config.naming,
        )
        out.warnings += dag.dropped
        groups, seeds = self._seed_groups(p)
        sizes: dict[str, int] = defaultdict(int)
        for g in groups.values():
            sizes[g] += 1
        for run_id in sorted(runs):
            edge = dag.edges.get(run_id)
            out.run_columns[(p.name, run_id)] = {
                "parent": edge.parent if edge else None,
                "parent_rule": edge.rule if edge else None,
                "root_id": dag.root(run_id),
                "depth": dag.depth(run_id),
                "seed_group": groups.get(run_id),
            }
            if edge:
                out.tables["dag_edges"].append(
                    row(
                        "dag_edges",
                        project=p.name,
                        parent_id=edge.parent,
                        child_id=run_id,
                        rule=edge.rule,
                        detail=edge.detail,
                    )
                )
                for path, change, old, new in self._diff(p, runs[run_id], runs[edge.parent]):
                    out.tables["feature_diffs"].append(
                        row(
                            "feature_diffs",
                            project=p.name,
                            run_id=run_id,
                            parent_id=edge.parent,
                            path=path,
                            change=change,
                            old=old,
                            new=new,
                        )
                    )
            if run_id in groups:
                g = groups[run_id]
                label = _label(
                    tuple(p.point_overrides.get(run_id, ())),
                    p.config.seed_keys,
                    p.config.feature_ignore,
                )
                out.tables["seed_groups"].append(
                    row(
                        "seed_groups",
                        project=p.name,
                        run_id=run_id,
                        group_id=g,
                        seed=seeds[run_id],
                        size=sizes[g],
                        label=label,
                    )
                )
        metrics = _compared_metrics(p)
        self._group_stats(p, groups, metrics, dag, out)
        self._pareto(p, out)
        self._evidence(p, dag, groups, out)

    def _diff(self, p: ProjectInput, child: RunInput, parent: RunInput) -> list[DiffRow]:
        a = without(parent.features, p.config.feature_ignore)
        b = without(child.features, p.config.feature_ignore)
        return self._diffs.get(
            (hash(tuple(a)), hash(tuple(b))), lambda: diff_configs(unflatten(a), unflatten(b))
        )

    def _seed_groups(self, p: ProjectInput) -> tuple[dict[str, str], dict[str, str]]:
        """run -> group id (hash of the config minus seeds and ignored paths), run -> seeds."""
        groups: dict[str, str] = {}
        seeds: dict[str, str] = {}
        for run_id, r in p.runs.items():
            if not r.features:
                continue
            fkey = hash((tuple(r.features), p.config.feature_ignore, p.config.seed_keys))
            groups[run_id], seeds[run_id] = self._group_keys.get(
                fkey, functools.partial(_group_key, r.features, p.config)
            )
        return groups, seeds

    def _group_stats(
        self,
        p: ProjectInput,
        groups: Mapping[str, str],
        metrics: Sequence[KeyMetric],
        dag: Dag,
        out: Result,
    ) -> None:
        members: dict[str, list[str]] = defaultdict(list)
        for run_id, g in sorted(groups.items()):
            if p.runs[run_id].status == "completed":
                members[g].append(run_id)
        values: dict[tuple[str, str], list[float]] = {}
        for g, runs in sorted(members.items()):
            for km in metrics:
                vals = [v for r in runs if (v := _value(p.runs[r], km, p.config)) is not None]
                if not vals:
                    continue
                values[(g, km.name)] = vals
                ci = self._ci(vals)
                out.tables["seed_group_stats"].append(
                    row(
                        "seed_group_stats",
                        renamed(ci, **CI_COLUMNS),
                        project=p.name,
                        group_id=g,
                        metric=km.name,
                    )
                )
        for g, runs in sorted(members.items()):  # vs the group of the runs' parents
            parents = {groups.get(dag.parent(r) or "") for r in runs}
            if len(parents) == 1 and (b := parents.pop()) and b != g:
                self._compare_rows(p, g, b, "parent", metrics, values, out)
        by_sweep: dict[str, set[str]] = defaultdict(set)
        for g, runs in members.items():
            for r in runs:
                if sweep := p.runs[r].runs.get("sweep_id"):
                    by_sweep[sweep].add(g)
        for _sweep, gs in sorted(by_sweep.items()):
            for km in metrics:
                scored = [
                    (np.mean(values[(g, km.name)]), g)
                    for g in sorted(gs)
                    if len(values.get((g, km.name), ())) >= 2
                ]
                if len(scored) < 2:
                    continue
                best = (max if km.direction == "maximize" else min)(scored)[1]
                for _, g in scored:
                    if g != best:
                        self._compare_rows(p, g, best, "sweep_best", [km], values, out)

    def _compare_rows(
        self,
        p: ProjectInput,
        a: str,
        b: str,
        basis: str,
        metrics: Sequence[KeyMetric],
        values: Mapping[tuple[str, str], list[float]],
        out: Result,
    ) -> None:
        for km in metrics:
            va, vb = values.get((a, km.name)), values.get((b, km.name))
            if not va or not vb or len(va) + len(vb) < 3:
                continue
            c = self._comparisons.get((tuple(va), tuple(vb)), functools.partial(compare, va, vb))
            out.tables["group_comparisons"].append(
                row(
                    "group_comparisons",
                    renamed(c, **CI_COLUMNS),
                    project=p.name,
                    metric=km.name,
                    group_a=a,
                    group_b=b,
                    basis=basis,
                    direction=km.direction,
                )
            )

    def _ci(self, values: list[float]) -> MeanCI:
        return self._cis.get(tuple(values), lambda: mean_ci(values))

    def _pareto(self, p: ProjectInput, out: Result) -> None:
        objectives = _pareto_objectives(p)
        if len(objectives) < 2:
            return
        rows, ids = [], []
        for run_id, r in sorted(p.runs.items()):
            if r.status != "completed":
                continue
            vals = [_objective(r, o, p.config) for o in objectives]
            if all(v is not None and math.isfinite(v) for v in vals):
                rows.append(vals)
                ids.append(run_id)
        if not rows:
            return
        maximize = tuple(o.direction == "maximize" for o in objectives)
        ranks = self._pareto_memo.get(
            (tuple(map(tuple, rows)), maximize),
            functools.partial(pareto_ranks, np.asarray(rows), maximize),
        )
        names = [o.name for o in objectives]
        for run_id, vals, rank in zip(ids, rows, ranks, strict=True):
            out.tables["pareto"].append(
                row(
                    "pareto",
                    project=p.name,
                    run_id=run_id,
                    objectives=names,
                    values=vals,
                    rank=int(rank),
                    on_front=bool(rank == 0),
                )
            )

    def _evidence(self, p: ProjectInput, dag: Dag, groups: Mapping[str, str], out: Result) -> None:
        if not p.hypotheses:
            return
        config = p.config
        facts = [
            RunFacts(
                r.run_id,
                r.runs.get("sweep_id"),
                list(r.runs.get("tags") or []),
                {path: (value, num) for path, value, num in r.features},
            )
            for r in p.runs.values()
        ]

        def metric(
            run: str, name: str, aggregation: str | None, direction: str
        ) -> MetricFacts | None:
            r = p.runs.get(run)
            agg = r.aggs.get(name) if r else None
            if agg is None:
                return None
            key = config.key(name)
            how = aggregation or (key.aggregation if key else "last")
            v = _aggregate(agg, how, direction)
            return MetricFacts(v, agg.noise) if v is not None else None

        ctx = Context(
            {run_id: r.status for run_id, r in p.runs.items()},
            metric,
            dag.parent,
            dag.root,
            groups,
            config.direction,
        )
        for h in p.hypotheses:
            linked = [r for r in linked_runs(h, facts) if r in p.runs]
            units, verdict = evaluate(
                h, linked, ctx, supported_at=config.supported_at, refuted_at=config.refuted_at
            )
            out.tables["hypotheses"].append(
                row(
                    "hypotheses",
                    project=p.name,
                    hypothesis_id=h.id,
                    title=h.title,
                    description=h.description,
                    author=h.author,
                    metrics=[t.name for t in h.targets],
                    targets=json.dumps([t.to_dict() for t in h.targets]),
                    baseline=h.baseline,
                    selectors=json.dumps(
                        {"runs": list(h.runs), "select": [s.to_dict() for s in h.select]},
                        default=str,
                    ),
                    runs=linked,
                    status_override=h.status,
                    created_at=h.created_at,
                    updated_at=h.updated_at,
                    file=h.file,
                )
            )
            out.tables["evidence"].extend(row("evidence", u, project=p.name) for u in units)
            out.tables["hypothesis_status"].append(
                row("hypothesis_status", verdict, project=p.name)
            )


class _Memo(Generic[K, V]):
    """A cache that keeps what the last pass used: stale entries go at ``rotate``."""

    def __init__(self) -> None:
        self._old: dict[K, V] = {}
        self._new: dict[K, V] = {}

    def get(self, key: K, make: Callable[[], V]) -> V:
        if key in self._new:
            return self._new[key]
        value = self._old[key] if key in self._old else make()
        self._new[key] = value
        return value

    def rotate(self) -> None:
        self._old, self._new = self._new, {}


def _group_key(features: Sequence[FeatureRow], config: ProjectConfig) -> tuple[str, str]:
    kept, seed = [], {}
    for path, value, _ in without(features, config.feature_ignore):
        if _leaf(path) in config.seed_keys:
            seed[path] = json.loads(value)
        else:
            kept.append((path, value))
    digest = hashlib.sha1(json.dumps(sorted(kept)).encode()).hexdigest()[:12]
    return digest, json.dumps(seed, sort_keys=True)


def _aggregate(agg: Agg, how: str, direction: str) -> float | None:
    if how == "best":
        if not agg.n_finite:
            return None
        v = agg.max if direction == "maximize" else agg.min
    elif how == "mean":
        v = agg.mean
    else:
        v = agg.last
    return v if math.isfinite(v) else None


def _value(r: RunInput, km: KeyMetric, config: ProjectConfig) -> float | None:
    agg = r.aggs.get(km.name)
    return _aggregate(agg, km.aggregation, km.direction) if agg else None


def _compared_metrics(p: ProjectInput) -> list[KeyMetric]:
    """Key metrics; a project without any compares its losses (``*loss``), last value."""
    if p.config.key_metrics:
        return list(p.config.key_metrics)
    names = sorted({n for r in p.runs.values() for n in r.aggs if n.endswith("loss")})
    return [KeyMetric(n, p.config.direction(n), "last") for n in names]


def _pareto_objectives(p: ProjectInput) -> list[KeyMetric]:
    if p.config.pareto:
        return list(p.config.pareto)
    metrics = _compared_metrics(p)
    preferred = next((m for m in metrics if m.name == "val/loss"), metrics[0] if metrics else None)
    if preferred is None:
        return []
    return [preferred, KeyMetric("duration_s", "minimize", "last")]


def _objective(r: RunInput, o: KeyMetric, config: ProjectConfig) -> float | None:
    if o.name in RUN_COLUMNS:
        v = r.runs.get(o.name)
        return float(v) if v is not None else None
    agg = r.aggs.get(o.name)
    if agg is not None:
        key = config.key(o.name)
        return _aggregate(agg, key.aggregation if key else "last", o.direction)
    for path, _, num in r.features:
        if path == o.name:
            return num
    return None


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1].split("[", 1)[0]


@functools.lru_cache(maxsize=4096)
def _label(overrides: tuple[str, ...], seeds: tuple[str, ...], ignore: tuple[str, ...]) -> str:
    """A seed group's label: its sweep point's overrides, seeds and bookkeeping left out."""
    keep = []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if _leaf(key) not in seeds and not under(key, ignore):
            keep.append(o)
    return " ".join(keep)
