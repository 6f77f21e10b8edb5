"""Reconciling run records with real Slurm jobs on the dev cluster, and the ``status`` /
``cancel`` commands end to end."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import hpclab_cli, poll
from slurm_fixtures import job_name, sbatch, scancel, slurm_cluster  # noqa: F401

import hpclab.tracking.metrics as metrics_mod
from hpclab.cli.jobs import fmt_duration
from hpclab.launch.reconcile import apply, job_of, observe, reconcile
from hpclab.launch.scheduler.local import LocalScheduler
from hpclab.launch.scheduler.slurm_cli import SlurmCLI
from hpclab.store import RunPaths, RunRecord, RunStatus, Store
from hpclab.store.atomic import write_json_atomic, write_yaml_atomic
from hpclab.store.record import utcnow_iso
from hpclab.tracking.metrics import MetricWriter

PROJECT = "recon"


@pytest.fixture
def store(store_root: Path) -> Store:
    return Store(store_root)


def make_run(
    store: Store,
    status: RunStatus,
    *,
    job_id: str | None = None,
    kind: str = "slurm",
    scheduler: dict[str, Any] | None = None,
    heartbeat_age: float | None = 0.0,
    submitted_age: float = 0.0,
    project: str = PROJECT,
) -> RunPaths:
    """A run record as the launcher (submission) and the task (scheduler, heartbeat) write it."""
    paths = store.create_run_dir(project)
    now = time.time()
    record = RunRecord(id=paths.id, project=project, status=status)
    if job_id is not None:
        record.submission = {
            "scheduler": kind,
            "job_id": job_id,
            "array_job_id": job_id.split("_")[0],
            "submitted_at": utcnow_iso(now - submitted_age),
        }
    if status is RunStatus.RUNNING:
        record.started_at = utcnow_iso(now - 60)
        record.scheduler = scheduler or {"kind": kind}
        if heartbeat_age is not None:
            record.heartbeat_at = utcnow_iso(now - heartbeat_age)
    store.write_record(paths, record)
    return paths


def read(store: Store, paths: RunPaths) -> RunRecord:
    return store.read_record(paths)


def wait_final(sched: SlurmCLI, job_id: str, timeout: float = 60) -> None:
    """Until accounting has the job's final state (sacct lags the controller a little)."""

    def final() -> bool:
        s = sched.states([job_id]).get(job_id)
        return s is not None and s.is_final

    poll(final, timeout=timeout, interval=0.3, message=f"job {job_id} final in sacct")


