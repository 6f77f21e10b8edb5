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


DECLARED_TOTAL_KEY = "hpclab.total_steps"  # the config's own say: a number or a key's name


def total_steps(config: Mapping[str, Any] | None) -> int | None:
    """A run's planned steps from its config: ``hpclab.total_steps`` when the config
    declares it (a positive number, or the dotted name of the key that holds one:
    ``"trainer.max_steps"``), else the first of :data:`TOTAL_STEP_PATHS` that holds a
    positive number. ``config`` is the nested config, or a mapping of dotted paths to
    values (the catalog's features)."""
    if not isinstance(config, Mapping):
        return None
    declared = _lookup(config, DECLARED_TOTAL_KEY)
    if isinstance(declared, str):
        return _positive(_lookup(config, declared))
    if declared is not None:
        return _positive(declared)
    for dotted in TOTAL_STEP_PATHS:
        found = _positive(_lookup(config, dotted))
        if found is not None:
            return found
    return None


def planned_steps(record: RunRecord, config_total: int | None) -> int | None:
    """The progress model's total: ``run.total_steps`` (recorded in ``run.json``, set by
    the script or an integration), else ``config_total`` (:func:`total_steps` of the
    run's config)."""
    return _positive(record.total_steps) or config_total


def run_progress(
    record: RunRecord,
    config_total: int | None,
    step: int | None = None,
    rate: float | None = None,
    now: float | None = None,
) -> Progress:
    """How far a run is, the one way ``hpclab status`` and the site read it: the furthest
    of ``step`` (committed metrics) and the record's step, the total from
    :func:`planned_steps`, and the ETA at ``rate`` (steps/s, :func:`step_rate`)."""
    steps = [s for s in (step, record.step) if s is not None and s >= 0]
    return progress(
        effective_status(record, now),
        max(steps) if steps else None,
        planned_steps(record, config_total),
        rate,
    )


def dropped_warnings(record: RunRecord) -> list[str]:
    """One line per metric whose points the step rule dropped (shown by ``runs show`` and
    on the run page)."""
    return [
        f"{n} point{'s' if n != 1 else ''} dropped (step not increasing) for metric {name}"
        for name, n in sorted(record.metrics_dropped.items())
        if isinstance(n, int) and n > 0
    ]


def _lookup(config: Mapping[str, Any], dotted: str) -> Any:
    """``dotted`` in a nested config, or as a key of a flat one (features)."""
    if dotted in config:
        return config[dotted]
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _positive(value: Any) -> int | None:
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 1 <= value < 2**63  # the catalog's BIGINT; no math.isfinite(10**400) overflow
    ):
        return int(value)
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


def code_origin(code: Mapping[str, Any]) -> str | None:
    """Where a run's code came from, in words (``code.json`` ``isolation``): for ``runs
    show`` and the run page alike. None when the run recorded nothing about it."""
    iso = code.get("isolation")
    if not isinstance(iso, Mapping):
        return None
    short = str(iso.get("code_id") or iso.get("submitted_code_id") or "")[:12]
    if iso.get("mode") == "sweep":
        return f"ran from the sweep's copy taken at submission (code {short})"
    changed = iso.get("code_changed_since_submit")
    if changed is True:
        return "ran in place; CHANGED since submission (code_changed_since_submit)"
    if changed is False:
        return f"ran in place; same tree as at submission (code {short})"
    return "ran in place; not known whether it changed since submission"
