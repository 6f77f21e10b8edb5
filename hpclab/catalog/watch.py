"""``hpclab watch``: keep the catalog current while runs train.

Two ways to notice changes, chosen from the store's filesystem (``--polling`` and
``--native`` override):

* **native** (local filesystems): watchdog's inotify observer on the few directories
  whose entries change when a run does: each project's ``runs/`` (new runs), and each
  *unfinished* run's directory (``run.json`` is replaced at every heartbeat and status
  change), ``metrics.zarr/`` (the commit record is replaced after every flush) and
  ``logs/``. Not the whole tree: a recursive watch would need one inotify watch per chunk
  directory; and not the finished runs (watchdog runs a thread per watch: 10,000 finished
  runs would be 30,000 threads for directories that no longer change). A run's watches
  go when it finishes; as in polling, edits to finished runs (notes, tags) are caught by
  the full pass every ``full_every`` seconds. Events are debounced (``debounce``, 50 ms),
  then only the runs they name are indexed: the cost of an event is that of the runs it
  names, not of the store.
* **polling** (NFS, Lustre, GPFS, where inotify does not see other nodes' writes; watchdog's
  PollingObserver would stat the whole tree every interval): every ``interval`` seconds,
  list the ``runs/`` directories (new runs) and fingerprint only runs that are not finished
  (a few stats each); a full reconciliation pass over every run runs every ``full_every``
  seconds and catches the rest (notes on finished runs, deleted runs, sweeps).

In both modes the unfinished runs are reconciled with the scheduler (one batched
``squeue``/``sacct``, :mod:`hpclab.catalog.sync`) at most every ``scheduler_every``
seconds, also when no file changes (a job cancelled while queued writes nothing).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from hpclab.catalog.indexer import Indexer, PassReport, reconcile_pass
from hpclab.catalog.sync import SCHEDULER_EVERY, SchedulerSync
from hpclab.store import Store
from hpclab.store.fsinfo import filesystem_type, is_shared_filesystem
from hpclab.store.record import FINAL_STATUSES

FINAL = {s.value for s in FINAL_STATUSES}


class PassHook(Protocol):
    """What runs after each indexing pass (:class:`hpclab.site.live.LiveSite`)."""

    def __call__(self, report: PassReport, runs: list[tuple[str, str]] | None) -> None:
        """After a pass: ``runs`` the pass looked at (None: all of them)."""

    def due(self) -> float | None:
        """``time.monotonic()`` by which work the hook put off (a throttled page rebuild)
        should run although nothing changes; None when there is none."""

    def catch_up(self) -> None:
        """Do the work put off, once it is due."""


def choose_polling(path: Path) -> bool:
    """Polling on shared filesystems (inotify misses other nodes' writes), native elsewhere."""
    return is_shared_filesystem(filesystem_type(path))


class Watcher:
    """Runs indexing passes as the store changes, until ``stop`` is set."""

    def __init__(
        self,
        store: Store,
        *,
        polling: bool | None = None,
        interval: float = 2.0,
        full_every: float = 60.0,
        debounce: float = 0.05,
        knowledge_delay: float = 5.0,
        on_pass: Callable[[PassReport], None] | None = None,
        site_hook: PassHook | None = None,
        scheduler_every: float | None = SCHEDULER_EVERY,
    ) -> None:
        self.store = store
        self.polling = choose_polling(store.root) if polling is None else polling
        self.interval = interval
        self.full_every = full_every
        self.debounce = debounce
        # the knowledge layer follows a targeted pass when events pause, or this long after
        # the first change it waits for if they never do
        self.knowledge_delay = knowledge_delay
        self._knowledge_since: float | None = None
        self.on_pass = on_pass or (lambda report: None)
        # called after each pass with the runs it looked at (None: all): hpclab.site.live
        self.site_hook = site_hook
        self.indexer = Indexer(store)
        # None: never ask the scheduler (the records' own statuses only)
        self.scheduler = None if scheduler_every is None else SchedulerSync(scheduler_every)
        self._changed: set[tuple[str, str]] = set()
        self._other = False  # project.yaml, dag.yaml, hypotheses/, sweeps/ changed
        self._changed_lock = threading.Lock()
        self._wake = threading.Event()
        self._observer: Any = None
        self._watched: dict[str, Any] = {}  # path -> watchdog's ObservedWatch
        self._run_watches: dict[tuple[str, str], list[str]] = {}  # unfinished runs'

    @property
    def mode(self) -> str:
        return "polling" if self.polling else "native"

    def run(self, stop: threading.Event) -> None:
        """Index once in full, then keep the catalog current until ``stop`` is set."""
        self.store.root.mkdir(parents=True, exist_ok=True)
        with self.indexer:
            self._pass(None)
            next_full = time.monotonic() + self.full_every
            if not self.polling:
                self._start_observer()
            try:
                while not stop.is_set():
                    now = time.monotonic()
                    if now >= next_full:
                        self._pass(None)
                        next_full = time.monotonic() + self.full_every
                        continue
                    if self.polling:
                        stop.wait(min(self.interval, next_full - now))
                        if not stop.is_set():
                            self._pass(self._active_runs())
                            # after the runs' rows are out; and dag.yaml, hypotheses (no
                            # events here: their fingerprint is read each time)
                            self._knowledge(quiet=True, files=True)
                        continue
                    due = self.site_hook.due() if self.site_hook is not None else None
                    timeout = min(1.0, next_full - now, 1.0 if due is None else due - now)
                    if self.scheduler is not None:
                        timeout = min(timeout, self.scheduler.next_at() - now)
                    if self._knowledge_since is not None:
                        timeout = min(timeout, 2 * self.debounce)  # a pause: catch up
                    if not self._wake.wait(timeout=max(0.0, timeout)):
                        self._knowledge(quiet=True)
                        if self.scheduler is not None and self.scheduler.due():
                            self._pass([])  # quiet, but the scheduler may know more
                        else:
                            self._catch_up()
                        continue
                    stop.wait(self.debounce)  # let a burst of events settle
                    self._wake.clear()
                    with self._changed_lock:
                        changed, self._changed = self._changed, set()
                        other, self._other = self._other, False
                    # new runs' directories (named by their runs/ event), or all of them
                    # when something else changed (a new project)
                    changed |= self._watch_runs(None if other else changed)
                    if changed or other:
                        # dag.yaml, hypotheses: the knowledge layer's own files, now
                        self._pass(sorted(changed), knowledge=other)
                        self._knowledge(quiet=False)
                    else:
                        self._catch_up()
            finally:
                if self._observer is not None:
                    self._observer.stop()
                    self._observer.join(5)

    def _pass(self, runs: list[tuple[str, str]] | None, *, knowledge: bool = False) -> None:
        report = self.indexer.index(runs, knowledge=knowledge or runs is None)
        if not self.polling:
            self._watch_runs(None if runs is None else set(runs))  # and unwatch finished
        changed = self._sync_scheduler(report)
        if runs is not None and changed:
            runs = sorted(set(runs) | changed)  # the site hook refreshes these too
        self.on_pass(report)
        if self.site_hook is not None:
            self.site_hook(report, runs)

    def _knowledge(self, *, quiet: bool, files: bool = False) -> None:
        """The knowledge layer a targeted pass left waiting: now when the store is quiet,
        else once it has waited ``knowledge_delay`` seconds (``files``: also when its own
        files may have changed)."""
        if not self.indexer.knowledge_waiting and not files:
            self._knowledge_since = None
            return
        now = time.monotonic()
        if self._knowledge_since is None:
            self._knowledge_since = now
        if not quiet and now - self._knowledge_since < self.knowledge_delay:
            return
        self._knowledge_since = None
        report = self.indexer.update_knowledge()
        self.on_pass(report)
        if self.site_hook is not None and report.published:
            self.site_hook(report, [])

    def _sync_scheduler(self, report: PassReport) -> set[tuple[str, str]]:
        """When due, reconcile the unfinished runs with the scheduler (one batched call)
        and index again those whose records changed; returns them."""
        if self.scheduler is None or not self.scheduler.due():
            return set()
        self.scheduler.mark()
        return reconcile_pass(self.indexer, report)

    def _catch_up(self) -> None:
        """Quiet moments (native mode, where passes only follow changes): run the site hook's
        deferred work when it is due, so a throttled page rebuild is not left waiting for
        the next change or full pass. (Polling mode passes every interval: the hook catches
        up within its own calls.)"""
        hook = self.site_hook
        if hook is None:
            return
        due = hook.due()
        if due is not None and time.monotonic() >= due:
            hook.catch_up()

    # -- polling ---------------------------------------------------------------------
    def _active_runs(self) -> list[tuple[str, str]]:
        """Runs that may change: not finished, or not indexed yet (new directories)."""
        out = []
        for project in self.store.projects():
            for run_id in self.store.run_ids(project):
                entry = self.indexer.entries.get((project, run_id))
                stored = entry.rows.runs.get("stored_status") if entry and entry.rows else None
                if stored not in FINAL:
                    out.append((project, run_id))
        return out

    # -- native ------------------------------------------------------------------------
    def _start_observer(self) -> None:
        from watchdog.observers import Observer

        self._observer = Observer()
        self._observer.start()
        self._watch(self.store.root)
        self._watch_runs()

    def _watch_runs(self, keys: set[tuple[str, str]] | None = None) -> set[tuple[str, str]]:
        """Watch the store's and projects' directories and the unfinished runs among
        ``keys`` (None: every run); stop watching those that finished. Returns the runs
        whose directory was not watched before (they may have changed unseen)."""
        new: set[tuple[str, str]] = set()
        if self._observer is None:
            return new
        if keys is None:
            for d in (self.store.root, *[self.store.project_dir(p) for p in self.store.projects()]):
                self._watch(d)
            for project in self.store.projects():
                self._watch(self.store.runs_dir(project))
                self._watch(self.store.sweeps_dir(project))
                self._watch(self.store.hypotheses_dir(project))
            keys = {(p, r) for p in self.store.projects() for r in self.store.run_ids(p)}
            for gone in self._run_watches.keys() - keys:
                self._unwatch_run(gone)
        for key in keys:
            entry = self.indexer.entries.get(key)
            stored = entry.rows.runs.get("stored_status") if entry and entry.rows else None
            if stored in FINAL:
                self._unwatch_run(key)
                continue
            paths = self.store.run_paths(*key)
            watched = self._run_watches.setdefault(key, [])
            for d in (paths.dir, paths.metrics_zarr, paths.logs_dir):  # logs: the log tail
                if str(d) not in watched and self._watch(d):
                    watched.append(str(d))
                    if d == paths.dir:
                        new.add(key)
        return new

    def _unwatch_run(self, key: tuple[str, str]) -> None:
        for path in self._run_watches.pop(key, []):
            watch = self._watched.pop(path, None)
            if watch is not None:
                try:
                    self._observer.unschedule(watch)
                except (KeyError, OSError):  # gone with its directory
                    pass

    def _watch(self, path: Path) -> bool:
        key = str(path)
        if key in self._watched or not path.is_dir():
            return False
        try:
            watch = self._observer.schedule(_Handler(self), key, recursive=False)
        except OSError:  # vanished, or out of inotify watches: the full passes cover it
            return False
        self._watched[key] = watch
        return True

    def _notice(self, path: str) -> None:
        rel = os.path.relpath(path, self.store.root).split(os.sep)
        if rel and rel[0].startswith("."):
            return  # the catalog itself
        with self._changed_lock:
            if len(rel) >= 3 and rel[1] == "runs":
                self._changed.add((rel[0], rel[2]))
            elif len(rel) == 2 and rel[1] == "runs":
                pass  # runs/ itself modified: the run added or removed has its own event
            elif not rel[-1].endswith((".lock", ".tmp")) and not rel[-1].startswith("."):
                self._other = True
        self._wake.set()


class _Handler:
    """A watchdog event handler that hands paths to the watcher."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def dispatch(self, event: Any) -> None:
        for attr in ("src_path", "dest_path"):
            path = getattr(event, attr, None)
            if path:
                self.watcher._notice(os.fsdecode(path))
