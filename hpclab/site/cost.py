"""What runs cost, in CPU and GPU hours, and where the figure comes from.

Slurm runs that ended: the catalog's ``run_resources`` (accounting over every step of
the job, :mod:`hpclab.launch.resources`), read from the store like everything else.
Slurm runs still going (or not yet accounted): the scheduler adapter, in one batched
call for those jobs only. CPU hours are what the allocation holds, as clusters charge
them: allocated CPUs (AllocTRES ``cpu=``) times elapsed; GPU hours likewise
(``gres/gpu=``); the CPU time the job really used (TotalCPU over its steps) and its peak
memory against what it asked for are kept beside them, so a report can show how well
the allocation was used. Local runs, or Slurm runs when accounting cannot be asked: the
run's own duration (``duration_s``: end or last heartbeat minus start) as wall-clock
hours on one CPU, marked as such.
"""

from __future__ import annotations

import logging
import statistics
import threading
from dataclasses import dataclass

from hpclab.site.data import Key, SiteData

log = logging.getLogger(__name__)
# A live site asks on every page rebuild: say that accounting is down once per process.
_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class Cost:
    cpu_h: float | None  # allocated CPU hours
    gpu_h: float | None  # allocated GPU hours
    source: str  # "sacct" or "run duration"
    cpu_used_h: float | None = None  # CPU time used (TotalCPU), Slurm accounting only
    mem_peak_mb: float | None = None  # the largest step's MaxRSS (ended Slurm runs)
    mem_asked_mb: float | None = None  # memory requested (or allocated)
    gpu_used_h: float | None = None  # GPU-hours used (accounting's gpuutil, or the samples)
    gpu_used_source: str | None = None  # "tres" or "samples"


def accounting(data: SiteData) -> dict[Key, Cost]:
    """Cost of every run: one scheduler call for all Slurm jobs, durations for the rest.

    When accounting cannot be asked, a warning says so (once per process and message)."""
    out: dict[Key, Cost] = {}
    slurm_jobs: dict[str, Key] = {}
    for r in data.runs:
        key = (r["project"], r["run_id"])
        res = data.resources.get(key)
        accounted = res is not None and res.get("job_id") == r.get("job_id")
        if res is not None and accounted and res.get("cpu_hours") is not None:
            used = res.get("cpu_used_s")
            out[key] = Cost(
                res["cpu_hours"],
                res.get("gpu_hours") or 0.0,
                "sacct",
                used / 3600.0 if used is not None else None,
                res.get("max_rss_mb"),
                res.get("req_mem_mb") or res.get("alloc_mem_mb"),
                res.get("gpu_hours_used"),
                res.get("gpu_used_source"),
            )
            continue
        if r.get("scheduler") == "slurm" and r.get("job_id"):
            slurm_jobs[str(r["job_id"])] = key
        dur = r.get("duration_s")
        out[key] = Cost(dur / 3600.0 if dur else None, None, "run duration")
    if slurm_jobs:
        try:
            from hpclab.launch.scheduler import get_scheduler, slurm_available

            if slurm_available():
                states = get_scheduler("slurm").states(sorted(slurm_jobs))
                for job_id, st in states.items():
                    found = slurm_jobs.get(job_id)
                    if found is None or st.elapsed_s is None:
                        continue
                    hours = st.elapsed_s / 3600.0
                    used = st.cpu_s / 3600.0 if st.cpu_s is not None else None
                    cpu = st.cpus * hours if st.cpus is not None else used
                    out[found] = Cost(cpu, (st.gpus or 0) * hours, "sacct", used)
        except Exception as exc:  # accounting down or absent: durations stand, said so
            message = f"Slurm accounting not available for the cost tables ({exc})"
            with _warned_lock:
                first = message not in _warned
                _warned.add(message)
            if first:
                log.warning("%s", message)
    return out


@dataclass(frozen=True)
class Total:
    cpu_h: float
    gpu_h: float
    cpu_used_h: float | None  # None when no run has accounting's TotalCPU
    sources: str
    mem_runs: int = 0  # runs with both a peak and an ask of memory
    mem_efficiency: float | None = None  # median over them of peak / asked
    gpu_used_h: float | None = None  # None when no run has GPU-hours used
    gpu_used_runs: int = 0  # runs with GPU-hours used
    gpu_used_sources: str = ""  # where they came from: tres, samples


def total(costs: list[Cost]) -> Total:
    """Allocated CPU and GPU hours of a set of runs, CPU time used, the median memory
    efficiency (peak over asked, per run), and their sources."""
    used = [c.cpu_used_h for c in costs if c.cpu_used_h is not None]
    gpu_used = [c for c in costs if c.gpu_used_h is not None]
    mem = sorted(
        c.mem_peak_mb / c.mem_asked_mb
        for c in costs
        if c.mem_peak_mb is not None and c.mem_asked_mb
    )
    return Total(
        cpu_h=sum(c.cpu_h or 0.0 for c in costs),
        gpu_h=sum(c.gpu_h or 0.0 for c in costs),
        cpu_used_h=sum(used) if used else None,
        sources=", ".join(sorted({c.source for c in costs})) or "none",
        mem_runs=len(mem),
        mem_efficiency=statistics.median(mem) if mem else None,
        gpu_used_h=sum(c.gpu_used_h or 0.0 for c in gpu_used) if gpu_used else None,
        gpu_used_runs=len(gpu_used),
        gpu_used_sources=", ".join(sorted({c.gpu_used_source or "?" for c in gpu_used})),
    )
