"""Typos are errors, not empty answers: the checks every command gets before it runs.

One table says which commands may create a store (:data:`CREATES_STORE`) or need none
(:data:`NO_STORE`); every other command reads, so its ``--store`` must name an existing
store and its ``--project`` an existing project (:func:`guard_commands` wraps each
command's callback, after Click has parsed it, so ``--help`` still works anywhere). A
run status or a ``--where`` metric nobody logged is an error listing the valid ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import click

from hpclab.errors import ConfigError, did_you_mean
from hpclab.store import Store
from hpclab.store.record import RunStatus

CREATES_STORE = frozenset(
    {("run",), ("import", "tensorboard"), ("import", "mlflow"), ("import", "wandb")}
)
"""Commands that may create the store they write to (launching does too)."""

NO_STORE = frozenset({("preflight",), ("cluster",)})
"""Commands that do not read the store at all."""

RUN_STATUS_OPTIONS = frozenset({("runs", "list")})
"""Commands whose ``status`` option filters runs by :class:`RunStatus`."""


def check_store(store: Store) -> None:
    """:class:`~hpclab.errors.StoreNotFound` unless ``store`` is an hpclab store."""
    store.require()


def check_run_status(status: str | None) -> None:
    """A ConfigError for a status that is not a run status, listing them."""
    valid = [s.value for s in RunStatus]
    if status is not None and status not in valid:
        raise ConfigError(
            f"unknown status {status!r} (one of: {', '.join(valid)}){did_you_mean(status, valid)}"
        )


def check_metrics(con: Any, metrics: Iterable[str]) -> None:
    """A ConfigError for a metric no run in the catalog has logged (``--where``),
    with the closest known names."""
    wanted = list(metrics)
    if not wanted:
        return
    known = [r[0] for r in con.execute("SELECT DISTINCT name FROM metric_summary").fetchall()]
    for name in wanted:
        if name not in known:
            close = ", ".join(repr(c) for c in _close(name, known))
            hint = f"; did you mean {close}?" if close else ""
            few = f" (metrics: {', '.join(sorted(known))})" if len(known) <= 8 else ""
            few = few if known else " (no run has logged any metric yet)"
            raise ConfigError(f"--where: no run has logged metric {name!r}{few}{hint}")


def _close(name: str, known: list[str]) -> list[str]:
    import difflib

    return difflib.get_close_matches(name, known, n=3, cutoff=0.6)


def _guarded(path: tuple[str, ...], callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        store = click.get_current_context().find_root().obj
        if isinstance(store, Store) and path not in CREATES_STORE | NO_STORE:
            check_store(store)
            project = kwargs.get("project")
            if isinstance(project, str) and project:
                store.require_project(project)
        if path in RUN_STATUS_OPTIONS:
            check_run_status(kwargs.get("status"))
        return callback(*args, **kwargs)

    return wrapper


def guard_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> None:
    """Wrap the callback of every command under ``group`` with the checks above."""
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            guard_commands(cmd, path)
        elif cmd.callback is not None and not getattr(cmd.callback, "_hpclab_guarded", False):
            cmd.callback = _guarded(path, cmd.callback)
            cmd.callback._hpclab_guarded = True  # type: ignore[attr-defined]


__all__ = [
    "CREATES_STORE",
    "NO_STORE",
    "check_metrics",
    "check_run_status",
    "check_store",
    "guard_commands",
]
