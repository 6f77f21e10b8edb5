"""``hpclab import tensorboard DIR...``: TensorBoard event files as hpclab runs.

Every directory holding ``events.out.tfevents.*`` files is one run (TensorBoard's own
layout: a logdir of run directories), named by its path under the DIR given. Scalars are
read with TensorBoard's ``EventAccumulator`` (every point: no sampling) and logged at
their own step and wall time; the run's start and end are its first and last event.
A Lightning ``TensorBoardLogger`` run directory's ``hparams.yaml`` is the run's config.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hpclab.errors import ImportSourceError, StoreError
from hpclab.importers.common import ImportedRun, ImportReport, Point, write_runs
from hpclab.store import Store

EVENTS = "events.out.tfevents."
HPARAMS = "hparams.yaml"  # written beside the events by Lightning's TensorBoardLogger


def run_dirs(roots: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, str]]:
    """(directory, name) of every directory with event files under ``roots``."""
    out = []
    for given in roots:
        root = Path(given).expanduser()
        if not root.is_dir():
            raise ImportSourceError(f"{root}: not a directory of TensorBoard event files")
        found = sorted(
            {Path(d) for d, _, files in os.walk(root) if any(f.startswith(EVENTS) for f in files)}
        )
        if not found:
            raise ImportSourceError(f"{root}: no TensorBoard event files ({EVENTS}*) under it")
        for d in found:
            rel = d.relative_to(root)
            out.append((d, root.name if str(rel) == "." else f"{root.name}/{rel}"))
    return out


def read_scalars(directory: Path) -> list[Point]:
    """Every scalar event in ``directory``, by step then tag."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import (
            SCALARS,
            EventAccumulator,
        )
    except ImportError:
        raise ImportSourceError(
            f"{directory}: reading event files needs TensorBoard (pip install 'hpclab[import]')"
        ) from None

    acc = EventAccumulator(str(directory), size_guidance={SCALARS: 0})
    try:
        acc.Reload()
    except Exception as e:  # noqa: BLE001  (a corrupt file: one line naming it)
        raise ImportSourceError(f"{directory}: unreadable event files ({e})") from None
    points = [
        Point(tag, int(ev.step), float(ev.value), float(ev.wall_time))
        for tag in acc.Tags().get("scalars", [])
        for ev in acc.Scalars(tag)
    ]
    points.sort(key=lambda p: (p.step, p.name, p.wall_time))
    return points


def read_runs(roots: Iterable[str | os.PathLike[str]]) -> Iterator[ImportedRun]:
    """One :class:`ImportedRun` per run directory under ``roots`` (read lazily)."""
    for directory, name in run_dirs(roots):
        yield ImportedRun(
            kind="tensorboard",
            source=str(directory),
            original_id=str(directory.resolve()),
            name=name,
            config=read_hparams(directory),
            points=read_scalars(directory),
        )


def read_hparams(directory: Path) -> dict[str, Any]:
    """The hyperparameters Lightning saved beside the events (``hparams.yaml``), else {}.
    Read as safe YAML with the store's limits: a file holding Python objects (Lightning
    writes ``!!python/object`` for anything it cannot represent) is refused in one line."""
    from hpclab.store.reading import read_yaml

    path = directory / HPARAMS
    if not path.is_file():
        return {}
    try:
        data = read_yaml(path)
    except StoreError as e:
        raise ImportSourceError(f"{e} (move it aside to import the metrics alone)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ImportSourceError(f"{path}: not a mapping of hyperparameters")
    return {str(k): v for k, v in data.items()}


def import_tensorboard(
    store: Store, project: str, roots: Iterable[str | os.PathLike[str]]
) -> ImportReport:
    """Import every run directory under ``roots`` not imported before."""
    return write_runs(store, project, read_runs(roots))
