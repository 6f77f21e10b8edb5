"""Scheduler state reconciled by ``hpclab index`` and ``hpclab watch``: on the dev Slurm
cluster, the catalog, ``hpclab status`` and the Training page's data agree with what an
independent ``sacct``/``squeue`` says, within one pass, with one batched call."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import hpclab_cli, poll
from slurm_fixtures import job_name, sbatch, scancel, slurm_cluster  # noqa: F401

from hpclab.catalog.connect import connect
from hpclab.catalog.sync import SchedulerSync
from hpclab.catalog.watch import Watcher
from hpclab.launch.scheduler import register_scheduler, unregister_scheduler
from hpclab.launch.scheduler.base import JobState
from hpclab.launch.scheduler.slurm_cli import SlurmCLI
from hpclab.site.data import load
from hpclab.site.details import run_details
from hpclab.site.livedoc import live_doc, run_info
from hpclab.store import RunPaths, RunRecord, RunStatus, Store
from hpclab.store.record import utcnow_iso

PROJECT = "sync"


class CountingSlurm(SlurmCLI):
    """The real Slurm CLI backend, counting ``states`` calls and the commands they run."""

    calls: list[list[str]] = []  # job ids asked, per states() call
    commands: list[str] = []  # squeue / sacct, per command run

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        CountingSlurm.calls.append(list(job_ids))
        return super().states(job_ids)

    def _run(self, argv: Sequence[str], ok_stderr: Any = ()) -> str:
        CountingSlurm.commands.append(argv[0])
        return super()._run(argv, ok_stderr)


@pytest.fixture
def counting() -> Iterator[type[CountingSlurm]]:
    """``get_scheduler("slurm")`` answers with :class:`CountingSlurm` for the test."""
    from hpclab.launch.scheduler import _BACKENDS

    saved = dict(_BACKENDS)  # the registry, in its order (scheduler_names is ordered)
    CountingSlurm.calls, CountingSlurm.commands = [], []
    unregister_scheduler("slurm")
    register_scheduler("slurm", CountingSlurm, "counting")
    try:
        yield CountingSlurm
    finally:
        _BACKENDS.clear()
        _BACKENDS.update(saved)


@pytest.fixture
def store(store_root: Path) -> Store:
    return Store(store_root)


def make_run(
    store: Store,
    status: RunStatus,
    job_id: str | None,
    *,
    project: str = PROJECT,
    task_view: bool = False,
) -> RunPaths:
    """A run record as the launcher (submission) and, once started, the task write it."""
    paths = store.create_run_dir(project)
    record = RunRecord(id=paths.id, project=project, status=status)
    if job_id is not None:
        record.submission = {
            "scheduler": "slurm",
            "job_id": job_id,
            "array_job_id": job_id.split("_")[0],
            "submitted_at": utcnow_iso(),
        }
    if status is RunStatus.RUNNING:
        record.started_at = record.heartbeat_at = utcnow_iso()  # fresh: not stale
        record.scheduler = {"kind": "slurm"}
        if task_view and job_id is not None:
            array, task = job_id.split("_")
            record.scheduler.update(array_job_id=array, array_task_id=task)
    store.write_record(paths, record)
    return paths


def sacct_state(job_id: str) -> str | None:
    """The job's state as ``sacct`` prints it (first word: ``CANCELLED by 0`` -> CANCELLED)."""
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-j", job_id.split("_")[0], "-o", "JobID,State"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        jid, _, state = line.partition("|")
        if jid == job_id and state:
            return state.split()[0]
    return None


