"""python -m hpclab.launch: sweeps on the local launcher and as real Slurm array jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import hpclab_cli, poll

from hpclab.launch.scheduler import slurm_available
from hpclab.store import RunStatus, Store
from hpclab.tracking.metrics import read_metrics

TESTS = Path(__file__).resolve().parent


def launch(
    args: list[str], store: Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(TESTS), "HPCLAB_STORE": str(store), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hpclab.launch", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sweeps(store: Path, project: str = "example") -> list[dict[str, Any]]:
    d = Store(store).sweeps_dir(project)
    return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))] if d.exists() else []


def records(store: Path, sweep: dict[str, Any], project: str = "example") -> list[Any]:
    s = Store(store)
    return [s.read_record(s.run_paths(project, p["run_id"])) for p in sweep["points"]]


def logged(paths: Any) -> int:
    """Committed train/loss points of a run (0 before its first flush)."""
    got = read_metrics(paths.metrics_zarr) if paths.metrics_zarr.exists() else {}
    return len(got.get("train/loss", []))


FAST = ["task._target_=launch_tasks.stepper", "train.steps=20"]


def test_local_sweep_tracks_every_point(tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = launch(["-m", *FAST, "optim.lr=0.001,0.0001", "seed=0,1"], store, tmp_path)
    assert out.returncode == 0, out.stderr
    (sweep,) = sweeps(store)
    assert sweep["launcher"] == "local" and sweep["n_points"] == 4
    assert [p["overrides"][-2:] for p in sweep["points"]] == [
        ["optim.lr=0.001", "seed=0"],
        ["optim.lr=0.001", "seed=1"],
        ["optim.lr=0.0001", "seed=0"],
        ["optim.lr=0.0001", "seed=1"],
    ]
    for point, rec in zip(sweep["points"], records(store, sweep), strict=True):
        assert rec.status is RunStatus.COMPLETED and rec.sweep_id == sweep["id"]
        assert rec.submission["job_id"] == point["job_id"]
        paths = Store(store).run_paths("example", rec.id)
        m = read_metrics(paths.metrics_zarr)["train/loss"]
        assert m.step.tolist() == list(range(20))
        lr = float(point["overrides"][-2].split("=")[1])
        seed = int(point["overrides"][-1].split("=")[1])
        assert m.value[-1] == pytest.approx(lr * 1000 / 20 + seed)
        assert rec.summary["train/loss"] == pytest.approx(m.value[-1])


def test_bad_override_fails_before_anything_is_stored(tmp_path: Path) -> None:
    store = tmp_path / "store"
    # a config group option that does not exist: Hydra itself refuses the sweep
    out = launch(["-m", *FAST, "optim=adam,adamw"], store, tmp_path)
    assert out.returncode != 0 and "Could not find 'optim/adamw'" in out.stderr
    # a point that composes but does not resolve: preflight names the first bad point
    out = launch(["-m", *FAST, "+bad=1,${nope}"], store, tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("hpclab: error:")]
    assert "sweep point 1 (" in line and "Interpolation key 'nope' not found" in line
    assert line.endswith("nothing was submitted")
    # a task that cannot be imported
    out = launch(["-m", "task._target_=no_such_module.train", "seed=0,1"], store, tmp_path)
    assert out.returncode == 1 and "no_such_module.train" in out.stderr
    assert sweeps(store) == [] and Store(store).run_ids("example") == []


def test_command_line_additions() -> None:
    from hpclab.launch.__main__ import translate_argv

    launcher = "hydra/launcher=" + ("slurm" if slurm_available() else "local")
    assert translate_argv(["-m", "seed=0,1"]) == ["-m", "seed=0,1", launcher]
    assert translate_argv(["-m", "hydra/launcher=local", "--wait"]) == [
        "-m",
        "hydra/launcher=local",
        "hydra.launcher.wait=true",
    ]
    assert translate_argv(["seed=1"]) == ["seed=1"], "a single run uses no launcher"


def test_single_run_without_multirun(tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = launch([*FAST, "seed=3"], store, tmp_path)
    assert out.returncode == 0, out.stderr
    (run_id,) = Store(store).run_ids("example")
    rec = Store(store).read_record(Store(store).run_paths("example", run_id))
    assert rec.status is RunStatus.COMPLETED and rec.summary["train/loss"] == pytest.approx(
        1 / 20 * 1 + 3
    )


@pytest.mark.slow
def test_slurm_sweep_is_one_array_job(tmp_path: Path, slurm_cluster: str) -> None:
    store = tmp_path / "store"
    out = launch(
        [
            "-m",
            "hydra/launcher=slurm",
            *FAST,
            "optim.lr=0.001,0.0001",
            "seed=0,1,2",
            "+fail_seed=2",
            "hydra.launcher.array_parallelism=3",
        ],
        store,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    (sweep,) = sweeps(store)
    assert sweep["launcher"] == "slurm" and sweep["job_id"]
    (script,) = tmp_path.glob(f"multirun/*/*/.submitit/{sweep['job_id']}/*submission.sh")
    assert "#SBATCH --array=0-5%3" in script.read_text(), "one array, parallelism honoured"
    assert [p["job_id"] for p in sweep["points"]] == [f"{sweep['job_id']}_{i}" for i in range(6)]
    assert f"hpclab --store {store} status {sweep['id']}" in out.stderr, (
        "detached: says how to follow"
    )

    def all_final() -> bool:
        return all(r.status.is_final for r in records(store, sweep))

    poll(all_final, timeout=240, interval=0.5, message="every array task to end")
    for point, rec in zip(sweep["points"], records(store, sweep), strict=True):
        seed = int(point["overrides"][-2].split("=")[1])
        assert rec.scheduler["kind"] == "slurm"
        assert rec.scheduler["array_job_id"] == sweep["job_id"]
        assert (
            f"{rec.scheduler['array_job_id']}_{rec.scheduler['array_task_id']}" == point["job_id"]
        )
        if seed == 2:
            assert rec.status is RunStatus.FAILED and "planned failure" in rec.error["message"]
        else:
            assert rec.status is RunStatus.COMPLETED
            paths = Store(store).run_paths("example", rec.id)
            assert read_metrics(paths.metrics_zarr)["train/loss"].step.tolist() == list(range(20))


@pytest.mark.slow
def test_requeued_task_resumes_the_same_run_without_duplicates(
    tmp_path: Path, slurm_cluster: str
) -> None:
    store = tmp_path / "store"
    out = launch(
        [
            "-m",
            "hydra/launcher=slurm",
            "task._target_=launch_tasks.stepper",
            "train.steps=150",
            "+sleep=0.1",
            "seed=0",
        ],
        store,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    (sweep,) = sweeps(store)
    job_id = sweep["points"][0]["job_id"]
    paths = Store(store).run_paths("example", sweep["points"][0]["run_id"])

    poll(lambda: logged(paths) >= 20, timeout=120, message="the task to log 20 steps")
    subprocess.run(["scontrol", "requeue", job_id], check=True, capture_output=True)
    _release_soon(job_id)
    poll(
        lambda: Store(store).read_record(paths).status is RunStatus.COMPLETED,
        timeout=240,
        interval=0.5,
        message="the requeued task to complete the run",
    )
    rec = Store(store).read_record(paths)
    assert rec.attempt >= 1 and rec.history[-1]["event"] == "resumed"
    assert int(rec.scheduler["restart_count"]) >= 1
    steps = read_metrics(paths.metrics_zarr)["train/loss"].step.tolist()
    assert steps == list(range(150)), "no step lost or duplicated across the requeue"


def _squeue_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip()


def _release_soon(job_id: str) -> None:
    """Slurm holds a requeued job for two minutes (BeginTime); shorten the hold to 3 s.

    Not to 0: slurmd revokes the old instance's credential with a one-second timestamp, and
    a new instance started within that second fails ("Job credential revoked"). Slurm does
    the waiting, not the test."""
    poll(lambda: _squeue_state(job_id) == "PENDING", timeout=120, message="the job to be pending")
    subprocess.run(
        ["scontrol", "update", f"JobId={job_id}", "StartTime=now+3"],
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_scancel_of_a_running_task_ends_cancelled(tmp_path: Path, slurm_cluster: str) -> None:
    store = tmp_path / "store"
    args = ["-m", "hydra/launcher=slurm", "task._target_=launch_tasks.stepper"]
    out = launch([*args, "train.steps=2000", "+sleep=0.05", "seed=0,1"], store, tmp_path)
    assert out.returncode == 0, out.stderr
    (sweep,) = sweeps(store)
    first, second = sweep["points"]
    paths = Store(store).run_paths("example", first["run_id"])
    poll(
        lambda: Store(store).read_record(paths).status is RunStatus.RUNNING,
        timeout=120,
        message="the task to run",
    )
    subprocess.run(["scancel", first["job_id"]], check=True)

    def cancelled() -> bool:
        assert hpclab_cli(store, "status", sweep["id"]).returncode == 0
        return Store(store).read_record(paths).status is RunStatus.CANCELLED

    poll(cancelled, timeout=120, interval=1.0, message="the scancelled run to be cancelled")
    cancel = hpclab_cli(store, "cancel", sweep["id"])
    assert cancel.returncode == 0, cancel.stderr
    other = Store(store).run_paths("example", second["run_id"])
    assert Store(store).read_record(other).status is RunStatus.CANCELLED
    assert Store(store).read_record(other).cancelled_by == "hpclab cancel"


@pytest.mark.slow
def test_preemption_signal_requeues_and_resumes_with_the_task_state(
    tmp_path: Path, slurm_cluster: str
) -> None:
    """Slurm's warning signal (USR2, sent before a time limit or a preemption) goes through
    submitit's checkpointing: the task saves its state (on_preempt), the run is recorded
    preempted, the job is requeued and the same run resumes from the saved state.

    The signal is sent with scancel: Slurm sends --signal warnings up to a minute early,
    so a one-minute time limit would make the test's timing a lottery."""
    store = tmp_path / "store"
    args = ["-m", "hydra/launcher=slurm", "task._target_=launch_tasks.stepper", "seed=0"]
    out = launch([*args, "train.steps=200", "+sleep=0.05"], store, tmp_path)
    assert out.returncode == 0, out.stderr
    (sweep,) = sweeps(store)
    job_id = sweep["points"][0]["job_id"]
    paths = Store(store).run_paths("example", sweep["points"][0]["run_id"])

    poll(lambda: logged(paths) >= 20, timeout=120, message="the task to log 20 steps")
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    poll(
        lambda: Store(store).read_record(paths).status is RunStatus.PREEMPTED,
        timeout=60,
        message="the run to be recorded preempted",
    )
    saved = json.loads((paths.checkpoints_dir / "state.json").read_text())["step"]
    assert saved >= 19
    _release_soon(job_id)
    poll(
        lambda: Store(store).read_record(paths).status is RunStatus.COMPLETED,
        timeout=180,
        interval=0.5,
        message="the requeued task to complete the run",
    )
    rec = Store(store).read_record(paths)
    resumes = [h for h in rec.history if h["event"] == "resumed"]
    assert rec.attempt == 1 and resumes[0]["previous_status"] == "preempted"
    got = read_metrics(paths.metrics_zarr)
    assert got["train/loss"].step.tolist() == list(range(200))
    assert got["restored_from"].value.tolist() == [saved]


