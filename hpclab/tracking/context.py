"""Where a run executes: its rank in a multi-process job, its scheduler identity, and
the runs this process has started (the registry ``current_run`` reads: the TensorBoard
and DeepSpeed hooks find their run here without importing :mod:`hpclab.tracking.run`)."""

from __future__ import annotations

import os
import re
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpclab.tracking.run import Run

_active: list[weakref.ref[Run]] = []
_active_lock = threading.Lock()


def register_run(run: Run) -> None:
    """Record ``run`` as started in this process."""
    with _active_lock:
        _active.append(weakref.ref(run))


def active_runs() -> Iterator[Run]:
    """The runs started in this process that are still alive (finished ones included)."""
    with _active_lock:
        runs = [r() for r in _active]
    return (r for r in runs if r is not None)


def current_run() -> Run | None:
    """The most recently started run of this process that has not finished."""
    with _active_lock:
        for ref in reversed(_active):
            run = ref()
            if run is not None and not run.finished:
                return run
    return None


_RANK_VARS = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")
_WORLD_VARS = ("WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


def detect_rank(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(rank, world size) of this process.

    torch.distributed when it is initialised (only if torch is already imported: importing
    it here would cost seconds), else torchrun's ``RANK``, Slurm's ``SLURM_PROCID`` and MPI's
    variables, else (0, 1).
    """
    env = os.environ if environ is None else environ
    dist = sys.modules.get("torch.distributed")
    if environ is None and dist is not None:
        try:
            if dist.is_available() and dist.is_initialized():
                return int(dist.get_rank()), int(dist.get_world_size())
        except Exception:  # a broken process group should not stop tracking
            pass
    rank = next((int(env[v]) for v in _RANK_VARS if env.get(v, "").isdigit()), 0)
    world = next((int(env[v]) for v in _WORLD_VARS if env.get(v, "").isdigit()), 1)
    return rank, max(world, rank + 1)


def scheduler_info(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Scheduler ids of this process: Slurm job/array/step ids, or ``{"kind": "local"}``."""
    env = os.environ if environ is None else environ
    if "SLURM_JOB_ID" not in env:
        return {"kind": "local"}
    fields = {
        "job_id": "SLURM_JOB_ID",
        "array_job_id": "SLURM_ARRAY_JOB_ID",
        "array_task_id": "SLURM_ARRAY_TASK_ID",
        "step_id": "SLURM_STEP_ID",
        "restart_count": "SLURM_RESTART_COUNT",
        "partition": "SLURM_JOB_PARTITION",
        "nodelist": "SLURM_JOB_NODELIST",
        "cluster": "SLURM_CLUSTER_NAME",
        "account": "SLURM_JOB_ACCOUNT",
        "ntasks": "SLURM_NTASKS",
        "cpus_per_task": "SLURM_CPUS_PER_TASK",
        "gpus": "SLURM_GPUS",
    }
    info: dict[str, Any] = {"kind": "slurm"}
    for key, var in fields.items():
        if var in env:
            info[key] = env[var]
    info["restart_count"] = int(env.get("SLURM_RESTART_COUNT", "0") or 0)
    return info


def run_key(environ: Mapping[str, str] | None = None) -> str | None:
    """A key naming this job's run across requeues and ranks, or None outside a scheduler.

    Slurm keeps the job id (and array task id) when it requeues a job, so a requeued task
    finds its run again; all ranks of one job share the key.
    """
    env = os.environ if environ is None else environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"slurm-{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return f"slurm-{env['SLURM_JOB_ID']}"
    elastic = env.get("TORCHELASTIC_RUN_ID")
    if elastic and elastic != "none":
        return "torchrun-" + re.sub(r"[^A-Za-z0-9._-]", "-", elastic)[:100]
    return None
