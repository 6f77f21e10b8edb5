"""A Hydra task's return value as summary metrics: run.json, the catalog's
``metric_summary``, ``hpclab runs show`` and the site's run data."""

from __future__ import annotations

import csv
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import hpclab_cli

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import Indexer
from hpclab.launch.task import final_metrics
from hpclab.site.data import load
from hpclab.site.details import run_details
from hpclab.site.research import sweep_report
from hpclab.store import RunStatus, Store
from hpclab.store.atomic import write_yaml_atomic

APP = """
import hydra
import tensorboardX

@hydra.main(version_base=None, config_path=".", config_name="cfg")
def main(cfg):
    # a directory per point: the array's tasks run at once in the sweep's one code tree
    writer = tensorboardX.SummaryWriter(logdir=f"tb/scale{cfg.scale}")
    for i, loss in enumerate([0.5, 0.4, 0.3]):
        writer.add_scalar("val/loss", loss * cfg.scale, i)
    writer.close()
    val = {"loss": 0.25 * cfg.scale, "acc": 0.9}
    return {"val": val, "test": {"loss": 0.125}, "note": "not a number", "n": 7}

if __name__ == "__main__":
    main()
"""


def test_final_metrics_flattens_nested_dicts_and_warns_once_for_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = {"val": {"acc": 0.9, "deep": {"f1": 1}}, "lr": 0.1, "tag": "x", "ok": True}
    with caplog.at_level(logging.WARNING, logger="hpclab.launch.task"):
        got = final_metrics(result)
    assert got == {"val/acc": 0.9, "val/deep/f1": 1.0, "lr": 0.1}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "tag" in warnings[0] and "ok" in warnings[0]
    assert final_metrics(3) == {"result": 3.0}
    assert final_metrics(None) == {} and final_metrics("done") == {}


