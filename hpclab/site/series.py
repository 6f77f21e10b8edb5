"""A run's metric series as the browser gets them: read straight from ``metrics.zarr``
(the fast chunk reader: a flush is visible here before the catalog republishes), cut to
at most ``max_points`` per metric by min/max buckets, which keep every spike a plain
stride would skip, and written as one JSON file per run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hpclab.catalog.metrics_reader import read_run_metrics
from hpclab.store import Store
from hpclab.store.atomic import write_bytes_atomic
from hpclab.store.views import step_rate
from hpclab.tracking.metrics import read_commit

MAX_POINTS = 1000  # per metric and run: enough for a chart as wide as a screen


def downsample(steps: np.ndarray, values: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of the points to keep: all when there are at most ``max_points``; else the
    first and last point and, in each of ``max_points // 2`` buckets of equal length, the
    point with the lowest and the one with the highest value (NaN and inf kept as points:
    a bucket of NaN keeps its first one, so gaps stay visible)."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 2 - 1)
    width = math.ceil(n / buckets)
    padded = np.full(buckets * width, np.nan)
    padded[:n] = values
    grid = padded.reshape(buckets, width)
    finite = np.isfinite(grid)
    lows = np.where(finite, grid, np.inf).argmin(axis=1)
    highs = np.where(finite, grid, -np.inf).argmax(axis=1)
    base = np.arange(buckets) * width
    keep = np.concatenate([base + lows, base + highs, [0, n - 1]])
    return np.unique(keep[keep < n])


def _json_values(values: np.ndarray) -> list[float | None]:
    """Floats for JSON: NaN and inf become null (shown as missing, never as zero)."""
    out: list[float | None] = values.tolist()
    if not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values))
        for i in bad.tolist():
            out[i] = None
    return out


def run_series(
    store: Store, project: str, run_id: str, *, max_points: int = MAX_POINTS
) -> dict[str, Any]:
    """The series document of one run: ``{"project", "run_id", "version", "step",
    "rate", "last_time", "metrics": {name: {"n", "step": [...], "value": [...]}}}``.
    ``version`` changes whenever a flush is committed."""
    paths = store.run_paths(project, run_id)
    commit = read_commit(paths.metrics_zarr)
    data = read_run_metrics(paths.metrics_zarr) if commit else {}
    metrics: dict[str, Any] = {}
    step = -1
    rate: float | None = None
    last_time: float | None = None
    furthest = -1
    for name in sorted(data):
        rows = data[name]
        if not len(rows):
            continue
        keep = downsample(rows[:, 0], rows[:, 1], max_points)
        metrics[name] = {
            "n": int(len(rows)),
            "step": rows[keep, 0].astype(np.int64).tolist(),
            "value": _json_values(rows[keep, 1]),
        }
        step = max(step, int(rows[-1, 0]))
        last_time = max(last_time or 0.0, float(rows[-1, 2]))
        if int(rows[-1, 0]) > furthest:  # the rate of the series that got furthest
            furthest, rate = int(rows[-1, 0]), step_rate(rows[:, 0], rows[:, 2])
    return {
        "project": project,
        "run_id": run_id,
        "version": f"{commit.get('seq', 0)}-{sum(m['n'] for m in metrics.values())}",
        "step": step if step >= 0 else None,
        "rate": rate,
        "last_time": last_time,
        "metrics": metrics,
    }


def dumps(doc: Any) -> bytes:
    """Compact JSON (no NaN: the writers above turned them into null)."""
    import json

    return json.dumps(doc, separators=(",", ":"), allow_nan=False, default=str).encode()


def write_json(path: Any, doc: Any) -> None:
    """Replace a data file atomically: a polling browser never reads half of one. No fsync:
    these files are derived and rewritten on the next pass."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, dumps(doc), fsync=False)
