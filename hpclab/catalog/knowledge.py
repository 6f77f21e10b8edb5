"""Runs become knowledge: the DAG, feature diffs, seed groups and their statistics,
comparisons with verdicts, Pareto fronts per scope and hypothesis evidence, computed from
what the indexer holds (the method: docs/statistics.md).

Everything here is derived: from runs' records and configs, metric aggregates,
``project.yaml``, ``dag.yaml`` and ``hypotheses/*.yaml``. The indexer recomputes it when
any of those change; the costly parts (deepdiff, bootstrap, permutation tests, the curve
noise behind stability) are cached by their inputs, so a pass where one run logged a few
points recomputes almost nothing. Statistics across seeds use samples only: one
completed run per seed (:mod:`hpclab.catalog.groups`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from hpclab.catalog.dag import Dag, RunNode, build_dag
from hpclab.catalog.diffs import DiffRow, diff_configs, unflatten, without
from hpclab.catalog.evidence import Context, Settings, evaluate
from hpclab.catalog.groups import Group, Grouping, Member, group_runs, pair_labels
from hpclab.catalog.hypotheses import Hypothesis, RunFacts, linked_runs
from hpclab.catalog.project_config import KeyMetric, ProjectConfig
from hpclab.catalog.rows import Row, positional, renamed, row
from hpclab.catalog.run_metrics import Agg
from hpclab.catalog.stats import (
    Comparison,
    MeanCI,
    compare,
    mean_ci,
    paired_p_values,
    pareto_ranks,
)
from hpclab.catalog.verdicts import judge_family

FeatureRow = tuple[str, str, float | None]
Series = Callable[[str, str], "np.ndarray | None"]  # (run, metric) -> n x 2 (step, value)
K = TypeVar("K")
V = TypeVar("V")
RUN_COLUMNS = ("duration_s", "step", "attempt")  # runs columns usable as Pareto objectives
CI_COLUMNS = {"low": "ci_low", "high": "ci_high"}  # Comparison field -> column
MEAN_CI_COLUMNS = {**CI_COLUMNS, "method": "ci_method"}  # MeanCI field -> column


@dataclass
class RunInput:
    """One run as the knowledge layer sees it."""

    run_id: str
    status: str
    runs: Mapping[str, Any]  # the runs-table row (name, stored_parent, sweep_id, code_id...)
    features: Sequence[FeatureRow]
    aggs: Mapping[str, Agg]
    data: tuple[tuple[str, str], ...] = ()  # (dataset name, sha256) of datasets.json


@dataclass
class ProjectInput:
    name: str
    config: ProjectConfig
    runs: dict[str, RunInput]
    manual_parents: Mapping[str, str | None] = field(default_factory=dict)
    sweep_bases: Mapping[str, str | None] = field(default_factory=dict)
    point_overrides: Mapping[str, Sequence[str]] = field(default_factory=dict)  # run -> overrides
    hypotheses: Sequence[Hypothesis] = ()
    series: Series | None = None  # a run's points of one metric (stability); None: no noise


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
CompareKey = tuple[
    tuple[float, ...], tuple[float, ...], tuple[tuple[float, float], ...] | None, float
]


# builders of the tables with a row per run (10,000s a pass): columns checked once
_DAG_EDGE = positional("dag_edges", "project", "parent_id", "child_id", "rule", "detail")
_FEATURE_DIFF = positional(
    "feature_diffs", "project", "run_id", "parent_id", "path", "change", "old", "new"
)
_SEED_GROUP = positional(
    "seed_groups",
    "project", "run_id", "group_id", "seed", "role", "of_run", "size", "label", "code_id",
)  # fmt: skip
_PARETO_RUN = positional(
    "pareto",
    "project", "scope", "scope_id", "objectives", "kind", "run_id", "group_id", "label",
    "values", "ci_low", "ci_high", "n", "rank", "on_front",
)  # fmt: skip


class Knowledge:
    """Computes :class:`Result` for the whole store; keeps caches between passes."""

    def __init__(self) -> None:
        self._diffs: _Memo[tuple[int, int], list[DiffRow]] = _Memo()
        self._cis: _Memo[tuple[tuple[float, ...], float], MeanCI] = _Memo()
        self._comparisons: _Memo[CompareKey, Comparison] = _Memo()
        self._groupings: _Memo[int, Grouping] = _Memo()
        self._pareto_memo: _Memo[Any, np.ndarray] = _Memo()
        self._noise: _Memo[tuple[str, str, str, int, float], float] = _Memo()
        self._hypothesis_scopes: dict[str, dict[str, set[str]]] = {}  # project -> id -> runs
        self._features: _Memo[tuple[str, str, tuple[str, ...]], _Features] = _Memo()

    def compute(self, projects: Sequence[ProjectInput]) -> Result:
        result = Result({}, {t: [] for t in KNOWLEDGE_TABLES})
        for p in projects:
            part = Result({}, {t: [] for t in KNOWLEDGE_TABLES})
            try:
                self._project(p, part)
            except Exception as e:  # one project's bad input must not stop the others
                result.warnings.append(f"project {p.name}: knowledge not computed ({e!r})")
                continue
            result.run_columns.update(part.run_columns)
            for table, rows_ in part.tables.items():
                result.tables[table].extend(rows_)
            result.warnings.extend(part.warnings)
        for memo in (
            self._diffs,
            self._cis,
            self._comparisons,
            self._groupings,
            self._pareto_memo,
            self._noise,
            self._features,
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
        grouping = self._grouping(p)
        for run_id in sorted(runs):
            edge = dag.edges.get(run_id)
            role = grouping.roles.get(run_id)
            out.run_columns[(p.name, run_id)] = {
                "parent": edge.parent if edge else None,
                "parent_rule": edge.rule if edge else None,
                "root_id": dag.root(run_id),
                "depth": dag.depth(run_id),
                "seed_group": role.group_id if role else None,
            }
            if edge:
                out.tables["dag_edges"].append(
                    _DAG_EDGE(p.name, edge.parent, run_id, edge.rule, edge.detail)
                )
                for path, change, old, new in self._diff(p, runs[run_id], runs[edge.parent]):
                    out.tables["feature_diffs"].append(
                        _FEATURE_DIFF(p.name, run_id, edge.parent, path, change, old, new)
                    )
            if role:
                g = grouping.groups[role.group_id]
                out.tables["seed_groups"].append(
                    _SEED_GROUP(
                        p.name,
                        run_id,
                        g.id,
                        role.seed,
                        role.role,
                        role.of_run,
                        len(g.samples),
                        g.label,
                        g.code_id,
                    )
                )
        metrics = _compared_metrics(p)
        values = self._group_stats(p, grouping, metrics, out)
        self._comparisons_of(p, grouping, metrics, values, dag, out)
        self._evidence(p, dag, grouping, out)  # before the fronts: hypothesis scopes
        self._pareto(p, grouping, out)

    def _diff(self, p: ProjectInput, child: RunInput, parent: RunInput) -> list[DiffRow]:
        a, b = self._features_of(p, parent), self._features_of(p, child)
        return self._diffs.get(
            (a.kept_hash, b.kept_hash),
            lambda: diff_configs(unflatten(a.kept), unflatten(b.kept)),
        )

    def _features_of(self, p: ProjectInput, r: RunInput) -> _Features:
        """A run's feature hashes and kept rows, computed again only when the indexer
        hands a new features sequence (it keeps the same object while the run's config is
        unchanged): hashing 10,000 runs' features was most of a pass with nothing to do."""
        key = (p.name, r.run_id, p.config.feature_ignore)
        f = self._features.get(key, lambda: _Features.of(r.features, p.config.feature_ignore))
        if f.source is not r.features or f.length != len(r.features):
            f = _Features.of(r.features, p.config.feature_ignore)
            self._features.put(key, f)
        return f

    def _grouping(self, p: ProjectInput) -> Grouping:
        members, rows = [], []
        for run_id in sorted(p.runs):
            r = p.runs[run_id]
            f = self._features_of(p, r)
            m = Member(
                run_id,
                r.status,
                str(r.runs.get("created_at") or ""),
                r.features,
                r.runs.get("code_id"),
                r.data,
                f.kept,
            )
            members.append(m)
            rows.append((run_id, m.status, m.created_at, f.hash, m.code_id, m.data))
        key = hash(
            (tuple(rows), p.config.feature_ignore, p.config.seed_keys, p.config.baseline_run)
        )
        return self._groupings.get(key, functools.partial(group_runs, members, p.config))

    # -- seed group statistics and comparisons -----------------------------------------
    def _group_stats(
        self, p: ProjectInput, grouping: Grouping, metrics: Sequence[KeyMetric], out: Result
    ) -> dict[tuple[str, str], dict[str, float]]:
        """(group, metric) -> seed -> the sample's value; one stats row each."""
        values: dict[tuple[str, str], dict[str, float]] = {}
        level = p.config.level
        for gid, g in sorted(grouping.groups.items()):
            for km in metrics:
                vals = {
                    seed: v
                    for seed, r in g.samples.items()
                    if (v := _value(p.runs[r], km, p.config)) is not None
                }
                if not vals:
                    continue
                values[(gid, km.name)] = vals
                ci = self._ci(list(vals.values()), level)
                out.tables["seed_group_stats"].append(
                    row(
                        "seed_group_stats",
                        renamed(ci, **MEAN_CI_COLUMNS),
                        project=p.name,
                        group_id=gid,
                        label=g.label,
                        metric=km.name,
                    )
                )
        return values

    def _comparisons_of(
        self,
        p: ProjectInput,
        grouping: Grouping,
        metrics: Sequence[KeyMetric],
        values: Mapping[tuple[str, str], dict[str, float]],
        dag: Dag,
        out: Result,
    ) -> None:
        """Each group vs its parents' groups, and each group of a sweep vs the sweep's
        best; Holm-corrected per family (a sweep report, else the group)."""
        groups = grouping.groups
        # group -> the sweeps holding its samples (a rerun's one-point sweep holds a
        # reproduction: its report is not a family of this comparison)
        sweeps_of: dict[str, set[str]] = defaultdict(set)
        for gid, g in groups.items():
            for r in g.samples.values():
                if sweep := p.runs[r].runs.get("sweep_id"):
                    sweeps_of[gid].add(str(sweep))
        planned: dict[tuple[str, str, str, str], str] = {}  # (a, b, metric, basis) -> ""
        for gid, g in sorted(groups.items()):
            parents = {
                role.group_id
                for r in g.samples.values()
                if (role := grouping.roles.get(dag.parent(r) or ""))
            }
            for b in sorted(parents - {gid}):
                for km in metrics:
                    planned[(gid, b, km.name, "parent")] = ""
        in_sweep: dict[str, set[str]] = defaultdict(set)
        for gid, sweeps in sweeps_of.items():
            for s in sweeps:
                in_sweep[s].add(gid)
        untested: dict[str, int] = defaultdict(int)  # family -> pairs not shown (Holm's m)
        for sweep, gs in sorted(in_sweep.items()):
            for km in metrics:
                scored = [
                    (float(np.mean(list(values[(o, km.name)].values()))), o)
                    for o in sorted(gs)
                    if len(values.get((o, km.name), ())) >= 2
                ]
                if len(scored) < 2:
                    continue
                best = (max if km.direction == "maximize" else min)(scored)[1]
                shown = [o for o in sorted(gs) if o != best and (o, km.name) in values]
                for o in shown:
                    planned[(o, best, km.name, "sweep_best")] = ""
                k = len(shown) + 1  # the best was chosen among these: all their pairs count
                untested[f"sweep:{sweep}"] += k * (k - 1) // 2 - len(shown)
        direction = {km.name: km.direction for km in metrics}
        families: dict[str, list[tuple[str, str, str, str, Comparison]]] = defaultdict(list)
        for a, b, metric, basis in planned:
            va, vb = values.get((a, metric)), values.get((b, metric))
            if not va or not vb:
                continue
            c = self._compare(va, vb, p.config.level)
            for family in sorted(f"sweep:{s}" for s in sweeps_of.get(a, ())) or [f"group:{a}"]:
                families[family].append((a, b, metric, basis, c))
        for family, rows_ in sorted(families.items()):
            judged = judge_family(
                [(c, direction[m], _sign(direction[m])) for _, _, m, _, c in rows_],
                alpha=p.config.alpha,
                min_seeds=p.config.min_seeds,
                untested=untested.get(family, 0),
            )
            for (a, b, metric, basis, c), j in zip(rows_, judged, strict=True):
                la, lb = pair_labels(groups[a], groups[b])
                fields = {
                    k: v
                    for k, v in renamed(c, **CI_COLUMNS).items()
                    if k not in ("std_a", "std_b", "se", "pooled_std")
                }
                out.tables["group_comparisons"].append(
                    row(
                        "group_comparisons",
                        fields,
                        project=p.name,
                        family=family,
                        metric=metric,
                        group_a=a,
                        group_b=b,
                        label_a=la,
                        label_b=lb,
                        basis=basis,
                        direction=direction[metric],
                        p_holm=j.p_holm,
                        alpha=p.config.alpha,
                        verdict=j.verdict,
                        reason=j.reason,
                    )
                )

    def _compare(
        self, va: Mapping[str, float], vb: Mapping[str, float], level: float
    ) -> Comparison:
        """a vs b, paired when both have the same seeds (at least two)."""
        a, b = list(va.values()), list(vb.values())
        pairs = None
        if va.keys() == vb.keys() and len(va) >= 2:
            pairs = [(va[s], vb[s]) for s in sorted(va)]
        return self._compare_values(a, b, pairs, level)

    def _compare_values(
        self,
        a: Sequence[float],
        b: Sequence[float],
        pairs: Sequence[tuple[float, float]] | None,
        level: float,
    ) -> Comparison:
        key = (tuple(a), tuple(b), tuple(pairs) if pairs is not None else None, level)
        return self._comparisons.get(key, functools.partial(compare_groups, a, b, pairs, level))

    def _ci(self, values: list[float], level: float) -> MeanCI:
        return self._cis.get((tuple(values), level), lambda: mean_ci(values, level=level))

    # -- Pareto fronts, per scope --------------------------------------------------------
    def _pareto(self, p: ProjectInput, grouping: Grouping, out: Result) -> None:
        objectives = _pareto_objectives(p)
        if len(objectives) < 2:
            return
        maximize = tuple(o.direction == "maximize" for o in objectives)
        names = [o.name for o in objectives]
        points: dict[str, list[float]] = {}
        for run_id in sorted(p.runs):  # by id alone: a tie would compare RunInputs
            r = p.runs[run_id]
            if r.status != "completed":
                continue
            vals = [_objective(r, o, p.config) for o in objectives]
            if all(v is not None and math.isfinite(v) for v in vals):
                points[run_id] = [float(v) for v in vals if v is not None]
        scopes: list[tuple[str, str, list[str]]] = [("project", "", sorted(points))]
        by_sweep: dict[str, list[str]] = defaultdict(list)
        for run_id in points:
            if sweep := p.runs[run_id].runs.get("sweep_id"):
                by_sweep[str(sweep)].append(run_id)
        scopes += [("sweep", s, sorted(by_sweep[s])) for s in sorted(by_sweep)]
        for hid, runs in sorted(self._hypothesis_scopes.get(p.name, {}).items()):
            scopes.append(("hypothesis", hid, sorted(r for r in runs if r in points)))
        for scope, scope_id, run_ids in scopes:
            if not run_ids:
                continue
            self._front_rows(p, out, scope, scope_id, names, maximize, grouping, points, run_ids)

    def _front_rows(
        self,
        p: ProjectInput,
        out: Result,
        scope: str,
        scope_id: str,
        names: list[str],
        maximize: tuple[bool, ...],
        grouping: Grouping,
        points: Mapping[str, list[float]],
        run_ids: list[str],
    ) -> None:
        base = {"project": p.name, "scope": scope, "scope_id": scope_id, "objectives": names}
        ranks = self._ranks([points[r] for r in run_ids], maximize)
        for run_id, rank in zip(run_ids, ranks, strict=True):
            role = grouping.roles.get(run_id)
            g = grouping.groups[role.group_id] if role else None
            out.tables["pareto"].append(
                _PARETO_RUN(
                    p.name,
                    scope,
                    scope_id,
                    names,
                    "run",
                    run_id,
                    g.id if g else None,
                    g.label if g else None,
                    points[run_id],
                    None,
                    None,
                    1,
                    int(rank),
                    bool(rank == 0),
                )
            )
        in_scope = set(run_ids)
        groups: list[tuple[Group, list[MeanCI]]] = []
        for gid in sorted({grouping.roles[r].group_id for r in run_ids if r in grouping.roles}):
            g = grouping.groups[gid]
            samples = [r for r in g.samples.values() if r in points]
            if not samples or not in_scope & set(g.samples.values()):
                continue
            cis = [
                self._ci([points[r][j] for r in samples], p.config.level) for j in range(len(names))
            ]
            groups.append((g, cis))
        if not groups:
            return
        ranks = self._ranks([[ci.mean for ci in cis] for _, cis in groups], maximize)
        for (g, cis), rank in zip(groups, ranks, strict=True):
            out.tables["pareto"].append(
                row(
                    "pareto",
                    base,
                    kind="group",
                    run_id=None,
                    group_id=g.id,
                    label=g.label,
                    values=[ci.mean for ci in cis],
                    ci_low=[ci.low for ci in cis],
                    ci_high=[ci.high for ci in cis],
                    n=cis[0].n,
                    rank=int(rank),
                    on_front=bool(rank == 0),
                )
            )

    def _ranks(self, rows_: list[list[float]], maximize: tuple[bool, ...]) -> np.ndarray:
        return self._pareto_memo.get(
            (tuple(map(tuple, rows_)), maximize),
            functools.partial(pareto_ranks, np.asarray(rows_), maximize),
        )

    # -- hypotheses ----------------------------------------------------------------------
    def _evidence(self, p: ProjectInput, dag: Dag, grouping: Grouping, out: Result) -> None:
        self._hypothesis_scopes[p.name] = {}
        if not p.hypotheses:
            return
        config = p.config
        facts = [
            RunFacts(
                r.run_id,
                r.runs.get("sweep_id"),
                list(r.runs.get("tags") or []),
                self._features_of(p, r).by_path,
            )
            for r in p.runs.values()
        ]

        def value(run: str, name: str, aggregation: str | None, direction: str) -> float | None:
            r = p.runs.get(run)
            agg = r.aggs.get(name) if r else None
            if agg is None:
                return None
            key = config.key(name)
            return _aggregate(agg, aggregation or (key.aggregation if key else "last"), direction)

        ctx = Context(
            grouping,
            {run_id: r.status for run_id, r in p.runs.items()},
            value,
            functools.partial(self._run_noise, p),
            dag.parent,
            dag.root,
            config.direction,
            lambda a, b, pairs: self._compare_values(a, b, pairs, config.level),
        )
        settings = Settings(
            config.supported_at, config.refuted_at, config.alpha, config.level, config.min_seeds
        )
        for h in p.hypotheses:
            linked = [r for r in linked_runs(h, facts) if r in p.runs]
            units, verdict = evaluate(h, linked, ctx, settings)
            self._hypothesis_scopes[p.name][h.id] = set(linked) | {
                r for u in units for r in u.baseline_runs
            }
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

    def _run_noise(self, p: ProjectInput, run: str, metric: str) -> float:
        """The noise of a run's curve over its last ``stability_fraction`` of steps."""
        r = p.runs.get(run)
        agg = r.aggs.get(metric) if r else None
        if r is None or agg is None or p.series is None:
            return 0.0
        fraction = p.config.stability_fraction
        key = (p.name, run, metric, agg.length, fraction)
        series = p.series
        return self._noise.get(key, lambda: tail_noise(series(run, metric), fraction))


