"""Read-only views of the store shared by the CLI (and later the catalog): how a run's
status reads to a person, and one summary row per run."""

from __future__ import annotations

from hpclab.store import RunRecord, RunStatus


def effective_status(record: RunRecord) -> str:
    """The stored status, except that a ``running`` run with a stale heartbeat is ``lost``
    (its process died without a word: SIGKILL, node failure) until the scheduler says more."""
    if record.status is RunStatus.RUNNING and record.is_stale():
        return "lost"
    return record.status.value
