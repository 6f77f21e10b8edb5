"""What every importer shares: the imported run, and writing it into the store once."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpclab.errors import HpclabError, StoreError
from hpclab.store import Store
from hpclab.store.config_twin import write_config
from hpclab.store.layout import check_project_name
from hpclab.store.record import RunRecord, RunStatus, utcnow_iso


@dataclass
class Point:
    """One metric value as the source recorded it."""

    name: str
    step: int
    value: float
    wall_time: float  # epoch seconds


@dataclass
class ImportedRun:
    """A run read from another tracker, ready to be stored."""

    kind: str  # "tensorboard" | "mlflow" | "wandb"
    source: str  # the path (or URI) it was read from
    original_id: str  # the source's own id (a directory for TensorBoard)
    name: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    status: RunStatus = RunStatus.COMPLETED
    started_at: float | None = None  # epoch seconds
    ended_at: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None  # why a run that did not complete ended
    extra: dict[str, Any] = field(default_factory=dict)  # the source's tags, experiment
    points: Iterable[Point] = ()


IMPORTED_FROM = "imported_from"
"""The ``run.json`` key of an imported run's source: kind, path, original id and ``key``."""


@dataclass
class ImportReport:
    """What one import did: the runs it wrote and the ones it skipped (imported before)."""

    imported: list[tuple[str, str]] = field(default_factory=list)  # (run id, source)
    skipped: list[str] = field(default_factory=list)  # sources


def source_key(kind: str, original_id: str) -> str:
    """The identity of a source run across imports: ``kind:original id``."""
    return f"{kind}:{original_id}"


def imported_sources(store: Store, project: str) -> set[str]:
    """The :func:`source_key` of every run of ``project`` an import wrote."""
    keys: set[str] = set()
    if not store.has_project(project):
        return keys
    for _, paths in store.iter_runs(project):
        try:
            origin = store.read_record(paths).extra.get(IMPORTED_FROM)
        except HpclabError:  # a corrupt run is the indexer's to report, not ours
            continue
        if isinstance(origin, dict) and isinstance(origin.get("key"), str):
            keys.add(origin["key"])
    return keys


def write_runs(store: Store, project: str, runs: Iterator[ImportedRun]) -> ImportReport:
    """Store each run of ``runs`` in ``project`` unless an earlier import stored it."""
    check_project_name(project)
    done = imported_sources(store, project)
    keys: set[str] = set()
    report = ImportReport()
    for run in runs:
        key = source_key(run.kind, run.original_id)
        if key in keys:  # the same run twice in one import (a path given twice, a symlink)
            continue
        keys.add(key)
        if key in done:
            report.skipped.append(f"{run.source} ({run.original_id})")
            continue
        run_id = write_run(store, project, run)
        report.imported.append((run_id, f"{run.source} ({run.original_id})"))
        done.add(key)
    return report


def _iso(ts: float | None) -> str | None:
    return None if ts is None else utcnow_iso(ts)


def write_run(store: Store, project: str, run: ImportedRun) -> str:
    """One imported run as an hpclab run: config.yaml, metrics.zarr, then run.json (last,
    so a run whose import failed midway is never mistaken for imported; its directory is
    removed)."""
    from hpclab.tracking.metrics import MetricWriter

    paths = store.create_run_dir(project)
    try:
        if run.config:
            write_config(paths, run.config)
        writer = MetricWriter(paths.metrics_zarr)
        first: float | None = None
        last: float | None = None
        for p in run.points:
            writer.log({p.name: p.value}, p.step, wall_time=p.wall_time)
            first = p.wall_time if first is None else min(first, p.wall_time)
            last = p.wall_time if last is None else max(last, p.wall_time)
            if writer.buffered() >= 100_000:
                _flush(writer, paths.metrics_zarr)
        _flush(writer, paths.metrics_zarr)
        started = run.started_at if run.started_at is not None else first
        ended = run.ended_at if run.ended_at is not None else last
        summary = {k: (v if math.isfinite(v) else None) for k, v in writer.last_values().items()}
        record = RunRecord(
            id=paths.id,
            project=project,
            status=run.status,
            name=run.name,
            tags=list(run.tags),
            created_at=_iso(started) or utcnow_iso(),
            started_at=_iso(started),
            ended_at=_iso(ended) if run.status.is_final else None,
            heartbeat_at=_iso(ended),
            user=os.environ.get("USER"),
            step=writer.step,
            summary={**summary, **run.summary},
            metrics_dropped=writer.dropped(),
            error=run.error,
            extra={
                **run.extra,
                IMPORTED_FROM: {
                    "kind": run.kind,
                    "path": run.source,
                    "id": run.original_id,
                    "key": source_key(run.kind, run.original_id),
                },
            },
        )
        store.write_record(paths, record)
    except BaseException:
        shutil.rmtree(paths.dir, ignore_errors=True)
        raise
    return paths.id


def parse_scalar(text: str) -> Any:
    """A parameter another tool stored as text, as the value it was: ``"0.1"`` -> 0.1,
    ``"3"`` -> 3, ``"True"`` -> True, ``"None"`` -> None; anything else stays text."""
    special = {"True": True, "true": True, "False": False, "false": False, "None": None}
    if text in special:
        return special[text]
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return value if kind is int or math.isfinite(value) else text
    return text


def nest(flat: dict[str, Any], sep: str = ".") -> dict[str, Any]:
    """``{"optim.lr": 0.1}`` -> ``{"optim": {"lr": 0.1}}``, as a Hydra config reads; a key
    that is both a value and a group (``a`` and ``a.b``) keeps the whole dict flat."""
    out: dict[str, Any] = {}
    for key in sorted(flat):
        *groups, leaf = key.split(sep)
        node = out
        for g in groups:
            child = node.setdefault(g, {})
            if not isinstance(child, dict):
                return dict(flat)
            node = child
        if leaf in node:
            return dict(flat)
        node[leaf] = flat[key]
    return out


def _flush(writer: Any, where: Path) -> None:
    if not writer.flush():
        raise StoreError(f"{where}: metrics could not be written ({writer.last_error})")
