"""Each ended Slurm run's resources, from accounting, into its run directory.

Once a run's job has ended, one batched ``sacct`` over every step
(:meth:`~hpclab.launch.scheduler.base.Scheduler.usage`) gives what it asked for,
was allocated and used; :func:`record_usage` writes that as ``resources.json`` beside the
run, so the catalog (``run_resources``), ``hpclab status`` and the site read it from the
store like everything else (a cold index asks no scheduler). A run is asked about until
its accounting holds a final state (accounting lags a job's end by a few seconds), then
never again: the cost is one ``sacct`` per pass for the runs that just ended, none once
they are written.

GPU-hours used come from accounting's ``gres/gpuutil`` where the site tracks it
(``gpu_used_source: tres``), else from the run's own GPU samples
(:func:`gpu_hours_from_samples`, ``gpu_used_source: samples``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpclab.errors import HpclabError, StoreError
from hpclab.launch.reconcile import job_of
from hpclab.store import RunPaths, Store
from hpclab.store.atomic import read_json, write_json_atomic
from hpclab.store.record import run_status_of, utcnow_iso

log = logging.getLogger(__name__)
FORMAT = 1
LOW_EFFICIENCY = 0.25  # below this share of what was asked for, hpclab status says so
GAP_FACTOR = 3.0  # samples further apart than this many median intervals: not integrated
_GPU_UTIL = re.compile(r"^system/gpu\d+/util_percent$")


@dataclass(frozen=True)
class Pending:
    project: str
    run_id: str
    paths: RunPaths
    kind: str
    job_id: str


def needs_usage(store: Store, project: str, run_id: str) -> Pending | None:
    """The run, if it ran as a Slurm job that has ended and its ``resources.json`` is
    missing (or was written before accounting had the final state)."""
    paths = store.run_paths(project, run_id)
    try:
        record = store.read_record(paths)
    except StoreError:
        return None
    if not record.status.is_final:
        return None
    kind, job_id = job_of(record)
    if kind != "slurm" or not job_id:
        return None
    try:
        done = read_json(paths.resources_json)
    except FileNotFoundError:
        return Pending(project, run_id, paths, kind, job_id)
    except StoreError:
        return Pending(project, run_id, paths, kind, job_id)  # a torn file: ask again
    final = isinstance(done, dict) and done.get("final") and done.get("job_id") == job_id
    return None if final else Pending(project, run_id, paths, kind, job_id)


def record_usage(
    store: Store, runs: Iterable[tuple[str, str]], scheduler: Any | None = None
) -> list[tuple[str, str]]:
    """Write ``resources.json`` for the ended Slurm runs among ``runs`` that lack it (one
    ``usage`` call for all of them); returns the runs written. A scheduler that cannot be
    asked changes nothing (the next pass asks again)."""
    pending = [p for project, rid in runs if (p := needs_usage(store, project, rid))]
    return write_usage(pending, scheduler)


def write_usage(pending: list[Pending], scheduler: Any | None = None) -> list[tuple[str, str]]:
    """:func:`record_usage` for runs already known to need it (the indexer knows from its
    catalog which Slurm runs ended without accounting: no run.json read again)."""
    if not pending:
        return []
    try:
        if scheduler is None:
            from hpclab.launch.scheduler import get_scheduler

            scheduler = get_scheduler("slurm")
        usage = scheduler.usage(sorted({p.job_id for p in pending}))
    except (HpclabError, OSError) as e:
        log.warning("accounting not asked about %d ended run(s) (%s)", len(pending), e)
        return []
    written = []
    now = time.time()
    for p in pending:
        u = usage.get(p.job_id)
        if u is None:
            continue
        status = run_status_of(u.state)
        doc = {
            "format": FORMAT,
            "source": "sacct",
            "job_id": p.job_id,
            "final": bool(status is not None and status.is_final),
            "checked_at": utcnow_iso(now),
            **u.to_json(),
        }
        doc["job_id"] = p.job_id  # the run's id of the job (an array task: 12_3)
        if doc.get("gpu_hours_used") is None:
            from_samples = gpu_hours_from_samples(p.paths)
            if from_samples is not None:
                doc.update(gpu_hours_used=from_samples, gpu_used_source="samples")
        try:
            write_json_atomic(p.paths.resources_json, doc)
        except OSError as e:
            log.warning("%s: not written (%s)", p.paths.resources_json, e)
            continue
        written.append((p.project, p.run_id))
    return written


def _sample_stores(paths: RunPaths) -> Iterator[Path]:
    """Every metrics store of the run that may hold GPU samples: rank 0's, each other
    node's first process's (``nodes/<node>/system.zarr``), each per-rank one's."""
    yield paths.metrics_zarr
    for parent, name in ((paths.nodes_dir, "system.zarr"), (paths.dir / "ranks", "metrics.zarr")):
        if parent.is_dir():
            yield from sorted(d / name for d in parent.iterdir() if (d / name).is_dir())


