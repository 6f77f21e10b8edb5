"""The indexer: the one writer of the catalog.

Idempotent and restart-safe, after aim's index manager (STYLE 7): each run has a cheap
fingerprint (sizes and mtimes of the files that feed the catalog), kept in the ``runs``
table; a pass re-reads only runs whose fingerprint changed, and only the new tail of their
metric arrays. A run that cannot be read (truncated JSON, bad YAML, a missing chunk) is
reported once with its path and skipped, keeping what was indexed of it before; it is
read again when its files change. Publishing replaces Parquet files atomically, so
readers never wait for the indexer and never see half a table. Problems are logged as
warnings (``hpclab.catalog.indexer``), each distinct message once per indexer.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from hpclab.catalog.extract import (
    RunRows,
    extract_run,
    fingerprint,
    fingerprint_dir,
    record_present,
)
from hpclab.catalog.gc_pause import gc_paused
from hpclab.catalog.knowledge import KNOWLEDGE_TABLES, Knowledge, ProjectInput, RunInput
from hpclab.catalog.manifest import (
    GRACE_SECONDS,
    Manifest,
    published_since,
    read_manifest,
    relative,
    take_generation,
    unnamed_files,
    write_manifest,
)
from hpclab.catalog.parquet import write_table
from hpclab.catalog.project_config import KeyMetric, ProjectConfig, load_project_config
from hpclab.catalog.rows import Row, as_dict, columns, names, positional, row
from hpclab.catalog.run_metrics import Agg, index_run_metrics, merge_files
from hpclab.catalog.schema import RUN_KEYED, SMALL_TABLES, TABLES
from hpclab.catalog.segments import BATCH_RUNS, BatchItem, default_workers, read_all
from hpclab.errors import CatalogError, HpclabError, SchemaMismatch, StoreError
from hpclab.store import RunRecord, RunStatus, Store
from hpclab.store.atomic import replacing
from hpclab.store.record import FINAL_STATUSES, parse_iso, run_status_of
from hpclab.store.views import status_view

log = logging.getLogger(__name__)
# tables filled from one run's files: table -> RunRows attribute
_RUN_TABLES = {
    "features": "features",
    "artifacts": "artifacts",
    "datasets": "datasets",
    "notes": "notes",
    "reproductions": "repro",
    "run_resources": "resources",
    "media": "media",
    "eval_metrics": "eval_metrics",  # issue 19
    "eval_slices": "eval_slices",
    "latency": "latency",
}
SEGMENT_MIN = 32  # a pass with this many runs new to the catalog writes segments
DELTA_MIN = 256  # runs changed since the base tables before they are rewritten (or 5%)
COMPACT_MIN = 64  # small metrics files of ended runs a full pass merges into segments
ACCOUNTING_DAYS = 7  # ended Slurm runs are asked about their accounting this long
ACCOUNTING_RETRY_S = 600.0  # a job accounting did not know is asked again after this
GENERATION_BLOCK = 64  # generations recorded as taken at once (a restart skips the rest)
_ENDED = {s.value for s in FINAL_STATUSES}
_STATUS_VALUES = frozenset(s.value for s in RunStatus)
# the runs columns the knowledge layer fills (parent too, which replaces the stored one)
_NO_KNOWLEDGE = dict.fromkeys(("parent_rule", "root_id", "depth", "seed_group"))


@dataclass
class Entry:
    """What the catalog holds of one run."""

    fingerprint: str
    rows: RunRows | None
    aggs: dict[str, Agg] = field(default_factory=dict)
    metrics_file: str | None = None  # path under .catalog of the run's metrics


Indexed = tuple[str, str, Entry, RunRows]  # (project, run id, entry, its rows)


@dataclass
class _Outcome:
    """What reading one run produced, applied to the indexer's state by the main thread."""

    key: tuple[str, str]
    fingerprint: str
    rows: RunRows | None
    aggs: dict[str, Agg]
    old_file: str | None
    new_file: str | None
    error: str | None
    absent: bool = False  # no run.json: nothing read, nothing to apply


@dataclass
class PassReport:
    """What one indexing pass did."""

    scanned: int = 0
    indexed: int = 0
    removed: int = 0
    errors: int = 0
    published: bool = False
    seconds: float = 0.0
    reconciled: int = 0  # run records the scheduler's answer rewrote (reconcile_pass)