def squeue_state(job_id: str) -> str | None:
    out = subprocess.run(
        ["squeue", "-h", "-r", "-j", job_id, "-o", "%i|%T"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        jid, _, state = line.partition("|")
        if jid == job_id:
            return state.strip()
    return None


def catalog_runs(store: Store) -> dict[str, dict[str, Any]]:
    con = connect(store)
    cur = con.execute("SELECT run_id, status, scheduler_state, scheduler_reason FROM runs")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def status_json(store: Store, run_id: str) -> dict[str, Any]:
    result = hpclab_cli(store.root, "status", run_id, "--json")
    assert result.returncode == 0, result.output
    return json.loads(result.stdout.splitlines()[0])


# the reconcile rule for a job that ended without its run recording the end
EXPECTED = {"CANCELLED": "cancelled", "COMPLETED": "failed"}


@pytest.mark.usefixtures("slurm_cluster")
def test_index_makes_catalog_status_and_training_agree_with_slurm(
    store: Store, counting: type[CountingSlurm]
) -> None:
    # task 0 completes at once, tasks 1 and 2 would run for minutes
    script = 'if [ "$SLURM_ARRAY_TASK_ID" = 0 ]; then exit 0; fi; sleep 300'
    jid = sbatch("--array=0-2", "-J", job_name(), "--wrap", script)
    try:
        # stale records: both say running, as if the task never recorded its end
        done = make_run(store, RunStatus.RUNNING, f"{jid}_0", task_view=True)
        killed = make_run(store, RunStatus.RUNNING, f"{jid}_1", task_view=True)
        waiting = make_run(store, RunStatus.QUEUED, f"{jid}_2")
        finished = make_run(store, RunStatus.COMPLETED, None)  # final: never asked about
        other = make_run(store, RunStatus.QUEUED, "987654321_0", project="other")
        # the catalog before Slurm is asked: what the records say
        assert hpclab_cli(store.root, "index", "--no-scheduler").returncode == 0
        assert counting.calls == []
        assert catalog_runs(store)[done.id]["status"] == "running"

        poll(lambda: squeue_state(f"{jid}_1") == "RUNNING", timeout=60, message="task 1 runs")
        subprocess.run(["scancel", f"{jid}_1"], check=True)  # killed before it records its end
        expected = {f"{jid}_0": "COMPLETED", f"{jid}_1": "CANCELLED"}
        poll(
            lambda: {j: sacct_state(j) for j in expected} == expected,
            timeout=60,
            interval=0.3,
            message="sacct to say task 0 COMPLETED and task 1 CANCELLED",
        )
        before = squeue_state(f"{jid}_2")
        result = hpclab_cli(store.root, "index")
        after = squeue_state(f"{jid}_2")
        assert result.returncode == 0, result.output
        # two runs ended, the queued one got its Slurm state; the unknown job: nothing new
        assert "3 updated from the scheduler" in result.stdout
        # one batched states() call for every unfinished run of every project
        assert len(counting.calls) == 1
        assert sorted(counting.calls[0]) == sorted(
            [f"{jid}_0", f"{jid}_1", f"{jid}_2", "987654321_0"]
        )
        # and one sacct over every step for the two runs that ended (their resources.json)
        assert counting.commands.count("squeue") == 1 and counting.commands.count("sacct") <= 2
        for paths in (done, killed):
            resources = json.loads(paths.resources_json.read_text())
            assert resources["source"] == "sacct" and resources["job_id"] in (
                f"{jid}_0",
                f"{jid}_1",
            )
        assert not waiting.resources_json.exists() and not finished.resources_json.exists()

        rows = catalog_runs(store)
        for paths, job in ((done, f"{jid}_0"), (killed, f"{jid}_1")):
            state = sacct_state(job)  # independent of hpclab
            assert state is not None
            assert rows[paths.id]["scheduler_state"] == state
            assert rows[paths.id]["status"] == EXPECTED[state]
            shown = status_json(store, paths.id)
            assert (shown["status"], shown["scheduler"]) == (EXPECTED[state], state)
        assert rows[waiting.id]["status"] == "queued"
        assert rows[waiting.id]["scheduler_state"] in {before, after} - {None}
        assert rows[finished.id]["status"] == "completed"
        assert rows[other.id]["status"] == "queued"  # unknown job, but not waiting long
        shown = status_json(store, waiting.id)
        assert shown["status"] == "queued" and shown["scheduler"] in ("PENDING", "RUNNING")

        # the run page's data: the catalog's status and Slurm state
        data = load(store)
        for paths in (done, killed, waiting):
            shown = run_details(data, (PROJECT, paths.id))["run"]
            assert shown["status"] == rows[paths.id]["status"]
            assert shown["scheduler_state"] == rows[paths.id]["scheduler_state"]
        # the Training page's data: running and queued runs only, with the Slurm state
        keys = [(PROJECT, p.id) for p in (done, killed, waiting, finished)]
        doc = live_doc({k: run_info(store, k, {}, None) for k in keys})
        listed = {r["run_id"]: r for r in doc["runs"]}
        assert set(listed) == {waiting.id}
        assert {r["run_id"] for r in doc["recent"]} == {done.id, killed.id}  # charts only
        record = store.read_record(waiting)
        assert listed[waiting.id]["scheduler_state"] == record.scheduler_state["state"]
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
def test_a_pass_without_unfinished_runs_asks_no_scheduler(
    store: Store, counting: type[CountingSlurm]
) -> None:
    make_run(store, RunStatus.COMPLETED, "987654322_0")
    make_run(store, RunStatus.CANCELLED, "987654322_1")
    make_run(store, RunStatus.PLANNED, None)  # unfinished, but no job to ask about
    result = hpclab_cli(store.root, "index")
    assert result.returncode == 0, result.output
    assert counting.calls == [] and counting.commands == []
    make_run(store, RunStatus.QUEUED, "987654322_2")
    assert hpclab_cli(store.root, "index").returncode == 0
    assert counting.calls == [["987654322_2"]]


@pytest.mark.usefixtures("slurm_cluster")
def test_status_shows_pending_reason_then_cancelled(store: Store) -> None:
    jid = sbatch("--hold", "-J", job_name(), "--wrap", "sleep 60")  # pending until released
    try:
        paths = make_run(store, RunStatus.QUEUED, jid)
        result = hpclab_cli(store.root, "status", paths.id)
        assert result.returncode == 0, result.output
        row = next(line for line in result.stdout.splitlines() if line.startswith(paths.id))
        reason = store.read_record(paths).scheduler_state["reason"]
        assert reason and f"PENDING ({reason})" in row
        assert f" {jid} " in row
        assert status_json(store, paths.id)["scheduler_reason"] == reason
        result = hpclab_cli(store.root, "index")
        assert result.returncode == 0, result.output
        assert catalog_runs(store)[paths.id]["scheduler_reason"] == reason
        subprocess.run(["scancel", jid], check=True)
        poll(
            lambda: status_json(store, paths.id)["status"] == "cancelled",
            timeout=60,
            interval=0.3,
            message="hpclab status to say cancelled once Slurm does",
        )
        assert sacct_state(jid) == "CANCELLED"
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
def test_watch_follows_a_job_cancelled_while_queued(store: Store, polling: bool) -> None:
    """No file changes when a queued job is cancelled: the watcher's throttled scheduler
    call finds it anyway."""
    jid = sbatch("--hold", "-J", job_name(), "--wrap", "sleep 60")
    paths = make_run(store, RunStatus.QUEUED, jid)
    stop = threading.Event()
    watcher = Watcher(store, polling=polling, interval=0.2, full_every=3600, scheduler_every=0.5)
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:

        def catalog_row() -> dict[str, Any] | None:
            try:
                return catalog_runs(store).get(paths.id)
            except Exception:  # before the first publish
                return None

        poll(
            lambda: (catalog_row() or {}).get("scheduler_state") == "PENDING",
            timeout=60,
            message="the catalog to show the pending job",
        )
        subprocess.run(["scancel", jid], check=True)
        poll(
            lambda: (catalog_row() or {}).get("status") == "cancelled",
            timeout=60,
            message="the catalog to show the cancelled job",
        )
        assert sacct_state(jid) == "CANCELLED"
    finally:
        stop.set()
        thread.join(30)
        scancel(jid)
    assert not thread.is_alive()


def test_scheduler_sync_throttles() -> None:
    now = [100.0]
    sync = SchedulerSync(every=10.0, clock=lambda: now[0])
    assert sync.due()  # never asked: at once
    sync.mark()
    now[0] += 9.9
    assert not sync.due() and sync.next_at() == 110.0
    now[0] += 0.1
    assert sync.due()


def test_index_no_scheduler_asks_nothing(store: Store, counting: type[CountingSlurm]) -> None:
    paths = make_run(store, RunStatus.QUEUED, "987654323_0")
    result = hpclab_cli(store.root, "index", "--no-scheduler")
    assert result.returncode == 0, result.output
    assert counting.calls == [] and "scheduler" not in result.stdout
    assert catalog_runs(store)[paths.id]["scheduler_state"] is None


def test_a_pass_reads_only_unfinished_records(
    store: Store, counting: type[CountingSlurm], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-pass cost follows the unfinished runs, not the store: finished runs' records
    are not read again by the reconciliation."""
    from hpclab.catalog.indexer import Indexer, PassReport, reconcile_pass, unfinished_runs

    for _ in range(60):
        make_run(store, RunStatus.COMPLETED, None)
    waiting = {make_run(store, RunStatus.PLANNED, None).id for _ in range(2)}
    with Indexer(store) as indexer:
        indexer.index()
        assert {r for _, r in unfinished_runs(indexer)} == waiting
        read: list[str] = []
        original = Store.read_record

        def counted(self: Store, paths: RunPaths) -> RunRecord:
            read.append(paths.id)
            return original(self, paths)

        monkeypatch.setattr(Store, "read_record", counted)
        assert reconcile_pass(indexer, PassReport()) == set()  # no job: nothing to ask
    assert set(read) == waiting and counting.calls == []
