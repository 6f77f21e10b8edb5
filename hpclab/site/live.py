"""Keeping a built site current while runs train: :class:`LiveSite` is the hook that
``hpclab watch --site`` (and ``hpclab site serve --watch``) calls after each indexing pass.

A pass rewrites the series file of each run whose ``run.json`` or metrics commit changed
(a stat of two files per run tells; the file from the run's zarr, one small Parquet
write: O(changed), whatever the store's size), then ``data/live.json``, the small file
the Training page polls. Pages are rebuilt only when what they list changes (a run added
or changing status, a sweep or hypothesis added, a hypothesis changing status), at most
once every ``min_rebuild`` seconds: a rebuild of a large site takes seconds, a data file
a millisecond. Whether they changed is four small queries (the catalog's signature), not a
load of the whole catalog; the details files of runs that only progressed are rewritten
every ``details_every`` seconds, in one load.

The SQL page's tables follow the catalog too: when the indexer publishes a new manifest
(a stat of ``manifest.json`` tells), the metric points of the catalog files it added are
converted for the page and those of files it dropped removed (O(changed files):
:func:`~hpclab.site.sql_tables.write_metrics`); the small tables (runs, metric_summary)
are rewritten, when their rows changed, with each load of the catalog.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpclab.site.data import Key
from hpclab.site.layout import SiteLayout
from hpclab.site.livedoc import live_doc, run_info, total_steps_from_config
from hpclab.site.logtail import log_doc, log_fingerprint
from hpclab.site.series import run_series, write_full_series, write_json, write_run_series
from hpclab.store import Store

logger = logging.getLogger(__name__)


def _fingerprint(store: Store, key: Key) -> tuple[int, ...]:
    paths = store.run_paths(*key)
    out: list[int] = []
    for p in (paths.run_json, paths.metrics_commit):
        try:
            st = os.stat(p)
            out += [st.st_mtime_ns, st.st_size, st.st_ino]
        except FileNotFoundError:
            out += [0, 0, 0]
    return tuple(out)


class LiveSite:
    """The watch hook: rewrites changed runs' data files, and the pages when needed."""

    def __init__(
        self,
        store: Store,
        site_dir: Path | None = None,
        *,
        min_rebuild: float = 10.0,
        details_every: float = 30.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.layout = SiteLayout(Path(site_dir) if site_dir else store.site_dir)
        self.min_rebuild = min_rebuild
        self.log = log or (lambda m: None)
        self._fps: dict[Key, tuple[int, ...]] = {}
        self._infos: dict[Key, dict[str, Any]] = {}
        self._totals: dict[Key, int | None] = {}
        self._log_fps: dict[Key, tuple[int, ...]] = {}
        self._signature: str | None = None
        self._last_rebuild = 0.0
        self._pending = False
        self._started = False
        self.details_every = details_every
        self._details_due: set[Key] = set()  # changed runs whose details wait for a load
        self._last_details = time.monotonic()  # the build wrote every run's
        self._manifest: tuple[int, ...] | None = None  # the manifest the SQL tables follow

    def __call__(self, report: Any, runs: list[Key] | None) -> None:
        """After an indexing pass: ``runs`` the pass looked at (None: all of them)."""
        try:
            changed = self.refresh(runs)
            self.refresh_sql()
            if getattr(report, "published", False) or changed or self._pending:
                self._maybe_rebuild(changed)
        except Exception as e:  # the site must never stop the indexer
            logger.warning("site update failed (%s: %s)", type(e).__name__, e)

    def refresh_sql(self) -> bool:
        """The SQL page's metric points brought in line with the published manifest when
        it changed since the last call (the first call compares the files themselves);
        whether any file was written or removed."""
        from hpclab.site.sql_tables import write_metrics

        if not self.layout.built():
            return False
        try:
            st = os.stat(self.store.catalog_manifest)
            fp: tuple[int, ...] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            fp = (0, 0, 0)
        if fp == self._manifest:
            return False
        written, removed = write_metrics(self.store, self.layout.data)
        self._manifest = fp
        if written or removed:
            self.log(f"SQL metrics: {written} file(s) written, {removed} removed")
        return bool(written or removed)

    def due(self) -> float | None:
        """When a page rebuild put off by ``min_rebuild``, or the details of runs that
        progressed, may be written (``time.monotonic()``)."""
        when = [self._last_rebuild + self.min_rebuild] if self._pending else []
        if self._details_due:  # progressed runs' details, written with the next load
            when.append(self._last_details + self.details_every)
        return min(when) if when else None

    def catch_up(self) -> None:
        """The rebuild put off, now that nothing else calls (the watcher is quiet)."""
        if not self._pending and not self._details_due:
            return
        try:
            self._maybe_rebuild([])
        except Exception as e:
            logger.warning("site update failed (%s: %s)", type(e).__name__, e)

    def refresh(self, runs: list[Key] | None) -> list[Key]:
        """Rewrite the series of changed runs and ``live.json``; return the changed runs."""
        if not self.layout.built():
            return []
        keys = runs if runs is not None else [(p, r.id) for p, r in self.store.iter_runs()]
        if not self._started:
            self._adopt_live_json()
        changed = []
        for key in keys:
            self._refresh_logs(key)
            fp = _fingerprint(self.store, key)
            if fp == self._fps.get(key) or fp[0] == 0:
                continue
            if key not in self._fps and self._current(key, fp):
                self._fps[key] = fp  # written since the run's last change (the build did)
                continue
            try:
                series = run_series(self.store, *key)
                if key not in self._totals:
                    self._totals[key] = total_steps_from_config(self.store, key)
                info = run_info(self.store, key, series, self._totals[key])
            except Exception as e:  # half-written run: next pass
                logger.warning("%s/%s: site data not updated (%s)", key[0], key[1], e)
                continue
            write_run_series(self.layout.series_parquet(*key), series)
            write_full_series(self.layout.full_series_parquet(*key), self.store, *key, series)
            self._fps[key] = fp
            self._infos[key] = info
            changed.append(key)
        if runs is None:  # a full pass also sees deleted runs
            gone = set(self._infos) - set(keys)
            for key in gone:
                self._infos.pop(key, None)
                self._fps.pop(key, None)
        if changed or runs is None:
            write_json(self.layout.live_json, live_doc(self._infos))
        return changed

    def _refresh_logs(self, key: Key) -> None:
        """Rewrite the run's log tail (``data/logs/...``) when a log grew; the run page of
        an active run polls it."""
        paths = self.store.run_paths(*key)
        fp = log_fingerprint(paths)
        if fp == self._log_fps.get(key, (0,) * len(fp)):
            return
        try:
            write_json(self.layout.logs_json(*key), log_doc(paths))
        except OSError as e:
            logger.warning("%s/%s: log tail not updated (%s)", key[0], key[1], e)
            return
        self._log_fps[key] = fp

    def _adopt_live_json(self) -> None:
        """Start from the site as built: its live.json has every active run's entry."""
        import json

        self._started = True
        try:
            doc = json.loads(self.layout.live_json.read_text())
        except (OSError, ValueError):
            return
        for info in doc.get("runs", []):
            if isinstance(info, dict) and "project" in info and "run_id" in info:
                self._infos[(info["project"], info["run_id"])] = info

    def _current(self, key: Key, fp: tuple[int, ...]) -> bool:
        """The run's series file is newer than its run.json and metrics commit: the build
        wrote it since the run last changed (its live.json entry, if active, is adopted)."""
        try:
            written = os.stat(self.layout.series_parquet(*key)).st_mtime_ns
        except FileNotFoundError:
            return False
        return written > fp[0] and written > fp[3]

    def _maybe_rebuild(self, changed: list[Key]) -> None:
        """Rebuild the pages when what they list changed (the catalog's signature: four
        small queries), at most every ``min_rebuild`` seconds; the changed runs' details
        files are rewritten with a rebuild, or every ``details_every`` seconds while runs
        only progress: both need the whole catalog loaded (seconds at 10,000 runs), which
        must not follow every pass of the watcher."""
        from hpclab.site.build import build_pages, write_details
        from hpclab.site.data import catalog_signature, load
        from hpclab.site.pages import write_list_data
        from hpclab.site.sql_tables import write_tables

        self._details_due |= set(changed)
        signature = catalog_signature(self.store)
        if self._signature is None:
            self._signature = _read_signature(self.layout)
        now = time.monotonic()
        stale = signature != self._signature
        rebuild = stale and now - self._last_rebuild >= self.min_rebuild
        self._pending = stale and not rebuild
        details = bool(self._details_due) and (
            rebuild or now - self._last_details >= self.details_every
        )
        if not rebuild and not details:
            return
        start = time.perf_counter()
        data = load(self.store)
        write_tables(data, self.layout.data)  # the SQL page's runs and metric_summary
        write_details(data, self.layout, [k for k in sorted(self._details_due) if k in data.by_key])
        self._details_due = set()
        self._last_details = now
        if not rebuild:
            return
        build_pages(data, self.layout)
        write_list_data(data, self.layout)
        self._signature = data.signature()
        self._last_rebuild = time.monotonic()
        self.log(f"site pages rebuilt in {time.perf_counter() - start:.1f} s")


def _read_signature(layout: SiteLayout) -> str | None:
    import json

    try:
        return json.loads(layout.pages_json.read_text()).get("signature")
    except (OSError, ValueError):
        return None
