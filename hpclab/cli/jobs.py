"""``hpclab status`` and ``hpclab cancel``: runs as the scheduler sees them.

A target is a sweep id (``sweeps/<id>.json`` in a project), a run id, or (for status)
nothing: every run that has not ended.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import click

from hpclab.cli.output import fmt_duration, table
from hpclab.cli.terminal import echo
from hpclab.errors import RunNotFound, SchedulerError, StoreError
from hpclab.launch.reconcile import (
    Observation,
    apply,
    job_of,
    observe_runs,
    state_words,
    unfinished,
)
from hpclab.launch.scheduler import get_scheduler
from hpclab.store import RunPaths, RunRecord, RunStatus, Store, SweepRecord
from hpclab.store.atomic import read_json, read_yaml
from hpclab.store.record import parse_iso, utcnow_iso
from hpclab.store.views import effective_status, run_progress, step_rate, total_steps

_SWEEP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass
class Target:
    """What a command acts on: runs grouped by project, and the sweep if one was named."""

    runs: dict[str, list[str]]  # project -> run ids
    sweep: SweepRecord | None = None
    sweep_project: str | None = None


def find_sweep(store: Store, sweep_id: str, project: str | None) -> tuple[str, SweepRecord]:
    """(project, sweep record) of ``sweep_id``; :class:`RunNotFound` when there is none."""
    if _SWEEP_ID_RE.match(sweep_id):
        for proj in [project] if project else store.projects():
            if store.sweep_json(proj, sweep_id).is_file():
                return proj, store.read_sweep(proj, sweep_id)
    raise RunNotFound(f"no sweep {sweep_id!r}")


def resolve_target(store: Store, target: str | None, project: str | None) -> Target:
    """Runs named by ``target`` (sweep id, run id) or, with no target, all non-final runs."""
    if target is None:
        runs: dict[str, list[str]] = {}
        for proj, paths in store.iter_runs(project):
            try:
                if not store.read_record(paths).status.is_final:
                    runs.setdefault(proj, []).append(paths.id)
            except StoreError as e:  # one line for the bad run; the others are shown
                click.echo(f"hpclab: warning: {e}; skipped", err=True)
        return Target(runs)
    try:
        proj, sweep = find_sweep(store, target, project)
    except RunNotFound:
        pass
    else:
        return Target({proj: sweep.run_ids}, sweep=sweep, sweep_project=proj)
    try:
        proj, paths = store.find_run(target, project)
    except RunNotFound:
        where = f"project {project!r} of " if project else ""
        raise RunNotFound(f"no sweep or run {target!r} in {where}store {store.root}") from None
    return Target({proj: [paths.id]})


# -- status ----------------------------------------------------------------------------------
def progress(paths: RunPaths, record: RunRecord, now: float | None = None) -> dict[str, Any]:
    """Step, total steps, percent done and ETA of a run
    (:func:`hpclab.store.views.run_progress`, as the site's Training page computes them).

    The step and rate come from the committed metrics (what a reader can trust): the
    rate over the last points of the metric that reached the furthest step."""
    step = None
    rate = None
    try:
        from hpclab.tracking.metrics import (  # NumPy: on use
            is_sample_series,
            read_commit,
            read_metrics,
        )

        commit = read_commit(paths.metrics_zarr)
        series_info = {  # the run's step: training series, not its system samples
            n: i for n, i in commit.get("series", {}).items() if not is_sample_series(n)
        }
        if series_info:
            name = max(sorted(series_info), key=lambda n: series_info[n].get("last_step", -1))
            series = read_metrics(paths.metrics_zarr, names=[name]).get(name)
            if series is not None and len(series):
                step = int(series.step[-1])
                rate = step_rate(series.step, series.wall_time)
    except (StoreError, OSError, ValueError):
        pass  # status must show the other runs even if one's metrics are unreadable
    prog = run_progress(record, _total_steps(paths), step, rate, now)
    return {"step": prog.step, "total": prog.total, "progress": prog.percent, "eta_s": prog.eta_s}


def _total_steps(paths: RunPaths) -> int | None:
    if not paths.config_yaml.exists():
        return None
    try:
        return total_steps(read_yaml(paths.config_yaml))
    except StoreError:
        return None


def _elapsed(record: RunRecord, now: float) -> float | None:
    start = parse_iso(record.started_at)
    if start is None:
        return None
    end = parse_iso(record.ended_at) if record.status.is_final else None
    return max(0.0, (end or now) - start)


def status_rows(
    store: Store, target: Target, observations: dict[tuple[str, str], Observation]
) -> list[dict[str, Any]]:
    """One row per run of ``target``, read after reconciling."""
    now = time.time()
    rows: list[dict[str, Any]] = []
    for proj, run_ids in target.runs.items():
        for run_id in run_ids:
            try:
                paths = store.run_paths(proj, run_id)
                record = store.read_record(paths)
            except StoreError:
                rows.append({"project": proj, "run": run_id, "status": "missing"})
                continue
            obs = observations.get((proj, run_id))
            state, reason = _scheduler_state(record, obs)
            prog = progress(paths, record, now)
            rows.append(
                {
                    "project": proj,
                    "run": run_id,
                    "status": effective_status(record),
                    "job": job_of(record)[1],
                    "scheduler": state,
                    "scheduler_reason": reason,
                    "step": prog["step"],
                    "total": prog["total"],
                    "progress": None if prog["progress"] is None else f"{prog['progress']:.0f}%",
                    "eta": fmt_duration(prog["eta_s"]),
                    "elapsed": fmt_duration(_elapsed(record, now)),
                    **_efficiency(paths),
                }
            )
    return rows


def _efficiency(paths: RunPaths) -> dict[str, Any]:
    """CPU and memory efficiency of an ended Slurm run (``resources.json``), and the line
    of advice when it used under a quarter of what it asked for."""
    from hpclab.launch.resources import advice

    try:
        doc = read_json(paths.resources_json)
    except (FileNotFoundError, StoreError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {
        "cpu_efficiency": doc.get("cpu_efficiency"),
        "mem_efficiency": doc.get("mem_efficiency"),
        "advice": advice(doc),
    }


def _scheduler_state(record: RunRecord, obs: Observation | None) -> tuple[str | None, str | None]:
    """(state, reason) of the run's job: what the scheduler just said, else what the last
    reconciliation recorded in the run."""
    if obs is not None and obs.job is not None:
        return obs.job.state, obs.job.reason
    sched = record.scheduler_state if isinstance(record.scheduler_state, dict) else {}
    return sched.get("state"), sched.get("reason")


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A status row for the table: the scheduler state with its reason, ``PENDING
    (Resources)``."""
    words = state_words({"state": row.get("scheduler"), "reason": row.get("scheduler_reason")})
    return {**row, "scheduler": words}


@click.command("status")
@click.argument("target", required=False)
@click.option("--project", "-p", default=None, help="Project of the target (default: search all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run.")
@click.pass_obj
def status(store: Store, target: str | None, project: str | None, as_json: bool) -> None:
    """Show runs as the scheduler sees them: a sweep, a run, or every run not yet ended.

    Asks the scheduler first (one batched call) and records what it says in each run:
    jobs cancelled, timed out or lost become final. Columns: run id, status, scheduler
    state, step / total steps, progress, ETA, elapsed.

    Example: hpclab status 20261122-143501-sweep --project demo
    """
    tgt = resolve_target(store, target, project)
    observations: dict[tuple[str, str], Observation] = {}
    try:  # one batched call for the runs of every project
        found = observe_runs(store, [(p, r) for p, ids in tgt.runs.items() for r in ids])
    except SchedulerError as e:
        echo(f"hpclab: warning: scheduler not asked ({e})", err=True)
        found = []
    for change in apply(store, found):
        if change.status_changed:
            echo(
                f"{change.run_id}: {change.old_status} -> {change.new_status} ({change.note})",
                err=True,
            )
    observations.update({(o.project, o.run_id): o for o in found})
    _record_accounting(store, tgt)
    rows = status_rows(store, tgt, observations)
    if as_json:
        for row in rows:
            echo(json.dumps(row))
        return
    if not rows:
        echo("no runs to show" if target else "no unfinished runs")
        return
    if tgt.sweep is not None:
        echo(f"sweep {tgt.sweep.id}  job {tgt.sweep.job_id or '-'}  ({len(rows)} runs)")
    columns = ["run", "status", "job", "scheduler", "step", "total", "progress", "eta", "elapsed"]
    if len(tgt.runs) > 1:
        columns.insert(0, "project")
    table([_shown(r) for r in rows], columns)
    for r in rows:
        if r.get("advice"):
            echo(f"warning: {r['run']} {r['advice']}")


def _record_accounting(store: Store, tgt: Target) -> None:
    """The ended Slurm runs of the target get their accounting (``resources.json``, one
    batched ``sacct``), for the efficiency columns and advice."""
    from hpclab.launch.resources import record_usage

    try:
        record_usage(store, [(p, r) for p, ids in tgt.runs.items() for r in ids])
    except SchedulerError as e:
        click.echo(f"hpclab: warning: accounting not asked ({e})", err=True)


# -- cancel ----------------------------------------------------------------------------------
def cancel_target(
    store: Store, target: Target
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Cancel the jobs of ``target`` through their schedulers, then record ``cancelled`` in
    each run that has not ended. Returns the (project, run id) pairs marked cancelled, and
    those left alone: running with no scheduler job to cancel (a plain process elsewhere
    would go on and overwrite the record).

    A sweep's array job is cancelled whole (which also covers tasks whose runs do not
    exist yet); a run's own job otherwise.
    """
    jobs: dict[str, set[str]] = {}
    pending: list[tuple[str, RunPaths]] = []
    skipped: list[tuple[str, str]] = []
    if target.sweep is not None and target.sweep.job_id:
        # only a Slurm sweep has an array job id
        sweep_kind = target.sweep.launcher or "slurm"
        jobs.setdefault(sweep_kind, set()).add(target.sweep.job_id)
    for proj, run_ids in target.runs.items():
        for paths, record, kind, job_id in unfinished(store, proj, run_ids):
            run_id = paths.id
            if job_id is not None and kind is not None:
                jobs.setdefault(kind, set()).add(job_id)
            elif record.status not in (RunStatus.PLANNED, RunStatus.QUEUED):
                skipped.append((proj, run_id))
                continue
            pending.append((proj, paths))
    for kind, ids in jobs.items():
        get_scheduler(kind).cancel(sorted(ids))
    marked = []
    for proj, paths in pending:
        record = store.read_record(paths)  # fresh: it may have ended on its own
        if record.status.is_final:
            continue
        now = utcnow_iso()
        record.history.append(
            {"event": "cancelled", "at": now, "from": record.status.value, "by": "hpclab cancel"}
        )
        record.status = RunStatus.CANCELLED
        record.ended_at = now
        record.cancelled_by = "hpclab cancel"
        store.write_record(paths, record)
        marked.append((proj, paths.id))
    return marked, skipped


@click.command("cancel")
@click.argument("target")
@click.option("--project", "-p", default=None, help="Project of the target (default: search all).")
@click.pass_obj
def cancel(store: Store, target: str, project: str | None) -> None:
    """Cancel a sweep (every task of its array job) or one run's job, and record the runs
    that had not ended as cancelled.

    Example: hpclab cancel 20261122-143501-sweep
    """
    tgt = resolve_target(store, target, project)
    marked, skipped = cancel_target(store, tgt)
    for _, run_id in skipped:
        click.echo(f"hpclab: warning: {run_id} has no job to cancel; left alone", err=True)
    if not marked and not skipped:
        click.echo(f"nothing to cancel: every run of {target} has already ended")
    for _, run_id in marked:
        click.echo(f"{run_id}: cancelled")


__all__ = ["cancel", "cancel_target", "progress", "resolve_target", "status"]
