"""Research knowledge, unit level: hypothesis selectors and files, feature diffs, DAG rules
and cycles, statistics (bootstrap coverage), Pareto ranks. Seed groups and evidence:
tests/test_seed_groups.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hpclab.catalog.dag import Naming, RunNode, build_dag, set_parent
from hpclab.catalog.diffs import diff_configs, unflatten
from hpclab.catalog.extract import flatten_features
from hpclab.catalog.hypotheses import Hypothesis, RunFacts, Selector, Target, linked_runs
from hpclab.catalog.project_config import load_project_config
from hpclab.catalog.stats import pareto_ranks
from hpclab.errors import ConfigError, DagError, HypothesisError
from hpclab.store import RunRecord, RunStatus, Store


# -- hypotheses: selectors and files (evidence itself: tests/test_seed_groups.py) ----------
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


def test_each_feature_value_is_the_leafs_json() -> None:
    leaves = [0.0, -0.0, 1e-300, 3.5e300, math.inf, -math.inf, math.nan, 0, -7, 10**400,
              True, False, None, "", "x", 'q"\\', "é日\n", 2**1023, [], {}]  # fmt: skip
    rows = list(flatten_features({"k": leaves}))
    assert [r[1] for r in rows] == [json.dumps(v, sort_keys=True) for v in leaves]
    numbers = [r[2] for r in rows]
    assert numbers[:6] == [0.0, -0.0, 1e-300, 3.5e300, math.inf, -math.inf]
    assert math.isnan(numbers[6]) and numbers[7:10] == [0.0, -7.0, None]
    assert numbers[10:] == [None] * 10  # bools, text, 2**1023 (past a DOUBLE), [], {}


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
# (intervals and tests: tests/test_stats.py, against scipy)
def test_pareto_ranks_golden() -> None:
    pts = np.array([[1, 5], [2, 2], [3, 1], [3, 3], [4, 4], [5, 5], [2, 2]])
    assert pareto_ranks(pts, [False, False]).tolist() == [0, 0, 0, 1, 2, 3, 0]
    # maximise the second objective: (1, 5) dominates every other point; of the rest
    # only (3, 1) is dominated again, by (2, 2) and (3, 3)
    assert pareto_ranks(pts, [False, True]).tolist() == [0, 1, 2, 1, 1, 1, 1]
