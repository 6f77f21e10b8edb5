"""The scheduler interface. Backends (Slurm CLI, pyslurm, local) fill in a few hooks, as
submitit's backends do behind its ``Executor``; callers only see this module.

Everything is batched: one call answers for many jobs (never one ``sacct`` per job).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpclab.store import RunStatus
from hpclab.store.record import run_status_of

# A job the backend saw end without knowing how (a local process that is gone). It maps to
# no run status: the run's own record (and its heartbeat) decides how the run ended.
UNKNOWN_ENDED = "UNKNOWN_ENDED"


@dataclass(frozen=True)
class JobState:
    """What the scheduler knows of one job (an array task has its own ``job_id``: ``12_3``)."""

    job_id: str
    state: str  # the scheduler's own word: PENDING, RUNNING, COMPLETED, ...
    exit_code: str | None = None  # as Slurm prints it, ``code:signal`` ("3:0", "0:15")
    reason: str | None = None  # why pending, or how it ended
    start: str | None = None
    end: str | None = None
    elapsed_s: float | None = None
    nodes: str | None = None
    cpu_s: float | None = None  # CPU time used (accounting TotalCPU), for cost reports
    cpus: int | None = None  # CPUs allocated (AllocTRES cpu=), for cost reports
    gpus: int | None = None

    @property
    def status(self) -> RunStatus | None:
        return run_status_of(self.state)

    @property
    def is_final(self) -> bool:
        status = self.status
        return status is not None and status.is_final

    @property
    def has_ended(self) -> bool:
        """The job is over: a final state, or gone without a known end (``UNKNOWN_ENDED``)."""
        return self.is_final or self.state == UNKNOWN_ENDED

    @property
    def returncode(self) -> int | None:
        """The job's exit status, from ``exit_code`` (``"3:0"`` -> 3); None when unknown."""
        if not self.exit_code:
            return None
        try:
            return int(self.exit_code.split(":")[0])
        except ValueError:
            return None


@dataclass(frozen=True)
class PartitionLimits:
    """What a partition allows one job (None: no limit known)."""

    name: str
    max_time_min: float | None = None
    max_mem_mb: int | None = None  # largest node's memory
    max_cpus: int | None = None  # largest node's CPUs
    max_gpus: int | None = None  # largest node's GPUs (gres)
    nodes: int | None = None
    state: str | None = None
    default: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Scheduler(abc.ABC):
    """One interface over Slurm (CLI or pyslurm) and local processes."""

    name: str = "abstract"

    @abc.abstractmethod
    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """States of these jobs, in as few scheduler calls as possible. Jobs the scheduler
        no longer knows are absent. An array job id (``12``) expands to its tasks."""

    @abc.abstractmethod
    def cancel(self, job_ids: Iterable[str]) -> None:
        """Cancel these jobs (or array tasks, or whole arrays)."""

    def partitions(self) -> dict[str, PartitionLimits]:
        """Partitions and their limits (empty when the backend has none)."""
        return {}

    def usage(self, job_ids: Sequence[str]) -> dict[str, Any]:
        """What these jobs used against what they asked for
        (:class:`~hpclab.launch.scheduler.usage.JobUsage` by job id): empty when the
        backend has no accounting (local processes)."""
        return {}

    def max_array_size(self) -> int | None:
        """The largest array the scheduler accepts (Slurm's MaxArraySize), if any."""
        return None
