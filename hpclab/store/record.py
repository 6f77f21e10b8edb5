"""The run record (``run.json``): identity, status lifecycle, heartbeat, scheduler ids."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

SCHEMA_VERSION = 1


class RunStatus(str, Enum):
    """Lifecycle of a run. ``preempted`` runs are requeued and continue under the same id."""

    PLANNED = "planned"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    PREEMPTED = "preempted"

    @property
    def is_final(self) -> bool:
        """A final status ends the run; only a deliberate resume starts it again."""
        return self in FINAL_STATUSES

    def __str__(self) -> str:
        return self.value


FINAL_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT}
)

# The status vocabulary readers show (CLI, catalog, site and its JavaScript all take it from
# here). ``lost`` is never stored: it is how a ``running`` run whose heartbeat went stale
# reads while no scheduler has said how it ended (store.views.effective_status).
LOST = "lost"
STATUSES: tuple[str, ...] = (*(s.value for s in RunStatus), LOST)
ACTIVE_STATUSES = frozenset(s.value for s in RunStatus if not s.is_final)
"""May still change: planned, queued, running, preempted."""
WAITING_STATUSES = ACTIVE_STATUSES - {RunStatus.RUNNING.value}
"""Active but not running: planned, queued, and preempted (requeued, waiting to run again)."""
ENDED_STATUSES = frozenset(s.value for s in FINAL_STATUSES) | {LOST}
"""Over, as readers see it: the final statuses and ``lost``."""
FAILED_STATUSES = ENDED_STATUSES - {RunStatus.COMPLETED.value}
"""Ended without completing: failed, cancelled, timeout, lost."""

# Scheduler (Slurm) job states -> the run lifecycle. The run's own record is the truth for
# how a job that ran to its end finished (hydra-submitit catches a task's exception, so
# Slurm says COMPLETED for a failed task); scheduler states fill in what the job could not
# record. Here, below the scheduler adapters, because readers of a record interpret the
# ``scheduler_state`` that ``hpclab status`` wrote into it.
SLURM_STATES: dict[str, RunStatus] = {
    "PENDING": RunStatus.QUEUED,
    "CONFIGURING": RunStatus.QUEUED,
    "REQUEUE_FED": RunStatus.QUEUED,
    "RESV_DEL_HOLD": RunStatus.QUEUED,
    "SUSPENDED": RunStatus.RUNNING,
    "RUNNING": RunStatus.RUNNING,
    "COMPLETING": RunStatus.RUNNING,
    "STAGE_OUT": RunStatus.RUNNING,
    "SIGNALING": RunStatus.RUNNING,
    "RESIZING": RunStatus.RUNNING,
    "COMPLETED": RunStatus.COMPLETED,
    "FAILED": RunStatus.FAILED,
    "NODE_FAIL": RunStatus.FAILED,
    "BOOT_FAIL": RunStatus.FAILED,
    "OUT_OF_MEMORY": RunStatus.FAILED,
    "DEADLINE": RunStatus.TIMEOUT,
    "TIMEOUT": RunStatus.TIMEOUT,
    "CANCELLED": RunStatus.CANCELLED,
    "REVOKED": RunStatus.CANCELLED,
    "PREEMPTED": RunStatus.PREEMPTED,
    "REQUEUED": RunStatus.PREEMPTED,
    "REQUEUE_HOLD": RunStatus.PREEMPTED,
    "SPECIAL_EXIT": RunStatus.FAILED,
    "STOPPED": RunStatus.RUNNING,
}


def run_status_of(state: str) -> RunStatus | None:
    """The run status a scheduler state implies ("CANCELLED by 0" -> cancelled)."""
    return SLURM_STATES.get(state.split()[0].rstrip("+").upper()) if state else None


# The order in which a run moves forward. A writer never moves a run backwards
# (a late "queued" from the login node must not overwrite "running" from the node).
_RANK = {
    RunStatus.PLANNED: 0,
    RunStatus.QUEUED: 1,
    RunStatus.RUNNING: 2,
    RunStatus.PREEMPTED: 2,
    RunStatus.COMPLETED: 3,
    RunStatus.FAILED: 3,
    RunStatus.CANCELLED: 3,
    RunStatus.TIMEOUT: 3,
}


# Optional fields that writers other than the run itself set; absent from run.json when None.
OTHER_WRITERS_FIELDS = (
    "submission",
    "scheduler_state",
    "sweep_index",
    "signal",
    "last_signal",
    "cancelled_by",
)


def is_forward(old: RunStatus, new: RunStatus) -> bool:
    """Whether moving from ``old`` to ``new`` is not a step back in the lifecycle."""
    return _RANK[new] >= _RANK[old]


def utcnow_iso(now: float | None = None) -> str:
    """An ISO-8601 UTC timestamp with microseconds."""
    ts = time.time() if now is None else now
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def parse_iso(value: str | None) -> float | None:
    """Epoch seconds from an ISO timestamp written by :func:`utcnow_iso` (None stays None)."""
    if not value:
        return None
    return datetime.fromisoformat(value).timestamp()


@dataclass
class RunRecord:
    """Contents of ``run.json``. Unknown keys are kept in ``extra`` and written back."""

    id: str
    project: str
    status: RunStatus = RunStatus.RUNNING
    name: str | None = None
    parent: str | None = None
    tags: list[str] = field(default_factory=list)
    sweep_id: str | None = None
    created_at: str = field(default_factory=utcnow_iso)
    started_at: str | None = None
    ended_at: str | None = None
    heartbeat_at: str | None = None
    heartbeat_interval: float = 30.0
    attempt: int = 0
    host: str | None = None
    pid: int | None = None
    user: str | None = None
    cwd: str | None = None
    argv: list[str] = field(default_factory=list)
    key: str | None = None
    scheduler: dict[str, Any] = field(default_factory=dict)
    world_size: int = 1
    error: dict[str, Any] | None = None
    step: int = -1
    summary: dict[str, Any] = field(default_factory=dict)
    metrics_dropped: dict[str, int] = field(default_factory=dict)
    returned: dict[str, float] = field(default_factory=dict)
    """The task's return value as final metrics (flattened with ``/``); also in ``summary``."""
    total_steps: int | None = None
    """Planned steps, set by the run (``run.total_steps``); the progress model's first source."""
    history: list[dict[str, Any]] = field(default_factory=list)
    schema: int = SCHEMA_VERSION
    # Written by the launcher, the reconciler, ``hpclab cancel`` and signal handlers; each
    # is left out of ``run.json`` while it is None (as before these were typed fields).
    submission: dict[str, Any] | None = None
    """How the launcher queued the run: scheduler, job_id, array_job_id, submitted_at."""
    scheduler_state: dict[str, Any] | None = None
    """What the scheduler last said of the job: state, exit_code, reason, checked_at."""
    sweep_index: int | None = None
    """The run's point in its sweep (Hydra's job number)."""
    signal: str | None = None
    """The signal that ended the run (``SIGTERM``)."""
    last_signal: str | None = None
    """The last signal the run was sent and survived (Slurm's warning signals)."""
    cancelled_by: str | None = None
    """Who cancelled the run (``hpclab cancel``)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``run.json``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and f.name in OTHER_WRITERS_FIELDS:
                continue
            out[f.name] = value.value if isinstance(value, RunStatus) else value
        out.update(self.extra)
        return out

    def keep_others(self, disk: RunRecord) -> None:
        """Take from ``disk`` what other writers added that this record does not hold
        (scheduler state, cancellation, unknown keys), so a rewrite does not erase it."""
        for name in OTHER_WRITERS_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, getattr(disk, name))
        for key, value in disk.extra.items():
            self.extra.setdefault(key, value)

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """Parse a ``run.json`` object; a :class:`RecordError` (a ``ValueError``) naming
        the field when it is malformed: a wrong type, an integer outside int64 (the
        catalog's BIGINT), a timestamp that does not parse, an unknown status."""
        if not isinstance(data, dict):
            raise RecordError(f"not a JSON object (a {type(data).__name__})")
        names = _FIELD_NAMES
        kwargs = {k: _checked(k, v) for k, v in data.items() if k in names}
        for required in ("id", "project"):
            if required not in kwargs:
                raise RecordError(f"field {required!r}: missing")
        status = kwargs.get("status", "running")
        try:
            kwargs["status"] = RunStatus(status)
        except ValueError:
            valid = ", ".join(s.value for s in RunStatus)
            raise RecordError(
                f"field 'status': {short_repr(status)} is not one of {valid}"
            ) from None
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**kwargs, extra=extra)

    def heartbeat_age(self, now: float | None = None) -> float | None:
        """Seconds since the last heartbeat, or None if the run never beat."""
        beat = parse_iso(self.heartbeat_at)
        if beat is None:
            return None
        return (time.time() if now is None else now) - beat

    def is_stale(
        self, now: float | None = None, *, factor: float = 3.0, grace: float = 10.0
    ) -> bool:
        """A ``running`` run whose heartbeat is older than ``factor`` intervals (+ grace).

        Such a run's process is gone (SIGKILL, node failure) or hung: readers should
        not show it as running; the scheduler, when known, says how it ended.
        """
        if self.status is not RunStatus.RUNNING:
            return False
        age = self.heartbeat_age(now)
        if age is None:
            return True
        return age > factor * self.heartbeat_interval + grace


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(RunRecord)) - {"extra"}


