"""Code isolation: a sweep is snapshotted once at submission and every task runs from that
copy, so edits made while the array waits in the queue never reach it, and what a run
records (and ``hpclab restore`` gives back) is what ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import git, hpclab_cli, poll

from hpclab.store import RunStatus, Store
from hpclab.tracking.metrics import read_metrics

MODEL_V1 = "SCALE = 1.0\n"
MODEL_V2 = "SCALE = 100.0\n"

TRAIN = """
import os

import hydra

import hpclab
import helperlib  # from a git-ignored directory on PYTHONPATH: not code in the snapshot
import model


@hydra.main(version_base=None, config_path="conf", config_name="cfg")
def main(cfg):
    run = hpclab.current_run()
    run.log({"loss": cfg.lr * model.SCALE}, step=0)
    with open("marker.txt") as f:  # a file read relative to the working directory
        marker = f.read().strip()
    return {"version": VERSION, "marker_is_v1": float(marker == "v1"), "helper": helperlib.VALUE}


VERSION = 1.0

if __name__ == "__main__":
    main()
"""


def make_app(root: Path) -> Path:
    """A small Hydra app in its own git repository, with an uncommitted edit and an
    untracked file: what a researcher's tree looks like."""
    app = root / "proj"
    (app / "conf").mkdir(parents=True)
    (app / "train.py").write_text(TRAIN)
    (app / "model.py").write_text("SCALE = 0.5\n")
    (app / "conf" / "cfg.yaml").write_text("lr: 0.1\n")
    (app / ".gitignore").write_text("multirun/\n.venv/\n")
    # an environment inside the repository (git-ignored), on PYTHONPATH: it must stay
    # importable from the tasks, which run from the copy that does not hold it
    (app / ".venv" / "site").mkdir(parents=True)
    (app / ".venv" / "site" / "helperlib.py").write_text("VALUE = 7\n")
    git(app, "init", "-q")
    git(app, "add", "-A")
    git(app, "commit", "-q", "-m", "first")
    (app / "model.py").write_text(MODEL_V1)  # uncommitted: the patch
    (app / "marker.txt").write_text("v1\n")  # untracked: the archive
    return app


