"""Research knowledge through the indexer and the CLI: DAG edges, feature diffs, a DAG
edit that changes downstream evidence, hypotheses, seed groups, Pareto, runs diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import hpclab_cli
from scipy import stats as scipy_stats

import hpclab
from hpclab.catalog import queries
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import Indexer
from hpclab.store import Store
from hpclab.store.atomic import write_yaml_atomic

# no code snapshot: the working tree is this checkout, which may change between runs (a
# changed tree is another seed group)
NO_SNAP = {"snapshot_env": False, "snapshot_code": False}


def make(
    store: Path,
    run_id: str,
    lr: float,
    val: float,
    *,
    parent: str | None = None,
    name: str | None = None,
    seed: int = 0,
    finish: bool = True,
) -> hpclab.Run:
    run = hpclab.Run(
        project="p",
        store=store,
        run_id=run_id,
        name=name,
        parent=parent,
        settings=NO_SNAP,
        config={"optim": {"lr": lr, "name": "adam"}, "seed": seed, "hpclab": {"parent": parent}},
    )
    for s in range(5):
        run.log({"val/loss": val + 0.0 * s, "train/loss": 2 * val}, step=s)
    if finish:
        run.finish()
    else:
        run.flush()
    return run


def make_group(
    store: Path, prefix: str, lr: float, vals: list[float], parent: str | None = None
) -> list[str]:
    """One run per seed (``<prefix><seed>``), seeds 0, 1, ...; each child of
    ``<parent><seed>`` (the same seed of the parent group) when ``parent`` is given."""
    ids = []
    for seed, v in enumerate(vals):
        p = f"{parent}{seed}" if parent else None
        ids.append(make(store, f"{prefix}{seed}", lr, v, parent=p, seed=seed).id)
    return ids


def index(store: Path) -> Any:
    with Indexer(Store(store)) as ix:
        report = ix.index()
    assert report.errors == 0
    return connect(store)


def unit_rows(con: Any) -> list[dict[str, Any]]:
    cur = con.execute("SELECT * FROM evidence ORDER BY metric, label")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_dag_edit_recomputes_downstream_diffs_and_evidence(store_root: Path) -> None:
    make(store_root, "root", 0.1, 1.0)
    make(store_root, "child", 0.05, 0.8, parent="root")
    make(store_root, "grand", 0.01, 0.7, parent="child")
    Store(store_root).hypotheses_dir("p").mkdir()
    write_yaml_atomic(
        Store(store_root).hypothesis_yaml("p", "lowlr"),
        {"title": "a lower lr helps", "metrics": ["val/loss"], "runs": ["grand"]},
    )
    con = index(store_root)
    assert con.execute("SELECT parent_id, child_id, rule FROM dag_edges ORDER BY 2").fetchall() == [
        ("root", "child", "explicit"),
        ("child", "grand", "explicit"),
    ]
    assert con.execute(
        "SELECT run_id, parent_id, path, change, old, new FROM feature_diffs ORDER BY 1"
    ).fetchall() == [
        ("child", "root", "optim.lr", "changed", "0.1", "0.05"),
        ("grand", "child", "optim.lr", "changed", "0.05", "0.01"),
    ]  # hpclab.parent differs too, but the hpclab block is bookkeeping (features.ignore)
    (unit,) = unit_rows(con)  # one comparison: grand's group against its parent's group
    assert (unit["runs"], unit["baseline_runs"]) == (["grand"], ["child"])
    assert (unit["label"], unit["baseline_label"]) == ("optim.lr=0.01", "optim.lr=0.05")
    assert unit["baseline"] == 0.8 and unit["delta"] == pytest.approx(0.1)
    # one run a side: no spread to normalise by, so |baseline mean|; never significant
    assert (unit["scale_kind"], unit["scale"]) == ("baseline_abs", 0.8)
    assert unit["normalized_delta"] == pytest.approx(0.1 / 0.8)
    assert (unit["n"], unit["n_baseline"], unit["verdict"]) == (1, 1, "too few seeds")

    out = hpclab_cli(store_root, "dag", "set-parent", "grand", "root")
    assert out.returncode == 0, out.output
    assert "manual" in out.output
    con = connect(store_root)  # set-parent re-indexed
    assert con.execute(
        "SELECT parent, parent_rule, depth FROM runs WHERE run_id = 'grand'"
    ).fetchall() == [("root", "manual", 1)]
    assert con.execute(
        "SELECT parent_id, old, new FROM feature_diffs WHERE run_id = 'grand'"
    ).fetchall() == [("root", "0.1", "0.01")]
    (unit,) = unit_rows(con)
    assert (unit["baseline_runs"], unit["baseline_label"]) == (["root"], "optim.lr=0.1")
    assert unit["baseline"] == 1.0 and unit["delta"] == pytest.approx(0.3)
    status, reason = con.execute("SELECT status, reason FROM hypothesis_status").fetchone()
    assert status == "Inconclusive" and "too few seeds (1 vs 1" in reason

    # the edit is a file in the store: a catalog rebuilt from scratch keeps it
    import shutil

    shutil.rmtree(Store(store_root).catalog_dir)
    con = index(store_root)
    assert con.execute(
        "SELECT parent_id, rule FROM dag_edges WHERE child_id = 'grand'"
    ).fetchall() == [("root", "manual")]
    refused = hpclab_cli(store_root, "dag", "set-parent", "root", "grand")
    assert refused.returncode == 1
    assert "would make a cycle: root -> grand -> root" in refused.stderr


def test_naming_rule_from_project_yaml(store_root: Path) -> None:
    store = Store(store_root)
    make(store_root, "r8", 0.1, 1.0, name="8_baseline")
    make(store_root, "r12", 0.1, 0.9, name="12_from_8_lr_sweep")
    write_yaml_atomic(
        store.project_yaml("p"), {"naming": {"regex": r"^(?P<id>\d+)(_from_(?P<parent>\d+))?"}}
    )
    con = index(store_root)
    assert con.execute("SELECT parent_id, child_id, rule, detail FROM dag_edges").fetchall() == [
        ("r8", "r12", "naming", "12_from_8_lr_sweep")
    ]
    out = hpclab_cli(store_root, "dag", "show", "r12")
    assert out.returncode == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[1].strip().startswith("r8 8_baseline") and "r12 12_from_8_lr_sweep" in lines[2]
    assert "(naming)" in lines[2]


def test_seed_groups_stats_and_compare(store_root: Path) -> None:
    vals_a = [1.0, 1.2, 1.1]
    vals_b = [0.5, 0.6, 0.55]
    make_group(store_root, "a", 0.1, vals_a)
    make(store_root, "a0-rerun", 0.1, 5.0, seed=0)  # seed 0 again: a reproduction of a0
    make_group(store_root, "b", 0.01, vals_b, parent="a")
    live = make(store_root, "b9", 0.01, 9.0, seed=9, finish=False)  # running: not in the stats
    try:
        _check_seed_groups(store_root, vals_a, vals_b)
    finally:
        live.finish()  # not this process's current run in the tests after this one


def _check_seed_groups(store_root: Path, vals_a: list[float], vals_b: list[float]) -> None:
    import statistics

    con = index(store_root)
    roles = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT run_id, group_id, role, of_run, size, label FROM seed_groups"
        ).fetchall()
    }
    ga, gb = roles["a1"][0], roles["b1"][0]
    assert ga != gb
    assert {r: roles[r][:3] for r in ("a0", "a0-rerun", "b0", "b9")} == {
        "a0": (ga, "sample", None),
        "a0-rerun": (ga, "reproduction", "a0"),
        "b0": (gb, "sample", None),
        "b9": (gb, "pending", None),
    }
    # n counts seeds, not runs: the rerun and the running run are not samples
    assert {roles[r][3] for r in roles} == {3}
    assert roles["a0"][4] == "optim.lr=0.1" and roles["b0"][4] == "optim.lr=0.01"
    stats = {
        g: con.execute(
            "SELECT n, mean, std, ci_low, ci_high FROM seed_group_stats WHERE group_id = ? "
            "AND metric = 'val/loss'",
            [g],
        ).fetchone()
        for g in (ga, gb)
    }
    for g, vals in ((ga, vals_a), (gb, vals_b)):  # the rerun's 5.0 is in neither
        n, mean, std, low, high = stats[g]
        assert n == 3 and mean == pytest.approx(statistics.mean(vals))
        assert std == pytest.approx(statistics.stdev(vals))
        # 3 samples: Student's t interval (a bootstrap of 3 values cannot reach past them)
        ref = scipy_stats.ttest_1samp(vals, 0.0).confidence_interval(0.95)
        assert (low, high) == pytest.approx((ref.low, ref.high))
    cmp = con.execute(
        "SELECT group_a, group_b, label_a, label_b, n_a, n_b, diff, p_welch, verdict, reason "
        "FROM group_comparisons WHERE metric = 'val/loss' AND basis = 'parent'"
    ).fetchall()
    assert len(cmp) == 1
    a, b, la, lb, n_a, n_b, diff, p_welch, verdict, reason = cmp[0]
    assert (a, b, la, lb, n_a, n_b) == (gb, ga, "optim.lr=0.01", "optim.lr=0.1", 3, 3)
    assert diff == pytest.approx(statistics.mean(vals_b) - statistics.mean(vals_a))
    # Welch alone would call it significant; the exact permutation test of 3 vs 3
    # cannot go below p = 0.1, so the verdict says so instead
    assert p_welch < 0.01 and verdict == "too few seeds" and "p=0.1" in reason
    out = hpclab_cli(store_root, "runs", "compare", "a0", "b1")
    assert out.returncode == 0, out.output
    assert "seed groups" in out.output and "optim.lr=0.1" in out.output
    assert "-0.55" in out.output  # the difference of the means


def test_pareto_front_of_loss_and_duration(store_root: Path) -> None:
    make(store_root, "x", 0.1, 1.0)
    make(store_root, "y", 0.1, 0.5, seed=1)
    con = index(store_root)
    rows = dict(
        con.execute(
            "SELECT run_id, rank FROM pareto WHERE scope = 'project' AND kind = 'run' "
            "AND objectives[1] = 'val/loss'"
        ).fetchall()
    )
    durations = dict(con.execute("SELECT run_id, duration_s FROM runs").fetchall())
    # y has the lower loss; it is on the front, and x too only if it was faster
    assert rows["y"] == 0 and rows["x"] == (0 if durations["x"] < durations["y"] else 1)
    # x and y are seeds of one group: the group's point is the mean of both
    (values, n) = con.execute(
        "SELECT values, n FROM pareto WHERE scope = 'project' AND kind = 'group'"
    ).fetchone()
    assert n == 2 and values[0] == pytest.approx(0.75)


BASE = [1.0, 1.1, 0.9, 1.05]
FAST = [0.4, 0.45, 0.35, 0.42]  # clearly better: 4 vs 4 seeds can reach alpha 0.05


def _three_groups(store_root: Path) -> None:
    make_group(store_root, "base", 0.1, BASE)
    make_group(store_root, "fast", 0.01, FAST, parent="base")
    make_group(store_root, "other", 0.05, [0.9, 0.95, 1.0, 0.92], parent="base")


def test_hypothesis_cli_add_list_show(store_root: Path) -> None:
    _three_groups(store_root)
    out = hpclab_cli(
        store_root,
        "hypothesis",
        "add",
        "small-lr",
        "-p",
        "p",
        "--title",
        "lr 1e-2 beats its parent",
        "--metric",
        "val/loss:minimize",
        "--where",
        "optim.lr=1e-2",
    )
    assert out.returncode == 0, out.output
    again = hpclab_cli(
        store_root, "hypothesis", "add", "small-lr", "-p", "p", "--title", "t", "--metric", "m"
    )
    assert again.returncode == 1 and "exists" in again.stderr
    (unit,) = unit_rows(connect(store_root))
    assert unit["verdict"] == "better" and unit["paired"]
    e, low, high = (
        connect(store_root)
        .execute("SELECT evidence, evidence_low, evidence_high FROM hypothesis_status")
        .fetchone()
    )
    assert low < e < high
    out = hpclab_cli(store_root, "hypothesis", "list")
    assert "small-lr" in out.output and "Supported" in out.output
    assert f"{e:+.3g} (95% CI {low:.3g} to {high:.3g})" in out.output
    out = hpclab_cli(store_root, "hypothesis", "show", "small-lr")
    assert out.returncode == 0, out.output
    text = out.output
    assert f"evidence  {e:+.3g} (95% CI {low:.3g} to {high:.3g}) over 1 unit(s)" in text
    line = next(x for x in text.splitlines() if x.startswith("  val/loss"))
    delta = statistics_mean(BASE) - statistics_mean(FAST)
    for fact in (
        "optim.lr=0.01 vs optim.lr=0.1: 4 vs 4 seeds",
        f"delta {delta:+.4g} (95% CI {unit['ci_low']:.4g} to {unit['ci_high']:.4g})",
        f"permutation p={unit['p_permutation']:.2g}",
        "paired t p=",
        f"Hedges' g={unit['hedges_g']:.3g}",
        "; better;",
        f"contribution {unit['contribution']:+.3g}",
    ):
        assert fact in line, (fact, line)
    assert "samples fast0 fast1 fast2 fast3 vs base0 base1 base2 base3" in text
    assert "other" not in text  # not linked, not the baseline
    assert "±" not in text
    bad = Store(store_root).hypothesis_yaml("p", "broken")
    bad.write_text("title: x\nmetrics: [{name: m, direction: sideways}]\n")
    out = hpclab_cli(store_root, "index")
    assert out.returncode == 0
    assert "broken.yaml: metrics[0].direction: 'sideways'" in out.output
    missing = hpclab_cli(store_root, "hypothesis", "show", "nope")
    assert missing.returncode == 1 and "nope" in missing.stderr


def statistics_mean(values: list[float]) -> float:
    import statistics

    return statistics.mean(values)


def test_hypothesis_status_override_keeps_the_file(store_root: Path) -> None:
    _three_groups(store_root)
    path = Store(store_root).hypothesis_yaml("p", "small-lr")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# why we think so: see the March notes\n"
        "title: lr 1e-2 beats its parent\n"
        "metrics:\n  - {name: val/loss, direction: minimize}  # the only target\n"
        "runs: [fast0, fast1, fast2, fast3]\n"
    )
    path.write_text(text)

    def status() -> tuple[str, str, str | None]:
        con = queries.fresh(Store(store_root))
        row = con.execute(
            "SELECT status, computed_status, override FROM hypothesis_status "
            "WHERE hypothesis_id = 'small-lr'"
        ).fetchone()
        assert row is not None
        return row

    assert status() == ("Supported", "Supported", None)
    out = hpclab_cli(store_root, "hypothesis", "status", "small-lr", "refuted")
    assert out.returncode == 0, out.output
    assert status() == ("Refuted", "Supported", "Refuted")
    edited = path.read_text()
    assert edited.startswith(text) and 'status: "Refuted"' in edited  # comments kept
    out = hpclab_cli(store_root, "hypothesis", "status", "small-lr", "auto")
    assert out.returncode == 0, out.output
    assert status() == ("Supported", "Supported", None)
    assert path.read_text().count("status:") == 1
    for args, says in (
        (("small-lr", "maybe"), "status 'maybe': use one of Proposed"),
        (("nope", "Supported"), "hypothesis 'nope': found in no project"),
    ):
        before = path.read_text()
        out = hpclab_cli(store_root, "hypothesis", "status", *args)
        assert out.returncode == 1 and says in out.stderr, out.output
        assert out.stderr.startswith("hpclab: error: ") and len(out.stderr.splitlines()) == 1
        assert path.read_text() == before


def test_runs_diff_shows_config_and_code(store_root: Path, tmp_path: Path) -> None:
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    (repo / "train.py").write_text("lr = 1\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    runs = []
    for i, text in enumerate(("lr = 2\n", "lr = 3\n")):
        (repo / "train.py").write_text(text)
        run = hpclab.Run(
            project="p",
            store=store_root,
            run_id=f"r{i}",
            config={"optim": {"lr": i}},
            settings={"snapshot_env": False, "snapshot_code": True},
            code_dir=repo,
        )
        run.finish()
        runs.append(run)
    out = hpclab_cli(store_root, "runs", "diff", "r0", "r1")
    assert out.returncode == 0, out.output
    assert "optim.lr  changed  0" in out.output
    assert "changed  train.py" in out.output
    assert "-+lr = 2" in out.output and "++lr = 3" in out.output


def test_repro_verdicts_are_in_the_catalog(store_root: Path) -> None:
    from hpclab.restore.repro import reproduce

    make(store_root, "orig", 0.1, 1.0)
    make(store_root, "same", 0.1, 1.0, parent="orig")
    make(store_root, "off", 0.1, 1.5, parent="orig")
    store = Store(store_root)
    assert reproduce(store, "orig", against="same")["verdict"] == "reproduced"
    assert reproduce(store, "orig", against="off")["verdict"] == "drifted"
    con = index(store_root)
    rows = con.execute(
        "SELECT run_id, of_run, verdict, max_abs_diff, worst_metric FROM reproductions "
        "ORDER BY run_id"
    ).fetchall()
    assert rows[1] == ("same", "orig", "reproduced", 0.0, rows[1][4])
    assert rows[0][:3] == ("off", "orig", "drifted") and rows[0][3] == pytest.approx(1.0)
