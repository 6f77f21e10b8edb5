"""Scheduler state into the catalog: ``hpclab index`` and ``hpclab watch`` bring the records
of unfinished runs in line with what Slurm (or the local process table) says, with the
rules of :mod:`hpclab.launch.reconcile`, so the catalog, ``hpclab status``, the run page
and the Training page agree with the scheduler within one pass.

Cost per pass: only runs the catalog holds as not final are looked at (their records are
read again), and each scheduler is asked once for all of them (one ``squeue`` plus one
``sacct`` for Slurm); a pass with no unfinished run that has a job asks nothing. In watch
mode :class:`SchedulerSync` asks at most every ``every`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from hpclab.errors import HpclabError
from hpclab.launch.reconcile import Reconciled, reconcile_runs
from hpclab.store import Store

log = logging.getLogger(__name__)
SCHEDULER_EVERY = 10.0  # seconds between the watcher's scheduler calls


def reconcile_unfinished(
    store: Store,
    runs: Iterable[tuple[str, str]],
    report: Callable[[str], None] | None = None,
) -> list[Reconciled]:
    """Reconcile the unfinished ``runs`` (project, run id) with one batched scheduler call
    per scheduler kind. A scheduler that cannot be asked (not installed here, down) is
    reported through ``report`` (a warning otherwise) and changes nothing."""
    todo = list(runs)
    if not todo:
        return []
    try:
        return reconcile_runs(store, todo)
    except (HpclabError, OSError) as e:  # not installed here, or down: next pass
        (report or log.warning)(f"scheduler not asked about {len(todo)} unfinished run(s) ({e})")
        return []


class SchedulerSync:
    """The watcher's throttle: :meth:`due` once ``every`` seconds passed since the last
    :meth:`mark` (at once before the first)."""

    def __init__(self, every: float = SCHEDULER_EVERY, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self._clock = clock
        self._last: float | None = None

    def next_at(self) -> float:
        """The clock time when the next reconciliation is due."""
        return self._clock() if self._last is None else self._last + self.every

    def due(self) -> bool:
        return self._last is None or self._clock() >= self._last + self.every

    def mark(self) -> None:
        """The scheduler was asked now."""
        self._last = self._clock()


__all__ = ["SCHEDULER_EVERY", "SchedulerSync", "reconcile_unfinished"]
