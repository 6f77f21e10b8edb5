"""The run record (``run.json``): identity, status lifecycle, heartbeat, scheduler ids."""

from __future__ import annotations

import dataclasses
import time
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
    history: list[dict[str, Any]] = field(default_factory=list)
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``run.json``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            out[f.name] = value.value if isinstance(value, RunStatus) else value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Parse a ``run.json`` object; raises ``KeyError``/``ValueError`` when malformed."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["status"] = RunStatus(kwargs.get("status", "running"))
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
