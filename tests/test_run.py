"""hpclab.Run: lifecycle, status, heartbeat, resume, ranks, and process events."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from helpers import poll, python_script

import hpclab
from hpclab.errors import ConfigError, RunExists
from hpclab.store import RunStatus, Store
from hpclab.tracking.metrics import read_commit, read_metrics

NO_SNAPSHOT = {"snapshot_env": False}


def record(run: hpclab.Run) -> dict:
    return json.loads(run.paths.run_json.read_text())


def test_context_manager_records_config_metrics_and_completion(store_root: Path) -> None:
    cfg = {"optim": {"lr": 1e-3}, "seed": 0, "layers": [64, 64]}
    with hpclab.Run(
        project="demo",
        config=cfg,
        name="baseline",
        tags=["a", "b"],
        store=store_root,
        overrides=["optim.lr=1e-3"],
        settings=NO_SNAPSHOT,
    ) as run:
        assert record(run)["status"] == "running"
        for s in range(10):
            run.log({"train/loss": 1.0 / (s + 1)}, step=s)
        run.summary["val/acc"] = 0.9
    rec = record(run)
    assert rec["status"] == "completed" and rec["ended_at"]
    assert rec["name"] == "baseline" and rec["tags"] == ["a", "b"]
    assert rec["summary"] == {"train/loss": 0.1, "val/acc": 0.9}
    assert rec["step"] == 9
    assert yaml.safe_load(run.paths.config_yaml.read_text()) == cfg
    assert yaml.safe_load(run.paths.overrides_yaml.read_text()) == ["optim.lr=1e-3"]
    assert run.dir == store_root / "demo" / "runs" / run.id
    assert read_metrics(run.paths.metrics_zarr)["train/loss"].step.tolist() == list(range(10))


def test_exception_marks_run_failed_with_traceback(store_root: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        with hpclab.Run(project="demo", store=store_root, settings=NO_SNAPSHOT) as run:
            run.log({"x": 1.0})
            _ = 1 / 0
    rec = record(run)
    assert rec["status"] == "failed"
    assert rec["error"]["type"] == "ZeroDivisionError"
    assert "_ = 1 / 0" in rec["error"]["traceback"]
    assert "ZeroDivisionError" in run.paths.traceback_txt.read_text()
    assert read_metrics(run.paths.metrics_zarr)["x"].value.tolist() == [1.0]


def test_keyboard_interrupt_marks_cancelled(store_root: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with hpclab.Run(project="demo", store=store_root, settings=NO_SNAPSHOT) as run:
            raise KeyboardInterrupt
    assert record(run)["status"] == "cancelled"


def test_omegaconf_and_dataclass_configs_are_stored_resolved(store_root: Path) -> None:
    from dataclasses import dataclass

    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"a": 2, "b": "${a}", "nested": {"c": [1, 2]}})
    run = hpclab.init(project="p", config=cfg, store=store_root, settings=NO_SNAPSHOT)
    run.finish()
    assert yaml.safe_load(run.paths.config_yaml.read_text()) == {
        "a": 2,
        "b": 2,
        "nested": {"c": [1, 2]},
    }

    @dataclass
    class C:
        lr: float = 0.1

    run = hpclab.init(project="p", config=C(), store=store_root, settings=NO_SNAPSHOT)
    run.finish()
    assert yaml.safe_load(run.paths.config_yaml.read_text()) == {"lr": 0.1}
    with pytest.raises(ConfigError):
        hpclab.init(project="p", config=42, store=store_root, settings=NO_SNAPSHOT)


def test_unknown_setting_lists_the_valid_ones(store_root: Path) -> None:
    with pytest.raises(ConfigError, match="flush_interval"):
        hpclab.Run(project="p", store=store_root, settings={"flush_intervall": 1})


def test_env_settings_apply(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCLAB_HEARTBEAT_INTERVAL", "7.5")
    run = hpclab.Run(project="p", store=store_root, settings=NO_SNAPSHOT)
    run.finish()
    assert record(run)["heartbeat_interval"] == 7.5
    monkeypatch.setenv("HPCLAB_FLUSH_INTERVAL", "soon")
    with pytest.raises(ConfigError, match="HPCLAB_FLUSH_INTERVAL"):
        hpclab.Run(project="p", store=store_root)


def test_heartbeat_advances_while_running(store_root: Path) -> None:
    run = hpclab.Run(project="p", store=store_root, heartbeat_interval=0.05, settings=NO_SNAPSHOT)
    first = record(run)["heartbeat_at"]
    poll(lambda: record(run)["heartbeat_at"] > first, message="a newer heartbeat")
    run.log({"a": 1.0}, step=4)
    poll(lambda: record(run)["step"] == 4, message="the heartbeat to carry the step")
    run.finish()
    assert not Store(store_root).read_record(run.paths).is_stale()


def test_explicit_run_id_resumes_same_run(store_root: Path) -> None:
    run = hpclab.Run(
        project="p", store=store_root, run_id="job-1", settings=NO_SNAPSHOT, config={"lr": 1}
    )
    for s in range(5):
        run.log({"loss": float(s)}, step=s)
    run.finish(RunStatus.PREEMPTED)
    again = hpclab.Run(
        project="p", store=store_root, run_id="job-1", settings=NO_SNAPSHOT, config={"lr": 2}
    )
    assert again.resumed and again.id == "job-1" and again.step == 4
    for s in range(3, 8):
        again.log({"loss": 10.0 + s}, step=s)
    again.finish()
    rec = record(again)
    assert rec["attempt"] == 1 and rec["status"] == "completed"
    assert (
        rec["history"][0]["event"] == "resumed"
        and rec["history"][0]["previous_status"] == "preempted"
    )
    assert rec["metrics_dropped"] == {"loss": 2}
    assert read_metrics(again.paths.metrics_zarr)["loss"].value.tolist() == [
        0,
        1,
        2,
        3,
        4,
        15,
        16,
        17,
    ]
    assert yaml.safe_load(again.paths.config_yaml.read_text()) == {"lr": 1}, (
        "resume keeps the first config"
    )
    with pytest.raises(RunExists):
        hpclab.Run(
            project="p", store=store_root, run_id="job-1", resume="never", settings=NO_SNAPSHOT
        )


def test_slurm_requeue_resumes_the_same_run(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "1234")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "1200")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    first = hpclab.Run(project="p", store=store_root, settings=NO_SNAPSHOT)
    first.log({"loss": 1.0}, step=0)
    first.flush()
    first._worker.stop()  # the node dies: no finish, status stays "running"
    first.finished = True
    assert record(first)["scheduler"]["array_task_id"] == "3"
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    second = hpclab.Run(project="p", store=store_root, settings=NO_SNAPSHOT)
    assert second.id == first.id and second.resumed
    second.finish()
    # a new run in the same job after the first finished is a new run
    third = hpclab.Run(project="p", store=store_root, settings=NO_SNAPSHOT)
    assert third.id != first.id
    third.finish()
    assert Store(store_root).lookup_key("p", "slurm-1200_3") == third.id


def test_only_rank_zero_records_by_default(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    run = hpclab.Run(project="p", store=store_root, settings=NO_SNAPSHOT)
    assert not run.enabled and run.paths is None
    run.log({"a": 1.0})
    run.finish()
    assert Store(store_root).run_ids("p") == []


def test_per_rank_logging_writes_each_rank_its_own_store(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    r0 = hpclab.Run(project="p", store=store_root, per_rank=True, settings=NO_SNAPSHOT)
    monkeypatch.setenv("RANK", "1")
    r1 = hpclab.Run(project="p", store=store_root, per_rank=True, settings=NO_SNAPSHOT)
    assert r1.id == r0.id and r1.rank == 1
    r0.log({"loss": 0.5}, step=0)
    r1.log({"loss": 0.7}, step=0)
    r1.finish()
    r0.finish()
    assert read_metrics(r0.paths.metrics_zarr)["loss"].value.tolist() == [0.5]
    assert read_metrics(r0.paths.rank_metrics_zarr(1))["loss"].value.tolist() == [0.7]
    assert record(r0)["world_size"] == 2 and record(r0)["status"] == "completed"


def test_per_rank_without_shared_id_is_an_error(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ConfigError, match="HPCLAB_RUN_ID"):
        hpclab.Run(project="p", store=store_root, per_rank=True)


LOGGER = r"""
import sys, time, hpclab
run = hpclab.init(project="p", store=sys.argv[1], flush_interval=float(sys.argv[2]),
                  settings={"snapshot_env": False})
