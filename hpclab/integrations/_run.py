"""What both integrations share: finding or opening the run, and setting total steps."""

from __future__ import annotations

import os
from typing import Any

from hpclab.store import RunStatus, Store
from hpclab.tracking.context import current_run
from hpclab.tracking.run import Run


class RunHandle:
    """The run an integration records into: the current one, or one it opened itself
    (and then finishes itself)."""

    def __init__(
        self,
        run: Run | None,
        project: str | None,
        name: str | None,
        store: str | os.PathLike[str] | Store | None,
        run_kwargs: dict[str, Any],
    ) -> None:
        self._given = run
        self._project, self._name, self._store = project, name, store
        self._kwargs = run_kwargs
        self._own: Run | None = None
        self._own_id: str | None = None

    @property
    def run(self) -> Run:
        """The run: the given one, the one opened here (finished or not), the current one,
        or a new one opened now."""
        if self._given is not None:
            return self._given
        if self._own is not None:
            return self._own
        return self.active()

    def active(self) -> Run:
        """The run to record into now: as :attr:`run`, but a run this handle finished (a
        Lightning stage ended, another one starts) is resumed under the same id."""
        if self._given is not None:
            return self._given
        if self._own is not None and not self._own.finished:
            return self._own
        current = current_run()
        if current is not None and current is not self._own and not current.finished:
            return current
        kwargs = dict(self._kwargs)
        if self._own_id is not None:
            kwargs["run_id"] = self._own_id
        self._own = Run(project=self._project, name=self._name, store=self._store, **kwargs)
        self._own_id = self._own.id
        return self._own

    def finish(self, status: RunStatus) -> None:
        """End the run if this handle opened it; otherwise only flush (its owner ends it)."""
        if self._given is None and self._own is not None:
            self._own.finish(status)
        elif self._given is not None:
            self._given.flush()
        else:
            current = current_run()
            if current is not None:
                current.flush()


def set_total_steps(run: Run, steps: Any) -> None:
    """Tell the run how many steps it will take (progress and ETA), when ``steps`` is a
    positive finite number and the run has the ``total_steps`` property."""
    try:
        n = int(steps)
    except (TypeError, ValueError, OverflowError):
        return
    if n > 0 and isinstance(getattr(type(run), "total_steps", None), property):
        setattr(run, "total_steps", n)  # noqa: B010 - the property may not exist yet
