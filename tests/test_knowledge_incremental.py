"""Knowledge.compute keeps caches between passes: what it returns must not depend on them,
nor on the order the indexer hands runs in."""

from __future__ import annotations

import json
import random

import numpy as np

from hpclab.catalog.hypotheses import Hypothesis, Selector, Target
from hpclab.catalog.knowledge import Knowledge, ProjectInput, Result, RunInput
from hpclab.catalog.project_config import KeyMetric, ProjectConfig
from hpclab.catalog.run_metrics import Agg

CONFIG = ProjectConfig(
    key_metrics=(KeyMetric("val/loss"),),
    pareto=(
        KeyMetric("val/loss"),
        KeyMetric("duration_s"),
        KeyMetric("acc", "maximize"),
    ),  # three objectives: the blocked ranking
)


def _features(lr: float, wd: float, seed: int) -> list[tuple[str, str, float | None]]:
    rows = [("optim.lr", json.dumps(lr), lr), ("optim.wd", json.dumps(wd), wd)]
    return [*rows, ("seed", str(seed), float(seed)), ("hpclab.host", '"n1"', None)]


def _agg(values: list[float]) -> Agg:
    a = Agg()
    a.update(np.column_stack([np.arange(len(values), dtype=np.float64), values]))
    return a


def _runs(n: int) -> dict[str, RunInput]:
    rng = np.random.default_rng(11)
    runs = {}
    for i in range(n):
        run_id = f"r{i:03d}"
        lr, wd, seed = (0.1, 0.01, 0.001)[i % 3], (0.0, 0.1)[i // 3 % 2], i // 6 % 3
        loss = list(1.0 / (1 + np.arange(20) * lr) + rng.normal(0, 0.01, 20))
        runs[run_id] = RunInput(
            run_id,
            "completed" if i % 7 else "running",
            {
                "name": run_id,
                "sweep_id": f"s{i // 18}",
                "created_at": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}",
                "code_id": "c1",
                "duration_s": float(rng.integers(10, 20)),
                "stored_parent": "r001" if i and i % 18 == 0 else None,
            },
            _features(lr, wd, seed),
            {"val/loss": _agg(loss), "acc": _agg([1 - v for v in loss])},
        )
    return runs


class _Series:
    """A run's curve, counting the calls (each is a Parquet read in the indexer)."""

    def __init__(self, runs: dict[str, RunInput]) -> None:
        self.runs, self.calls = runs, 0

    def __call__(self, run_id: str, metric: str) -> np.ndarray | None:
        self.calls += 1
        agg = self.runs[run_id].aggs.get(metric)
        if agg is None:
            return None
        steps = np.arange(agg.length, dtype=np.float64)
        return np.column_stack([steps, agg.last + 0.01 * np.sin(steps * len(run_id))])


def _project(runs: dict[str, RunInput], series: _Series | None = None) -> ProjectInput:
    h = Hypothesis(
        "wd",
        "weight decay helps",
        (Target("val/loss"),),
        baseline="parent",
        select=(Selector(sweep="s1"),),
    )
    return ProjectInput("p", CONFIG, runs, hypotheses=(h,), series=series or _Series(runs))


def _same(a: Result, b: Result) -> None:
    assert a.run_columns == b.run_columns
    assert a.tables == b.tables
    assert a.warnings == b.warnings


def test_shuffled_and_incremental_inputs_give_a_fresh_computes_tables() -> None:
    runs = _runs(90)
    fresh = Knowledge().compute([_project(runs)])
    assert fresh.tables["dag_edges"] and fresh.tables["feature_diffs"]
    assert fresh.tables["seed_groups"] and fresh.tables["group_comparisons"]
    assert fresh.tables["pareto"] and fresh.tables["evidence"]
    order = list(runs)
    random.Random(4).shuffle(order)
    _same(Knowledge().compute([_project({r: runs[r] for r in order})]), fresh)

    k = Knowledge()
    part = dict(list(runs.items())[:60])
    _same(k.compute([_project(part)]), Knowledge().compute([_project(part)]))
    _same(k.compute([_project(dict(runs))]), fresh)  # runs added since the last pass
    _same(k.compute([_project({r: runs[r] for r in order})]), fresh)


def test_a_runs_new_features_are_seen_and_a_second_pass_reads_no_series() -> None:
    runs = _runs(60)
    k = Knowledge()
    first = _project(runs)
    k.compute([first])
    assert first.series is not None and first.series.calls > 0  # type: ignore[attr-defined]
    again = _Series(runs)
    _same(k.compute([_project(dict(runs), again)]), Knowledge().compute([_project(runs)]))
    assert again.calls == 0  # the noise of unchanged runs comes from the cache

    changed = dict(runs)
    old = runs["r020"]
    changed["r020"] = RunInput(
        old.run_id, old.status, old.runs, _features(0.5, 0.0, 1), old.aggs
    )  # a new features object: the run's config was edited
    _same(k.compute([_project(changed)]), Knowledge().compute([_project(changed)]))
    assert k.compute([_project(changed)]).tables != Knowledge().compute([_project(runs)]).tables


def test_a_long_chain_of_runs_has_each_runs_root_and_depth() -> None:
    from hpclab.catalog.dag import RunNode, build_dag

    n = 3000  # each run the parent of the next: one walk, not one per run
    nodes = [
        RunNode(f"r{i:04d}", None, f"r{i - 1:04d}" if i else None, None, f"t{i:04d}")
        for i in range(n)
    ]
    dag = build_dag(reversed(nodes), manual={}, sweep_bases={}, naming=None)
    for i in (n - 1, 1, 0, n // 2):  # asked deepest first, then from the cache
        assert dag.root(f"r{i:04d}") == "r0000"
        assert dag.depth(f"r{i:04d}") == i
        assert dag.depth(f"r{i:04d}") == len(dag.lineage(f"r{i:04d}")) - 1
    lone = build_dag([RunNode("x", None, None, None, "")], manual={}, sweep_bases={}, naming=None)
    assert (lone.root("x"), lone.depth("x")) == ("x", 0)
    looped = build_dag(
        [*nodes[:50], RunNode("x", None, "y", None, "a"), RunNode("y", None, "x", None, "b")],
        manual={"r0000": "r0049"},  # a cycle over the whole chain, and x <-> y
    )
    assert len(looped.dropped) == 2 and all("cycle" in m for m in looped.dropped)
    assert len(looped.edges) == 50 and {"x", "y"} & looped.edges.keys()
    assert looped.edges["r0000"].rule == "manual"  # the explicit edge is the weaker one