def launch(app: Path, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPCLAB_STORE": str(store), "HPCLAB_PROJECT": "iso",
           "HPCLAB_SNAPSHOT_CODE": "1"}  # fmt: skip
    env["PYTHONPATH"] = str(app / ".venv" / "site")
    return subprocess.run(
        [sys.executable, "train.py", "-m", *args],
        cwd=app, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def sweep_runs(store: Path) -> list[tuple[Any, Any]]:
    s = Store(store)
    (sweep,) = list(s.iter_sweeps("iso"))
    return [
        (s.read_record(s.run_paths("iso", rid)), s.run_paths("iso", rid)) for rid in sweep.run_ids
    ]


def catalog_rows(store: Path, query: str) -> list[dict[str, Any]]:
    dest = store.parent / "rows.json"
    out = hpclab_cli(store, "sql", query, "--format", "json", "-o", str(dest))
    assert out.returncode == 0, out.output
    rows: list[dict[str, Any]] = json.loads(dest.read_text())
    return rows


def code_json(paths: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(paths.code_json.read_text())
    return data


def test_every_task_of_a_sweep_runs_from_one_copy(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    store = tmp_path / "store"
    out = launch(app, store, "hydra/launcher=hpclab_local", "lr=0.1,0.2")
    assert out.returncode == 0, out.stderr
    runs = sweep_runs(store)
    infos = [code_json(p) for _, p in runs]
    ids = {i["isolation"]["code_id"] for i in infos}
    assert len(ids) == 1, "one snapshot for the whole sweep"
    (code_id,) = ids
    tree = Store(store).code_paths("iso", code_id).tree
    assert infos[0]["isolation"]["mode"] == "sweep"
    assert infos[0]["isolation"]["tree"] == str(tree)
    assert (tree / "model.py").read_text() == MODEL_V1, "the uncommitted edit is in the copy"
    assert (tree / "marker.txt").read_text() == "v1\n", "and the untracked file"
    assert not (tree / ".venv").exists(), "git-ignored: not code"
    assert infos[0]["isolation"]["imported_outside"] == ["helperlib"], "said, not hidden"
    for (rec, paths), lr in zip(runs, [0.1, 0.2], strict=True):
        assert rec.status is RunStatus.COMPLETED
        assert read_metrics(paths.metrics_zarr)["loss"].value.tolist() == [pytest.approx(lr)]
        assert rec.cwd == str(tree), "the task worked in the copy"
        obj = Store(store).code_paths("iso", code_id).snapshot_dir
        for name in ("manifest.json", "uncommitted.patch", "untracked.tar.gz"):
            assert (paths.snapshot_dir / name).read_bytes() == (obj / name).read_bytes(), name
    # Hydra's outputs stay where the user expects them, not inside the copy
    assert sorted(p.name for p in (app / "multirun").glob("*/*/*") if p.name.isdigit()) == [
        "0",
        "1",
    ]
    # the catalog, runs show and the site say where the code came from
    assert hpclab_cli(store, "index").returncode == 0
    rows = catalog_rows(store, "SELECT code_id, code_isolation FROM runs")
    assert rows == [{"code_id": code_id, "code_isolation": "sweep"}] * 2
    shown = hpclab_cli(store, "runs", "show", runs[0][0].id)
    assert f"ran from the sweep's copy taken at submission (code {code_id[:12]})" in shown.stdout
    assert "module helperlib was imported from the working tree" in shown.stdout
    # a second sweep of the same tree shares the copy
    out = launch(app, store, "hydra/launcher=hpclab_local", "lr=0.3")
    assert out.returncode == 0, out.stderr
    assert [p.name for p in Store(store).code_objects_dir("iso").iterdir()] == [code_id]


def test_running_in_place_says_when_the_code_changed(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    store = tmp_path / "store"
    out = launch(
        app, store, "hydra/launcher=hpclab_local", "hydra.launcher.isolate_code=false", "lr=0.1"
    )
    assert out.returncode == 0, out.stderr
    ((rec, paths),) = sweep_runs(store)
    iso = code_json(paths)["isolation"]
    assert iso["mode"] == "in-place" and iso["code_changed_since_submit"] is False
    assert rec.cwd == str(app)
    assert not list(Store(store).code_objects_dir("iso").glob("*/tree"))
    assert hpclab_cli(store, "index").returncode == 0
    rows = catalog_rows(store, "SELECT code_isolation, code_changed_since_submit FROM runs")
    assert rows == [{"code_isolation": "in-place", "code_changed_since_submit": False}]


def submit_held(app: Path, store: Path, *args: str) -> Any:
    """Submit a 2-point sweep to Slurm, held in the queue; the sweep record."""
    out = launch(
        app, store, "hydra/launcher=hpclab_slurm",
        "+hydra.launcher.additional_parameters.hold=true", "+seed=0,1", *args,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (sweep,) = list(Store(store).iter_sweeps("iso"))
    assert sweep.job_id
    return sweep


def edit_everything(app: Path) -> None:
    """What a researcher does while the array waits: train.py (the __main__ script),
    model.py (an imported module), the conf YAML and a data file, and a commit."""
    (app / "train.py").write_text(TRAIN.replace("VERSION = 1.0", "VERSION = 2.0"))
    (app / "model.py").write_text(MODEL_V2)
    (app / "conf" / "cfg.yaml").write_text("lr: 0.9\n")
    (app / "marker.txt").write_text("v2\n")
    git(app, "commit", "-q", "-am", "edited while queued")


def release_and_wait(store: Path, sweep: Any) -> list[tuple[Any, Any]]:
    subprocess.run(["scontrol", "release", str(sweep.job_id)], check=True, capture_output=True)

    def ended() -> bool:
        return all(rec.status.is_final for rec, _ in sweep_runs(store))

    poll(ended, timeout=240, interval=0.5, message="both array tasks to end")
    return sweep_runs(store)


@pytest.mark.slow
def test_edits_while_queued_never_reach_the_tasks(tmp_path: Path, slurm_cluster: str) -> None:
    """The everyday Slurm habit: submit, keep editing. Held in the queue, the array's tasks
    start only after everything was edited; they run the code as submitted, and restore
    gives back exactly that tree."""
    app = make_app(tmp_path)
    store = tmp_path / "store"
    submitted = {p: (app / p).read_bytes() for p in ("train.py", "model.py", "conf/cfg.yaml")}
    sweep = submit_held(app, store)
    edit_everything(app)
    for rec, paths in release_and_wait(store, sweep):
        assert rec.status is RunStatus.COMPLETED, rec.error
        assert rec.summary["version"] == 1.0, "the __main__ script as submitted"
        assert rec.summary["marker_is_v1"] == 1.0, "files as submitted"
        assert rec.summary["helper"] == 7.0, "a git-ignored dir on PYTHONPATH stays importable"
        loss = read_metrics(paths.metrics_zarr)["loss"].value.tolist()
        assert loss == [pytest.approx(0.1 * 1.0)], "model.py and conf/ as submitted"
        # what the run recorded is what ran: restore it and compare
        target = tmp_path / f"restored-{rec.id}"
        res = hpclab_cli(store, "restore", rec.id, "--into", str(target))
        assert res.returncode == 0, res.output
        for rel, data in submitted.items():
            assert (target / rel).read_bytes() == data, rel
        assert (target / "marker.txt").read_text() == "v1\n"


@pytest.mark.slow
def test_in_place_runs_say_their_code_changed_since_submit(
    tmp_path: Path, slurm_cluster: str
) -> None:
    """The opt-out: tasks run in the working tree, so the edits reach them, and each run
    says so (code_changed_since_submit) in its code.json, the catalog and runs show."""
    app = make_app(tmp_path)
    store = tmp_path / "store"
    sweep = submit_held(app, store, "hydra.launcher.isolate_code=false")
    edit_everything(app)
    runs = release_and_wait(store, sweep)
    for rec, paths in runs:
        assert rec.status is RunStatus.COMPLETED, rec.error
        assert rec.summary["marker_is_v1"] == 0.0, "in place: the edited files ran"
        iso = code_json(paths)["isolation"]
        assert iso["mode"] == "in-place" and iso["code_changed_since_submit"] is True
        assert iso["code_id"] != iso["submitted_code_id"]
    assert hpclab_cli(store, "index").returncode == 0
    rows = catalog_rows(store, "SELECT code_changed_since_submit FROM runs")
    assert rows == [{"code_changed_since_submit": True}] * 2
    shown = hpclab_cli(store, "runs", "show", runs[0][0].id)
    assert "CHANGED since submission" in shown.stdout
