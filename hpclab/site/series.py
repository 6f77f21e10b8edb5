"""A run's metric series as the browser gets them: cut to at most ``max_points`` per
metric by min/max buckets, which keep every spike a plain stride would skip, and written
as one Parquet file per run (``data/series/<project>/<run_id>.parquet``, read in the
browser by the vendored hyparquet).

The file is long: one row per kept point, in no particular order (readers sort by step):
``metric`` (string), ``step`` (int64), ``value`` (double; NULL for NaN and inf: the chart
shows a gap, never a zero) and the series' true point count ``n``. The document's fields
(``version``, ``last_step``, ``rate``, ``last_time``, ``start_time``) are columns of the
same value in every row (dictionary-encoded: a few bytes), because DuckDB's partitioned
write, which writes many runs' files in one statement, gives every file the same
key-value metadata; ``time`` is each point's seconds since ``start_time`` (float32).
A run without points has one row, its ``metric`` NULL, for the document's fields.

Two writers make the same files: :func:`write_run_series` for one run from ``metrics.zarr``
(the fast chunk reader: a flush is visible before the catalog republishes; the live site
and runs the catalog may lag), and :mod:`hpclab.site.series_bulk` for the full build (all
runs from the catalog in a few DuckDB statements).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from hpclab.catalog.metrics_reader import read_run_metrics
from hpclab.store import Store
from hpclab.store.atomic import write_bytes_atomic
from hpclab.store.views import step_rate
from hpclab.tracking.metrics import is_sample_series, read_commit

MAX_POINTS = 1000  # per metric and run: enough for a chart as wide as a screen
FULL_POINTS = 2**62  # "every point": the full-resolution files of zoomed charts
# Snappy: hyparquet decodes it natively (zstd needs another package), and a run's file is
# ~38 KB with it (random doubles barely compress: zstd saves a few percent more).
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION snappy"
# The file's columns, in order, and their DuckDB types.
COLUMNS = (
    ("metric", "VARCHAR"),
    ("step", "BIGINT"),
    ("value", "DOUBLE"),
    ("n", "BIGINT"),
    ("version", "VARCHAR"),
    ("last_step", "BIGINT"),
    ("rate", "DOUBLE"),
    ("last_time", "DOUBLE"),
    # seconds since the run's first point (float32: ~0.06 s at 11 days, half a double's
    # bytes), and that first point's epoch seconds: the charts' wall-time and
    # relative-time x axes
    ("time", "FLOAT"),
    ("start_time", "DOUBLE"),
)
DOC_FIELDS = ("version", "last_step", "rate", "last_time", "start_time")  # same in each row


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


def downsample_sql(source: str, max_points: int) -> str:
    """:func:`downsample` as SQL: the rows of ``source`` (columns ``part``, ``metric``,
    ``step``, ``value``, ``n``: one series per part and metric, ``n`` its points) that it
    keeps, for series of more than ``max_points`` points. Ties go to the first point, as
    NumPy's argmin/argmax do (tested equal)."""
    buckets = max(1, max_points // 2 - 1)
    return f"""
        WITH ranked AS (
            SELECT *, row_number() OVER (PARTITION BY part, metric ORDER BY step) - 1 AS i
            FROM ({source})
        ), bucketed AS (
            SELECT *, i // ((n + {buckets - 1}) // {buckets}) AS bucket,
                CASE WHEN isfinite(value) THEN value ELSE 'inf'::DOUBLE END AS lo_key,
                CASE WHEN isfinite(value) THEN value ELSE '-inf'::DOUBLE END AS hi_key
            FROM ranked
        )
        SELECT * EXCLUDE (i, bucket, lo_key, hi_key) FROM bucketed
        QUALIFY i = 0 OR i = n - 1
            OR i = arg_min(i, (lo_key, i)) OVER (PARTITION BY part, metric, bucket)
            OR i = arg_max(i, (hi_key, -i)) OVER (PARTITION BY part, metric, bucket)
    """


def _json_values(values: np.ndarray) -> list[float | None]:
    """NaN and inf become None (shown as missing, never as zero)."""
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
    firsts = [float(np.nanmin(r[:, 2])) for r in data.values() if len(r)]
    start = min(firsts) if firsts else None
    for name in sorted(data):
        rows = data[name]
        if not len(rows):
            continue
        keep = downsample(rows[:, 0], rows[:, 1], max_points)
        metrics[name] = {
            "n": int(len(rows)),
            "step": rows[keep, 0].astype(np.int64).tolist(),
            "value": _json_values(rows[keep, 1]),
            "time": (rows[keep, 2] - (start or 0.0)).astype(np.float32).tolist(),
        }
        last_time = max(last_time or 0.0, float(rows[-1, 2]))
        if is_sample_series(name):  # steps of system samples are sample indices
            continue
        step = max(step, int(rows[-1, 0]))
        if int(rows[-1, 0]) > furthest:  # the rate of the series that got furthest
            furthest, rate = int(rows[-1, 0]), step_rate(rows[:, 0], rows[:, 2])
    return {
        "project": project,
        "run_id": run_id,
        "version": version(commit.get("seq", 0), sum(m["n"] for m in metrics.values())),
        "step": step if step >= 0 else None,
        "rate": rate,
        "last_time": last_time,
        "start_time": start,
        "metrics": metrics,
    }


def is_cut(doc: dict[str, Any]) -> bool:
    """Whether a series document left points out (a metric with more than it keeps)."""
    return any(m["n"] > len(m["step"]) for m in doc.get("metrics", {}).values())


def write_full_series(
    path: Path, store: Store, project: str, run_id: str, doc: dict[str, Any]
) -> None:
    """The run's every point at ``path`` when ``doc`` (its series document) was cut, for a
    zoomed chart; else no file there."""
    if not is_cut(doc):
        path.unlink(missing_ok=True)
        return
    write_run_series(path, run_series(store, project, run_id, max_points=FULL_POINTS))


def version(seq: Any, points: int) -> str:
    """A series document's version: the metrics commit's sequence and the points."""
    return f"{seq}-{points}"


def write_run_series(path: Path, doc: dict[str, Any]) -> None:
    """Write a series document as the run's Parquet file (replaced atomically: a polling
    browser never reads half of one)."""
    import duckdb

    names: list[str] = []
    steps: list[int] = []
    values: list[float | None] = []
    counts: list[int] = []
    times: list[float | None] = []
    for name, m in doc["metrics"].items():
        names += [name] * len(m["step"])
        steps += m["step"]
        values += m["value"]
        counts += [m["n"]] * len(m["step"])
        times += m.get("time") or [None] * len(m["step"])
    consts = {
        "version": doc.get("version"),
        "last_step": doc.get("step"),
        "rate": doc.get("rate"),
        "last_time": doc.get("last_time"),
        "start_time": doc.get("start_time"),
    }
    con = duckdb.connect()
    try:
        if steps:
            label = np.empty(len(names), dtype=object)
            label[:] = names
            con.register(
                "_series",
                {
                    "metric": label,
                    "step": np.asarray(steps, dtype=np.int64),
                    # DuckDB reads NaN in a NumPy column as NULL: the None (NaN, inf) points
                    "value": np.asarray([np.nan if v is None else v for v in values]),
                    "n": np.asarray(counts, dtype=np.int64),
                    "time": np.asarray([np.nan if t is None else t for t in times]),
                },
            )
            source = "_series"
        else:  # no points: one row of NULLs for the document's fields
            source = "(SELECT NULL AS metric, NULL AS step, NULL AS value, NULL AS n, NULL AS time)"
        select = ", ".join(
            f"CAST(? AS {t}) AS {c}" if c in consts else f"CAST({c} AS {t}) AS {c}"
            for c, t in COLUMNS
        )
        params = [consts[c] for c, _ in COLUMNS if c in consts]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(doc)}.tmp")
        try:
            con.execute(
                f"COPY (SELECT {select} FROM {source}) TO '{_sql(tmp)}' ({PARQUET_OPTIONS})",
                params,
            )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        con.close()


