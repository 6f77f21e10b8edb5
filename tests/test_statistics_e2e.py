"""The research statistics of issue 15, end to end on the dev Slurm cluster with the
example project: seed groups that count each seed once (reruns and repros beside them),
code identity in the group, labels that are config diffs, evidence per comparison of
groups (paired, pooled scale, stability over the last steps, a weighted mean), "too few
seeds" for 2 vs 3, and a Pareto front per sweep.

One module fixture submits every sweep (tiny training) as Slurm array jobs from a git
repository copy of the example, reruns and repros a run, writes two hypotheses, indexes
once; each test then asserts one case on the catalog, recomputing the expected numbers
from the metrics table (numpy, scipy) rather than trusting the rows.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import hpclab_cli
from slurm_fixtures import scancel, start_cluster
from stats_fixtures import (
    PROJECT,
    code_id,
    edit_model,
    launch_sweep,
    make_example_repo,
    status,
    task_env,
    wait_ended,
)

from hpclab.catalog.connect import connect
from hpclab.store import Store, SweepRecord
from hpclab.store.atomic import write_yaml_atomic

pytestmark = pytest.mark.slow

HEX_ID = re.compile(r"\b[0-9a-f]{12,}\b")  # a group id or a code hash, never a label
CODE_PART = re.compile(r"^code=[0-9a-f]{8}$")


@dataclass(frozen=True)
class Scenario:
    """What the fixture made: the store and each sweep (see :func:`scenario`)."""

    store: Path
    parent: SweepRecord  # 3 seeds of the example's defaults (adam, lr 0.001)
    children: SweepRecord  # 3 seeds, optim.lr=0.03, children of the parent's seed 0
    sgd: SweepRecord  # 2 seeds, optim=sgd optim.lr=0.03, children of the parent's seed 0
    slow: SweepRecord  # twice the steps at tiny learning rates: dominated by the parent
    edited: SweepRecord  # slow's first point again, after the model code was edited
    rerun: str  # hpclab rerun of sgd's seed 0 (detached, on Slurm)
    repro: str  # hpclab repro of sgd's seed 0 (waited, compared)
    con: Any  # the catalog

    def rows(self, query: str, *params: Any) -> list[dict[str, Any]]:
        cur = self.con.execute(query, list(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def group_of(self, run_id: str) -> str:
        (row,) = self.rows("SELECT group_id FROM seed_groups WHERE run_id = ?", run_id)
        return str(row["group_id"])

    def last(self, run_id: str, metric: str) -> float:
        """The run's last logged value of ``metric``, from the metrics table."""
        ((value,),) = self.con.execute(
            "SELECT value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step DESC LIMIT 1",
            [run_id, metric],
        ).fetchall()
        return float(value)

    def curve(self, run_id: str, metric: str) -> list[tuple[int, float]]:
        return [
            (int(s), float(v))
            for s, v in self.con.execute(
                "SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step",
                [run_id, metric],
            ).fetchall()
        ]

    def seed(self, run_id: str) -> int:
        ((value,),) = self.con.execute(
            "SELECT value FROM features WHERE run_id = ? AND path = 'seed'", [run_id]
        ).fetchall()
        return int(json.loads(value))


