"""What runs cost, in CPU and GPU hours, and where the figure comes from.

Slurm runs: the accounting database (``sacct``'s TotalCPU, ElapsedRaw and AllocTRES
through the scheduler adapter, one batched call for every job of the site). Local runs,
or Slurm runs when accounting cannot be asked: the run's own duration (``duration_s``:
end or last heartbeat minus start) as wall-clock hours on one CPU, marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpclab.site.data import Key, SiteData


@dataclass(frozen=True)
class Cost:
    cpu_h: float | None
    gpu_h: float | None
    source: str  # "sacct" or "run duration"


def accounting(data: SiteData, *, warn: Any = None) -> dict[Key, Cost]:
    """Cost of every run: one scheduler call for all Slurm jobs, durations for the rest."""
    out: dict[Key, Cost] = {}
    slurm_jobs: dict[str, Key] = {}
    for r in data.runs:
        key = (r["project"], r["run_id"])
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
                    cpu = st.cpu_s / 3600.0 if st.cpu_s is not None else None
                    gpu = (st.gpus or 0) * st.elapsed_s / 3600.0
                    out[found] = Cost(cpu, gpu, "sacct")
        except Exception as exc:  # accounting down or absent: durations stand, said so
            if warn:
                warn(f"Slurm accounting not available for the cost tables ({exc})")
    return out


def total(costs: list[Cost]) -> tuple[float, float, str]:
    """(CPU hours, GPU hours, sources) of a set of runs."""
    cpu = sum(c.cpu_h or 0.0 for c in costs)
    gpu = sum(c.gpu_h or 0.0 for c in costs)
    sources = ", ".join(sorted({c.source for c in costs})) or "none"
    return cpu, gpu, sources
