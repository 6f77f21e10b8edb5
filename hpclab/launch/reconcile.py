"""Bring run records in line with what the scheduler knows, for what a job could not record
itself: it was cancelled while queued, hit its time limit, ran out of memory, or its node
died (a SIGKILL leaves the run ``running`` with an ageing heartbeat).

Rules (the run's own record is the truth whenever it says anything final):

* A final run is never touched.
* The scheduler says the job ended (CANCELLED, TIMEOUT, FAILED, OUT_OF_MEMORY, NODE_FAIL,
  ...) -> the run gets that status, ``ended_at`` and an error for failures. COMPLETED for a
  run that is still planned/queued/running/preempted means the job ended without the run
  recording its end (``os._exit``, a crash in native code) -> ``failed``, error "job ended
  without finishing its run".
* The job is pending/running -> only ``extra["scheduler_state"]`` is updated, except that a
  ``planned`` run becomes ``queued``. (``queued`` is never moved to ``running`` here: the
  task does that when it starts, and reads ``queued`` as "first start".)
* A ``running`` run with a stale heartbeat whose job the scheduler no longer knows (or
  whose local process is gone) -> ``failed``, "lost: heartbeat stale and the scheduler no
  longer knows job X". A ``planned``/``queued`` run in that situation for longer than
  ``lost_after`` seconds since submission -> ``failed`` too (a pending array task
  cancelled on its own vanishes from Slurm's records entirely).

Races: the scheduler is asked once for all runs, then each record is read again just
before it is written, so a run that recorded its own end in the meantime keeps it. The
running task rewrites ``run.json`` from memory on each heartbeat, so ``scheduler_state``
on a running run is informational and may be replaced; it is rewritten only when the
scheduler's answer changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from hpclab.errors import StoreError
from hpclab.launch.scheduler import JobState, Scheduler, get_scheduler, scheduler_names
from hpclab.store import RunPaths, RunRecord, RunStatus, Store
from hpclab.store.record import parse_iso, utcnow_iso

LOST_AFTER = 120.0  # seconds a queued run's job may be unknown before the run is lost


@dataclass(frozen=True)
class Observation:
    """One non-final run and what its scheduler said about its job."""

    project: str
    run_id: str
    paths: RunPaths
    record: RunRecord
    kind: str | None  # "slurm" | "local" | None (no job known)
    job_id: str | None
    job: JobState | None  # None: the scheduler does not know the job (or there is none)


@dataclass(frozen=True)
class Reconciled:
    """A run record that :func:`reconcile` rewrote."""

    project: str
    run_id: str
    job_id: str | None
    old_status: RunStatus
    new_status: RunStatus
    scheduler_state: str | None
    note: str  # why, in words

    @property
    def status_changed(self) -> bool:
        return self.old_status is not self.new_status


def job_of(record: RunRecord) -> tuple[str | None, str | None]:
    """(scheduler kind, job id) of a run: the job that ran it (``record.scheduler``), else
    the job the launcher queued it in (``extra["submission"]``). A run that has not started
    yet belongs to its submission: ``record.scheduler`` may still name the job of an
    earlier attempt (a rerun under the same id).

    Inside an array task ``SLURM_JOB_ID`` is the task's own raw id; the ``123_4`` form is
    used instead so it matches what squeue/sacct print.
    """
    sched = record.scheduler or {}
    sub = record.submission or {}
    waiting = record.status in (RunStatus.PLANNED, RunStatus.QUEUED)
    if waiting and sub.get("job_id") not in (None, ""):
        return sub.get("scheduler") or "slurm", str(sub["job_id"])
    kind = sched.get("kind") or sub.get("scheduler")
    array_id, task = sched.get("array_job_id"), sched.get("array_task_id")
    if array_id and task not in (None, ""):
        return kind or "slurm", f"{array_id}_{task}"
    if sched.get("job_id"):
        return kind or "slurm", str(sched["job_id"])
    if sub.get("job_id") not in (None, ""):
        return sub.get("scheduler") or kind, str(sub["job_id"])
    return kind, None


def unfinished(
    store: Store, project: str, run_ids: Iterable[str]
) -> list[tuple[RunPaths, RunRecord, str | None, str | None]]:
    """(paths, record, scheduler kind, job id) of the readable runs that have not ended."""
    found = []
    for run_id in run_ids:
        try:
            paths = store.run_paths(project, run_id)
            record = store.read_record(paths)
        except StoreError:
            continue
        if not record.status.is_final:
            found.append((paths, record, *job_of(record)))
    return found


def observe(
    store: Store,
    project: str,
    run_ids: list[str] | None = None,
    scheduler: Scheduler | None = None,
) -> list[Observation]:
    """The non-final runs of ``project`` (or just ``run_ids``) with their jobs' states,
    asking each scheduler once for all of them. Unreadable records are skipped."""
    ids = store.run_ids(project) if run_ids is None else run_ids
    return observe_runs(store, [(project, r) for r in ids], scheduler)


def observe_runs(
    store: Store, runs: Iterable[tuple[str, str]], scheduler: Scheduler | None = None
) -> list[Observation]:
    """The non-final runs among ``runs`` ((project, run id) pairs, any projects) with
    their jobs' states: one ``states`` call per scheduler kind for all of them, none when
    no run has a job. Unreadable records are skipped."""
    by_project: dict[str, list[str]] = {}
    for project, run_id in runs:
        by_project.setdefault(project, []).append(run_id)
    found = [
        (project, *run)
        for project, run_ids in by_project.items()
        for run in unfinished(store, project, run_ids)
    ]
    by_kind: dict[str | None, list[str]] = {}
    for _, _, _, kind, job_id in found:
        if job_id is not None:
            by_kind.setdefault(None if scheduler else kind, []).append(job_id)
    answers: dict[str | None, dict[str, JobState]] = {}
    for kind, job_ids in by_kind.items():
        if scheduler is None and kind not in scheduler_names():
            continue  # a record from a backend this installation does not have
        sched = scheduler or get_scheduler(kind)
        answers[kind] = sched.states(list(dict.fromkeys(job_ids)))
    out = []
    for project, paths, record, kind, job_id in found:
        states = answers.get(None if scheduler else kind, {})
        job = states.get(job_id) if job_id is not None else None
        out.append(Observation(project, record.id, paths, record, kind, job_id, job))
    return out


def reconcile(
    store: Store,
    project: str,
    run_ids: list[str] | None = None,
    scheduler: Scheduler | None = None,
    *,
    lost_after: float = LOST_AFTER,
) -> list[Reconciled]:
    """Update the records of ``project``'s non-final runs (or of ``run_ids``) from one batch
    of scheduler states (module docstring: the rules). Returns the records it rewrote."""
    return apply(store, observe(store, project, run_ids, scheduler), lost_after=lost_after)


def reconcile_runs(
    store: Store,
    runs: Iterable[tuple[str, str]],
    scheduler: Scheduler | None = None,
    *,
    lost_after: float = LOST_AFTER,
) -> list[Reconciled]:
    """:func:`reconcile` for (project, run id) pairs of any projects, asking each scheduler
    once for all of them (the indexer's and the watcher's pass)."""
    return apply(store, observe_runs(store, runs, scheduler), lost_after=lost_after)


def apply(
    store: Store, observations: Iterable[Observation], *, lost_after: float = LOST_AFTER
) -> list[Reconciled]:
    """Write what :func:`observe` found into the run records; returns what was rewritten."""
    changed = []
    for obs in observations:
        result = _apply_one(store, obs, lost_after)
        if result is not None:
            changed.append(result)
    return changed


def _apply_one(store: Store, obs: Observation, lost_after: float) -> Reconciled | None:
    try:
        record = store.read_record(obs.paths)  # fresh: the run may have ended meanwhile
    except StoreError:
        return None
    old = record.status
    if old.is_final:
        return None
    job, now = obs.job, time.time()
    state = _state_dict(job) if job is not None else None
    new, note, error = old, "", None
    gone = job is None or (job.has_ended and not job.is_final)
    if job is not None and job.is_final:
        slurm_status = job.status
        assert slurm_status is not None
        if slurm_status is RunStatus.COMPLETED:
            new, note = RunStatus.FAILED, "job ended without finishing its run"
        else:
            new, note = slurm_status, f"job {obs.job_id} ended {job.state}"
        if new is RunStatus.FAILED:
            error = _error(note, job, obs.job_id)
    elif gone and obs.job_id is not None:
        if old is RunStatus.RUNNING and record.is_stale(now):
            new = RunStatus.FAILED
            note = f"lost: heartbeat stale and the scheduler no longer knows job {obs.job_id}"
            error = {"type": "RunLost", "message": note}
        elif old in (RunStatus.PLANNED, RunStatus.QUEUED) and _waited(record, now) > lost_after:
            new = RunStatus.FAILED
            note = f"lost: never started and the scheduler no longer knows job {obs.job_id}"
            error = {"type": "RunLost", "message": note}
    elif job is not None and old is RunStatus.PLANNED:
        new, note = RunStatus.QUEUED, f"job {obs.job_id} is {job.state}"
    stored = record.scheduler_state or {}
    same_state = state is None or all(stored.get(k) == v for k, v in state.items())
    if new is old and same_state:
        return None
    if state is not None:
        record.scheduler_state = {**state, "checked_at": utcnow_iso(now)}
    if new is not old:
        record.status = new
        if new.is_final:
            record.ended_at = _ended_at(job, now)
        if error is not None:
            record.error = error
        record.history.append(
            {
                "event": "reconciled",
                "at": utcnow_iso(now),
                "from": old.value,
                "to": new.value,
                "job_id": obs.job_id,
                "scheduler_state": job.state if job else None,
                "note": note,
            }
        )
    store.write_record(obs.paths, record)
    return Reconciled(
        project=obs.project,
        run_id=obs.run_id,
        job_id=obs.job_id,
        old_status=old,
        new_status=new,
        scheduler_state=job.state if job else None,
        note=note or "scheduler state updated",
    )


def state_words(state: Any) -> str | None:
    """A recorded ``scheduler_state`` in words, as ``hpclab status``, the catalog's readers
    and the Training page show it: ``RUNNING``, ``PENDING (Resources)``; None when none."""
    if not isinstance(state, dict) or not state.get("state"):
        return None
    reason = state.get("reason")
    return f"{state['state']} ({reason})" if reason else str(state["state"])


def _state_dict(job: JobState) -> dict[str, Any]:
    return {"state": job.state, "exit_code": job.exit_code, "reason": job.reason}


def _error(note: str, job: JobState, job_id: str | None) -> dict[str, Any]:
    detail = f"Slurm: {job.state}"
    if job.exit_code:
        detail += f", exit code {job.exit_code}"
    if job.reason:
        detail += f", {job.reason}"
    return {"type": "JobEnded", "message": f"{note} ({detail})", "job_id": job_id}


def _waited(record: RunRecord, now: float) -> float:
    """Seconds since the run was submitted (or created, when the launcher did not say)."""
    sub = record.submission or {}
    try:
        since = parse_iso(sub.get("submitted_at")) or parse_iso(record.created_at)
    except ValueError:
        since = None
    return 0.0 if since is None else now - since


def _ended_at(job: JobState | None, now: float) -> str:
    """The job's end (Slurm prints local time without a zone) as UTC ISO, else now."""
    if job is not None and job.end:
        try:
            local = datetime.fromisoformat(job.end).astimezone()  # naive: local time
            return local.astimezone(timezone.utc).isoformat()
        except ValueError:
            pass
    return utcnow_iso(now)
