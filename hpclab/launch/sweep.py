"""Sweep records: every point of a sweep exists in the store before anything queues.

``<project>/sweeps/<sweep_id>.json`` lists the points (overrides, run id, and after
submission the scheduler job id of each); each point is a run directory whose record
says ``planned``, then ``queued`` with its job id, and from then on the job owns it.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpclab.store import RunPaths, RunRecord, RunStatus, Store, SweepPoint, SweepRecord
from hpclab.store.atomic import write_json_atomic, write_yaml_atomic
from hpclab.store.ids import new_run_id
from hpclab.store.record import utcnow_iso
from hpclab.store.sweep import META_FIELDS


@dataclass
class PlannedPoint:
    """One point of a sweep: its index (Hydra's job number), overrides and run."""

    index: int
    overrides: list[str]
    config: dict[str, Any]
    run_id: str = ""
    job_id: str | None = None


@dataclass
class SweepPlan:
    """A sweep as recorded in the store."""

    id: str
    project: str
    launcher: str
    points: list[PlannedPoint]
    meta: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None

    def record(self, status: str) -> SweepRecord:
        """The sweep file's contents at ``status`` (``planned``, then ``queued``)."""
        meta = dict(self.meta)
        known = {k: meta.pop(k) for k in META_FIELDS if k in meta}
        return SweepRecord(
            id=self.id,
            project=self.project,
            status=status,
            launcher=self.launcher,
            job_id=self.job_id,
            n_points=len(self.points),
            points=[SweepPoint(p.index, p.run_id, p.overrides, p.job_id) for p in self.points],
            **known,
            extra=meta,
        )


def plan_sweep(
    store: Store,
    project: str,
    points: Sequence[PlannedPoint],
    *,
    launcher: str,
    meta: Mapping[str, Any] | None = None,
    run_fields: Mapping[str, Any] | None = None,
) -> SweepPlan:
    """Create the sweep record and one ``planned`` run per point (config and overrides
    written), before anything is submitted. ``run_fields`` sets name/tags/parent."""
    sweep_id = _new_sweep_id(store, project)
    fields = dict(run_fields or {})
    now = utcnow_iso()
    plan = SweepPlan(
        id=sweep_id,
        project=project,
        launcher=launcher,
        points=list(points),
        meta={
            "created_at": now,
            "host": socket.gethostname(),
            "user": _user(),
            "cwd": os.getcwd(),
            "argv": list(sys.argv),
            "base": fields.get("parent"),  # the run the points derive from (experiment DAG)
            **(meta or {}),
        },
    )
    for point in plan.points:
        paths = store.create_run_dir(project)
        point.run_id = paths.id
        # no fsync per file: a sweep that dies while being recorded is simply relaunched,
        # and 1,000 points x 3 files of fsync would dominate submission time
        write_yaml_atomic(paths.config_yaml, point.config, fsync=False)
        write_yaml_atomic(paths.overrides_yaml, point.overrides, fsync=False)
        record = RunRecord(
            id=paths.id,
            project=project,
            status=RunStatus.PLANNED,
            sweep_id=sweep_id,
            name=fields.get("name"),
            parent=fields.get("parent"),
            tags=sorted({str(t) for t in fields.get("tags") or []}),
            created_at=now,
        )
        record.sweep_index = point.index
        store.write_record(paths, record, fsync=False)
    write_json_atomic(store.sweep_json(project, sweep_id), plan.record("planned").to_dict())
    return plan


def record_submission(
    store: Store,
    plan: SweepPlan,
    job_ids: Sequence[str],
    *,
    scheduler: str,
    array_job_id: str | None,
) -> None:
    """After submission: each run becomes ``queued`` with its job id (unless its job already
    moved it further), and the sweep record gets the job ids."""
    now = utcnow_iso()
    plan.job_id = array_job_id
    for point, job_id in zip(plan.points, job_ids, strict=True):
        point.job_id = job_id
        paths = store.run_paths(plan.project, point.run_id)
        record = store.read_record(paths)
        submission = {
            "scheduler": scheduler,
            "job_id": job_id,
            "array_job_id": array_job_id,
            "submitted_at": now,
        }
        if record.status is RunStatus.PLANNED:
            record.status = RunStatus.QUEUED
        elif record.submission is not None:
            continue
        # a job that started (or ended) before its submission was recorded: its status
        # stands, the job id is added (the run's own writes keep it: keep_others)
        record.submission = submission
        stored = store.advance_status(paths, record, fsync=False)
        if stored.submission is None:
            # the job moved the run on between the read above and this write (a short
            # local job ends that fast): the job id goes into the record it wrote
            stored.submission = submission
            store.advance_status(paths, stored, fsync=False)
    write_json_atomic(store.sweep_json(plan.project, plan.id), plan.record("queued").to_dict())


def sweep_runs(store: Store, project: str, sweep_id: str) -> list[RunPaths]:
    """Run paths of a sweep's points, in point order."""
    return [store.run_paths(project, rid) for rid in store.read_sweep(project, sweep_id).run_ids]


def _new_sweep_id(store: Store, project: str) -> str:
    store.sweeps_dir(project).mkdir(parents=True, exist_ok=True)
    while True:
        sweep_id = "sweep-" + new_run_id()
        try:  # claim the id atomically, as run directories do
            fd = os.open(store.sweep_json(project, sweep_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        os.close(fd)
        return sweep_id


def _user() -> str | None:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return None
