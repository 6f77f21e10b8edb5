"""A cold pass's reading, in batches: many runs read in full, their metrics written as a
few segment files (one DuckDB write per few hundred runs, not one per run).

:func:`read_batch` is a pure function of the store (no indexer state), so the indexer
runs it in worker processes when a pass has many new runs: reading a run is Python
(JSON, YAML, the Zarr chunk files), which threads would serialise on the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from hpclab.catalog.extract import RunRows, extract_run, fingerprint, record_present
from hpclab.catalog.gc_pause import gc_paused
from hpclab.catalog.run_metrics import SEGMENT_ROWS, Agg, SegmentRun, write_segment
from hpclab.store import Store

BATCH_RUNS = 256  # runs per batch (one task of a worker)
PROCESS_MIN = 512  # fewer new runs than this are read in the indexer's own process


@dataclass
class BatchItem:
    run_id: str
    fingerprint: str | None  # None: taken by the reader, just before it reads the run


@dataclass
class RunResult:
    """What reading one run gave (metrics_file: under .catalog; None when it has none;
    absent: the run has no record, nothing was read)."""

    run_id: str
    fingerprint: str
    rows: RunRows | None
    aggs: dict[str, Agg] = field(default_factory=dict)
    metrics_file: str | None = None
    error: str | None = None
    absent: bool = False


def read_batch(
    root: str, project: str, items: list[BatchItem], generation: int, batch: int
) -> list[RunResult]:
    """Read each run of ``items`` in full and write their metrics as segment files
    ``seg-<generation>-<batch>-<k>.parquet`` (a new one every ~SEGMENT_ROWS rows)."""
    with gc_paused():
        return _read_batch(root, project, items, generation, batch)


def _read_batch(
    root: str, project: str, items: list[BatchItem], generation: int, batch: int
) -> list[RunResult]:
    from hpclab.catalog.metrics_reader import read_run_metrics

    store = Store(root)
    con = _WORKER_CON[0] if _WORKER_CON else _connect()
    results: list[RunResult] = []
    pending: list[tuple[RunResult, SegmentRun]] = []
    rows_pending = 0
    part = 0

    def flush() -> None:
        nonlocal pending, rows_pending, part, con
        if not pending:
            return
        out = store.catalog_segment(project, generation, f"{batch}-{part}")
        part += 1
        try:
            held = set(write_segment(con, out, project, [s for _, s in pending]))
        except Exception as e:  # disk full, a DuckDB error: these runs' metrics not indexed
            for result, _ in pending:
                result.error = f"{out}: metrics not indexed ({_one_line(e)})"
            held = set()
            con = _usable(con)  # a fatal DuckDB error invalidates it: not the next batches'
        rel = str(out.relative_to(store.catalog_dir))
        for result, seg in pending:
            result.aggs = seg.aggs
            result.metrics_file = rel if result.run_id in held else None
        pending, rows_pending = [], 0

    for item in items:
        paths = store.run_paths(project, item.run_id)
        # a new run's fingerprint is taken here, in the worker (10,000 runs x 14 stats
        # are not the indexer's serial work), before the read it answers for
        fp = item.fingerprint if item.fingerprint is not None else fingerprint(paths)
        result = RunResult(item.run_id, fp, None)
        results.append(result)
        if not record_present(fp):
            result.absent = True
            continue
        try:
            result.rows = extract_run(store, project, paths, fp)
        except Exception as e:  # a half-written or corrupt run must not stop the indexer
            result.error = f"{paths.dir}: skipped, unreadable ({_one_line(e)})"
            continue
        try:
            tails = read_run_metrics(paths.metrics_zarr)
        except Exception as e:
            result.error = f"{paths.metrics_zarr}: metrics not indexed ({_one_line(e)})"
            continue
        if not any(len(t) for t in tails.values()):
            continue
        pending.append((result, SegmentRun(item.run_id, result.rows.created_at, tails)))
        rows_pending += sum(len(t) for t in tails.values())
        if rows_pending >= SEGMENT_ROWS:
            flush()
    flush()
    if not _WORKER_CON:
        con.close()
    share_equal_values(results)
    return results


def share_equal_values(results: list[RunResult]) -> None:
    """Make equal feature rows, text cells and metric names of a batch's runs one object.

    A sweep's runs share most of their config leaves (``("optim.name", '"adam"', None)``),
    hosts, users and code ids (and metric names, which a segment already shares, across
    segments); pickling a batch back to the indexer then writes each once (pickle's memo
    is by identity), and the indexer holds one copy per batch instead of one per run:
    7.5 -> 3.9 KB a run unpickled (with Agg slotted), half the unpickling time, at 10,000
    runs (docs/scaling.md). Equal rows are interchangeable: their JSON texts tell 0.0 from
    -0.0, and nothing mutates a row or a text (lists, such as tags, stay each run's own)."""
    rows_seen: dict[tuple[str, str, float | None], tuple[str, str, float | None]] = {}
    texts: dict[str, str] = {}
    for result in results:
        rows = result.rows
        if rows is None:
            continue
        rows.features = [rows_seen.setdefault(f, f) for f in rows.features]
        runs = rows.runs
        for key, value in runs.items():
            if type(value) is str:
                runs[key] = texts.setdefault(value, value)
        if result.aggs:
            result.aggs = {texts.setdefault(k, k): a for k, a in result.aggs.items()}


# a worker process's DuckDB connection, opened once for all its batches (a connection
# costs ~20 ms: 40 batches at 10,000 runs); empty in the indexer's own process
_WORKER_CON: list[Any] = []


def _connect() -> Any:
    import duckdb

    return duckdb.connect(config={"threads": 1})


def _usable(con: Any) -> Any:
    """``con`` if it still answers, else a new connection (the worker's too)."""
    try:
        con.execute("SELECT 1").fetchall()
        return con
    except Exception:
        fresh = _connect()
        if _WORKER_CON:
            _WORKER_CON[0] = fresh
        return fresh


def _init_worker() -> None:
    _WORKER_CON.append(_connect())


def read_all(
    root: str,
    project: str,
    items: list[BatchItem],
    generation: int,
    workers: int,
    executor: Callable[[int], Executor] | None = None,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> Iterator[RunResult]:
    """Every item read, in batches of BATCH_RUNS: in worker processes when there are many
    and more than one CPU, else here. Yields each batch's results as it is read, in batch
    order. ``meanwhile`` is called once the batches are submitted to the workers: the
    caller's work that needs none of them overlaps theirs instead of following it."""
    batches = [items[i : i + BATCH_RUNS] for i in range(0, len(items), BATCH_RUNS)]
    if len(items) < PROCESS_MIN or workers < 2:
        for i, b in enumerate(batches):
            yield from read_batch(root, project, b, generation, i)
        return
    make = executor or _process_pool
    with make(workers) as pool:
        futures = [
            pool.submit(read_batch, root, project, b, generation, i) for i, b in enumerate(batches)
        ]
        if meanwhile is not None:
            meanwhile()
        for f in futures:
            yield from f.result()


def _process_pool(workers: int) -> Executor:
    """Worker processes started fresh (``spawn``): the indexer's process holds DuckDB's
    threads, which a fork must not copy."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
    )


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


__all__: list[Any] = ["BatchItem", "RunResult", "read_all", "read_batch"]
