"""The local backend: jobs that submitit's ``LocalExecutor`` runs as processes on this
machine. A job id is the process id submitit reports (``str(process.pid)``).

A process only says whether it is alive, not how it ended: a gone process is
``UNKNOWN_ENDED``, which maps to no run status, so the run's own record (and its heartbeat)
decides. Process ids are only meaningful on the machine that started them, and the kernel
reuses them, so a very old id may name an unrelated process; callers that care compare a
run's heartbeat as well.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Sequence
from pathlib import Path

from hpclab.errors import SchedulerError
from hpclab.launch.scheduler.base import UNKNOWN_ENDED, JobState, Scheduler


def _pid(job_id: str) -> int | None:
    text = str(job_id).strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of ``pid`` (``R``, ``S``, ``Z``...), None if gone.

    Read from ``/proc/<pid>/stat``; the command name in it may contain spaces and
    parentheses, so the state is the first field after the *last* ``)``.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 1 :].split()
    return rest[0] if rest else None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process: it exists and is not a zombie (one that exited
    but was not reaped yet, which ``kill(pid, 0)`` still reports as existing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    return process_state(pid) not in ("Z", "X")


class LocalScheduler(Scheduler):
    """Processes on this machine, by pid."""

    name = "local"

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """``RUNNING`` for a live process, ``UNKNOWN_ENDED`` for one that is gone; ids that are
        not process ids are absent."""
        out: dict[str, JobState] = {}
        for job_id in job_ids:
            pid = _pid(job_id)
            if pid is None:
                continue
            state = "RUNNING" if pid_alive(pid) else UNKNOWN_ENDED
            out[str(job_id)] = JobState(job_id=str(job_id), state=state)
        return out

    def cancel(self, job_ids: Iterable[str]) -> None:
        """SIGTERM each live process (the caller may follow with SIGKILL); gone ones are
        skipped. Raises :class:`SchedulerError` for an id that is not a process id."""
        for job_id in job_ids:
            pid = _pid(job_id)
            if pid is None:
                raise SchedulerError(f"invalid local job id {job_id!r}: expected a process id")
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            except PermissionError:
                raise SchedulerError(
                    f"cannot signal process {pid} (job {job_id}): not ours"
                ) from None