class RecordError(ValueError):
    """A ``run.json`` field has the wrong type or range (the message names the field);
    :meth:`~hpclab.store.layout.Store.read_record` makes it a StoreError naming the file."""


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The range of the catalog's BIGINT: an integer outside it is malformed, not published."""

_STR = ("id", "project", "name", "parent", "sweep_id", "host", "user", "cwd", "key",
        "signal", "last_signal", "cancelled_by")  # fmt: skip
_REQUIRED_STR = frozenset({"id", "project", "created_at"})
_TIMES = ("created_at", "started_at", "ended_at", "heartbeat_at")
_INTS = {
    "attempt": 0,
    "step": INT64_MIN,
    "world_size": 0,
    "schema": 0,
    "pid": INT64_MIN,
    "total_steps": INT64_MIN,
    "sweep_index": INT64_MIN,
}  # field: its minimum
_REQUIRED_INTS = frozenset({"attempt", "step", "world_size", "schema"})
_DICTS = ("scheduler", "summary", "error", "submission", "scheduler_state")
_REQUIRED_DICTS = frozenset({"scheduler", "summary"})


# What utcnow_iso writes and DuckDB's TIMESTAMP cast reads (Python also parses forms that
# DuckDB refuses, "20240101T000000" or week dates: such a value is malformed here)
_ISO_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"
    r"(?:Z|[+-]\d{2}:\d{2}(?::\d{2})?)?"
)


