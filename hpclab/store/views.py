"""Read-only views of the store shared by the CLI, the catalog and the site: how a run's
status reads to a person."""

from __future__ import annotations

from collections.abc import Mapping

from hpclab.store.record import LOST, RunRecord, RunStatus, run_status_of


def status_view(record: RunRecord, now: float | None = None) -> tuple[str, bool]:
    """(status, stale): the status readers show, and whether the heartbeat is stale.

    The stored status, except for a ``running`` run whose heartbeat is stale (its process
    died without a word: SIGKILL, node failure, or hangs). That run shows what the scheduler
    state last recorded in it (``hpclab status``, ``hpclab watch``) says of its end:

    * a final state (TIMEOUT, CANCELLED, FAILED, ...) -> that status;
    * COMPLETED -> ``failed``: the job ended without the run recording its end (the rule
      :mod:`hpclab.launch.reconcile` writes, so the record reads the same before and after);
    * nothing, or a state that is not an end (PENDING, RUNNING: checked while it still ran)
      -> ``lost``, until the scheduler says more.
    """
    if not record.is_stale(now):
        return record.status.value, False
    state = record.scheduler_state
    word = state.get("state") if isinstance(state, Mapping) else None
    ended = run_status_of(word if isinstance(word, str) else "")
    if ended is RunStatus.COMPLETED:
        return RunStatus.FAILED.value, True
    if ended is not None and ended.is_final:
        return ended.value, True
    return LOST, True


def effective_status(record: RunRecord, now: float | None = None) -> str:
    """The status readers show for ``record``: see :func:`status_view`."""
    return status_view(record, now)[0]
