"""What a Slurm job used against what it asked for: ``sacct`` over every step, as
``seff`` and Princeton's jobstats read it.

``sacct -X`` (the allocation line alone) is not enough: with some gather plugins its
``TotalCPU`` is ``00:00:00`` while the steps (``12.batch``, ``12.0``, ...) used 20 s each,
and ``MaxRSS`` only exists on step lines. So the job's usage is folded from all its lines:

* CPU time used: the allocation's ``TotalCPU``, or the sum of its steps' when that is
  larger (the steps are where the time is accounted);
* peak memory: the largest ``MaxRSS`` of any step (``TRESUsageInMax`` ``mem=`` where
  ``MaxRSS`` is empty);
* allocated: ``AllocTRES`` of the allocation line (``cpu=``, ``gres/gpu=``, ``mem=``),
  requested: ``ReqTRES`` (``mem=`` the whole job's memory), else ``ReqMem`` (``4Gn`` per
  node, ``4Gc`` per CPU in older Slurm, a plain ``4G`` since 21.08);
* GPU use where the site accounts it (``AccountingStorageTRES=gres/gpumem,gres/gpuutil``):
  ``TRESUsageInTot`` ``gres/gpuutil=`` (percent, summed over GPUs) and ``gres/gpumem=``;
  GPU-hours used = gpuutil / 100 x elapsed (``gpu_used_source`` ``tres``; where the site
  does not account it, the run's own GPU samples give it: ``samples``).

Efficiencies are ``None`` when a figure is missing (never 0 % for "unknown").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from hpclab.launch.scheduler.slurm_text import SEP, _unset, expand_job_id, parse_duration

SACCT_USAGE_FIELDS = [
    "JobID",
    "State",
    "ExitCode",
    "ElapsedRaw",
    "NNodes",
    "NCPUS",
    "NodeList",
    "TotalCPU",
    "AllocTRES",
    "ReqTRES",
    "ReqMem",
    "MaxRSS",
    "TRESUsageInTot",
    "TRESUsageInMax",
]
_UNITS = {"": 1 / 1024**2, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGTP]?)([nc]?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class JobUsage:
    """One job's (or array task's) resources: asked for, allocated, used."""

    job_id: str
    state: str
    exit_code: str | None = None
    elapsed_s: float | None = None
    nodes: int | None = None
    node_list: str | None = None
    alloc_cpus: int | None = None
    alloc_gpus: int | None = None
    alloc_mem_mb: float | None = None
    req_mem_mb: float | None = None
    cpu_used_s: float | None = None  # TotalCPU: user + system, every step
    max_rss_mb: float | None = None  # the largest step's peak resident memory
    gpu_util_pct: float | None = None  # TRESUsageInTot gres/gpuutil (summed over GPUs)
    gpu_mem_mb: float | None = None  # TRESUsageInTot gres/gpumem

    @property
    def mem_asked_mb(self) -> float | None:
        """The memory the job held for itself: requested, else allocated."""
        return self.req_mem_mb or self.alloc_mem_mb or None

    @property
    def cpu_efficiency(self) -> float | None:
        """CPU time used / (allocated CPUs x elapsed), 0..1 (seff's "CPU Efficiency")."""
        if self.cpu_used_s is None or not self.alloc_cpus or not self.elapsed_s:
            return None
        return self.cpu_used_s / (self.alloc_cpus * self.elapsed_s)

    @property
    def mem_efficiency(self) -> float | None:
        """Peak RSS / memory asked for, 0..1 (seff's "Memory Efficiency")."""
        asked = self.mem_asked_mb
        if self.max_rss_mb is None or not asked:
            return None
        return self.max_rss_mb / asked

    @property
    def gpu_hours(self) -> float | None:
        """GPU-hours allocated (GPUs x elapsed)."""
        if self.elapsed_s is None:
            return None
        return (self.alloc_gpus or 0) * self.elapsed_s / 3600.0

    @property
    def gpu_hours_used(self) -> float | None:
        """GPU-hours used by accounting: ``gres/gpuutil`` (percent, summed over the GPUs)
        / 100 x elapsed; None where the site does not account GPU use (the run's own
        samples stand in then: :func:`hpclab.launch.resources.gpu_hours_from_samples`)."""
        if self.gpu_util_pct is None or self.elapsed_s is None:
            return None
        return self.gpu_util_pct / 100.0 * self.elapsed_s / 3600.0

    @property
    def cpu_hours(self) -> float | None:
        """CPU-hours allocated (CPUs x elapsed): what clusters charge."""
        if self.elapsed_s is None or self.alloc_cpus is None:
            return None
        return self.alloc_cpus * self.elapsed_s / 3600.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            cpu_efficiency=self.cpu_efficiency,
            mem_efficiency=self.mem_efficiency,
            cpu_hours=self.cpu_hours,
            gpu_hours=self.gpu_hours,
            gpu_hours_used=self.gpu_hours_used,
            gpu_used_source="tres" if self.gpu_hours_used is not None else None,
        )
        return out