def compare_groups(
    a: Sequence[float],
    b: Sequence[float],
    pairs: Sequence[tuple[float, float]] | None,
    level: float,
) -> Comparison:
    """The unpaired comparison (its CI and se go with the tests that decide: Welch and
    permutation), with the paired tests' p-values beside when seeds pair up."""
    c = compare(list(a), list(b), level=level)
    if pairs is None:
        return c
    n_pairs, p_t, p_flip = paired_p_values(pairs)
    return dataclasses.replace(
        c, paired=True, n_pairs=n_pairs, p_paired_t=p_t, p_paired_permutation=p_flip
    )


def _sign(direction: str) -> float:
    """+1 for maximize, -1 for minimize: sign x (a - b) is + when a is better."""
    return 1.0 if direction == "maximize" else -1.0


def tail_noise(points: np.ndarray | None, fraction: float) -> float:
    """std of successive differences / sqrt(2) (a trend barely moves it) of the finite
    values at steps >= last - fraction x (last - first), at least the last 3 points; 0
    with fewer than 3."""
    if points is None or not len(points):
        return 0.0
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.isfinite(pts[:, 1])]
    if len(pts) < 3:
        return 0.0
    steps, vals = pts[:, 0], pts[:, 1]
    start = steps[-1] - fraction * (steps[-1] - steps[0])
    window = vals[steps >= start]
    if len(window) < 3:
        window = vals[-3:]
    return float(np.diff(window).std(ddof=1) / math.sqrt(2))


@dataclass(frozen=True)
class _Features:
    """One run's features as the knowledge layer keys them."""

    source: Sequence[FeatureRow]  # the indexer's object these were computed from
    length: int
    hash: int  # of every row
    kept: list[FeatureRow]  # the rows not under features.ignore
    kept_hash: int

    @classmethod
    def of(cls, features: Sequence[FeatureRow], ignore: Sequence[str]) -> _Features:
        kept = without(features, ignore)
        return cls(features, len(features), hash(tuple(features)), kept, hash(tuple(kept)))

    @functools.cached_property
    def by_path(self) -> dict[str, tuple[str, float | None]]:
        """path -> (JSON value, number), what hypothesis selectors match."""
        return {path: (value, num) for path, value, num in self.source}


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

    def put(self, key: K, value: V) -> None:
        self._new[key] = value

    def rotate(self) -> None:
        self._old, self._new = self._new, {}


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