def _launch_app(
    tmp_path: Path, store: Path, scales: str, launcher: str = "hpclab_local", *args: str
) -> None:
    app = tmp_path / "my app"
    app.mkdir()
    (app / "train.py").write_text(APP)
    (app / "cfg.yaml").write_text("scale: 1.0\n")
    env = {**os.environ, "HPCLAB_STORE": str(store), "HPCLAB_PROJECT": "ret"}
    out = subprocess.run(
        [sys.executable, "train.py", "-m", f"hydra/launcher={launcher}", f"scale={scales}", *args],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    if launcher == "hpclab_local":  # on Slurm the warning is in the job's own output
        assert "not recorded (not numbers): note" in out.stdout + out.stderr


def _summary(store: Path, tmp_path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """metric_summary through ``hpclab sql``, keyed by (run, metric)."""
    out = tmp_path / "summary.csv"
    res = hpclab_cli(
        store,
        "sql",
        "SELECT run_id, name, last, min, max, n, last_step, source FROM metric_summary",
        "--format",
        "csv",
        "-o",
        str(out),
    )
    assert res.returncode == 0, res.output
    with open(out) as f:
        return {(r["run_id"], r["name"]): r for r in csv.DictReader(f)}


def test_return_values_reach_the_catalog_runs_show_and_the_site(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _launch_app(tmp_path, store, "1.0,2.0")
    s = Store(store)
    runs = sorted((s.read_record(p) for _, p in s.iter_runs()), key=lambda r: r.summary["val/loss"])
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 2
    one, two = runs
    assert one.returned == {"val/loss": 0.25, "val/acc": 0.9, "test/loss": 0.125, "n": 7.0}
    assert two.returned["val/loss"] == 0.5 and two.summary["val/loss"] == 0.5

    res = hpclab_cli(store, "index")
    assert res.returncode == 0, res.output
    rows = _summary(store, tmp_path)
    # only returned: one point, no step
    acc = rows[(one.id, "val/acc")]
    assert (acc["last"], acc["n"], acc["last_step"], acc["source"]) == ("0.9", "1", "", "return")
    # logged and returned: the returned value is the final one, the rest the logged curve
    loss = rows[(two.id, "val/loss")]
    assert float(loss["last"]) == 0.5 and loss["source"] == "logged+return"
    assert (float(loss["min"]), float(loss["max"])) == pytest.approx((0.6, 1.0))
    assert (loss["n"], loss["last_step"]) == ("3", "2")
    assert rows[(one.id, "n")]["source"] == "return"

    shown = hpclab_cli(store, "runs", "show", one.id)
    assert shown.returncode == 0, shown.output
    returned = shown.stdout.split("returned:", 1)[1]
    assert "val/acc" in returned and "0.9" in returned and "0.25" in returned

    data = load(s)
    details = run_details(data, ("ret", one.id))
    by_name = {m["name"]: m for m in details["summary"]}
    assert by_name["val/acc"]["last"] == 0.9 and by_name["val/acc"]["source"] == "return"
    assert by_name["val/loss"]["last"] == 0.25
    assert by_name["val/loss"]["source"] == "logged+return"
    assert data.metric_value(("ret", one.id), "val/acc") == 0.9
    # the sweep report's leaderboard lists them; only logged metrics get a curve
    (sweep,) = data.sweeps
    body = str(sweep_report(data, sweep, {}).body)
    curves, board = body.split("Leaderboard", 1)
    assert "val/acc" in board and "0.9" in board and "test/loss" in board
    assert "val/loss" in curves and "test/loss" not in curves


def test_return_values_survive_an_indexer_restart(store_root: Path) -> None:
    s = Store(store_root)
    with hpclab.Run(project="p", store=store_root, settings={"snapshot_env": False}) as run:
        run.log({"loss": 1.0})
        run.returned.update({"score": 3.0})
    with Indexer(s) as ix:
        ix.index()
    # a fresh indexer starts from the published catalog; a new run makes it republish
    with hpclab.Run(project="p", store=store_root, settings={"snapshot_env": False}) as other:
        other.log({"loss": 2.0})
    with Indexer(s) as ix:
        report = ix.index()
        assert report.indexed == 1 and report.published
    got = connect(store_root).execute(
        "SELECT run_id, name, last, source FROM metric_summary ORDER BY run_id, name"
    )
    assert sorted(got.fetchall()) == sorted(
        [
            (run.id, "loss", 1.0, "logged"),
            (run.id, "score", 3.0, "return"),
            (other.id, "loss", 2.0, "logged"),
        ]
    )


def test_a_returned_value_is_the_final_value_of_a_logged_key_metric(store_root: Path) -> None:
    with hpclab.Run(project="p", store=store_root, settings={"snapshot_env": False}) as run:
        for s, loss in enumerate([0.9, 0.5, 0.7]):
            run.log({"val/loss": loss}, step=s)
        run.returned.update({"val/loss": 0.6})  # e.g. re-evaluated on the best checkpoint
    write_yaml_atomic(
        Store(store_root).project_yaml("p"),
        {"key_metrics": [{"name": "val/loss", "direction": "minimize", "aggregation": "last"}]},
    )
    with Indexer(Store(store_root)) as ix:
        ix.index()
    got = connect(store_root).execute(
        "SELECT last, best, key_value, n, last_step, source FROM metric_summary"
    )
    assert got.fetchall() == [(0.6, 0.5, 0.6, 3, 2, "logged+return")]


def test_a_run_that_only_returns_values_is_not_warned_of_no_metrics(
    store_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with hpclab.Run(project="p", store=store_root, settings={"snapshot_env": False}):
        pass
    assert "warning" in capfd.readouterr().err  # the warning this test is about
    with hpclab.Run(project="p", store=store_root, settings={"snapshot_env": False}) as run:
        run.returned.update({"score": 1.0})
    assert "warning" not in capfd.readouterr().err


@pytest.mark.slow
def test_return_values_of_slurm_array_tasks_reach_the_catalog(
    tmp_path: Path, slurm_cluster: str
) -> None:
    store = tmp_path / "store"
    # wait: read the results once the array ends; one CPU a task (the dev node has two).
    # 5 minutes: Slurm's warning signal comes signal_delay_s (90 s) before the limit, and a
    # 2-minute limit sent it 30 s in, before a task on a loaded node had finished
    slurm = ["hydra.launcher.wait=true", "hydra.launcher.timeout_min=5"]
    _launch_app(
        tmp_path, store, "1.0,2.0", "hpclab_slurm", *slurm, "hydra.launcher.cpus_per_task=1"
    )
    s = Store(store)
    records = [s.read_record(p) for _, p in s.iter_runs()]
    assert sorted(r.returned["val/loss"] for r in records) == [0.25, 0.5]
    assert all(r.scheduler.get("kind") == "slurm" for r in records)
    assert hpclab_cli(store, "index").returncode == 0
    rows = _summary(store, tmp_path)
    assert sorted(float(r["last"]) for (_, n), r in rows.items() if n == "val/loss") == [0.25, 0.5]
    assert {r["source"] for (_, n), r in rows.items() if n == "test/loss"} == {"return"}
