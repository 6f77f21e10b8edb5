"""Read-only views of the store shared by the CLI, the catalog and the site: how a run's
status reads to a person, and how far it is (step, rate, ETA)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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


# -- progress ------------------------------------------------------------------------------
RATE_WINDOW = 50  # points at the end of a series that give the step rate (and so the ETA)
# Config paths that give a run's planned number of steps, first match wins.
TOTAL_STEP_PATHS = (
    "train.steps",
    "train.max_steps",
    "trainer.max_steps",
    "max_steps",
    "total_steps",
    "steps",
)


class Column(Protocol):
    """A series' column: a list, or a NumPy array."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Any: ...


@dataclass(frozen=True)
class Progress:
    """How far a run is: its step, planned steps, steps per second, percent done, ETA."""

    step: int | None = None
    total: int | None = None
    rate: float | None = None
    percent: float | None = None
    eta_s: float | None = None


def total_steps(config: Mapping[str, Any] | None) -> int | None:
    """A run's planned steps from its config: the first of :data:`TOTAL_STEP_PATHS` that
    holds a positive number. ``config`` is the nested config, or a mapping of dotted paths
    to values (the catalog's features)."""
    if not isinstance(config, Mapping):
        return None
    for dotted in TOTAL_STEP_PATHS:
        node: Any = config.get(dotted)
        if node is None:
            node = config
            for part in dotted.split("."):
                node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, (int, float)) and not isinstance(node, bool) and node > 0:
            return int(node)
    return None


def step_rate(steps: Column, wall_times: Column) -> float | None:
    """Steps per second over the last :data:`RATE_WINDOW` points of one series (the one
    that reached the furthest step); None when it cannot tell."""
    n = min(len(steps), len(wall_times))
    if n < 2:
        return None
    first = max(0, n - RATE_WINDOW)
    dt = float(wall_times[n - 1]) - float(wall_times[first])
    ds = float(steps[n - 1]) - float(steps[first])
    if dt <= 0 or ds <= 0:
        return None
    return ds / dt


def progress(status: str, step: int | None, total: int | None, rate: float | None) -> Progress:
    """Percent done (steps count from 0: step ``total - 1`` is 100 %) and, while the run
    is ``running`` (its status as :func:`effective_status` reads it), the time the steps
    left take at ``rate``."""
    percent = eta = None
    if total and step is not None:
        done = min(step + 1, total)
        percent = 100.0 * max(done, 0) / total
        if status == RunStatus.RUNNING.value and rate and rate > 0:
            eta = (total - done) / rate
    return Progress(step=step, total=total, rate=rate, percent=percent, eta_s=eta)
