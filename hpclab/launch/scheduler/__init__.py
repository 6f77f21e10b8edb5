"""Scheduler adapters behind one interface (:class:`Scheduler`), a registry of them by name
(:func:`register_scheduler`, :func:`get_scheduler`), and :class:`Watcher`, the batched,
caching poller every caller should go through (one scheduler call for many jobs, never one
``sacct`` per job; submitit's ``InfoWatcher``).

A backend registers a factory, not a class: its module (and pyslurm, submitit, ...) is
imported only when that backend is asked for.
"""

from __future__ import annotations

import difflib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hpclab.errors import ConfigError, SchedulerError
from hpclab.launch.scheduler.base import (
    UNKNOWN_ENDED,
    JobState,
    PartitionLimits,
    Scheduler,
)
from hpclab.store.record import SLURM_STATES, run_status_of

SYSTEM_SLURM_CONF = "/etc/slurm/slurm.conf"


def slurm_available() -> bool:
    """``sbatch`` is on PATH and its Slurm config exists: ``$SLURM_CONF`` when set, else the
    system's. A ``$SLURM_CONF`` naming a missing file means no Slurm (the Slurm commands
    read only that file then; they do not fall back to the system's)."""
    if shutil.which("sbatch") is None:
        return False
    return os.path.exists(os.environ.get("SLURM_CONF") or SYSTEM_SLURM_CONF)


@dataclass(frozen=True)
class SchedulerBackend:
    """A registered backend: its name (the scheduler kind run and sweep records hold:
    ``slurm``, ``local``), what makes one, and a line that says what it is."""

    name: str
    factory: Callable[[], Scheduler]
    description: str = ""


_BACKENDS: dict[str, SchedulerBackend] = {}


def register_scheduler(
    name: str, factory: Callable[[], Scheduler], description: str = ""
) -> SchedulerBackend:
    """Make ``get_scheduler(name)`` return ``factory()``. A name is registered once."""
    if name in _BACKENDS:
        raise ValueError(f"a scheduler backend is already registered as {name!r}")
    backend = SchedulerBackend(name, factory, description)
    _BACKENDS[name] = backend
    return backend


def unregister_scheduler(name: str) -> None:
    """Forget the backend registered as ``name`` (KeyError if there is none)."""
    del _BACKENDS[name]


def scheduler_names() -> list[str]:
    """The registered backends' names, in registration order."""
    return list(_BACKENDS)


def get_scheduler(kind: str | None = None) -> Scheduler:
    """The scheduler registered as ``kind``, or for None: ``"slurm"`` when Slurm is
    available (:func:`slurm_available`), else ``"local"``. An unknown name is a
    :class:`ConfigError` that lists the valid ones."""
    if kind is None:
        kind = "slurm" if slurm_available() else "local"
    backend = _BACKENDS.get(kind)
    if backend is None:
        names = scheduler_names()
        close = difflib.get_close_matches(kind, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown scheduler {kind!r}{hint}: use one of {', '.join(names)}")
    return backend.factory()


def _slurm() -> Scheduler:
    from hpclab.launch.scheduler.pyslurm_backend import PySlurm, pyslurm_usable
    from hpclab.launch.scheduler.slurm_cli import SlurmCLI

    return PySlurm() if pyslurm_usable() else SlurmCLI()


def _slurm_cli() -> Scheduler:
    from hpclab.launch.scheduler.slurm_cli import SlurmCLI

    return SlurmCLI()


def _pyslurm() -> Scheduler:
    from hpclab.launch.scheduler.pyslurm_backend import PySlurm

    return PySlurm()


def _local() -> Scheduler:
    from hpclab.launch.scheduler.local import LocalScheduler

    return LocalScheduler()


register_scheduler("slurm", _slurm, "Slurm: pyslurm when it matches the cluster, else the CLI")
register_scheduler("local", _local, "processes on this machine")
register_scheduler("slurm_cli", _slurm_cli, "Slurm through squeue/sacct/sinfo/scontrol")
register_scheduler("pyslurm", _pyslurm, "Slurm through pyslurm (its release must match)")


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
    "SLURM_STATES",
    "UNKNOWN_ENDED",
    "JobState",
    "PartitionLimits",
    "Scheduler",
    "SchedulerBackend",
    "Watcher",
    "get_scheduler",
    "register_scheduler",
    "run_status_of",
    "scheduler_names",
    "slurm_available",
    "unregister_scheduler",
]