class Indexer:
    """Builds and keeps ``<store>/.catalog`` current. One per store at a time (a lock)."""

    def __init__(self, store: Store) -> None:
        import duckdb

        self.store = store
        self.con = duckdb.connect()
        self.entries: dict[tuple[str, str], Entry] = {}
        self.failed: dict[tuple[str, str], str] = {}  # run -> fingerprint that failed
        # run -> monotonic time before which its accounting is not asked again
        self.accounting_retry: dict[tuple[str, str], float] = {}
        self.projects: dict[str, ProjectConfig] = {}
        self._published_status: dict[tuple[str, str], str] = {}
        # (status, stale) of every run as readers see it, kept per run: only the running
        # runs' (a stale heartbeat) are recomputed each pass, and those whose rows changed
        self._eff: dict[tuple[str, str], tuple[str, bool]] | None = None  # None: rebuild
        self._eff_running: set[tuple[str, str]] = set()
        self._eff_changed: set[tuple[str, str]] = set()  # rows changed since the last pass
        self._status_candidates: set[tuple[str, str]] = set()  # may differ from published
        self._metric_files: dict[str, str] | None = None  # the manifest's run -> file map
        self._reported: set[str] = set()
        self._lock_fd: int | None = None
        self.generation = 1  # of the files this pass writes; the manifest publishes them
        self.published_tables: dict[str, str] = {}
        self.superseded: list[tuple[Path, float]] = []  # deleted after the grace period
        self._stamped = 0  # superseded[:_stamped] hold when a publish stopped naming them
        self._taken = 0  # the generations up to this one are recorded as taken
        self.grace = GRACE_SECONDS
        self.workers = min(4, os.cpu_count() or 1)
        self._local = threading.local()
        self._dirty: set[str] = set()
        self._sweeps_fp: tuple[Any, ...] = ()
        self._sweeps: dict[str, list[SweepRows]] = {}
        self._searches: list[Row] = []  # search_trials, read with the sweeps
        self._sweeps_read = True  # _sweeps and _searches are of the files' current state
        self.knowledge = Knowledge()
        self._knowledge_fp: tuple[Any, ...] | None = None
        self._knowledge_files: dict[str, tuple[Any, Any]] = {}  # project -> (dag edits, hyps)
        self._knowledge_rows: dict[str, list[tuple[Any, ...]]] = {}
        self._run_columns: dict[tuple[str, str], dict[str, Any]] = {}
        self._file_runs: dict[str, set[tuple[str, str]]] = {}  # metrics file -> current runs
        self.stale: dict[str, set[str]] = {}  # metrics file -> run ids superseded in it
        self.segment_min = SEGMENT_MIN  # new runs in a pass from which segments are written
        self._delta: set[tuple[str, str]] = set()  # runs changed since the base tables
        self.deltas: dict[str, str] = {}  # run-keyed table -> its published delta file
        self.delta_keys: str | None = None  # the published keys file of the deltas
        self._rebase = False  # every run-keyed table rewritten whole at the next publish
        self._inputs: dict[str, str] = {}  # the published manifest's input digests
        self._knowledge_pending = False  # an input of the knowledge layer changed
        self._knowledge_relevant = False  # ... beyond a running run's progress
        self._knowledge_files_stale = False  # dag.yaml/hypotheses not read since a restart
        self._lazy: dict[tuple[str, str], RunRows] = {}  # loaded runs whose details are not
        self._lazy_accounting = False  # their run_resources rows are (ensure_accounting)
        self._aggs_pending: set[tuple[str, str]] = set()  # loaded; aggregates not read yet
        self.processes = default_workers()

    # -- lifetime ---------------------------------------------------------------------
    def __enter__(self) -> Indexer:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the indexer lock, or raise CatalogError naming the holder."""
        self.store.catalog_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.store.catalog_lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise CatalogError(f"another indexer is running on this store ({holder})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self._lock_fd = fd
        self._load()

    def release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- indexing ---------------------------------------------------------------------
    def index(
        self, runs: list[tuple[str, str]] | None = None, *, knowledge: bool = True
    ) -> PassReport:
        """One pass over every run (or just ``runs``); publish if anything changed.

        ``knowledge=False`` (the watcher's targeted passes) publishes the runs' rows and
        leaves the knowledge layer they change (DAG, seed groups, evidence: seconds at
        10,000 runs) to :meth:`update_knowledge`, which the watcher calls when events
        pause: a flushed point is visible in milliseconds, whatever the store's size."""
        with gc_paused():
            return self._index(runs, knowledge=knowledge)

    def _index(self, runs: list[tuple[str, str]] | None, *, knowledge: bool) -> PassReport:
        start = time.perf_counter()
        report = PassReport()
        if self._lock_fd is None:
            raise CatalogError("the indexer lock is not held (use Indexer as a context manager)")
        projects = {p: self._project_config(p) for p in self.store.projects()}
        if projects != self.projects:
            restarted = not self.projects and _digest(projects) == self._inputs.get("projects")
            self.projects = projects
            if not restarted:  # key metrics or directions may differ: every summary row
                self._dirty |= {"metric_summary"}
                self._rebase = self._knowledge_pending = True
        sweeps_fp = self._sweeps_fingerprint()
        if sweeps_fp != self._sweeps_fp:
            restarted = not self._sweeps_fp and _digest(sweeps_fp) == self._inputs.get("sweeps")
            self._sweeps_fp = sweeps_fp
            self._sweeps_read = False  # read when the knowledge layer or a publish needs them
            # (or while workers read a cold pass's runs)
            if not restarted:
                self._dirty |= {"sweeps", "sweep_points", "search_trials"}
                self._knowledge_pending = True
        seen: set[tuple[str, str]] = set()
        targets = (
            runs
            if runs is not None  # ids only: no paths built for runs the pass leaves alone
            else [(p, r) for p in self.store.projects() for r in self.store.run_ids(p)]
        )
        todo: list[tuple[str, str, Any, str | None]] = []
        runs_dirs: dict[str, str] = {}  # project -> its runs directory, with a separator
        for project, run_id in targets:
            key = (project, run_id)
            entry = self.entries.get(key)
            if entry is None and key not in self.failed:
                # new to the catalog: its reader takes the fingerprint (in a worker process,
                # in a cold pass) and says whether it has a record at all
                todo.append((project, run_id, None, None))
                continue
            if runs is not None:
                self.store.run_paths(project, run_id)  # a named run: its id checked
            base = runs_dirs.get(project)
            if base is None:
                base = runs_dirs[project] = str(self.store.runs_dir(project)) + os.sep
            fp = fingerprint_dir(base + run_id)
            if not record_present(fp):
                continue
            seen.add(key)
            report.scanned += 1
            if entry is not None and entry.fingerprint == fp:
                continue
            if self.failed.get(key) == fp:
                continue  # reported already; read again when its files change
            todo.append((project, run_id, None, fp))
        for outcome in self._work_all(todo):
            if outcome.absent:
                continue
            if outcome.key not in seen:
                seen.add(outcome.key)
                report.scanned += 1
            if self._apply(outcome):
                report.indexed += 1
            else:
                report.errors += 1
        if runs is None:
            for key in [k for k in self.entries if k not in seen]:
                self._remove(key)
                report.removed += 1
        self._mark_status_changes()
        if knowledge or runs is None:
            # a targeted pass whose runs only progressed leaves the knowledge layer to the
            # next full pass or a relevant change
            self._update_knowledge(deferrable=runs is not None)
        if runs is None and self._compact():
            self._dirty.add("metrics")  # the manifest's files, not a table
        self._publish_if_changed(report)
        report.seconds = time.perf_counter() - start
        return report

    @property
    def knowledge_waiting(self) -> bool:
        """Runs changed in a way the knowledge layer reads (a new run, one that ended, new
        notes): :meth:`update_knowledge` has work."""
        return self._knowledge_relevant

    def update_knowledge(self) -> PassReport:
        """Recompute the knowledge layer if a targeted pass left it waiting (or its files,
        dag.yaml and hypotheses, changed), and publish."""
        start = time.perf_counter()
        report = PassReport()
        if self._lock_fd is None:
            raise CatalogError("the indexer lock is not held (use Indexer as a context manager)")
        with gc_paused():
            self._update_knowledge(deferrable=True)
            self._publish_if_changed(report)
        report.seconds = time.perf_counter() - start
        return report

    def _publish_if_changed(self, report: PassReport) -> None:
        if self._dirty or not self._published() or self._current_inputs() != self._inputs:
            self.publish()
            report.published = True

    def _work_all(self, todo: list[tuple[str, str, Any, str | None]]) -> Iterator[_Outcome]:
        """Read the changed runs. Runs new to the catalog, when there are many (a cold
        pass), are read in batches whose metrics go to segment files (in worker processes
        past a few hundred: their outcomes come as each batch is read, and the pass's work
        that needs no run is done while they read, :meth:`_meanwhile`); the others one by
        one, in parallel threads when there are many (DuckDB's Parquet writer and file
        reads release the GIL), all read before any is given."""
        fresh: dict[str, list[BatchItem]] = {}
        incremental = []
        for t in todo:
            entry = self.entries.get((t[0], t[1]))
            if entry is None or not entry.metrics_file:
                fresh.setdefault(t[0], []).append(BatchItem(t[1], t[3]))
            else:
                incremental.append(t)
        self._ensure_aggs((t[0], t[1]) for t in incremental)  # what a failed read keeps
        for project, items in fresh.items():
            if len(items) < self.segment_min:
                incremental.extend((project, i.run_id, None, i.fingerprint) for i in items)
                continue
            for r in read_all(
                str(self.store.root),
                project,
                items,
                self.generation,
                self.processes,
                meanwhile=self._meanwhile,
            ):
                yield _Outcome(
                    (project, r.run_id),
                    r.fingerprint,
                    r.rows,
                    r.aggs,
                    None,
                    r.metrics_file,
                    r.error,
                    r.absent,
                )
        # the threads read self.entries: every outcome computed before the caller applies one
        if len(incremental) < 8 or self.workers < 2:
            outcomes = [self._work(*t) for t in incremental]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                outcomes = list(pool.map(lambda t: self._work(*t), incremental))
        yield from outcomes

    def _meanwhile(self) -> None:
        """What a cold pass does while worker processes read its runs (on a machine whose
        cores they keep busy, work here costs half the time it would after them): the
        sweep files read, the knowledge layer's libraries imported."""
        self._sweep_data()
        import networkx  # noqa: F401  (the DAG's)
        import scipy.special  # noqa: F401  (the statistics')

    def _cursor(self) -> Any:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self.con.cursor()
        return cursor

    def _work(self, project: str, run_id: str, paths: Any, fp: str | None) -> _Outcome:
        """Read one run (no shared state is changed here: threads run this); ``fp`` None:
        a run new to the catalog, its fingerprint taken here."""
        key = (project, run_id)
        paths = paths or self.store.run_paths(project, run_id)
        if fp is None:
            fp = fingerprint(paths)
            if not record_present(fp):
                return _Outcome(key, fp, None, {}, None, None, None, absent=True)
        previous = self.entries.get(key)
        old_file = previous.metrics_file if previous else None
        aggs = previous.aggs if previous else {}
        try:
            rows = extract_run(self.store, project, paths, fp)
        except Exception as e:  # a half-written or corrupt run must not stop the indexer
            return _Outcome(
                key,
                fp,
                None,
                aggs,
                old_file,
                old_file,
                f"{paths.dir}: skipped, unreadable ({_one_line(e)})",
            )
        out = self.store.catalog_metrics(project, run_id, self.generation)
        try:
            aggs, written = index_run_metrics(
                self._cursor(),
                out,
                self.store.catalog_dir / old_file if old_file else None,
                paths.metrics_zarr,
                project,
                run_id,
                rows.created_at,
            )
        except Exception as e:
            return _Outcome(
                key,
                fp,
                rows,
                aggs,
                old_file,
                old_file,
                f"{paths.metrics_zarr}: metrics not indexed ({_one_line(e)})",
            )
        new_file = relative(self.store, out) if written else old_file
        return _Outcome(key, fp, rows, aggs, old_file, new_file, None)

    def _apply(self, o: _Outcome) -> bool:
        previous = self.entries.get(o.key)
        if o.rows is not None:
            old_rows = previous.rows if previous else None
            unread = self._lazy.pop(o.key, None) is not None  # details not loaded

            self._dirty |= {"runs", "metric_summary"}
            self._delta.add(o.key)
            for table, attr in _RUN_TABLES.items():
                if old_rows is None or unread or getattr(old_rows, attr) != getattr(o.rows, attr):
                    self._dirty.add(table)
            if not _only_progressed(old_rows, o.rows, statuses_only=unread):
                self._knowledge_relevant = True
            self._knowledge_pending = True
        if o.error is not None:
            self._report(o.error)
            self.failed[o.key] = o.fingerprint
            if o.rows is not None:  # partially indexed: everything but the metrics
                self._set_entry(o.key, Entry("", o.rows, o.aggs, o.old_file))
            return False
        if o.new_file != o.old_file:
            if o.old_file:
                self._release(o.old_file, o.key)
            if o.new_file:
                self._file_runs.setdefault(o.new_file, set()).add(o.key)
        self.failed.pop(o.key, None)
        self._set_entry(o.key, Entry(o.fingerprint, o.rows, o.aggs, o.new_file))
        return True

    def _set_entry(self, key: tuple[str, str], entry: Entry) -> None:
        self.entries[key] = entry
        self._aggs_pending.discard(key)
        self._eff_changed.add(key)
        if self._metric_files is not None:
            if entry.metrics_file and entry.rows is not None:
                self._metric_files[f"{key[0]}/{key[1]}"] = entry.metrics_file
            else:
                self._metric_files.pop(f"{key[0]}/{key[1]}", None)

    def _remove(self, key: tuple[str, str]) -> None:
        entry = self.entries.pop(key, None)
        self._aggs_pending.discard(key)
        self._eff_changed.add(key)
        if self._metric_files is not None:
            self._metric_files.pop(f"{key[0]}/{key[1]}", None)
        self._lazy.pop(key, None)
        self._dirty |= set(SMALL_TABLES) - {"sweeps", "sweep_points", "search_trials"}
        self._delta.add(key)
        self._knowledge_pending = self._knowledge_relevant = True
        if entry is not None and entry.metrics_file:
            self._release(entry.metrics_file, key)

    def _ensure_aggs(self, keys: Iterable[tuple[str, str]] | None = None) -> None:
        """Read the metric aggregates of the runs loaded at the start (of ``keys``, or of
        all) and not read again since."""
        if not self._aggs_pending:
            return
        chosen = self._aggs_pending if keys is None else self._aggs_pending.intersection(keys)
        if chosen:
            load_aggs(self.con, self.store, {k: self.entries[k] for k in chosen})
            self._aggs_pending -= chosen

    def _ensure_details(self) -> None:
        """Read the details of the runs loaded at the start and not read again since (from
        the tables as published now: they hold those runs' rows as loaded)."""
        self._ensure_aggs()
        if not self._lazy:
            return
        load_details(self.con, self.store, read_manifest(self.store), self._lazy)
        self._lazy = {}

    def ensure_accounting(self) -> None:
        """Read the accounting (``run_resources``) of the runs loaded at the start, and
        only that: what the accounting pass asks about (without it, every restarted
        ``hpclab index`` took each ended Slurm run for one without accounting, asked
        sacct about it again and rewrote its resources.json)."""
        if not self._lazy or self._lazy_accounting:
            return
        tables = frozenset({"run_resources"})
        load_details(self.con, self.store, read_manifest(self.store), self._lazy, tables)
        self._lazy_accounting = True

    def _compact(self) -> bool:
        """Merge the small metrics files of ended runs into segments once there are
        COMPACT_MIN of them: runs that arrive one at a time (the watcher's passes) each get
        a file, and a query over the ``metrics`` view opens every file it names (10,000
        one-run files: seconds; a few dozen segments: milliseconds). Returns whether any
        file was merged (the manifest changes, the rows do not)."""
        small: dict[str, list[str]] = {}
        for rel, keys in self._file_runs.items():
            if len(keys) >= self.segment_min or not keys:
                continue
            if all(self._ended(k) for k in keys):
                small.setdefault(next(iter(keys))[0], []).append(rel)
        if sum(len(v) for v in small.values()) < COMPACT_MIN:
            return False
        merged = False
        for project, rels in sorted(small.items()):
            chunk: list[str] = []
            held = 0
            for i, rel in enumerate(sorted(rels)):
                chunk.append(rel)
                held += len(self._file_runs[rel])
                if held >= BATCH_RUNS or i == len(rels) - 1:
                    if len(chunk) > 1:
                        merged |= self._merge(project, chunk, i)
                    chunk, held = [], 0
        return merged

    def _ended(self, key: tuple[str, str]) -> bool:
        entry = self.entries.get(key)
        return bool(entry and entry.rows and entry.rows.runs.get("stored_status") in _ENDED)

    def _merge(self, project: str, rels: list[str], part: int) -> bool:
        out = self.store.catalog_segment(project, self.generation, f"c{part}")
        files = [
            (self.store.catalog_dir / rel, sorted(r for _, r in self._file_runs[rel]))
            for rel in rels
        ]
        try:
            held = merge_files(self.con, out, files)
        except Exception as e:  # a damaged file: left as it is, its runs readable
            self._report(f"{out}: metrics files not merged ({_one_line(e)})")
            return False
        new = relative(self.store, out)
        moved = {(project, r) for r in held}
        self._ensure_aggs(moved)  # read from the files they leave, before the entries move
        for rel in rels:
            for key in sorted(self._file_runs.get(rel, set()) & moved):
                entry = self.entries[key]
                self._set_entry(key, dataclasses.replace(entry, metrics_file=new))
                self._file_runs.setdefault(new, set()).add(key)
                self._release(rel, key)
        return bool(held)

    def _release(self, rel: str, key: tuple[str, str]) -> None:
        """``key``'s rows in ``rel`` are no longer current: the file is superseded when it
        holds no current run any more, else the run is listed as stale in it."""
        holders = self._file_runs.get(rel, set())
        holders.discard(key)
        if holders:
            self.stale.setdefault(rel, set()).add(key[1])
            return
        self._file_runs.pop(rel, None)
        self.stale.pop(rel, None)
        self.superseded.append((self.store.catalog_dir / rel, time.time()))

    def _sweep_data(self) -> dict[str, list[SweepRows]]:
        """The sweeps' rows (and the searches'), read once after their files changed (a
        restarted pass with nothing to publish reads none of the sweep files)."""
        if not self._sweeps_read:
            self._sweeps = {p: _sweeps(self.store, p, self._report) for p in self.store.projects()}
            self._searches = _search_trials(self.store)
            self._sweeps_read = True
        return self._sweeps

    def _sweeps_fingerprint(self) -> tuple[Any, ...]:
        out: list[tuple[Any, ...]] = []
        for project in self.store.projects():
            d = self.store.sweeps_dir(project)
            if d.is_dir():
                for e in sorted(os.scandir(d), key=lambda e: e.name):
                    st = e.stat()
                    out.append((project, e.name, st.st_size, st.st_mtime_ns))
            d = self.store.search_dir(project)  # studies: their journals and descriptions
            if d.is_dir():
                for e in sorted(os.scandir(d), key=lambda e: e.name):
                    st = e.stat()
                    out.append((project, "search", e.name, st.st_size, st.st_mtime_ns))
        return tuple(out)

    # -- knowledge (DAG, diffs, seed groups, Pareto, evidence) ---------------------------
    def _knowledge_fingerprint(self) -> tuple[Any, ...]:
        """Sizes and mtimes of the user's edits: dag.yaml and hypotheses/*.yaml."""
        out: list[Any] = []
        for project in self.store.projects():
            for path in (self.store.dag_yaml(project),):
                try:
                    st = path.stat()
                    out.append((project, path.name, st.st_size, st.st_mtime_ns))
                except OSError:
                    pass
            d = self.store.hypotheses_dir(project)
            if d.is_dir():
                for e in sorted(os.scandir(d), key=lambda e: e.name):
                    st = e.stat()
                    out.append((project, "h", e.name, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _update_knowledge(self, *, deferrable: bool = False) -> None:
        """Recompute the knowledge tables when anything they derive from changed (when
        ``deferrable``, only for a change beyond runs' progress); mark the tables whose rows
        changed (and ``runs``, for its DAG columns) dirty."""
        from hpclab.catalog.dag import read_manual
        from hpclab.catalog.hypotheses import load_hypotheses

        fp = self._knowledge_fingerprint()
        files_changed = fp != self._knowledge_fp
        if (
            files_changed
            and self._knowledge_fp is None
            and _digest(fp) == self._inputs.get("knowledge")
        ):
            files_changed = False  # a restart: the published tables are of these files
            self._knowledge_fp = fp
            self._knowledge_files_stale = True
        if not files_changed and not self._knowledge_pending:
            return
        if not files_changed and deferrable and not self._knowledge_relevant:
            return
        self._knowledge_pending = self._knowledge_relevant = False
        self._ensure_details()
        if files_changed or self._knowledge_files_stale:
            self._knowledge_files_stale = False
            self._knowledge_fp = fp
            self._knowledge_files = {}
            for project in self.store.projects():
                try:
                    manual: Any = read_manual(self.store, project)
                except HpclabError as e:
                    self._report(str(e))
                    manual = {}
                hyps = load_hypotheses(self.store, project, skip_bad=True)
                self._knowledge_files[project] = (manual, hyps)
        effective = self._effective()
        projects: dict[str, ProjectInput] = {}
        for (project, run_id), entry in sorted(self.entries.items()):
            if entry.rows is None:
                continue
            p = projects.get(project)
            if p is None:
                manual, hyps = self._knowledge_files.get(project, ({}, []))
                bases, overrides = _sweep_facts(self._sweep_data().get(project, []))
                p = projects[project] = ProjectInput(
                    project,
                    self.projects.get(project) or ProjectConfig(),
                    {},
                    manual,
                    bases,
                    overrides,
                    hyps,
                    functools.partial(self._series, project),
                )
            p.runs[run_id] = RunInput(
                run_id,
                effective[(project, run_id)][0],
                entry.rows.runs,
                entry.rows.features,
                entry.aggs,
                data=tuple(
                    sorted(
                        (str(d["name"]), str(d.get("sha256") or "")) for d in entry.rows.datasets
                    )
                ),
            )
        result = self.knowledge.compute(list(projects.values()))
        for message in result.warnings:
            self._report(message)
        for table in KNOWLEDGE_TABLES:
            if result.tables[table] != self._knowledge_rows.get(table):
                self._dirty.add(table)
        changed = {
            k
            for k in result.run_columns.keys() | self._run_columns.keys()
            if result.run_columns.get(k) != self._run_columns.get(k)
        }
        if changed:
            self._dirty.add("runs")
            self._delta |= changed
        self._knowledge_rows = result.tables
        self._run_columns = result.run_columns

    def _report(self, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            log.warning("%s", message)

    def _project_config(self, project: str) -> ProjectConfig:
        try:
            return load_project_config(self.store.project_yaml(project))
        except HpclabError as e:
            self._report(str(e))
            return ProjectConfig()

    # -- publishing -------------------------------------------------------------------
    def _published(self) -> bool:
        return bool(self.published_tables)

    def _series(self, project: str, run_id: str, metric: str) -> np.ndarray | None:
        """One run's points of one metric, (step, value) by step, from its catalog file."""
        entry = self.entries.get((project, run_id))
        if entry is None or not entry.metrics_file:
            return None
        path = self.store.catalog_dir / entry.metrics_file
        try:
            rows = (
                self._cursor()
                .execute(
                    "SELECT step, value FROM read_parquet(?) WHERE run_id = ? AND name = ?"
                    " ORDER BY step",
                    [str(path), run_id, metric],
                )
                .fetchnumpy()
            )
        except Exception as e:  # a damaged catalog file: no noise estimate, not a dead pass
            self._report(f"{path}: {metric} not read for stability ({_one_line(e)})")
            return None
        return np.column_stack([rows["step"].astype(np.float64), rows["value"]])

    def _effective(self) -> dict[tuple[str, str], tuple[str, bool]]:
        """(status, stale) of every run read: the stored status, but for running runs (the
        only ones whose status depends on the time: a stale heartbeat). Kept between
        passes: a pass recomputes the running runs' and those whose rows it read, not
        10,000 runs'. Treat the result as read-only."""
        now = time.time()
        if self._eff is None:
            self._eff, self._eff_running = {}, set()
            todo: Any = list(self.entries)
        else:
            todo = self._eff_changed
        for key in todo:
            entry = self.entries.get(key)
            self._status_candidates.add(key)
            if entry is None or entry.rows is None:
                self._eff.pop(key, None)
                self._eff_running.discard(key)
                continue
            stored = entry.rows.runs["stored_status"]
            if stored == RunStatus.RUNNING:
                self._eff_running.add(key)
            else:
                self._eff_running.discard(key)
                self._eff[key] = (stored, False)
        self._eff_changed = set()
        for key in self._eff_running:
            self._eff[key] = row_status(self.entries[key].rows.runs, now)  # type: ignore[union-attr]
        self._status_candidates |= self._eff_running
        return self._eff

    def _mark_status_changes(self) -> None:
        """Runs whose status as readers see it differs from the published one: their rows
        of ``runs`` change."""
        effective = self._effective()
        changed = {
            k
            for k in self._status_candidates
            if self._published_status.get(k) != (effective[k][0] if k in effective else None)
        }
        if changed:
            self._dirty.add("runs")
            self._delta |= changed

    def publish(self) -> None:
        """Write the small tables that changed (new files) and publish a new manifest.

        The tables of runs' rows (``runs``, ``features``, ``metric_summary``, ...) are a
        base file plus, while few runs changed since it was written, a delta file with the
        current rows of those runs (listed in a keys file; readers take the base's other
        rows and the delta's): a pass that changed one run writes a few rows, not the
        10,000 runs' tables again."""
        effective = self._effective()
        need = {t for t in SMALL_TABLES if t in self._dirty or t not in self.published_tables}
        run_need = need & set(RUN_KEYED)
        tables: dict[str, list[Row] | Columns] = {}
        if run_need:
            rebase = (
                self._rebase
                or any(t not in self.published_tables for t in RUN_KEYED)
                or len(self._delta) > max(DELTA_MIN, len(self.entries) // 20)
            )
            keys = None if rebase else self._delta
            if rebase or self._delta & self._lazy.keys():
                self._ensure_details()  # rows of runs not read again are written too
            indexed = list(self._indexed(keys))  # sorted once for every table
            for table in RUN_KEYED:
                built = self._run_keyed_rows(table, effective, indexed)
                if rebase:
                    tables[table] = built
                else:
                    self._write_delta(table, built)
            if rebase:
                self._delta = set()
                self._rebase = False
                self.deltas = {}
                self.delta_keys = None
            else:
                self._write_delta_keys()
        if "sweeps" in need or "sweep_points" in need:
            tables["sweeps"], tables["sweep_points"] = self._sweep_rows()
        if "search_trials" in need:
            self._sweep_data()
            tables["search_trials"] = list(self._searches)
        for table in KNOWLEDGE_TABLES:
            if table in need:
                tables[table] = list(self._knowledge_rows.get(table, []))
        for table, table_rows in tables.items():
            self._write_table(table, table_rows)
        manifest = Manifest(
            generation=self.generation,
            tables=dict(self.published_tables),
            metrics=self._metrics_map(),
            stale={rel: sorted(ids) for rel, ids in sorted(self.stale.items())},
            deltas=dict(self.deltas),
            delta_keys=self.delta_keys,
            inputs=self._current_inputs(),
        )
        self._inputs = manifest.inputs
        write_manifest(self.store, manifest)  # the publish: readers switch here
        self.generation += 1
        self._dirty = set()
        for k in self._status_candidates:  # the others' are as published
            if k in effective:
                self._published_status[k] = effective[k][0]
            else:
                self._published_status.pop(k, None)
        self._status_candidates = set()
        self._collect_garbage()

    def _metrics_map(self) -> dict[str, str]:
        """``project/run_id`` -> its metrics file, kept up to date run by run."""
        if self._metric_files is None:
            self._metric_files = {
                f"{p}/{r}": e.metrics_file
                for (p, r), e in sorted(self.entries.items())
                if e.metrics_file and e.rows is not None
            }
        return self._metric_files

    def _current_inputs(self) -> dict[str, str]:
        """Digests of what the published tables were computed from besides the runs (a
        restart with the same ones recomputes nothing)."""
        out = {"projects": _digest(self.projects), "sweeps": _digest(self._sweeps_fp)}
        if self._knowledge_fp is not None and not self._knowledge_pending:
            out["knowledge"] = _digest(self._knowledge_fp)
        return out

    def _run_keyed_rows(
        self,
        table: str,
        effective: dict[tuple[str, str], tuple[str, bool]],
        indexed: list[Indexed],
    ) -> list[Row] | Columns:
        if table == "runs":
            return self._runs_rows(effective, indexed)
        if table == "features":
            return self._feature_rows(indexed)
        if table == "metric_summary":
            return self._summary_rows(indexed)
        return self._run_file_rows(table, _RUN_TABLES[table], indexed)

    def _write_delta(self, table: str, table_rows: list[Row] | Columns) -> None:
        path = self.store.catalog_delta(table, self.generation)
        cols, n_rows = _table_columns(table, table_rows)
        if n_rows:
            write_table(self.con, path, table, cols)
            rel: str | None = relative(self.store, path)
        else:
            rel = None
        old = self.deltas.get(table)
        if old and old != rel:
            self.superseded.append((self.store.catalog_dir / old, time.time()))
        if rel:
            self.deltas[table] = rel
        else:
            self.deltas.pop(table, None)

    def _write_delta_keys(self) -> None:
        path = self.store.catalog_delta("keys", self.generation)
        keys = sorted(self._delta)
        with replacing(path, suffix=".tmp") as tmp:
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE _hpclab_keys (project VARCHAR, run_id VARCHAR)"
            )
            if keys:
                self.con.executemany("INSERT INTO _hpclab_keys VALUES (?, ?)", keys)
            self.con.execute(f"COPY _hpclab_keys TO '{_sql(tmp)}' (FORMAT parquet)")
        if self.delta_keys:
            self.superseded.append((self.store.catalog_dir / self.delta_keys, time.time()))
        self.delta_keys = relative(self.store, path)

    def _indexed(self, keys: set[tuple[str, str]] | None = None) -> Iterator[Indexed]:
        """(project, run id, entry, rows) of every run read (or of ``keys``), in catalog
        order."""
        chosen = self.entries.keys() if keys is None else keys & self.entries.keys()
        for project, run_id in sorted(chosen):
            entry = self.entries[(project, run_id)]
            if entry.rows is not None:
                yield project, run_id, entry, entry.rows

    def _runs_rows(
        self,
        effective: dict[tuple[str, str], tuple[str, bool]],
        indexed: list[Indexed],
    ) -> list[Row]:
        """``runs``: the run's record, its DAG and seed-group columns, its status as readers
        see it, and the indexer's own columns."""
        out = []
        for project, run_id, entry, rows in indexed:
            status, stale = effective[(project, run_id)]
            out.append(
                row(
                    "runs",
                    rows.runs,
                    _NO_KNOWLEDGE,  # replaced by the knowledge layer's, when it has them
                    self._run_columns.get((project, run_id)) or {},
                    project=project,
                    run_id=run_id,
                    status=status,
                    stale=stale,
                    n_metrics=len(entry.aggs),
                    fingerprint=entry.fingerprint,
                )
            )
        return out

    def _feature_rows(self, indexed: list[Indexed]) -> Columns:
        """``features`` as columns straight from the runs' (path, value, number) rows: no
        row tuple per feature (200,000 at 10,000 runs)."""
        every = list(chain.from_iterable(i[3].features for i in indexed))
        counts = [len(i[3].features) for i in indexed]
        cols: Columns = {
            "project": list(chain.from_iterable(map(repeat, map(itemgetter(0), indexed), counts))),
            "run_id": list(chain.from_iterable(map(repeat, map(itemgetter(1), indexed), counts))),
            "path": list(map(itemgetter(0), every)),
            "value": list(map(itemgetter(1), every)),
            "value_num": list(map(itemgetter(2), every)),
        }
        if set(cols) != set(names("features")):
            raise SchemaMismatch(f"features: columns {sorted(cols)}, not {names('features')}")
        return cols

    def _run_file_rows(self, table: str, attr: str, indexed: list[Indexed]) -> list[Row]:
        """A table read from one run's files (artifacts, datasets, notes, reproductions):
        the run's rows (a list, or one row or None) with the run's key."""
        out = []
        for project, run_id, _, rows in indexed:
            value = getattr(rows, attr)
            if not value:  # most runs: none of these files
                continue
            parts = value if isinstance(value, list) else [value]
            for part in parts:
                out.append(row(table, part, project=project, run_id=run_id))
        return out

    def _summary_rows(self, indexed: list[Indexed]) -> list[Row]:
        out = []
        configs: dict[str, _MetricRoles] = {}
        for project, run_id, entry, rows in indexed:
            roles = configs.get(project)
            if roles is None:
                roles = configs[project] = _MetricRoles(self.projects.get(project))
            returned, aggs = rows.returned, entry.aggs
            names = sorted(aggs.keys() | returned.keys()) if returned else sorted(aggs)
            for name in names:
                out.append(
                    _summary_row(project, run_id, name, aggs.get(name), returned.get(name), roles)
                )
        return out

    def _sweep_rows(self) -> tuple[list[Row], list[Row]]:
        """``sweeps`` and ``sweep_points``, as :func:`_sweeps` read them."""
        sweeps: list[Row] = []
        points: list[Row] = []
        data = self._sweep_data()
        for project in sorted(data):
            for sweep in data[project]:
                sweeps.append(sweep[0])
                points.extend(sweep[1])
        return sweeps, points

    def _write_table(self, table: str, table_rows: list[Row] | Columns) -> None:
        """Write one table's rows as a new file of this generation (published by the
        manifest the pass writes next)."""
        cols, _ = _table_columns(table, table_rows)
        table_file = self.store.catalog_table(table, self.generation)
        write_table(self.con, table_file, table, cols)
        old = self.published_tables.get(table)
        if old and old != relative(self.store, table_file):
            self.superseded.append((self.store.catalog_dir / old, time.time()))
        self.published_tables[table] = relative(self.store, table_file)

    @property
    def generation(self) -> int:
        """The generation of the files this pass writes (the manifest publishes them).
        Setting it, with the lock held, records it as taken first (GENERATION_BLOCK at a
        time: an fsync per block, not per publish), so a generation is never handed out
        twice, even after a kill (see :meth:`_load`)."""
        return self._generation

    @generation.setter
    def generation(self, value: int) -> None:
        if self._lock_fd is not None and value > self._taken:
            take_generation(self.store, value + GENERATION_BLOCK - 1)
            self._taken = value + GENERATION_BLOCK - 1
        self._generation = value

    def _collect_garbage(self, *, now: float | None = None) -> None:
        """Delete the superseded files no reader can need: a file goes a grace period
        after the publish that stopped naming it (called right after each publish, this
        stamps the files queued since with that time), and never while the published
        manifest names it, whatever its age."""
        now = time.time() if now is None else now
        for i in range(self._stamped, len(self.superseded)):
            path, since = self.superseded[i]
            self.superseded[i] = (path, max(since, now))
        named: set[str] | None = None
        keep = []
        for path, since in self.superseded:
            if now - since < self.grace:
                keep.append((path, since))
                continue
            if named is None:  # only when a file is due: the map has a file per run
                named = self._named_files()
            if relative(self.store, path) in named:
                continue  # current again: no longer superseded
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as e:  # a read-only or failing disk: tried again next time
                self._report(f"{path}: superseded catalog file not deleted ({_one_line(e)})")
                keep.append((path, since))
        self.superseded = keep
        self._stamped = len(keep)

    def _named_files(self) -> set[str]:
        """The files (under .catalog) the manifest this indexer published, or loaded,
        names."""
        published = Manifest(
            tables=self.published_tables,
            metrics=self._metrics_map(),
            deltas=self.deltas,
            delta_keys=self.delta_keys,
        )
        return published.files()

    # -- restart ------------------------------------------------------------------------
    def _load(self) -> None:
        """Start from what the catalog already holds: unchanged runs are not read again.
        Files the manifest does not name are leftovers (a killed pass's, or superseded
        ones): they go a grace period after the manifest was published, whatever their
        mtime."""
        manifest = read_manifest(self.store)
        if manifest.tables:
            try:
                self.entries, self._published_status = load_entries(self.con, self.store, manifest)
                self._eff = self._metric_files = None
                self.published_tables = dict(manifest.tables)
                self.deltas = dict(manifest.deltas)
                self.delta_keys = manifest.delta_keys
                self._delta = _read_keys(self.con, self.store, manifest)
                self._inputs = dict(manifest.inputs)
                self._lazy = {k: e.rows for k, e in self.entries.items() if e.rows is not None}
                self._lazy_accounting = False
                self._aggs_pending = {k for k, e in self.entries.items() if e.metrics_file}
                for key, entry in self.entries.items():
                    if entry.rows is not None:
                        self._run_columns[key] = {
                            c: entry.rows.runs.get(c) for c in (*_NO_KNOWLEDGE, "parent")
                        }
                for (p, r), entry in self.entries.items():
                    if entry.metrics_file:
                        self._file_runs.setdefault(entry.metrics_file, set()).add((p, r))
                self.stale = {
                    rel: set(ids) for rel, ids in manifest.stale.items() if rel in self._file_runs
                }
            except Exception as e:  # a damaged catalog is rebuilt, not trusted
                self._report(f"{self.store.catalog_dir}: rebuilding the catalog ({_one_line(e)})")
                self.entries = {}
                self._lazy, self._aggs_pending = {}, set()
                self.published_tables = {}
                self._published_status = {}
                self._eff = self._metric_files = None
        # Generations never repeat: a killed pass's files (and its worker processes', which
        # may outlive it) keep their names. Files the manifest does not name were named
        # last, if ever, by a version current until this one was published.
        unnamed, used = unnamed_files(self.store, manifest)
        self._taken = 0
        self.generation = used + 1
        since = published_since(self.store, manifest)
        self.superseded = [(path, since) for path in unnamed]
        self._stamped = len(self.superseded)
        self._collect_garbage()


def row_status(run: dict[str, Any], now: float) -> tuple[str, bool]:
    """(status, stale) of a ``runs`` row as readers see it: the store's one definition
    (:func:`hpclab.store.views.status_view`) applied to the row's record fields."""
    state = run.get("scheduler_state")
    probe = RunRecord(
        id="-",
        project="-",
        status=RunStatus(run["stored_status"]),
        heartbeat_at=run.get("heartbeat_at"),
        heartbeat_interval=float(run.get("heartbeat_interval") or 30.0),
        scheduler_state={"state": state} if state else None,
    )
    return status_view(probe, now)


Columns = dict[str, list[Any]]  # a table's columns by name, what columns() makes of rows


def _table_columns(table: str, built: list[Row] | Columns) -> tuple[dict[str, Any], int]:
    """A table's rows (or its columns already) as the Parquet writer's columns, and the
    number of rows."""
    cols: dict[str, Any] = dict(built) if isinstance(built, dict) else columns(table, built)
    if table == "metric_summary":  # keep NaN/inf: numeric columns as float64
        for n in ("last", "best", "mean", "min", "max", "key_value"):
            cols[n] = np.array(cols[n], dtype=np.float64)
    return cols, next((len(v) for v in cols.values() if not isinstance(v, str)), 0)


class _MetricRoles:
    """A project's direction and key metric of each metric name, looked up once per name
    (the summary has a row per metric of every run: 40,000 at 10,000 runs)."""

    def __init__(self, config: ProjectConfig | None) -> None:
        self.config = config or ProjectConfig()
        self._of: dict[str, tuple[str, KeyMetric | None]] = {}

    def of(self, name: str) -> tuple[str, KeyMetric | None]:
        hit = self._of.get(name)
        if hit is None:
            hit = self._of[name] = (self.config.direction(name), self.config.key(name))
        return hit


def _summary_row(
    project: str,
    run_id: str,
    name: str,
    agg: Agg | None,
    returned: float | None,
    roles: _MetricRoles,
) -> Row:
    """One metric's summary: the logged curve's aggregates (``agg``) and the task's return
    value (``returned``). A returned value is the metric's final value: it is ``last``
    (and the ``last`` aggregation of a key metric); best/mean/min/max/n/last_step describe
    the logged points, or the returned value alone (n=1, last_step NULL) when none were
    logged. ``source`` says which: logged, return, or logged+return."""
    if agg is None:
        value = math.nan if returned is None else float(returned)
        finite = math.isfinite(value)
        agg = Agg(length=1, n_finite=int(finite), last=value, last_step=-1)
        if finite:
            agg.sum = agg.min = agg.max = value
        source = "return"
    else:
        source = "logged" if returned is None else "logged+return"
    last = agg.last if returned is None else float(returned)
    direction, key = roles.of(name)
    best = (agg.max if direction == "maximize" else agg.min) if agg.n_finite else math.nan
    mn = agg.min if agg.n_finite else math.nan
    mx = agg.max if agg.n_finite else math.nan
    key_value = math.nan
    if key is not None:
        key_value = {"last": last, "best": best, "mean": agg.mean}[key.aggregation]
    return _SUMMARY_ROW(
        project,
        run_id,
        name,
        last,
        best,
        agg.mean,
        mn,
        mx,
        agg.length,
        agg.last_step if agg.last_step >= 0 else None,
        direction,
        key_value,
        key is not None,
        source,
    )


# one per metric of every run (40,000 at 10,000 runs): the columns checked once, not per row
_SUMMARY_ROW = positional(
    "metric_summary",
    "project", "run_id", "name", "last", "best", "mean", "min", "max", "n", "last_step",
    "direction", "key_value", "is_key", "source",
)  # fmt: skip


SweepRows = tuple[tuple[Any, ...], list[tuple[Any, ...]], str | None]  # row, points, base


def _sweep_facts(
    sweeps: list[SweepRows],
) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    """Sweep id -> base run; run id -> its point's overrides."""
    bases = {row[1]: base for row, _, base in sweeps}
    overrides = {pt[3]: pt[4].split() for _, points, _ in sweeps for pt in points if pt[3]}
    return bases, overrides


def _search_trials(store: Store) -> list[Row]:
    """``search_trials``: every trial of every project's studies (Optuna journals; only
    projects that have a ``search/`` directory import Optuna)."""
    out: list[Row] = []
    for project in store.projects():
        if store.study_names(project):
            from hpclab.search.summary import trial_rows

            out += [row("search_trials", **r) for r in trial_rows(store, project)]
    return out


def _sweeps(store: Store, project: str, report: Callable[[str], None]) -> list[SweepRows]:
    def skipped(path: Path, e: StoreError) -> None:
        detail = _one_line(e).removeprefix(f"{path}: ")
        report(f"{path}: skipped, unreadable sweep record ({detail})")

    out: list[SweepRows] = []
    for sweep in store.iter_sweeps(project, errors=skipped):
        sweep_row = row(
            "sweeps",
            project=project,
            sweep_id=sweep.id,
            status=sweep.status,
            launcher=sweep.launcher,
            job_id=sweep.job_id,
            n_points=sweep.size,
            created_at=sweep.created_at,
            command=" ".join(sweep.argv),
        )
        points = [
            row(
                "sweep_points",
                project=project,
                sweep_id=sweep.id,
                point=p.index,
                run_id=p.run_id,
                overrides=" ".join(p.overrides),
                job_id=p.job_id,
            )
            for p in sweep.points
        ]
        out.append((sweep_row, points, sweep.base))
    return out


def load_entries(
    con: Any, store: Store, manifest: Manifest
) -> tuple[dict[tuple[str, str], Entry], dict[tuple[str, str], str]]:
    """Rebuild the in-memory entries from the published tables and the runs' metric files
    (their aggregates left to :func:`load_aggs`); and each run's published status."""
    entries: dict[tuple[str, str], Entry] = {}
    statuses: dict[tuple[str, str], str] = {}
    for r in _rows_of(con, store, manifest, "runs"):
        key = (r["project"], r["run_id"])
        statuses[key] = r["status"]
        if r["stored_status"] not in _STATUS_VALUES:  # a damaged catalog: rebuilt
            RunStatus(r["stored_status"])  # raises ValueError, naming the value
        fp = r["fingerprint"]
        runs = r  # the row, less the indexer's own columns (a fresh dict per row)
        for k in ("project", "run_id", "status", "stale", "n_metrics", "fingerprint"):
            del runs[k]
        runs["tags"] = list(runs.get("tags") or [])
        entries[key] = Entry(fingerprint=fp, rows=RunRows(created_at=r["created_at"], runs=runs))
    exists: dict[str, bool] = {}  # metrics file -> it is there (asked once)
    for (project, run_id), entry in entries.items():
        rel = manifest.metrics.get(f"{project}/{run_id}")
        if rel and rel not in exists:
            exists[rel] = (store.catalog_dir / rel).exists()
        if rel and exists[rel]:
            entry.metrics_file = rel  # its aggregates: load_aggs, when a pass needs them
        elif _expects_metrics(entry):
            entry.fingerprint = ""  # metrics expected but not indexed: read the run again
    return entries, statuses


def load_aggs(con: Any, store: Store, entries: Mapping[tuple[str, str], Entry]) -> None:
    """Set each entry's metric aggregates from its metrics file's metadata (each file's
    read once: a segment's is ~1.4 KB of JSON a run, 0.6 s at 10,000 runs, which a pass
    with nothing to publish never needs). A file that does not hold the run, though the
    catalog named it: the run is read again by the next pass."""
    from hpclab.catalog.parquet import read_kv
    from hpclab.catalog.run_metrics import FORMAT, aggs_of

    kvs: dict[str, dict[str, Any]] = {}  # metrics file -> its runs' entries
    for (_, run_id), entry in entries.items():
        rel = entry.metrics_file
        if not rel:
            continue
        if rel not in kvs:
            kv = read_kv(con, store.catalog_dir / rel)
            kvs[rel] = (kv.get("runs") or {}) if kv and kv.get("format") == FORMAT else {}
        found = kvs[rel].get(run_id)
        if isinstance(found, dict):
            entry.aggs = aggs_of(found)
        elif _expects_metrics(entry):
            entry.fingerprint = ""


def _expects_metrics(entry: Entry) -> bool:
    return entry.rows is not None and int(entry.rows.runs.get("step") or -1) >= 0


def load_details(
    con: Any,
    store: Store,
    manifest: Manifest,
    by_run: dict[Any, RunRows],
    tables: frozenset[str] | None = None,
) -> None:
    """Fill ``by_run``'s rows read from the published run-keyed tables besides ``runs``
    (features, artifacts, datasets, notes, reproductions, return values): what only the
    knowledge layer and a rewrite of the whole tables need, so a restart defers it.
    ``tables``: only those (None: all)."""

    def own(table: str) -> Iterator[tuple[RunRows, dict[str, Any]]]:
        """(the run's rows, the row less the run's key) for each row of an indexed run."""
        if tables is not None and table not in tables:
            return
        for r in _rows_of(con, store, manifest, table):
            rows = by_run.get((r.pop("project"), r.pop("run_id")))
            if rows is not None:
                yield rows, r

    for rows, f in own("features"):
        rows.features.append((f["path"], f["value"], f["value_num"]))
    for rows, a in own("artifacts"):
        rows.artifacts.append(a)
    for rows, d in own("datasets"):
        rows.datasets.append(d)
    for rows, n in own("notes"):
        rows.notes = {**n, "tags": list(n["tags"] or [])}
    for rows, rp in own("reproductions"):
        rows.repro = rp
    for rows, rr in own("run_resources"):
        rows.resources = rr
    for rows, md in own("media"):
        rows.media.append(md)
    for rows, em in own("eval_metrics"):
        rows.eval_metrics.append(em)
    for rows, es in own("eval_slices"):
        rows.eval_slices.append(es)
    for rows, lt in own("latency"):
        rows.latency.append(lt)
    for rows, m in own("metric_summary"):  # the return values: in run.json, not the metrics
        if m["source"] != "logged":
            rows.returned[m["name"]] = m["last"]


def _rows_of(con: Any, store: Store, manifest: Manifest, table: str) -> list[dict[str, Any]]:
    """A published table's rows keyed by column name (timestamps as the ISO text runs
    store)."""
    from hpclab.catalog.connect import table_select

    path = manifest.table_path(store, table)
    if path is None or not path.exists():
        return []
    cols = ", ".join(
        f"strftime(\"{c.name}\", '%Y-%m-%dT%H:%M:%S.%f+00:00')"
        if c.type == "TIMESTAMP"
        else f'"{c.name}"'
        for c in TABLES[table]
    )
    source = table_select(store, manifest, table)
    found = con.execute(f"SELECT {cols} FROM ({source})").fetchall()
    return [as_dict(table, r) for r in found]


def _read_keys(con: Any, store: Store, manifest: Manifest) -> set[tuple[str, str]]:
    """The runs the published deltas hold (changed since the base tables)."""
    if not manifest.delta_keys:
        return set()
    path = store.catalog_dir / manifest.delta_keys
    rows = con.execute("SELECT project, run_id FROM read_parquet(?)", [str(path)]).fetchall()
    return {(str(p), str(r)) for p, r in rows}


def _sql(path: Path) -> str:
    return str(path).replace("'", "''")


def _digest(value: Any) -> str:
    import hashlib

    return hashlib.sha256(repr(value).encode()).hexdigest()[:20]


def _only_progressed(old: RunRows | None, new: RunRows, *, statuses_only: bool = False) -> bool:
    """Whether a run read again only progressed: still running, the same config, data
    and notes (what the knowledge layer reads of it besides its metrics; with
    ``statuses_only``, the old details unknown, still running is enough: the next full
    pass recomputes the knowledge anyway)."""
    if old is None:
        return False
    same = old.runs.get("stored_status") == RunStatus.RUNNING == new.runs.get("stored_status")
    return (
        same
        and statuses_only
        or same
        and old.features == new.features
        and old.datasets == new.datasets
        and old.notes == new.notes
    )


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def index_store(store: Store, *, reconcile: bool = False) -> PassReport:
    """``hpclab index``: one pass, holding the lock; with ``reconcile``, then the unfinished
    runs' records brought in line with the scheduler (:func:`reconcile_pass`)."""
    with Indexer(store) as indexer:
        report = indexer.index()
        if reconcile:
            reconcile_pass(indexer, report)
        return report


def unfinished_runs(indexer: Indexer) -> list[tuple[str, str]]:
    """(project, run id) of the runs the catalog holds as not final: what a reconciliation
    pass asks the scheduler about (no run directory is read to find them)."""
    final = {s.value for s in RunStatus if s.is_final}
    return [
        key
        for key, entry in sorted(indexer.entries.items())
        if entry.rows is not None and entry.rows.runs.get("stored_status") not in final
    ]


def accounting_runs(indexer: Indexer, *, now: float | None = None) -> list[tuple[str, str]]:
    """(project, run id) of the ended Slurm runs whose accounting the catalog lacks (no
    ``resources.json``, or one written before accounting had the final state), ended in
    the last ACCOUNTING_DAYS (older jobs may be purged from accounting: not asked forever)."""
    now = time.time() if now is None else now
    final = {s.value for s in RunStatus if s.is_final}
    indexer.ensure_accounting()
    out = []
    for key, entry in sorted(indexer.entries.items()):
        rows = entry.rows
        if rows is None or rows.runs.get("scheduler") != "slurm" or not rows.runs.get("job_id"):
            continue
        if rows.runs.get("stored_status") not in final:
            continue
        res = rows.resources
        if res and res.get("job_id") == rows.runs.get("job_id") and _final_state(res):
            continue
        try:
            ended = parse_iso(rows.runs.get("ended_at"))
        except (TypeError, ValueError):  # a malformed ended_at: not asked
            ended = None
        if ended is None or now - ended > ACCOUNTING_DAYS * 86400:
            continue
        if indexer.accounting_retry.get(key, 0.0) > time.monotonic():
            continue  # accounting did not know its job a moment ago
        out.append(key)
    return out


def _final_state(res: dict[str, Any]) -> bool:
    status = run_status_of(str(res.get("state") or ""))
    return status is not None and status.is_final


def reconcile_pass(indexer: Indexer, report: PassReport) -> set[tuple[str, str]]:
    """Reconcile the unfinished runs with one batched scheduler call
    (:mod:`hpclab.catalog.sync`), then read the accounting of the Slurm runs that ended
    (:mod:`hpclab.launch.resources`: ``resources.json``), and index again the runs whose
    files either rewrote, so the catalog says what the scheduler says. Adds to
    ``report``; returns those runs."""
    from hpclab.catalog.sync import reconcile_unfinished
    from hpclab.launch.resources import Pending, write_usage

    changes = reconcile_unfinished(indexer.store, unfinished_runs(indexer), indexer._report)
    changed = {(c.project, c.run_id) for c in changes}
    report.reconciled += len(changed)
    _index_again(indexer, report, changed)
    asked = accounting_runs(indexer)
    pending = [  # what the catalog holds of them: their run.json is not read again
        Pending(p, r, indexer.store.run_paths(p, r), "slurm", job)
        for p, r in asked
        if (job := _job_id(indexer, (p, r)))
    ]
    accounted = set(write_usage(pending))
    for key in asked:  # not in accounting (purged, another cluster): ask again later
        if key not in accounted:
            indexer.accounting_retry[key] = time.monotonic() + ACCOUNTING_RETRY_S
    accounted -= changed
    _index_again(indexer, report, accounted)
    return changed | accounted


def _job_id(indexer: Indexer, key: tuple[str, str]) -> str | None:
    rows = indexer.entries[key].rows
    job = rows.runs.get("job_id") if rows is not None else None
    return str(job) if job else None


def _index_again(indexer: Indexer, report: PassReport, runs: set[tuple[str, str]]) -> None:
    if not runs:
        return
    again = indexer.index(sorted(runs))
    report.indexed += again.indexed
    report.errors += again.errors
    report.published = report.published or again.published
    report.seconds += again.seconds


__all__ = [
    "Entry",
    "Indexer",
    "PassReport",
    "index_store",
    "accounting_runs",
    "reconcile_pass",
    "row_status",
    "unfinished_runs",
]