@contextlib.contextmanager
def cancel_on_error(jobs: list[str]) -> Iterator[None]:
    """Cancel the Slurm jobs submitted so far when the block fails (no stray tasks)."""
    try:
        yield
    except BaseException:
        scancel(*jobs)
        raise


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Every run of the cases, on the dev cluster, indexed once."""
    slurm_conf = start_cluster()
    root = tmp_path_factory.mktemp("stats e2e")
    store = root / "store"
    env = task_env(store, slurm_conf)
    repo = make_example_repo(root)
    jobs: list[str] = []  # cancelled if the setup fails half-way

    def submit(*overrides: str) -> SweepRecord:
        sweep = launch_sweep(repo, store, env, *overrides)
        jobs.append(str(sweep.job_id))
        return sweep

    with pytest.MonkeyPatch.context() as mp, cancel_on_error(jobs):  # env: in-process CLI
        for name in list(env):
            mp.setenv(name, env[name])
        for name in [n for n in os.environ if n.startswith(("HPCLAB_", "SLURM_"))]:
            if name not in env:
                mp.delenv(name)
        parent = submit("seed=0,1,2")
        p0 = parent.run_ids[0]
        children = submit("seed=0,1,2", "optim.lr=0.03", f"hpclab.parent={p0}")
        sgd = submit("seed=0,1", "optim=sgd", "optim.lr=0.03", f"hpclab.parent={p0}")
        slow = submit("seed=0", "optim.lr=0.0001,0.0002", "train.steps=80")
        edit_model(repo)  # the queued arrays run their submitted copy; the next one not
        edited = submit("seed=0", "optim.lr=0.0001", "train.steps=80")
        s = Store(store)
        write_yaml_atomic(
            s.project_yaml(PROJECT),
            {
                "statistics": {"baseline": p0},  # labels: config diffs against the parent
                "pareto": [
                    {"name": "val/loss", "direction": "minimize"},
                    {"name": "train.steps", "direction": "minimize"},  # the compute spent
                ],
            },
        )
        s.hypotheses_dir(PROJECT).mkdir(parents=True, exist_ok=True)
        write_yaml_atomic(
            s.hypothesis_yaml(PROJECT, "higher-lr"),
            {"title": "lr 0.03 beats the default", "metrics": ["val/loss", "train/loss"],
             "baseline": "parent", "select": [{"sweep": children.id}]},
        )  # fmt: skip
        write_yaml_atomic(
            s.hypothesis_yaml(PROJECT, "sgd"),
            {"title": "sgd at lr 0.03 beats adam", "metrics": ["val/loss"],
             "baseline": "parent", "select": [{"sweep": sgd.id}]},
        )  # fmt: skip
        original = sgd.run_ids[0]
        wait_ended(store, [original])
        assert status(store, original) == "completed"
        out = hpclab_cli(store, "rerun", original, "--json")
        assert out.returncode == 0, out.output[-3000:]
        rerun_doc = json.loads(out.stdout)
        rerun = rerun_doc["run_id"]
        jobs.append(str(rerun_doc["job_id"]))
        out = hpclab_cli(store, "repro", original, "--json")
        assert out.returncode == 0, out.output[-3000:]
        repro_doc = json.loads(out.stdout)
        assert repro_doc["verdict"] == "reproduced", repro_doc
        every = [*parent.run_ids, *children.run_ids, *sgd.run_ids, *slow.run_ids,
                 *edited.run_ids, rerun]  # fmt: skip
        wait_ended(store, every)
        assert {r: status(store, r) for r in every} == dict.fromkeys(every, "completed")
        out = hpclab_cli(store, "index")
        assert out.returncode == 0, out.output[-3000:]
    con = connect(store)
    yield Scenario(store, parent, children, sgd, slow, edited, rerun, repro_doc["run_id"], con)
    con.close()


def pooled_std(a: list[float], b: list[float]) -> float:
    va, vb = np.var(a, ddof=1), np.var(b, ddof=1)
    return float(np.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2)))


def tail_noise(curve: list[tuple[int, float]], fraction: float = 0.1) -> float:
    """The method's noise of one curve, written out again: the points at steps >= last -
    fraction x (last - first), at least the last 3; std of successive differences /
    sqrt(2)."""
    first, last = curve[0][0], curve[-1][0]
    window = [v for s, v in curve if s >= last - fraction * (last - first)]
    if len(window) < 3:
        window = [v for _, v in curve[-3:]]
    diffs = [b - a for a, b in zip(window, window[1:], strict=False)]
    return statistics.stdev(diffs) / math.sqrt(2)


def labels(sc: Scenario) -> dict[str, str]:
    return {
        r["group_id"]: r["label"]
        for r in sc.rows("SELECT DISTINCT group_id, label FROM seed_groups")
    }


# -- 1. a rerun and a repro are reproductions, never extra samples ---------------------


def test_reruns_and_repros_are_reproductions_not_samples(scenario: Scenario) -> None:
    sc = scenario
    s0, s1 = sc.sgd.run_ids
    group = sc.group_of(s0)
    rows = {r["run_id"]: r for r in sc.rows("SELECT * FROM seed_groups WHERE group_id = ?", group)}
    assert set(rows) == {s0, s1, sc.rerun, sc.repro}, "same config, code and data: one group"
    assert {r["size"] for r in rows.values()} == {2}, "two seeds, two samples (not 3 or 4)"
    assert (rows[s0]["role"], rows[s1]["role"]) == ("sample", "sample")
    for again in (sc.rerun, sc.repro):
        assert (rows[again]["role"], rows[again]["of_run"]) == ("reproduction", s0)
        assert rows[again]["seed"] == rows[s0]["seed"] != rows[s1]["seed"]
    for metric in ("val/loss", "train/loss"):
        values = [sc.last(s0, metric), sc.last(s1, metric)]
        assert sc.last(sc.repro, metric) == values[0], "the repro reproduced seed 0"
        (stats,) = sc.rows(
            "SELECT * FROM seed_group_stats WHERE group_id = ? AND metric = ?", group, metric
        )
        assert stats["n"] == 2
        assert stats["mean"] == pytest.approx(statistics.mean(values), rel=1e-12)
        assert stats["std"] == pytest.approx(statistics.stdev(values), rel=1e-9)


# -- 2. code identity is part of the group -----------------------------------------------


def test_an_edited_module_makes_another_group_labelled_by_its_code(scenario: Scenario) -> None:
    sc = scenario
    before, after = sc.slow.run_ids[0], sc.edited.run_ids[0]
    v1 = {code_id(sc.store, r) for r in [*sc.parent.run_ids, *sc.slow.run_ids]}
    (c1,) = v1
    assert c1 is not None, "sweeps of one tree share its code id"
    c2 = code_id(sc.store, after)
    assert c2 is not None and c2 != c1, "the model edit changed the code identity"
    differ = sc.rows(
        "(SELECT path, value FROM features WHERE run_id = ? EXCEPT "
        "SELECT path, value FROM features WHERE run_id = ?) UNION ALL "
        "(SELECT path, value FROM features WHERE run_id = ? EXCEPT "
        "SELECT path, value FROM features WHERE run_id = ?)",
        before, after, after, before,
    )  # fmt: skip
    assert [r for r in differ if not r["path"].startswith("hpclab")] == [], "one config"
    assert sc.group_of(before) != sc.group_of(after)
    rows = {
        r["run_id"]: r
        for r in sc.rows("SELECT * FROM seed_groups WHERE run_id IN (?, ?)", before, after)
    }
    assert rows[before]["code_id"] == c1 and rows[after]["code_id"] == c2
    assert rows[before]["size"] == rows[after]["size"] == 1, "not pooled"
    la, lb = rows[before]["label"].split(), rows[after]["label"].split()
    assert la != lb
    extra = set(la) ^ set(lb)
    assert extra and all(CODE_PART.match(t) for t in extra), (la, lb)
    assert [t for t in la if not t.startswith("code=")] == [
        t for t in lb if not t.startswith("code=")
    ]
    for label, cid in ((la, c1), (lb, c2)):
        assert all(t == f"code={cid[:8]}" for t in label if t.startswith("code="))


# -- 3. labels are config diffs ----------------------------------------------------------


def test_labels_are_config_diffs_never_hashes(scenario: Scenario) -> None:
    sc = scenario
    by_group = labels(sc)
    assert len(by_group) == len(set(by_group.values())), f"labels collide: {by_group}"
    for group, label in by_group.items():
        assert label and group not in label and not HEX_ID.search(label), label
    adam = by_group[sc.group_of(sc.children.run_ids[0])]
    sgd = by_group[sc.group_of(sc.sgd.run_ids[0])]
    # both sweeps said optim.lr=0.03; what differs from the baseline config says more
    assert adam == "optim.lr=0.03"
    assert sgd == "optim.lr=0.03 optim.momentum=0.9 optim.name=sgd"
    assert by_group[sc.group_of(sc.slow.run_ids[1])] == "optim.lr=0.0002 train.steps=80"
    # the baseline group itself: its own values of the paths the others vary
    assert by_group[sc.group_of(sc.parent.run_ids[0])] == (
        "optim.lr=0.001 ~optim.momentum optim.name=adam train.steps=40"
    )
    # a comparison names its two sides by the paths where they differ
    parent = sc.group_of(sc.parent.run_ids[0])
    cmp = {
        r["group_a"]: r
        for r in sc.rows(
            "SELECT * FROM group_comparisons WHERE basis = 'parent' AND metric = 'val/loss' "
            "AND group_b = ?",
            parent,
        )
    }
    child = cmp[sc.group_of(sc.children.run_ids[0])]
    assert (child["label_a"], child["label_b"]) == ("optim.lr=0.03", "optim.lr=0.001")
    other = cmp[sc.group_of(sc.sgd.run_ids[0])]
    assert {"optim.lr=0.03", "optim.name=sgd"} <= set(other["label_a"].split())
    assert {"optim.lr=0.001", "optim.name=adam"} <= set(other["label_b"].split())
    for r in sc.rows("SELECT label_a, label_b FROM group_comparisons"):
        assert not HEX_ID.search(r["label_a"]) and not HEX_ID.search(r["label_b"]), r


# -- 4. evidence compares the child group with the whole parent group ---------------------


def expected_verdict(unit: dict[str, Any], alpha: float = 0.05, min_seeds: int = 3) -> str:
    """The verdict rule (hpclab/catalog/verdicts.py, docs/statistics.md), from the unit's
    own n and p-values: Welch's and the exact permutation test decide (the paired tests
    are shown beside); too few seeds also when the permutation test cannot reach alpha
    (its smallest two-sided p is 2 / C(n_a + n_b, n_a))."""
    n_a, n_b = unit["n"], unit["n_baseline"]
    if min(n_a, n_b) < min_seeds or 2 / math.comb(n_a + n_b, n_a) >= alpha:
        return "too few seeds"
    rejects = {p < alpha for p in (unit["p_welch"], unit["p_permutation"]) if p is not None}
    if len(rejects) == 2:
        return "tests disagree"
    if unit["p_holm"] is not None and unit["p_holm"] < alpha:
        return "better" if unit["delta"] > 0 else "worse"
    return "not significant"


def expected_agreement(unit: dict[str, Any], alpha: float = 0.05) -> float:
    ps = [p for p in (unit["p_welch"], unit["p_permutation"]) if p is not None]
    return 1.0 if len(ps) == 2 and len({p < alpha for p in ps}) == 1 else 0.5


def test_evidence_is_one_paired_comparison_of_groups_per_metric(scenario: Scenario) -> None:
    from scipy import stats as sps

    sc = scenario
    units = {
        u["metric"]: u for u in sc.rows("SELECT * FROM evidence WHERE hypothesis_id = 'higher-lr'")
    }
    assert sorted(units) == ["train/loss", "val/loss"], "one unit per metric, not per run"
    children, parents = sc.children.run_ids, sc.parent.run_ids
    for metric, u in units.items():
        assert (u["n"], u["n_baseline"]) == (3, 3)
        assert u["group_id"] == sc.group_of(children[0])
        assert u["baseline_group"] == sc.group_of(parents[0])
        assert sorted(u["runs"]) == sorted(children)
        assert sorted(u["baseline_runs"]) == sorted(parents), "the parent's whole group"
        assert u["paired"] is True, "seeds 0, 1, 2 on both sides"
        a = {sc.seed(r): sc.last(r, metric) for r in children}
        b = {sc.seed(r): sc.last(r, metric) for r in parents}
        va, vb = [a[k] for k in sorted(a)], [b[k] for k in sorted(b)]
        assert u["value"] == pytest.approx(np.mean(va)) and u["baseline"] == pytest.approx(
            np.mean(vb)
        )
        assert u["delta"] == pytest.approx(np.mean(vb) - np.mean(va)), "minimize: + is better"
        assert u["scale_kind"] == "pooled_sd"
        j = 1 - 3 / (4 * 6 - 9)  # Hedges' small-sample correction
        assert u["scale"] == pytest.approx(pooled_std(va, vb) / j, rel=1e-9)
        assert u["normalized_delta"] == pytest.approx(u["delta"] / u["scale"])
        g = (np.mean(va) - np.mean(vb)) / pooled_std(va, vb) * j
        assert u["hedges_g"] == pytest.approx(g, rel=1e-9)
        assert u["normalized_delta"] == pytest.approx(-g), "Hedges' g, + = better"
        se_g = math.sqrt(6 / 9 + g * g / (2 * 6))  # Hedges & Olkin's large-sample se
        assert u["se"] == pytest.approx(se_g, rel=1e-9)
        welch_ci = sps.ttest_ind(vb, va, equal_var=False).confidence_interval(0.95)
        assert (u["ci_low"], u["ci_high"]) == pytest.approx((welch_ci.low, welch_ci.high)), (
            "3 samples a side: Welch's t interval of the unpaired difference (the tests that "
            "decide are unpaired; a bootstrap of 3 values cannot reach past them)"
        )
        assert u["ci_low"] <= u["delta"] <= u["ci_high"]
        assert u["p_paired_t"] == pytest.approx(sps.ttest_rel(va, vb).pvalue, rel=1e-6)
        flips = sps.permutation_test(
            (va, vb), lambda x, y: np.mean(x - y), permutation_type="samples",
            n_resamples=np.inf, alternative="two-sided",
        ).pvalue  # fmt: skip
        assert u["p_paired_permutation"] == pytest.approx(flips, rel=1e-9), "8 sign flips"
        welch = sps.ttest_ind(va, vb, equal_var=False).pvalue
        assert u["p_welch"] == pytest.approx(welch, rel=1e-6)
        assert u["verdict"] == expected_verdict(u)
        assert u["agreement"] == expected_agreement(u)
        assert u["weight"] == pytest.approx(0.5)
    (hyp,) = sc.rows("SELECT * FROM hypothesis_status WHERE hypothesis_id = 'higher-lr'")
    assert hyp["n_units"] == 2 and hyp["n_runs"] == 3
    us = list(units.values())
    assert sum(u["weight"] for u in us) == pytest.approx(1.0)
    wc = [u["weight"] * u["confidence"] for u in us]
    nd = [u["normalized_delta"] for u in us]
    e = sum(w * d for w, d in zip(wc, nd, strict=True))
    assert hyp["evidence"] == pytest.approx(e), "a weighted mean of confidence x nd"
    shrunk = [u["confidence"] * u["normalized_delta"] for u in us]
    assert min(shrunk) - 1e-9 <= hyp["evidence"] <= max(shrunk) + 1e-9, "not a sum of seeds"
    assert sum(u["contribution"] for u in us) == pytest.approx(hyp["evidence"])
    se_e = math.sqrt(sum((w * u["se"]) ** 2 for w, u in zip(wc, us, strict=True)))
    z = sps.norm.ppf(0.975)
    assert (hyp["evidence_low"], hyp["evidence_high"]) == (
        pytest.approx(hyp["evidence"] - z * se_e),
        pytest.approx(hyp["evidence"] + z * se_e),
    )


# -- 5. stability over the last 10% of the steps ------------------------------------------


def test_stability_uses_the_last_tenth_of_the_steps(scenario: Scenario) -> None:
    sc = scenario
    runs = [*sc.children.run_ids, *sc.parent.run_ids]
    for metric, points in (("val/loss", 20), ("train/loss", 40)):
        (u,) = sc.rows(
            "SELECT * FROM evidence WHERE hypothesis_id = 'higher-lr' AND metric = ?", metric
        )
        curves = [sc.curve(r, metric) for r in runs]
        assert {len(c) for c in curves} == {points}
        noise = statistics.median(tail_noise(c) for c in curves)
        expected = 1.0 / (1.0 + noise / u["scale"])
        assert u["stability"] == pytest.approx(expected, rel=1e-9)
        whole = statistics.median(tail_noise(c, fraction=1.0) for c in curves)
        assert u["stability"] != pytest.approx(1.0 / (1.0 + whole / u["scale"]), rel=1e-3), (
            "the first drop of the curve is not noise"
        )
        m = min(u["n"], u["n_baseline"])
        assert u["n_confidence"] == pytest.approx(m / (m + 1))
        assert u["confidence"] == pytest.approx(u["n_confidence"] * u["agreement"] * u["stability"])


# -- 6. 2 vs 3 seeds: too few, never significant -------------------------------------------


def test_two_against_three_seeds_is_too_few_seeds(scenario: Scenario) -> None:
    from scipy import stats as sps

    sc = scenario
    (u,) = sc.rows("SELECT * FROM evidence WHERE hypothesis_id = 'sgd'")
    assert (u["n"], u["n_baseline"]) == (2, 3)
    assert u["paired"] is False, "seeds 0, 1 against 0, 1, 2"
    assert u["verdict"] == "too few seeds"
    va = [sc.last(r, "val/loss") for r in sc.sgd.run_ids]
    vb = [sc.last(r, "val/loss") for r in sc.parent.run_ids]
    welch = sps.ttest_ind(va, vb, equal_var=False).pvalue
    assert u["p_welch"] == pytest.approx(welch, rel=1e-6), "the tests are still reported"
    exact = sps.permutation_test(
        (va, vb), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
        n_resamples=np.inf, alternative="two-sided",
    ).pvalue  # fmt: skip
    assert u["p_permutation"] == pytest.approx(exact, rel=1e-9), "all 10 relabellings"
    (hyp,) = sc.rows("SELECT * FROM hypothesis_status WHERE hypothesis_id = 'sgd'")
    assert hyp["status"] not in ("Supported", "Refuted")
    assert "too few seeds" in hyp["reason"], hyp["reason"]
    assert hyp["n_for"] == hyp["n_against"] == 0
    (cmp,) = sc.rows(
        "SELECT * FROM group_comparisons WHERE basis = 'parent' AND metric = 'val/loss' "
        "AND group_a = ? AND family = ?",
        sc.group_of(sc.sgd.run_ids[0]),
        f"sweep:{sc.sgd.id}",  # the sweep's report (the rerun's and repro's have theirs)
    )
    assert (cmp["n_a"], cmp["n_b"], cmp["verdict"]) == (2, 3, "too few seeds")
    assert "too few seeds" in cmp["reason"]
    small = sc.rows(
        "SELECT verdict FROM group_comparisons WHERE least(n_a, n_b) < 3 "
        "UNION ALL SELECT verdict FROM evidence WHERE least(n, n_baseline) < 3"
    )
    assert small and {r["verdict"] for r in small} == {"too few seeds"}


# -- 7. a sweep's Pareto front is computed within the sweep ---------------------------------


def test_a_dominated_sweep_has_its_own_pareto_front(scenario: Scenario) -> None:
    sc = scenario
    slow = set(sc.slow.run_ids)
    project = sc.rows("SELECT run_id, rank FROM pareto WHERE scope = 'project' AND kind = 'run'")
    ranks = {r["run_id"]: r["rank"] for r in project}
    assert slow <= set(ranks) and all(ranks[r] > 0 for r in slow), (
        "the premise: unrelated faster runs dominate every point of the sweep"
    )
    rows = sc.rows(
        "SELECT * FROM pareto WHERE scope = 'sweep' AND scope_id = ? AND kind = 'run'",
        sc.slow.id,
    )
    assert {r["run_id"] for r in rows} == slow, "the sweep's own runs, only"
    assert all(r["objectives"] == ["val/loss", "train.steps"] for r in rows)
    assert all(r["on_front"] == (r["rank"] == 0) for r in rows)
    front = [r["run_id"] for r in rows if r["on_front"]]
    assert front, "a sweep always has a front"
    best = min(slow, key=lambda r: sc.last(r, "val/loss"))  # same steps: the lower loss
    assert front == [best]
    groups = sc.rows(
        "SELECT * FROM pareto WHERE scope = 'sweep' AND scope_id = ? AND kind = 'group'",
        sc.slow.id,
    )
    assert {r["group_id"] for r in groups} == {sc.group_of(r) for r in slow}
    assert [r["group_id"] for r in groups if r["on_front"]] == [sc.group_of(best)]
    # groups enter the fronts as their means, with the CI of each objective's mean
    (parent,) = sc.rows(
        "SELECT * FROM pareto WHERE scope = 'project' AND kind = 'group' AND group_id = ?",
        sc.group_of(sc.parent.run_ids[0]),
    )
    losses = [sc.last(r, "val/loss") for r in sc.parent.run_ids]
    assert parent["n"] == 3 and parent["values"] == [pytest.approx(np.mean(losses)), 40.0]
    assert parent["ci_low"][0] <= parent["values"][0] <= parent["ci_high"][0]