@pytest.mark.slow
def test_deepspeed_variant_of_the_example(tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ["engine=deepspeed", "engine.zero_stage=2", "train.steps=12", "train.batch_size=16"]
    out = launch(args, store, tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    (run_id,) = Store(store).run_ids("example")
    paths = Store(store).run_paths("example", run_id)
    assert Store(store).read_record(paths).status is RunStatus.COMPLETED
    got = read_metrics(paths.metrics_zarr)
    assert got["train/loss"].step.tolist() == list(range(12))
    assert "Train/Samples/lr" in got, "DeepSpeed's monitor events are captured"


HYDRA_APP = """
import hydra
import tensorboardX

@hydra.main(version_base=None, config_path=".", config_name="cfg")
def main(cfg):
    writer = tensorboardX.SummaryWriter(logdir="tb")
    for i in range(5):
        writer.add_scalar("loss", cfg.lr * (5 - i), i)
    writer.close()
    if cfg.lr > 0.5:
        raise ValueError("lr too high")
    return {"final_loss": cfg.lr, "note": "not a number"}

if __name__ == "__main__":
    main()
"""


def test_unmodified_hydra_app_with_hpclab_local(tmp_path: Path) -> None:
    app = tmp_path / "my app"
    app.mkdir()
    (app / "train.py").write_text(HYDRA_APP)
    (app / "cfg.yaml").write_text("lr: 0.1\n")
    store = tmp_path / "store"
    env = {**os.environ, "HPCLAB_STORE": str(store), "HPCLAB_PROJECT": "legacy"}
    out = subprocess.run(
        [sys.executable, "train.py", "-m", "hydra/launcher=hpclab_local", "lr=0.1,0.2,0.9"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Hydra users expect a failing job to fail the multirun, after all jobs ran
    assert out.returncode != 0 and "lr too high" in out.stderr
    (sweep,) = sweeps(store, "legacy")
    recs = records(store, sweep, "legacy")
    assert [r.status for r in recs] == [RunStatus.COMPLETED, RunStatus.COMPLETED, RunStatus.FAILED]
    for lr, rec in zip([0.1, 0.2], recs, strict=False):
        assert rec.summary["final_loss"] == lr and "note" not in rec.summary
        paths = Store(store).run_paths("legacy", rec.id)
        assert read_metrics(paths.metrics_zarr)["loss"].value.tolist() == pytest.approx(
            [lr * k for k in (5, 4, 3, 2, 1)]
        )
    # Hydra's own job numbering and output dirs are kept
    assert sorted(
        p.name for p in (app / "multirun").glob("*/*/*") if p.is_dir() and p.name.isdigit()
    ) == ["0", "1", "2"]