def is_iso_timestamp(value: Any) -> bool:
    """``value`` is an ISO-8601 timestamp both Python and the catalog (DuckDB) read."""
    if not isinstance(value, str) or not _ISO_RE.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError, OSError):
        return False
    return True


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (a field's value in an error message)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _checked(name: str, value: Any) -> Any:
    """``value`` of run.json field ``name`` if it has the field's type and range."""
    if value is None:
        if name in _NOT_NULL:
            raise _bad(name, "a value", value)
        return None
    check = _CHECKS.get(name)
    return value if check is None else check(name, value)


def _bad(name: str, what: str, value: Any) -> RecordError:
    return RecordError(f"field {name!r}: expected {what}, got {short_repr(value)}")


def _check_time(name: str, value: Any) -> Any:
    if not is_iso_timestamp(value):
        raise _bad(name, "an ISO-8601 timestamp", value)
    return value


def _check_str(name: str, value: Any) -> Any:
    if not isinstance(value, str) or (name in _REQUIRED_STR and not value):
        raise _bad(name, "a string", value)
    return value


def _check_int(name: str, value: Any) -> Any:
    if not _is_int(value) or not _INTS[name] <= value <= INT64_MAX:
        raise _bad(name, f"an integer from {_INTS[name]} to {INT64_MAX}", value)
    return value


def _check_interval(name: str, value: Any) -> Any:
    if not _is_number(value) or not 0 <= float(value) < 1e12:  # NaN: not in range
        raise _bad(name, "a number of seconds", value)
    return float(value)


def _check_strings(name: str, value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(name, "a list of strings", value)
    return value


def _check_objects(name: str, value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _bad(name, "a list of objects", value)
    return value


def _check_counts(name: str, value: Any) -> Any:
    if not isinstance(value, dict) or not all(
        _is_int(v) and 0 <= v <= INT64_MAX for v in value.values()
    ):
        raise _bad(name, "an object of counts", value)
    return value


def _check_numbers(name: str, value: Any) -> Any:
    if not isinstance(value, dict) or not all(_is_number(v) for v in value.values()):
        raise _bad(name, "an object of numbers", value)
    return value


def _check_dict(name: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise _bad(name, "an object", value)
    return value


_NOT_NULL = _REQUIRED_STR | _REQUIRED_INTS | _REQUIRED_DICTS | {
    "tags", "argv", "history", "metrics_dropped", "returned", "status"
}  # fmt: skip
# field -> its check (one lookup per field: a cold index parses 10,000 records)
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    **dict.fromkeys(_DICTS, _check_dict),
    **dict.fromkeys(_INTS, _check_int),
    **dict.fromkeys(_STR, _check_str),
    **dict.fromkeys(_TIMES, _check_time),
    "heartbeat_interval": _check_interval,
    "tags": _check_strings,
    "argv": _check_strings,
    "history": _check_objects,
    "metrics_dropped": _check_counts,
    "returned": _check_numbers,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """An int or float that a DOUBLE holds (NaN and inf too; not a bool, not 10**400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True