def size_mb(text: str | None, *, nodes: int | None = None, cpus: int | None = None) -> float | None:
    """MB from a Slurm size (``306380K``, ``4G``, ``500M``, ``4Gn`` per node, ``4Gc`` per
    CPU); a bare number is bytes (as ``TRESUsageIn*`` print ``mem=``... with a unit;
    ``fs/disk=30435`` is bytes). None when empty or not a size."""
    text = _unset(text)
    if text is None:
        return None
    m = _SIZE.match(text)
    if m is None:
        return None
    value = float(m.group(1)) * _UNITS[m.group(2).upper()]
    per = m.group(3).lower()
    if per == "n" and nodes:
        value *= nodes
    elif per == "c" and cpus:
        value *= cpus
    return value


def tres(text: str | None) -> dict[str, str]:
    """``cpu=2,mem=1000M,gres/gpu=1`` as a mapping (empty for an unset field)."""
    out: dict[str, str] = {}
    for part in (_unset(text) or "").split(","):
        key, eq, value = part.partition("=")
        if eq and key.strip():
            out[key.strip()] = value.strip()
    return out


def _int(text: str | None) -> int | None:
    t = _unset(text)
    return int(t) if t is not None and t.isdigit() else None


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def parse_sacct_usage(text: str) -> dict[str, JobUsage]:
    """Every job of ``sacct -n -P -o SACCT_USAGE_FIELDS`` (no ``-X``: step lines too),
    keyed by job id (``12`` or an array task's ``12_3``); ranges of tasks that never ran
    (``12_[4-9]``) used nothing and are left out."""
    alloc: dict[str, dict[str, str]] = {}
    steps: dict[str, list[dict[str, str]]] = {}
    n = len(SACCT_USAGE_FIELDS)
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(SEP)
        if len(parts) < n:
            continue
        row = dict(zip(SACCT_USAGE_FIELDS, parts[:n], strict=True))
        job, dot, _step = row["JobID"].partition(".")
        if "[" in job or len(expand_job_id(job)) != 1:
            continue
        if dot:
            steps.setdefault(job, []).append(row)
        else:
            alloc[job] = row
    return {job: _fold(job, row, steps.get(job, [])) for job, row in alloc.items()}


def _fold(job: str, row: dict[str, str], steps: Iterable[dict[str, str]]) -> JobUsage:
    steps = list(steps)
    nodes = _int(row["NNodes"])
    cpus = _int(row["NCPUS"])
    allocated = tres(row["AllocTRES"])
    requested = tres(row["ReqTRES"])
    alloc_cpus = _int(allocated.get("cpu")) or cpus
    req_mem = size_mb(requested.get("mem")) or size_mb(row["ReqMem"], nodes=nodes, cpus=cpus)
    cpu = _duration(row["TotalCPU"])
    step_cpu = [c for s in steps if (c := _duration(s["TotalCPU"])) is not None]
    if step_cpu and (cpu is None or sum(step_cpu) > cpu):
        cpu = sum(step_cpu)
    rss = [
        r
        for s in steps
        if (r := size_mb(s["MaxRSS"]) or size_mb(tres(s["TRESUsageInMax"]).get("mem"))) is not None
    ]
    used = [tres(s["TRESUsageInTot"]) for s in steps]
    util = [v for u in used if (v := _num(u.get("gres/gpuutil"))) is not None]
    gmem = [v for u in used if (v := size_mb(u.get("gres/gpumem"))) is not None]
    state, _, _ = (row["State"] or "").partition(" ")  # "CANCELLED by 0"
    return JobUsage(
        job_id=job,
        state=state.strip(),
        exit_code=_unset(row["ExitCode"]),
        elapsed_s=_num(row["ElapsedRaw"]),
        nodes=nodes,
        node_list=_unset(row["NodeList"]),
        alloc_cpus=alloc_cpus,
        alloc_gpus=_int(allocated.get("gres/gpu")),
        alloc_mem_mb=size_mb(allocated.get("mem")),
        req_mem_mb=req_mem,
        cpu_used_s=cpu,
        max_rss_mb=max(rss) if rss else None,
        gpu_util_pct=max(util) if util else None,
        gpu_mem_mb=max(gmem) if gmem else None,
    )


def _duration(text: str | None) -> float | None:
    t = _unset(text)
    if t is None:
        return None
    try:
        return parse_duration(t)
    except ValueError:
        return None


__all__ = ["SACCT_USAGE_FIELDS", "JobUsage", "parse_sacct_usage", "size_mb", "tres"]