def gpu_hours_from_samples(paths: RunPaths) -> float | None:
    """GPU-hours used, from the run's ``system/gpu<i>/util_percent`` samples on every
    node: per GPU, the trapezoid integral of utilisation / 100 over wall time, summed over
    the GPUs, in hours. An interval more than GAP_FACTOR times the GPU's median interval
    (a requeued job's pause) is left out, and so is the time before the first sample and
    after the last (at most one interval each). None when the run has no GPU samples."""
    import numpy as np

    from hpclab.tracking.metrics import read_metrics

    seconds, seen = 0.0, False
    for store in _sample_stores(paths):
        if not store.is_dir():
            continue
        try:
            series = read_metrics(store)
        except (HpclabError, OSError, KeyError, ValueError) as e:
            log.warning("%s: GPU samples not read (%s)", store, e)
            continue
        for name, s in series.items():
            if not _GPU_UTIL.match(name) or len(s) == 0:
                continue
            seen = True
            order = np.argsort(s.wall_time, kind="stable")
            t, u = s.wall_time[order], np.clip(s.value[order], 0.0, 100.0)
            ok = np.isfinite(t) & np.isfinite(u)
            t, u = t[ok], u[ok]
            if len(t) < 2:
                continue
            dt = np.diff(t)
            keep = dt <= GAP_FACTOR * float(np.median(dt))
            seconds += float(np.sum((dt * (u[1:] + u[:-1]) / 200.0)[keep]))
    return seconds / 3600.0 if seen else None


def advice(doc: dict[str, Any]) -> str | None:
    """One line for a run that used under LOW_EFFICIENCY of the memory or CPUs it asked
    for: ``used 1.2 GB of 64 GB memory (2%): ask for 2 GB``; None otherwise."""
    parts = []
    mem_eff, peak = doc.get("mem_efficiency"), doc.get("max_rss_mb")
    asked = doc.get("req_mem_mb") or doc.get("alloc_mem_mb")
    low_mem = isinstance(mem_eff, (int, float)) and mem_eff < LOW_EFFICIENCY
    if low_mem and asked and peak is not None:
        suggest = _round_up_gb(peak * 1.25)
        parts.append(
            f"used {_gb(peak)} of {_gb(asked)} memory ({mem_eff:.0%}): ask for {suggest}, "
            f"not {_gb(asked)}"
        )
    cpu_eff, cpus = doc.get("cpu_efficiency"), doc.get("alloc_cpus")
    if isinstance(cpu_eff, (int, float)) and cpu_eff < LOW_EFFICIENCY and cpus and cpus > 1:
        need = max(1, round(cpu_eff * cpus + 0.5))
        parts.append(f"used {cpu_eff:.0%} of {cpus} CPUs: ask for {need}")
    return "; ".join(parts) or None


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def _round_up_gb(mb: float) -> str:
    if mb < 1024:
        return f"{max(1, -(-int(mb) // 100) * 100)} MB"  # to the next 100 MB
    return f"{-(-int(mb) // 1024)} GB"


__all__ = [
    "LOW_EFFICIENCY",
    "Pending",
    "advice",
    "gpu_hours_from_samples",
    "needs_usage",
    "record_usage",
    "write_usage",
]
