"""A Hydra app run without ``-m`` under an hpclab launcher is tracked as a one-point sweep
(a real Hydra app in a temporary directory, run as users run it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpclab.store import Store

APP = """
import os, sys
import hydra
import hpclab

@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg):
    run = hpclab.current_run()
    print("PID", os.getpid(), "RUN", run.id if run else None)
    if cfg.get("fail"):
        raise RuntimeError("diverged")
    if run is not None:
        run.log({"train/loss": float(cfg.lr) * 2}, step=0)
    return {"val/loss": float(cfg.lr) / 4, "note": "not a number"}

main()
"""


@pytest.fixture
def app(tmp_path: Path, store_root: Path) -> tuple[Path, Path]:
    work = tmp_path / "app dir"
    work.mkdir()
    (work / "train.py").write_text(APP)
    return work, store_root


def _hydra(work: Path, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HPCLAB_STORE": str(store)},
    )


def _records(store: Path, project: str = "train") -> list[dict]:
    runs = store / project / "runs"
    if not runs.exists():
        return []
    return [json.loads((d / "run.json").read_text()) for d in sorted(runs.iterdir())]


def test_run_mode_is_a_tracked_one_point_sweep(app: tuple[Path, Path]) -> None:
    work, store = app
    proc = _hydra(work, store, "hydra/launcher=hpclab_local", "+lr=0.5")
    assert proc.returncode == 0, proc.stderr
    (rec,) = _records(store)
    pid = proc.stdout.split("PID ")[1].split()[0]
    assert f"RUN {rec['id']}" in proc.stdout  # the task ran inside the run
    assert rec["status"] == "completed"
    assert rec["returned"] == {"val/loss": 0.125}
    assert rec["summary"]["val/loss"] == 0.125 and rec["summary"]["train/loss"] == 1.0
    assert rec["submission"]["scheduler"] == "local" and rec["submission"]["job_id"] == pid
    sweep = Store(store).read_sweep("train", rec["sweep_id"])
    assert sweep.run_ids == [rec["id"]]
    run = store / "train" / "runs" / rec["id"]
    assert yaml.safe_load((run / "config.yaml").read_text()) == {"lr": 0.5}
    assert yaml.safe_load((run / "overrides.yaml").read_text()) == ["+lr=0.5"]
    assert (run / "snapshot" / "environment.json").exists()


def test_run_mode_failure_is_recorded(app: tuple[Path, Path]) -> None:
    work, store = app
    proc = _hydra(work, store, "hydra/launcher=hpclab_local", "+lr=0.5", "+fail=true")
    assert proc.returncode != 0
    (rec,) = _records(store)
    assert rec["status"] == "failed"
    assert rec["error"]["type"] == "RuntimeError" and "diverged" in rec["error"]["message"]


def test_multirun_is_left_to_the_launcher(app: tuple[Path, Path]) -> None:
    work, store = app
    proc = _hydra(work, store, "-m", "hydra/launcher=hpclab_local", "+lr=0.5,0.25")
    assert proc.returncode == 0, proc.stderr
    recs = _records(store)
    assert len(recs) == 2  # one run per point, none added by the run-mode callback
    assert len({r["sweep_id"] for r in recs}) == 1
    assert sorted(r["returned"]["val/loss"] for r in recs) == [0.0625, 0.125]


def test_slurm_launcher_in_run_mode_says_it_runs_here(app: tuple[Path, Path]) -> None:
    work, store = app
    proc = _hydra(work, store, "hydra/launcher=hpclab_slurm", "+lr=0.5")
    assert proc.returncode == 0, proc.stderr
    assert "runs here, not on Slurm" in proc.stderr and "-m" in proc.stderr
    (rec,) = _records(store)
    assert rec["status"] == "completed" and rec["submission"]["scheduler"] == "local"


def test_without_an_hpclab_launcher_nothing_is_recorded(app: tuple[Path, Path]) -> None:
    work, store = app
    proc = _hydra(work, store, "+lr=0.5")
    assert proc.returncode == 0, proc.stderr
    assert "RUN None" in proc.stdout
    assert _records(store) == []