def read_series_file(path: Path) -> dict[str, Any]:
    """A series file back as the document the pages make of it (``metrics``, ``version``,
    ``step``, ``rate``, ``last_time``), for tests and tools: what the browser's loadSeries
    resolves to."""
    import duckdb

    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT metric, step, value, n, version, last_step, rate, last_time, time, "
            f"start_time FROM read_parquet('{_sql(path)}') ORDER BY metric, step"  # no order
        ).fetchall()
    finally:
        con.close()
    metrics: dict[str, Any] = {}
    for metric, step, value, n, *_, t, _start in rows:
        if metric is None:  # a run without points: the document's fields only
            continue
        m = metrics.setdefault(metric, {"n": n, "step": [], "value": [], "time": []})
        m["step"].append(step)
        m["value"].append(value)
        m["time"].append(t)
    first = rows[0] if rows else (None,) * 10
    return {
        "version": first[4],
        "step": first[5],
        "rate": first[6],
        "last_time": first[7],
        "start_time": first[9],
        "metrics": dict(sorted(metrics.items())),
    }


def _sql(path: Any) -> str:
    return str(path).replace("'", "''")


def dumps(doc: Any) -> bytes:
    """Compact JSON (no NaN: the writers above turned them into null)."""
    import json

    return json.dumps(doc, separators=(",", ":"), allow_nan=False, default=str).encode()


def write_json(path: Any, doc: Any) -> None:
    """Replace a data file atomically: a polling browser never reads half of one. No fsync:
    these files are derived and rewritten on the next pass."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, dumps(doc), fsync=False)
