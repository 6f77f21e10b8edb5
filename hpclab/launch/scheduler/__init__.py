"""Scheduler adapters behind one interface (:class:`Scheduler`), a factory that picks one,
and :class:`Watcher`, the batched, caching poller every caller should go through (one
scheduler call for many jobs, never one ``sacct`` per job; submitit's ``InfoWatcher``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable

from hpclab.errors import ConfigError, SchedulerError
from hpclab.launch.scheduler.base import (
    SLURM_STATES,
    UNKNOWN_ENDED,
    JobState,
    PartitionLimits,
    Scheduler,
    run_status_of,
)

KINDS = ("slurm", "local")
SYSTEM_SLURM_CONF = "/etc/slurm/slurm.conf"


def slurm_available() -> bool:
    """``sbatch`` is on PATH and its Slurm config exists: ``$SLURM_CONF`` when set, else the
    system's. A ``$SLURM_CONF`` naming a missing file means no Slurm (the Slurm commands
    read only that file then; they do not fall back to the system's)."""
    if shutil.which("sbatch") is None:
        return False
    return os.path.exists(os.environ.get("SLURM_CONF") or SYSTEM_SLURM_CONF)


def get_scheduler(kind: str | None = None) -> Scheduler:
    """The scheduler for ``kind``: ``"slurm"`` (pyslurm when it imports and matches the
    cluster's release, else the CLI), ``"local"`` (processes here), or None: Slurm when it
    is available (:func:`slurm_available`), else local."""
    if kind is None:
        kind = "slurm" if slurm_available() else "local"
    if kind == "slurm":
        from hpclab.launch.scheduler.pyslurm_backend import PySlurm, pyslurm_usable
        from hpclab.launch.scheduler.slurm_cli import SlurmCLI

        return PySlurm() if pyslurm_usable() else SlurmCLI()
    if kind == "local":
        from hpclab.launch.scheduler.local import LocalScheduler

        return LocalScheduler()
    raise ConfigError(f"unknown scheduler {kind!r}: use one of {', '.join(KINDS)}")


class Watcher:
    """Batched, caching job states with backoff.

    :meth:`state` registers a job id and answers from a cache that is refreshed for all
    registered, not yet final ids in one scheduler call, at most every ``min_interval``
    seconds. While the scheduler fails, the interval doubles up to ``max_interval`` (a
    struggling ``slurmctld`` must not be hammered by every client); one success resets
    it. Final states never change, so they are cached forever and never asked again.
    An id registered after the last refresh reads None until the next one (or
    :meth:`refresh` with ``force=True``).
    """

    def __init__(
        self,
        scheduler: Scheduler | None = None,
        *,
        min_interval: float = 5.0,
        max_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scheduler = scheduler if scheduler is not None else get_scheduler()
        self.min_interval = min_interval
        self.max_interval = max_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._registered: dict[str, None] = {}  # insertion-ordered set
        self._states: dict[str, JobState] = {}
        self._final: set[str] = set()
        self._last: float | None = None
        self._interval = min_interval
        self.calls = 0  # scheduler calls made, for diagnostics
        self.last_error: SchedulerError | None = None

    @property
    def interval(self) -> float:
        """The current refresh interval (``min_interval``, or more while backing off)."""
        return self._interval

    def register(self, job_ids: Iterable[str]) -> None:
        """Watch these ids from the next refresh on."""
        with self._lock:
            for job_id in job_ids:
                self._registered.setdefault(str(job_id), None)

    def state(self, job_id: str) -> JobState | None:
        """The cached state of ``job_id`` (refreshed when due); None while unknown."""
        job_id = str(job_id)
        self.register([job_id])
        self.refresh()
        with self._lock:
            return self._states.get(job_id)

    def states(self) -> dict[str, JobState]:
        """Every state known so far (array ids answer under their task ids)."""
        with self._lock:
            return dict(self._states)

    def is_final(self, job_id: str) -> bool:
        """Whether ``job_id`` reached a final state (it will not be asked again)."""
        with self._lock:
            return str(job_id) in self._final

    def refresh(self, force: bool = False) -> bool:
        """Ask the scheduler about all registered non-final ids if the interval has passed
        (or ``force``). Returns whether it asked. Errors are kept in ``last_error`` and
        widen the interval; they do not propagate (the cache stays as it was)."""
        with self._lock:
            now = self._clock()
            due = self._last is None or now - self._last >= self._interval
            pending = [j for j in self._registered if j not in self._final]
            if not pending or not (due or force):
                return False
            self._last = now
            self.calls += 1
            try:
                fresh = self.scheduler.states(pending)
            except SchedulerError as e:
                self.last_error = e
                self._interval = min(self.max_interval, max(self._interval, 0.001) * 2)
                return True
            self.last_error = None
            self._interval = self.min_interval
            self._states.update(fresh)
            for job_id, job in fresh.items():
                if job.is_final:
                    self._final.add(job_id)
            for job_id in pending:
                # an array id is done when every task it expanded to is final
                tasks = [j for k, j in fresh.items() if k.startswith(f"{job_id}_")]
                if tasks and job_id not in fresh and all(t.is_final for t in tasks):
                    self._final.add(job_id)
            return True


__all__ = [
    "KINDS",
    "SLURM_STATES",
    "UNKNOWN_ENDED",
    "JobState",
    "PartitionLimits",
    "Scheduler",
    "Watcher",
    "get_scheduler",
    "run_status_of",
    "slurm_available",
]