# -- reconcile ---------------------------------------------------------------------------------
@pytest.mark.usefixtures("slurm_cluster")
def test_cancelled_job_makes_its_runs_cancelled(store: Store) -> None:
    jid = sbatch("--array=0-1", "-J", job_name(), "--wrap", "sleep 60")
    try:
        planned = make_run(store, RunStatus.PLANNED, job_id=f"{jid}_0")
        sched = SlurmCLI()
        # both tasks running, so that the state does not move between the calls below
        poll(
            lambda: [s.state for s in sched.states([jid]).values()] == ["RUNNING"] * 2,
            timeout=60,
            interval=0.3,
            message=f"array {jid} running",
        )
        raw = subprocess.run(
            ["squeue", "-h", "-r", "-j", f"{jid}_1", "-o", "%A"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # the task's own view: SLURM_JOB_ID is its raw id, plus array ids
        running = make_run(
            store,
            RunStatus.RUNNING,
            scheduler={"kind": "slurm", "job_id": raw, "array_job_id": jid, "array_task_id": "1"},
        )
        assert job_of(read(store, running)) == ("slurm", f"{jid}_1")
        # queued again (a rerun): the new submission counts, not the last attempt's job
        requeued = read(store, running)
        requeued.status = RunStatus.QUEUED
        requeued.submission = {"scheduler": "slurm", "job_id": "777_1"}
        assert job_of(requeued) == ("slurm", "777_1")
        changes = {c.run_id: c for c in reconcile(store, PROJECT)}
        assert changes[planned.id].new_status is RunStatus.QUEUED
        rec = read(store, planned)
        assert rec.status is RunStatus.QUEUED
        assert rec.scheduler_state["state"] == "RUNNING"
        assert read(store, running).status is RunStatus.RUNNING
        assert reconcile(store, PROJECT) == []  # nothing new: nothing rewritten

        subprocess.run(["scancel", jid], check=True)
        wait_final(sched, f"{jid}_1")
        wait_final(sched, f"{jid}_0")
        changes = {c.run_id: c for c in reconcile(store, PROJECT)}
        assert set(changes) == {planned.id, running.id}
        for paths in (planned, running):
            rec = read(store, paths)
            assert rec.status is RunStatus.CANCELLED
            assert rec.ended_at is not None
            assert rec.scheduler_state["state"] == "CANCELLED"
            assert rec.scheduler_state["checked_at"]
            assert rec.history[-1]["event"] == "reconciled"
        assert reconcile(store, PROJECT) == []  # final now: left alone
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
def test_final_runs_are_never_changed(store: Store) -> None:
    jid = sbatch("-J", job_name(), "--wrap", "exit 3")
    try:
        wait_final(SlurmCLI(), jid)
        done = make_run(store, RunStatus.COMPLETED, job_id=jid)
        before = done.run_json.read_bytes()
        assert reconcile(store, PROJECT) == []
        assert done.run_json.read_bytes() == before
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
def test_failed_and_vanished_jobs(store: Store) -> None:
    failing = sbatch("-J", job_name(), "--wrap", "exit 3")
    finishing = sbatch("-J", job_name(), "--wrap", "true")
    try:
        sched = SlurmCLI()
        wait_final(sched, failing)
        wait_final(sched, finishing)
        failed = make_run(store, RunStatus.RUNNING, job_id=failing)
        silent = make_run(store, RunStatus.RUNNING, job_id=finishing)
        lost = make_run(store, RunStatus.RUNNING, job_id="987654321", heartbeat_age=3600)
        fresh = make_run(store, RunStatus.RUNNING, job_id="987654322", heartbeat_age=0)
        never = make_run(store, RunStatus.QUEUED, job_id="987654323", submitted_age=3600)
        recent = make_run(store, RunStatus.QUEUED, job_id="987654324", submitted_age=0)
        changes = {c.run_id: c for c in reconcile(store, PROJECT)}

        rec = read(store, failed)
        assert rec.status is RunStatus.FAILED and rec.error is not None
        assert "exit code 3:0" in rec.error["message"]
        rec = read(store, silent)  # Slurm's COMPLETED, but the run never said it ended
        assert rec.status is RunStatus.FAILED and rec.error is not None
        assert rec.error["message"].startswith("job ended without finishing its run")
        rec = read(store, lost)
        assert rec.status is RunStatus.FAILED and rec.error is not None
        assert rec.error["message"] == (
            "lost: heartbeat stale and the scheduler no longer knows job 987654321"
        )
        assert read(store, never).status is RunStatus.FAILED
        # not stale yet / only just submitted: sacct may simply lag; wait
        assert read(store, fresh).status is RunStatus.RUNNING
        assert read(store, recent).status is RunStatus.QUEUED
        assert set(changes) == {failed.id, silent.id, lost.id, never.id}
    finally:
        scancel(failing, finishing)


@pytest.mark.usefixtures("slurm_cluster")
def test_a_run_that_ends_meanwhile_keeps_its_own_status(store: Store) -> None:
    jid = sbatch("-J", job_name(), "--wrap", "true")
    try:
        wait_final(SlurmCLI(), jid)
        paths = make_run(store, RunStatus.RUNNING, job_id=jid)
        found = observe(store, PROJECT)
        assert found[0].job is not None and found[0].job.state == "COMPLETED"
        rec = read(store, paths)  # the task records its end after the scheduler was asked
        rec.status, rec.ended_at = RunStatus.COMPLETED, utcnow_iso()
        store.write_record(paths, rec)
        assert apply(store, found) == []
        assert read(store, paths).status is RunStatus.COMPLETED
    finally:
        scancel(jid)


def test_local_runs(store: Store) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = make_run(store, RunStatus.RUNNING, job_id=str(proc.pid), kind="local")
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        gone = make_run(
            store, RunStatus.RUNNING, job_id=str(dead.pid), kind="local", heartbeat_age=3600
        )
        changes = {c.run_id: c for c in reconcile(store, PROJECT, scheduler=LocalScheduler())}
        assert {r for r, c in changes.items() if c.status_changed} == {gone.id}
        assert changes[alive.id].note == "scheduler state updated"
        assert read(store, alive).status is RunStatus.RUNNING
        assert read(store, gone).status is RunStatus.FAILED
        # without an explicit scheduler the run's own kind picks one
        assert reconcile(store, PROJECT) == []
    finally:
        proc.kill()
        proc.wait()


# -- the CLI (the real hpclab group, in this process) ---------------------------------------
def make_sweep(store: Store, jid: str, n: int) -> tuple[str, list[RunPaths]]:
    runs = [make_run(store, RunStatus.QUEUED, job_id=f"{jid}_{i}") for i in range(n)]
    sweep_id = f"sweep-{jid}"
    sweep = {
        "id": sweep_id,
        "job_id": jid,
        "scheduler": "slurm",
        "points": [
            {"index": i, "run_id": p.id, "overrides": [f"seed={i}"]} for i, p in enumerate(runs)
        ],
    }
    store.sweeps_dir(PROJECT).mkdir(parents=True, exist_ok=True)
    write_json_atomic(store.sweep_json(PROJECT, sweep_id), sweep)
    return sweep_id, runs


@pytest.mark.usefixtures("slurm_cluster")
def test_status_and_cancel_a_sweep(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    jid = sbatch("--array=0-1", "-J", job_name(), "--wrap", "sleep 60")
    try:
        sweep_id, (first, second) = make_sweep(store, jid, 2)
        # the first run is training: 50 of 100 steps done at 2 steps/s
        rec = read(store, first)
        rec.status, rec.started_at, rec.heartbeat_at = RunStatus.RUNNING, utcnow_iso(), utcnow_iso()
        rec.scheduler = {"kind": "slurm", "array_job_id": jid, "array_task_id": "0"}
        store.write_record(first, rec)
        write_yaml_atomic(first.config_yaml, {"train": {"steps": 100}})
        # one tick a call: the writer also reads the clock when it opens and flushes
        clock = (1000.0 + 0.5 * i for i in itertools.count())
        monkeypatch.setattr(metrics_mod, "_time", lambda: next(clock))
        writer = MetricWriter(first.metrics_zarr)
        for step in range(50):
            writer.log({"train/loss": 1.0 / (step + 1)}, step=step)
        assert writer.flush(timeout=30)

        result = hpclab_cli(store.root, "status", sweep_id, "-p", PROJECT)
        assert result.returncode == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"sweep {sweep_id}  job {jid}")
        assert lines[1].split()[:4] == ["RUN", "STATUS", "JOB", "SCHEDULER"]
        row = next(line.split() for line in lines if line.startswith(first.id))
        assert row[1:3] == ["running", f"{jid}_0"] and row[3] in ("RUNNING", "PENDING")
        if row[4].startswith("("):  # a pending job's reason: PENDING (Resources)
            del row[4]
        assert row[4:8] == ["49", "100", "50%", "00:25"]  # step, total, progress, ETA
        assert any(line.startswith(second.id) and " queued " in line for line in lines)

        result = hpclab_cli(store.root, "status", "--json")
        assert result.returncode == 0, result.output
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert {r["run"] for r in rows} == {first.id, second.id}
        assert {r["job"] for r in rows} == {f"{jid}_0", f"{jid}_1"}

        result = hpclab_cli(store.root, "cancel", sweep_id)
        assert result.returncode == 0, result.output
        assert f"{first.id}: cancelled" in result.output
        assert f"{second.id}: cancelled" in result.output
        for paths in (first, second):
            rec = read(store, paths)
            assert rec.status is RunStatus.CANCELLED
            assert rec.cancelled_by == "hpclab cancel"
        sched = SlurmCLI()
        wait_final(sched, f"{jid}_0")
        wait_final(sched, f"{jid}_1")
        assert {s.state for s in sched.states([jid]).values()} == {"CANCELLED"}

        result = hpclab_cli(store.root, "cancel", sweep_id)
        assert result.returncode == 0 and "nothing to cancel" in result.output
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
def test_status_and_cancel_one_run(store: Store) -> None:
    jid = sbatch("-J", job_name(), "--wrap", "sleep 60")
    try:
        paths = make_run(store, RunStatus.PLANNED, job_id=jid)
        other = make_run(store, RunStatus.QUEUED, job_id="987654325")
        result = hpclab_cli(store.root, "status", paths.id)
        assert result.returncode == 0, result.output
        assert other.id not in result.output
        assert read(store, paths).status is RunStatus.QUEUED  # the job is there: queued
        result = hpclab_cli(store.root, "cancel", paths.id, "--project", PROJECT)
        assert result.returncode == 0, result.output
        assert read(store, paths).status is RunStatus.CANCELLED
        assert read(store, other).status is RunStatus.QUEUED
        wait_final(SlurmCLI(), jid)
    finally:
        scancel(jid)


def test_unknown_targets_are_one_line_errors(store: Store) -> None:
    make_run(store, RunStatus.COMPLETED)
    for args in (["status", "nope"], ["cancel", "nope"], ["status", "../../etc/passwd"]):
        result = hpclab_cli(store.root, *args)
        assert result.returncode == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hpclab: error: no sweep or run"), lines
    result = hpclab_cli(store.root, "status")
    assert result.returncode == 0 and "no unfinished runs" in result.output


def test_status_without_slurm_still_shows_runs(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = make_run(store, RunStatus.QUEUED, job_id="123")
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # no squeue
    result = hpclab_cli(store.root, "status")
    assert result.returncode == 0, result.output
    assert "warning: scheduler not asked" in result.output and "`squeue` not found" in result.output
    assert paths.id in result.output


def test_fmt_duration() -> None:
    assert fmt_duration(25) == "00:25"
    assert fmt_duration(3725) == "01:02:05"
    assert fmt_duration(90061) == "1d 01:01:01"
    assert fmt_duration(None) == ""


@pytest.mark.usefixtures("slurm_cluster")
def test_hpclab_status_and_cancel_commands(store: Store) -> None:
    jid = sbatch("-J", job_name(), "--wrap", "sleep 60")
    try:
        paths = make_run(store, RunStatus.QUEUED, job_id=jid)
        env = {"HPCLAB_STORE": str(store.root)}
        out = hpclab_cli(None, "status", paths.id, env=env)
        assert out.returncode == 0, out.stderr
        assert paths.id in out.stdout
        out = hpclab_cli(None, "cancel", paths.id, env=env)
        assert out.returncode == 0, out.stderr
        assert read(store, paths).status is RunStatus.CANCELLED
        out = hpclab_cli(None, "status", "nope", env=env)
        assert out.returncode == 1 and out.stderr.startswith("hpclab: error: no sweep or run")
    finally:
        scancel(jid)


def test_a_job_that_started_before_its_submission_was_recorded_keeps_its_job_id(
    tmp_path: Path,
) -> None:
    """The local launcher's jobs can start (and end) before the login node records their
    job ids: the run's status stands and its submission is recorded all the same."""
    from hpclab.launch.sweep import PlannedPoint, plan_sweep, record_submission
    from hpclab.store import RunStatus, Store

    store = Store(tmp_path / "store")
    plan = plan_sweep(
        store,
        "p",
        [PlannedPoint(i, [f"seed={i}"], {"seed": i}) for i in range(2)],
        launcher="local",
        meta={"argv": ["hpclab.launch", "-m"]},
    )
    started = store.run_paths("p", plan.points[1].run_id)
    record = store.read_record(started)
    record.status = RunStatus.COMPLETED  # the job ran to the end first
    store.write_record(started, record)
    record_submission(store, plan, ["41", "42"], scheduler="local", array_job_id=None)
    first = store.read_record(store.run_paths("p", plan.points[0].run_id))
    second = store.read_record(started)
    assert first.status is RunStatus.QUEUED and first.submission["job_id"] == "41"
    assert second.status is RunStatus.COMPLETED and second.submission["job_id"] == "42"


def test_a_job_that_ends_while_its_submission_is_recorded_keeps_its_job_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job can write its final record between the login node's read of the record
    and its write (CI saw a completed local run without its job id): the status the job
    wrote stands and the job id is added to it."""
    from hpclab.launch.sweep import PlannedPoint, plan_sweep, record_submission
    from hpclab.store import RunStatus, Store

    store = Store(tmp_path / "store")
    plan = plan_sweep(
        store,
        "p",
        [PlannedPoint(0, ["seed=0"], {"seed": 0})],
        launcher="local",
        meta={"argv": ["hpclab.launch", "-m"]},
    )
    paths = store.run_paths("p", plan.points[0].run_id)
    advance = Store.advance_status
    ended = []

    def job_ends_first(self: Store, p: Any, record: Any, **kw: Any) -> Any:
        if not ended:  # the job's final write lands just before the login node's
            ended.append(True)
            done = self.read_record(p)
            done.status, done.step = RunStatus.COMPLETED, 19
            self.write_record(p, done)
        return advance(self, p, record, **kw)

    monkeypatch.setattr(Store, "advance_status", job_ends_first)
    record_submission(store, plan, ["43"], scheduler="local", array_job_id=None)
    rec = store.read_record(paths)
    assert rec.status is RunStatus.COMPLETED and rec.step == 19  # the job's record stands
    assert rec.submission is not None and rec.submission["job_id"] == "43"