print(run.dir, flush=True)
mode = sys.argv[3]
if mode == "forever":
    s = 0
    while True:
        run.log({"loss": s * 0.5, "step_sq": float(s * s)}, step=s)
        s += 1
        time.sleep(0.001)
elif mode == "buffered-then-wait":
    for s in range(500):
        run.log({"loss": s * 0.5}, step=s)
    print("logged", flush=True)
    sys.stdin.readline()
elif mode == "exit-without-finish":
    for s in range(500):
        run.log({"loss": s * 0.5}, step=s)
elif mode == "uncaught":
    run.log({"loss": 1.0}, step=0)
    raise RuntimeError("boom in training")
"""


def _start_logger(store_root: Path, flush: float, mode: str):
    import subprocess

    proc = python_script(LOGGER, str(store_root), str(flush), mode, stdin=subprocess.PIPE)
    run_dir = Path(proc.stdout.readline().strip())
    return proc, run_dir


def test_sigkill_loses_at_most_the_last_flush_interval(store_root: Path) -> None:
    flush = 0.2
    proc, run_dir = _start_logger(store_root, flush, "forever")
    zpath = run_dir / "metrics.zarr"
    poll(
        lambda: read_commit(zpath).get("series", {}).get("loss", {}).get("length", 0) > 200,
        message="committed points",
    )
    os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.time()
    proc.wait()
    got = read_metrics(zpath)
    loss, sq = got["loss"], got["step_sq"]
    assert loss.step.tolist() == list(range(len(loss)))
    assert loss.value.tolist() == [s * 0.5 for s in range(len(loss))]
    assert sq.value.tolist() == [float(s * s) for s in range(len(sq))]
    # what was lost is the unflushed tail: the newest stored point is at most one flush
    # interval (plus scheduling slack on a loaded 2-core machine) older than the kill
    assert killed_at - loss.wall_time[-1] < flush + 2.0
    rec = Store(store_root).read_record(Store(store_root).find_run(run_dir.name)[1])
    assert rec.status is RunStatus.RUNNING
    assert rec.is_stale(now=time.time() + 4 * rec.heartbeat_interval + 11)


def test_sigusr1_flushes_and_sigterm_ends_the_run(store_root: Path) -> None:
    proc, run_dir = _start_logger(store_root, 3600, "buffered-then-wait")
    assert proc.stdout.readline().strip() == "logged"
    zpath = run_dir / "metrics.zarr"
    assert read_metrics(zpath) == {}, "nothing is flushed before the interval"
    os.kill(proc.pid, signal.SIGUSR1)
    poll(lambda: len(read_metrics(zpath).get("loss", [])) == 500, message="flush on SIGUSR1")
    assert proc.poll() is None, "SIGUSR1 must not kill the job"
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == -signal.SIGTERM
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "cancelled" and rec["signal"] == "SIGTERM"


def test_exit_without_finish_flushes_and_completes(store_root: Path) -> None:
    proc, run_dir = _start_logger(store_root, 3600, "exit-without-finish")
    assert proc.wait(60) == 0
    assert len(read_metrics(run_dir / "metrics.zarr")["loss"]) == 500
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_uncaught_exception_at_top_level_marks_failed(store_root: Path) -> None:
    proc, run_dir = _start_logger(store_root, 3600, "uncaught")
    assert proc.wait(60) == 1
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "failed"
    assert "boom in training" in rec["error"]["message"]
    assert "boom in training" in proc.stderr.read(), "the user still sees the traceback"


def test_heartbeat_keeps_what_other_writers_recorded(store_root: Path) -> None:
    """hpclab status/cancel write into run.json too; a heartbeat must not erase that."""
    run = hpclab.Run(project="p", store=store_root, heartbeat_interval=0.05, settings=NO_SNAPSHOT)
    store = Store(store_root)
    rec = store.read_record(run.paths)
    rec.status = RunStatus.CANCELLED
    rec.cancelled_by = "hpclab cancel"
    store.write_record(run.paths, rec)
    first = rec.heartbeat_at
    poll(lambda: record(run)["heartbeat_at"] != first, message="a heartbeat after the cancel")
    assert record(run)["status"] == "cancelled" and record(run)["cancelled_by"] == "hpclab cancel"
    run.finish()  # the run's own last word
    assert record(run)["status"] == "completed" and record(run)["cancelled_by"] == "hpclab cancel"
