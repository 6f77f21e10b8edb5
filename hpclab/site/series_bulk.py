"""Every run's series file in a few DuckDB statements (the full ``hpclab site build``).

Per run, reading ``metrics.zarr`` and writing a file costs ~20 ms: 200 s at 10,000 runs.
Here the catalog's metric segments are read instead: one aggregate per segment gives
every series' point count, last step and time and its step rate (the document
fields of :func:`hpclab.site.series.run_series`), then one ``COPY ... PARTITION_BY`` per
segment writes the kept points of its runs, ~256 runs' files in one statement, which are
renamed into place. The files are those :func:`~hpclab.site.series.write_run_series`
writes from the run's zarr (tested equal), the downsampling
:func:`~hpclab.site.series.downsample_sql` (tested equal to
:func:`~hpclab.site.series.downsample`).

The catalog may lag a run that is still writing: the build writes those runs' files from
their zarr (:func:`hpclab.site.build.write_series` picks them).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from hpclab.catalog.manifest import read_manifest
from hpclab.site.data import Key
from hpclab.site.series import (
    COLUMNS,
    DOC_FIELDS,
    FULL_POINTS,
    PARQUET_OPTIONS,
    downsample_sql,
    version,
)
from hpclab.store import Store
from hpclab.store.views import RATE_WINDOW
from hpclab.tracking.metrics import is_sample_series, read_commit

log = logging.getLogger(__name__)
MEMORY_LIMIT = "1GB"  # DuckDB's, per statement: a segment's runs (~1 M points) fit well


def write_bulk(
    store: Store,
    keys: list[Key],
    target: Callable[[str, str], Path],
    scratch: Path,
    *,
    max_points: int,
    full_target: Callable[[str, str], Path] | None = None,
) -> dict[Key, dict[str, Any]]:
    """Write the series file of each of ``keys`` at ``target(project, run_id)`` (a run
    without points in the catalog gets the file of no points); return each written run's
    document without its points (``version``, ``step``, ``rate``, ``last_time``,
    ``metrics: {name: {"n"}}``). With ``full_target``, each run that had points left out
    also gets every point at ``full_target(project, run_id)`` (a zoomed chart's data)."""
    import duckdb

    files = read_manifest(store).metric_files(store)
    if not keys:
        return {}
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.register("_keys", _key_columns(keys))
        sources = [_source(path, stale) for path, stale in files]
        docs = _documents(con, store, keys, sources)
        con.register("_docs", _doc_columns(docs))
        con.register("_counts", _count_columns(docs))
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        t = time.perf_counter()
        empty = "SELECT part FROM _docs WHERE points = 0"
        for i, source in enumerate([*sources, None]):
            out = scratch / str(i)
            query = _points(source, max_points) if source else _no_points(empty)
            con.execute(f"COPY ({query}) TO '{_sql(out)}' ({PARQUET_OPTIONS}, PARTITION_BY (part))")
        if full_target is not None:
            cut = f"SELECT DISTINCT part FROM _counts WHERE n > {max_points}"
            for i, source in enumerate(sources):
                out = scratch / f"full-{i}"
                query = f"SELECT * FROM ({_points(source, FULL_POINTS)}) WHERE part IN ({cut})"
                con.execute(
                    f"COPY ({query}) TO '{_sql(out)}' ({PARQUET_OPTIONS}, PARTITION_BY (part))"
                )
        log.info("series points written in %.1f s", time.perf_counter() - t)
        t = time.perf_counter()
        written = _publish(scratch, keys, target, "")
        if full_target is not None:
            _publish(scratch, keys, full_target, "full-")
        log.info("series files renamed in %.1f s", time.perf_counter() - t)
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {keys[part]: doc for part, doc in docs.items() if part in written}


def _source(path: Path, stale: list[str]) -> str:
    """A segment's rows of the runs asked for (``part``: the run's index in ``keys``),
    less those of runs superseded in it."""
    where = ""
    if stale:
        where = "WHERE m.run_id NOT IN (" + ", ".join(f"'{_sql(r)}'" for r in stale) + ")"
    return (
        "SELECT k.part, m.name AS metric, m.step, m.value, m.wall_time "
        f"FROM read_parquet('{_sql(path)}') m JOIN _keys k USING (project, run_id) {where}"
    )


def _documents(
    con: Any, store: Store, keys: list[Key], sources: list[str]
) -> dict[int, dict[str, Any]]:
    """Each run's document fields, from one aggregate over every segment: per series its
    points, last step and wall time, and the steps and seconds over its last RATE_WINDOW
    points (:func:`hpclab.store.views.step_rate`), one aggregate per segment; the version
    from the metrics commit."""
    rows = []
    for source in sources:  # one segment at a time: a run's current rows are in one file,
        # and an aggregate over all of them (120 M points at 30,000 runs) outgrows memory
        rows += con.execute(
            f"""
            SELECT part, metric, count(*) AS n, max(step) AS last_step,
                arg_max(wall_time, step) AS last_time, min(wall_time) AS first_time,
                max(step) - max_by(step, step, {RATE_WINDOW})[-1] AS ds,
                arg_max(wall_time, step) - max_by(wall_time, step, {RATE_WINDOW})[-1] AS dt
            FROM ({source}) GROUP BY part, metric
            """
        ).fetchall()
    rows.sort(key=lambda r: (r[0], r[1]))
    docs: dict[int, dict[str, Any]] = {}
    for part, metric, n, last_step, last_time, first_time, ds, dt in rows:
        doc = docs.setdefault(
            part,
            {"step": -1, "rate": None, "last_time": None, "start_time": None, "metrics": {},
             "furthest": -1},
        )  # fmt: skip
        doc["metrics"][metric] = {"n": int(n)}
        doc["last_time"] = max(doc["last_time"] or 0.0, float(last_time))
        if first_time is not None and math.isfinite(first_time):
            start = doc["start_time"]
            doc["start_time"] = first_time if start is None else min(start, first_time)
        if is_sample_series(metric):  # steps of system samples are sample indices
            continue
        doc["step"] = max(doc["step"], int(last_step))
        if int(last_step) > doc["furthest"]:  # the rate of the series that got furthest
            doc["furthest"] = int(last_step)
            doc["rate"] = ds / dt if n >= 2 and dt > 0 and ds > 0 else None
    for doc in docs.values():  # only system samples: no training step yet
        if doc["step"] < 0:
            doc["step"] = None
    for part in range(len(keys)):  # no points: the documents' fields alone
        docs.setdefault(
            part, {"step": None, "rate": None, "last_time": None, "start_time": None, "metrics": {}}
        )
    parts = sorted(docs)

    def seq(part: int) -> Any:
        try:
            return read_commit(store.run_paths(*keys[part]).metrics_zarr).get("seq", 0)
        except Exception:  # an unreadable commit: the version still tells a change
            return "?"

    with ThreadPoolExecutor(max_workers=8) as pool:
        seqs = list(pool.map(seq, parts))
    for part, s in zip(parts, seqs, strict=True):
        doc = docs[part]
        doc.pop("furthest", None)
        doc["version"] = version(s, sum(m["n"] for m in doc["metrics"].values()))
    return docs


def _points(source: str, max_points: int) -> str:
    """The kept points of a segment's runs, with the file's columns (``part`` first)."""
    with_n = (
        "SELECT s.part, s.metric, s.step, s.value, s.wall_time, c.n "
        f"FROM ({source}) s JOIN _counts c USING (part, metric)"
    )
    long = downsample_sql(f"SELECT * FROM ({with_n}) WHERE n > {max_points}", max_points)
    kept = f"SELECT * FROM ({with_n}) WHERE n <= {max_points} UNION ALL SELECT * FROM ({long})"
    select = ", ".join(
        "CASE WHEN isfinite(p.value) THEN p.value END AS value"
        if c == "value"
        else f"CAST(p.wall_time - d.start_time AS {t}) AS time"
        if c == "time"
        else f"CAST(d.{c} AS {t}) AS {c}"
        if c in DOC_FIELDS
        else f"CAST(p.{c} AS {t}) AS {c}"
        for c, t in COLUMNS
    )
    return f"SELECT p.part, {select} FROM ({kept}) p JOIN _docs d USING (part)"


def _no_points(empty: str) -> str:
    """The one row of each run without points: NULL but for the document's fields."""
    select = ", ".join(
        f"CAST(d.{c} AS {t}) AS {c}" if c in DOC_FIELDS else f"CAST(NULL AS {t}) AS {c}"
        for c, t in COLUMNS
    )
    return f"SELECT e.part, {select} FROM ({empty}) e JOIN _docs d USING (part)"


def _publish(
    scratch: Path, keys: list[Key], target: Callable[[str, str], Path], prefix: str
) -> set[int]:
    """Rename each run's file from the partitioned output (the batches named ``prefix``
    and a number) into place (a rename: a browser reads the old file or the new one)."""
    written: set[int] = set()
    made: set[Path] = set()
    batches = sorted(scratch.iterdir()) if scratch.exists() else []
    for batch in [
        b for b in batches if b.name.startswith(prefix) and b.name[len(prefix) :].isdigit()
    ]:
        for part_dir in batch.iterdir():
            part = int(part_dir.name.partition("=")[2])
            outputs = sorted(part_dir.iterdir())
            if len(outputs) != 1:  # DuckDB split a run's rows: the build writes it alone
                log.warning("%s/%s: %d series files from one statement", *keys[part], len(outputs))
                continue
            path = target(*keys[part])
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            outputs[0].replace(path)
            written.add(part)
    return written


def _key_columns(keys: list[Key]) -> dict[str, np.ndarray]:
    project = np.empty(len(keys), dtype=object)
    project[:] = [k[0] for k in keys]
    run_id = np.empty(len(keys), dtype=object)
    run_id[:] = [k[1] for k in keys]
    return {"project": project, "run_id": run_id, "part": np.arange(len(keys), dtype=np.int64)}


def _doc_columns(docs: dict[int, dict[str, Any]]) -> dict[str, np.ndarray]:
    parts = sorted(docs)
    versions = np.empty(len(parts), dtype=object)
    versions[:] = [docs[p]["version"] for p in parts]
    rate = [docs[p]["rate"] for p in parts]
    return {
        "part": np.asarray(parts, dtype=np.int64),
        "points": np.asarray([len(docs[p]["metrics"]) for p in parts], dtype=np.int64),
        "version": versions,
        # float: NaN (NULL) for a run without points; cast back to BIGINT in the file
        "last_step": np.asarray(
            [np.nan if docs[p]["step"] is None else docs[p]["step"] for p in parts], dtype=float
        ),
        # NaN in a NumPy column reads as NULL: a rate that cannot be told
        "rate": np.asarray([np.nan if r is None else r for r in rate], dtype=np.float64),
        "last_time": np.asarray(
            [np.nan if docs[p]["last_time"] is None else docs[p]["last_time"] for p in parts]
        ),
        "start_time": np.asarray(
            [np.nan if docs[p].get("start_time") is None else docs[p]["start_time"] for p in parts]
        ),
    }


def _count_columns(docs: dict[int, dict[str, Any]]) -> dict[str, np.ndarray]:
    series = [(p, m, s["n"]) for p, doc in docs.items() for m, s in doc["metrics"].items()]
    metric = np.empty(len(series), dtype=object)
    metric[:] = [s[1] for s in series]
    return {
        "part": np.asarray([s[0] for s in series], dtype=np.int64),
        "metric": metric,
        "n": np.asarray([s[2] for s in series], dtype=np.int64),
    }


def _sql(path: Any) -> str:
    return str(path).replace("'", "''")
