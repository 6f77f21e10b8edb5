"""Research knowledge, unit level: the evidence formulas (golden cases computed by hand),
feature diffs, DAG rules and cycles, statistics (bootstrap coverage), Pareto ranks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hpclab.catalog.dag import Naming, RunNode, build_dag, set_parent
from hpclab.catalog.diffs import diff_configs, unflatten
from hpclab.catalog.evidence import Context, MetricFacts, evaluate
from hpclab.catalog.extract import flatten_features
from hpclab.catalog.hypotheses import Hypothesis, RunFacts, Selector, Target, linked_runs
from hpclab.catalog.project_config import load_project_config
from hpclab.catalog.stats import compare, mean_ci, pareto_ranks
from hpclab.errors import ConfigError, DagError, HypothesisError
from hpclab.store import RunRecord, RunStatus, Store

# -- evidence: golden cases --------------------------------------------------------------
# Four runs of val/loss (minimize). B is the parent of X, Y and Z.
#   values: B 1.0, X 0.8, Y 0.9, Z 1.2 -> median 0.95, |dev| 0.05 0.15 0.05 0.25,
#   MAD = median(|dev|) = 0.1, scale = 1.4826 * 0.1 = 0.14826
#   deltas (baseline - value): X +0.2, Y +0.1, Z -0.2
#   status confidence: X completed 1, Y running 0.5, Z failed 0.25
#   noise: X 0, Y = scale (stability 1 / (1 + 1) = 0.5), Z 0
#   seed groups: X and Y together (same sign: agreement 1), Z alone (1)
#   confidence: X 1, Y 0.5 * 0.5 = 0.25, Z 0.25
#   contributions: X 0.2/0.14826, Y 0.25 * 0.1/0.14826, Z 0.25 * -0.2/0.14826
SCALE = 1.4826 * 0.1


def _ctx(values: dict[str, float], status: dict[str, str], noise: dict[str, float], groups):
    def metric(run: str, name: str, aggregation, direction) -> MetricFacts | None:
        if name != "val/loss" or run not in values:
            return None
        return MetricFacts(values[run], noise.get(run, 0.0))

    return Context(
        status,
        metric,
        lambda r: None if r == "B" else "B",
        lambda r: "B",
        groups,
        lambda m: "minimize",
    )


GOLDEN_STATUS = {"B": "completed", "X": "completed", "Y": "running", "Z": "failed"}


def test_evidence_units_match_the_hand_computed_golden_case() -> None:
    ctx = _ctx(
        {"B": 1.0, "X": 0.8, "Y": 0.9, "Z": 1.2},
        GOLDEN_STATUS,
        {"Y": SCALE},
        {"X": "g1", "Y": "g1", "Z": "g2"},
    )
    h = Hypothesis("h", "lower lr helps", (Target("val/loss"),))
    units, verdict = evaluate(h, ["X", "Y", "Z"], ctx, supported_at=1.0, refuted_at=-1.0)
    by_run = {u.run_id: u for u in units}
    assert set(by_run) == {"X", "Y", "Z"}
    expect = {
        "X": (0.2, 1.0, 1.0, 1.0, 1.0),
        "Y": (0.1, 0.5, 0.5, 1.0, 0.25),
        "Z": (-0.2, 0.25, 1.0, 1.0, 0.25),
    }
    for run, (delta, status_conf, stability, agreement, confidence) in expect.items():
        u = by_run[run]
        assert u.baseline_run == "B" and u.baseline == 1.0
        assert u.delta == pytest.approx(delta)
        assert u.scale == pytest.approx(SCALE)
        assert u.normalized_delta == pytest.approx(delta / SCALE)
        assert u.status_confidence == status_conf
        assert u.stability == pytest.approx(stability)
        assert u.agreement == agreement
        assert u.confidence == pytest.approx(confidence)
        assert u.contribution == pytest.approx(confidence * delta / SCALE)
    e = (0.2 + 0.25 * 0.1 - 0.25 * 0.2) / SCALE  # 1.1804
    assert verdict.evidence == pytest.approx(e)
    assert verdict.status == "Supported" and verdict.n_pending == 1 and verdict.n_units == 3


def test_disagreeing_seeds_lower_confidence_and_maximize_flips_the_sign() -> None:
    # Y is worse than B now: X and Y (one seed group) disagree -> agreement 1/2 each
    ctx = _ctx(
        {"B": 1.0, "X": 0.8, "Y": 1.1, "Z": 1.2},
        {**GOLDEN_STATUS, "Y": "completed"},
        {},
        {"X": "g1", "Y": "g1"},
    )
    h = Hypothesis("h", "t", (Target("val/loss"),))
    units, _ = evaluate(h, ["X", "Y"], ctx, supported_at=1.0, refuted_at=-1.0)
    assert {u.run_id: u.agreement for u in units} == {"X": 0.5, "Y": 0.5}
    # the same values, maximised: delta = value - baseline
    up = Hypothesis("h", "t", (Target("val/loss", direction="maximize"),))
    units, _ = evaluate(up, ["X"], ctx, supported_at=1.0, refuted_at=-1.0)
    assert units[0].direction == "maximize" and units[0].delta == pytest.approx(-0.2)


def test_weights_sum_to_one_and_missing_metrics_give_no_unit() -> None:
    ctx = _ctx({"B": 1.0, "X": 0.8, "Y": 0.9, "Z": 1.2}, GOLDEN_STATUS, {}, {})
    h = Hypothesis("h", "t", (Target("val/loss", weight=3.0), Target("val/acc", weight=1.0)))
    units, verdict = evaluate(h, ["X"], ctx, supported_at=1.0, refuted_at=-1.0)
    assert [(u.metric, u.weight) for u in units] == [("val/loss", 0.75)]  # no val/acc: no unit
    assert units[0].contribution == pytest.approx(0.75 * 0.2 / SCALE)
    assert verdict.evidence == pytest.approx(0.75 * 0.2 / SCALE)


def test_baselines_root_best_and_fixed_run() -> None:
    values = {"B": 1.0, "X": 0.8, "Y": 0.9, "Z": 1.2, "W": 0.85}
    status = {**GOLDEN_STATUS, "W": "completed"}
    ctx = _ctx(values, status, {}, {})
    best = Hypothesis("h", "t", (Target("val/loss"),), baseline="best")
    units, _ = evaluate(best, ["Y"], ctx, supported_at=1.0, refuted_at=-1.0)
    # best completed run not linked: X (0.8); B, W are worse
    assert units[0].baseline_run == "X" and units[0].delta == pytest.approx(-0.1)
    fixed = Hypothesis("h", "t", (Target("val/loss"),), baseline="W")
    units, _ = evaluate(fixed, ["X", "W"], ctx, supported_at=1.0, refuted_at=-1.0)
    assert [(u.run_id, u.baseline_run) for u in units] == [("X", "W")]  # W vs itself: none
    root = Hypothesis("h", "t", (Target("val/loss"),), baseline="root")
    units, _ = evaluate(root, ["B", "Z"], ctx, supported_at=1.0, refuted_at=-1.0)
    assert [u.run_id for u in units] == ["Z"]  # the root has no baseline but itself


def test_status_rules_and_manual_override() -> None:
    ctx = _ctx({"B": 1.0, "X": 0.8, "Y": 0.9, "Z": 1.2}, GOLDEN_STATUS, {}, {})
    h = Hypothesis("h", "t", (Target("val/loss"),))
    assert evaluate(h, [], ctx, supported_at=1.0, refuted_at=-1.0)[1].status == "Proposed"
    _, v = evaluate(h, ["Z"], ctx, supported_at=1.0, refuted_at=-1.0)
    assert v.computed_status == "Inconclusive"  # -0.337 within (-1, 1), nothing pending
    _, v = evaluate(h, ["Y"], ctx, supported_at=1.0, refuted_at=-1.0)
    assert v.computed_status == "Testing"  # +0.337, Y still running
    _, v = evaluate(h, ["Z"], ctx, supported_at=1.0, refuted_at=-0.3)
    assert v.status == "Refuted"
    forced = Hypothesis("h", "t", (Target("val/loss"),), status="Supported")
    _, v = evaluate(forced, ["Z"], ctx, supported_at=1.0, refuted_at=-0.3)
    assert (v.status, v.computed_status, v.override) == ("Supported", "Refuted", "Supported")


def test_selectors_link_runs_by_sweep_tag_and_feature() -> None:
    runs = [
        RunFacts("a", "s1", [], {"optim.lr": ("0.001", 0.001), "optim.name": ('"adam"', None)}),
        RunFacts("b", "s1", ["PUBLISH"], {"optim.lr": ("0.01", 0.01)}),
        RunFacts("c", None, ["PUBLISH"], {"optim.name": ('"adamw"', None)}),
    ]
    h = Hypothesis("h", "t", (Target("m"),), runs=("z",))
    assert linked_runs(h, runs) == ["z"]
    assert linked_runs(
        Hypothesis("h", "t", (Target("m"),), select=(Selector(features={"optim.lr": "1e-3"}),)),
        runs,
    ) == ["a"]  # YAML reads 1e-3 as text; compared as a number
    assert linked_runs(
        Hypothesis("h", "t", (Target("m"),), select=(Selector(sweep="s1", tag="PUBLISH"),)), runs
    ) == ["b"]
    assert linked_runs(
        Hypothesis(
            "h",
            "t",
            (Target("m"),),
            select=(Selector(features={"optim.name": "adamw"}), Selector(sweep="s1")),
        ),
        runs,
    ) == ["a", "b", "c"]


def test_malformed_hypotheses_name_the_field() -> None:
    from hpclab.catalog.hypotheses import parse_hypothesis

    with pytest.raises(HypothesisError, match=r"f.yaml: metrics\[0\].direction: 'down'"):
        parse_hypothesis(
            "h", {"title": "t", "metrics": [{"name": "m", "direction": "down"}]}, "f.yaml"
        )
    with pytest.raises(HypothesisError, match="f.yaml: baseline"):
        parse_hypothesis("h", {"title": "t", "metrics": ["m"], "baseline": "../x"}, "f.yaml")
    with pytest.raises(HypothesisError, match=r"select\[0\]: unknown key 'swep'"):
        parse_hypothesis("h", {"title": "t", "metrics": ["m"], "select": [{"swep": "s"}]}, "f.yaml")


# -- feature diffs: golden cases -----------------------------------------------------------
def test_feature_diff_of_nested_configs_and_lists() -> None:
    old = {"optim": {"lr": 0.001, "name": "adam"}, "layers": [64, 64], "model": {"d": {"x": 1}}}
    new = {"optim": {"lr": 0.0001, "name": "adam", "wd": 0.1}, "layers": [64, 64, 32], "model": {}}
    assert diff_configs(old, new) == [
        ("layers[2]", "added", None, "32"),
        ("model.d", "removed", '{"x": 1}', None),  # a removed subtree is one row
        ("optim.lr", "changed", "0.001", "0.0001"),
        ("optim.wd", "added", None, "0.1"),
    ]
    assert diff_configs({"a": 1}, {"a": "1"}) == [("a", "changed", "1", '"1"')]  # type change
    assert diff_configs(old, old) == []


def test_unflatten_inverts_the_features_table() -> None:
    config = {"a": {"b": [1, {"c": [2, 3]}], "e": {}}, "f": [], "g": None, "h": "x.y"}
    assert unflatten(flatten_features(config)) == config


# -- the DAG ---------------------------------------------------------------------------------
def test_dag_rules_and_their_precedence() -> None:
    nodes = [
        RunNode("r1", "8_base"),
        RunNode("r2", "12_from_8_lr"),  # naming -> r1
        RunNode("r3", None, parent="r1", sweep_id="s"),  # sweep base r1 -> sweep
        RunNode("r4", None, parent="r2", sweep_id="s"),  # not the base -> explicit
        RunNode("r5", "13_from_8", parent="r4"),  # explicit beats naming
        RunNode("r6", "14_from_99"),  # no run 99: no edge
    ]
    dag = build_dag(
        nodes,
        sweep_bases={"s": "r1"},
        naming=Naming(r"^(?P<id>\d+)(_from_(?P<parent>\d+))?"),
        manual={"r4": "r3"},
    )
    got = {child: (e.parent, e.rule) for child, e in dag.edges.items()}
    assert got == {
        "r2": ("r1", "naming"),
        "r3": ("r1", "sweep"),
        "r4": ("r3", "manual"),
        "r5": ("r4", "explicit"),
    }
    assert dag.lineage("r5") == ["r1", "r3", "r4", "r5"] and dag.depth("r5") == 3
    assert dag.root("r6") == "r6" and dag.descendants("r3") == {"r4", "r5"}


def test_a_cycle_drops_the_weakest_edge_and_names_the_cycle() -> None:
    dag = build_dag(
        [RunNode("a", "1_from_2"), RunNode("b", "2", parent="a")],
        naming=Naming(r"^(?P<id>\d+)(_from_(?P<parent>\d+))?"),
    )
    assert {c: e.rule for c, e in dag.edges.items()} == {"b": "explicit"}
    (message,) = dag.dropped
    assert "cycle" in message and "naming edge b -> a" in message


def test_set_parent_refuses_a_cycle_and_keeps_the_edit_in_the_store(store_root: Path) -> None:
    store = Store(store_root)
    for rid, parent in (("a", None), ("b", "a"), ("c", "b")):
        paths = store.create_run_dir("p", rid)
        store.write_record(
            paths, RunRecord(id=rid, project="p", status=RunStatus.COMPLETED, parent=parent)
        )
    with pytest.raises(DagError, match="would make a cycle: a -> b -> c -> a"):
        set_parent(store, "p", "a", "c", None)
    assert not store.dag_yaml("p").exists()
    set_parent(store, "p", "c", "a", None)
    set_parent(store, "p", "b", None, None)
    from hpclab.catalog.dag import read_manual, store_dag

    assert read_manual(store, "p") == {"c": "a", "b": None}
    dag = store_dag(store, "p", None)
    assert dag.parent("c") == "a" and dag.parent("b") is None


def test_project_yaml_validates_knowledge_settings(tmp_path: Path) -> None:
    path = tmp_path / "project.yaml"
    path.write_text("naming: {regex: '^(?P<n>\\d+)'}\n")
    with pytest.raises(ConfigError, match="no group named 'id'"):
        load_project_config(path)
    path.write_text("evidence: {supported: -1}\n")
    with pytest.raises(ConfigError, match="supported must be >= 0"):
        load_project_config(path)
    path.write_text("features: {ignore: [hpclab, data], seeds: [seed, init_seed]}\n")
    cfg = load_project_config(path)
    assert cfg.feature_ignore == ("hpclab", "data") and cfg.seed_keys == ("seed", "init_seed")


# -- statistics -------------------------------------------------------------------------------
def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1234)
    trials, hits = 300, 0
    for _ in range(trials):
        ci = mean_ci(rng.normal(5.0, 2.0, size=20))
        assert ci.low is not None and ci.high is not None and ci.low < ci.mean < ci.high
        hits += ci.low <= 5.0 <= ci.high
    # percentile bootstrap of a mean, n = 20: ~93%; a broken interval lands far away
    assert 0.88 <= hits / trials <= 0.98


def test_mean_ci_edge_cases() -> None:
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)
    one = mean_ci([2.0, math.nan])
    assert (one.n, one.mean, one.std, one.low) == (1, 2.0, None, None)
    same = mean_ci([3.0, 3.0, 3.0])
    assert (same.low, same.high, same.std) == (3.0, 3.0, 0.0)
    assert mean_ci([1.0, 2.0, 3.0]) == mean_ci([1.0, 2.0, 3.0])  # deterministic


def test_group_comparison_detects_a_real_difference_only() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.0, 1.0, 8), rng.normal(2.0, 1.0, 8)
    c = compare(a, b)
    assert c.diff == pytest.approx(a.mean() - b.mean())
    assert c.high is not None and c.high < 0  # the CI excludes 0
    assert c.p_welch is not None and c.p_welch < 0.01
    assert c.p_permutation is not None and c.p_permutation < 0.01
    same = compare(rng.normal(0.0, 1.0, 8), rng.normal(0.0, 1.0, 8))
    assert same.low is not None and same.low < 0 < same.high  # type: ignore[operator]
    assert same.p_welch is not None and same.p_welch > 0.05
    single = compare([1.0, 1.1, 0.9], [2.0])  # one baseline run: CI, no tests
    assert single.low is not None and single.p_welch is None and single.p_permutation is None


def test_tests_match_scipy() -> None:
    """The numpy forms give scipy's answers: Welch's p as ttest_ind(equal_var=False), the
    exact permutation p as permutation_test on the same splits (ties included), the
    randomized one within sampling error, and a CI close to stats.bootstrap's."""
    from scipy import stats as sp

    from hpclab.catalog.stats import permutation_p, welch_p

    def mean_diff(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    rng = np.random.default_rng(11)
    cases = [(rng.normal(0, 1, na), rng.normal(0.8, 2, nb)) for na, nb in ((2, 2), (3, 5), (6, 6))]
    cases.append((np.array([1.0, 1.0, 2.0]), np.array([1.0, 2.0, 2.0, 2.0])))  # ties
    for a, b in cases:
        assert welch_p(a, b) == pytest.approx(sp.ttest_ind(a, b, equal_var=False).pvalue)
        exact = sp.permutation_test(
            (a, b), mean_diff, permutation_type="independent", vectorized=True, n_resamples=10**6
        )
        assert permutation_p(a, b) == pytest.approx(exact.pvalue, abs=1e-12)
    a, b = rng.normal(0, 1, 12), rng.normal(0.5, 1, 12)  # C(24, 12) splits: randomized
    ref = sp.permutation_test((a, b), mean_diff, vectorized=True, n_resamples=20000, rng=1)
    assert permutation_p(a, b) == pytest.approx(ref.pvalue, abs=0.03)
    x = rng.normal(5.0, 2.0, 15)
    ours = mean_ci(x)
    theirs = sp.bootstrap((x,), np.mean, method="percentile", n_resamples=20000, rng=2)
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=0.15)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=0.15)


def test_pareto_ranks_golden() -> None:
    pts = np.array([[1, 5], [2, 2], [3, 1], [3, 3], [4, 4], [5, 5], [2, 2]])
    assert pareto_ranks(pts, [False, False]).tolist() == [0, 0, 0, 1, 2, 3, 0]
    # maximise the second objective: (1, 5) dominates every other point; of the rest
    # only (3, 1) is dominated again, by (2, 2) and (3, 3)
    assert pareto_ranks(pts, [False, True]).tolist() == [0, 1, 2, 1, 1, 1, 1]
