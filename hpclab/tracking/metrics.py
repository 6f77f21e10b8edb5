"""Metrics in Zarr v3: a buffered writer that never blocks the training loop, and a reader.

Layout of ``metrics.zarr`` (one per run, one writer per store)::

    metrics.zarr/zarr.json          group; attributes["hpclab"] is the commit record:
                                    {"format": 1, "columns": [...], "seq": n,
                                     "series": {name: {"array", "length", "last_step",
                                                       "chunk_rows"}}}
    metrics.zarr/<encoded name>/    float64 array of shape (length, 3):
                                    columns step, value, wall_time (epoch seconds)

Rules that make concurrent readers and killed writers safe with Zarr v3:

* Zarr resizes an array's metadata before it writes the data, so a reader that trusted
  the shape could read fill values (NaN) that were never logged. Readers trust only the
  committed ``length`` in the group attributes, which the writer updates *after* the
  data of every series is written.
* Every file (chunks, array and group metadata) is replaced atomically by zarr's local
  store (temporary file + rename), so a process killed at any instant leaves the previous
  version; at most the buffered points since the last flush are lost. On NFS, ``close``
  sends the data to the server, so a node failure loses no more than that either.
* Appends go in blocks, once per flush interval, never per point; the partly filled tail
  chunk is rewritten whole on each flush (a bounded cost: ``chunk_rows`` x 24 bytes),
  encoded by the writer from the rows it keeps in memory (no read back, no zarr call:
  see ``MetricWriter._write_pending``). An array's shape grows by whole chunks, ahead of
  the committed length; readers go by the committed length alone.
* An open zarr array keeps its old shape, so the reader reopens arrays on every read.
* ``chunk_rows`` in a series' commit entry says its array is in the writer's own layout
  (float64 ``(n, 3)``, chunks of ``(chunk_rows, 3)``, little-endian bytes then zstd, chunk
  keys ``c/<i>/0``), so the catalog's reader opens one file per chunk and no metadata:
  at 10,000 runs x 4 metrics, 40,000 fewer files to open. It is a claim a reader checks
  (every chunk must be a zstd frame of exactly ``chunk_rows`` x 24 bytes) and drops for
  the array's ``zarr.json`` when it fails; an array in another layout has no such key.

Names: every metric name is stored under :func:`encode_metric_name`, which never
produces a ``.`` or a ``/``: every file Zarr itself writes in the group (``zarr.json``,
v2's ``.zgroup``, the ``*.partial`` temporary files) has a dot, so no metric (not even
one named ``zarr.json`` or ``../x``) can collide with one or leave the group.

Step rule: steps are integers from 0 to 2**53 (exactly representable in the float64
column). Per metric, steps strictly increase. A point whose step is not greater than
the metric's last recorded step is dropped and counted (``dropped``). This is also the
resume rule: a requeued job that replays steps from its last checkpoint does not
duplicate them; the first recording of a step wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote

import numpy as np

from hpclab.errors import MetricError, StoreError
from hpclab.store.documents import MetricsCommit, SeriesCommit
from hpclab.store.layout import ZARR_META, zarr_meta
from hpclab.store.reading import MAX_JSON_BYTES, read_regular

FORMAT = 1
COLUMNS = ("step", "value", "wall_time")
ATTR_KEY = "hpclab"
_time = time.time
MAX_NAME_LEN = 512
MAX_STEP = 2**53  # the largest step the float64 step column holds exactly
KEEP_UP_WAIT = 0.25  # log() waits at most this fraction of flush_interval for a late flush
KEEP_UP_AFTER = 0.05  # ... when a flush has run for this fraction of it (starved or slow)


FIT_MIN_ROWS = 1024  # the smallest chunk a planned run gets (a wrong plan: at most 4x files)


def fitted_chunk_rows(planned_steps: int | None, limit: int) -> int:
    """Rows per chunk for a run planned to last ``planned_steps`` steps: the smallest power
    of two that holds a point at every step from 0 to the last (at least
    :data:`FIT_MIN_ROWS`), at most ``limit`` (the ``chunk_rows`` setting), which is also
    the answer when the plan is unknown.

    A 1,000-step run then stores 1,024-row chunks, not 4,096: a quarter of the bytes to
    decompress each time the run is read (the catalog, the site), and a quarter of the tail
    chunk to rewrite on each flush. A run that outlasts its plan simply gets more chunks."""
    if not planned_steps or planned_steps < 1:
        return limit
    rows = FIT_MIN_ROWS
    while rows < planned_steps + 1 and rows < limit:
        rows *= 2
    return min(rows, limit)


def encode_metric_name(name: str) -> str:
    """A Zarr node name for a metric name; reversible for names up to 180 encoded chars.

    ``train/loss`` becomes ``train%2Floss``: one array per metric rather than nested
    groups, so ``a`` and ``a/b`` can both be metrics. ``.`` is escaped too (``zarr.json``
    becomes ``zarr%2Ejson``): Zarr's own files all have a dot, so no encoded name is one of
    them; ``~`` is escaped so that only shortened names have one. The exact name is always
    kept in the commit record and the array attributes, which are what readers use.
    """
    enc = quote(name, safe="").replace(".", "%2E").replace("~", "%7E")
    if enc.startswith("_"):
        enc = "%5F" + enc[1:]
    if len(enc) > 180:
        digest = hashlib.sha1(name.encode()).hexdigest()[:16]
        enc = f"{enc[:160]}~{digest}"
    return enc


def decode_metric_name(encoded: str) -> str:
    """Inverse of :func:`encode_metric_name` for names that were not shortened."""
    return unquote(encoded)


def check_metric_name(name: Any) -> str:
    """Metric names are non-empty strings of valid Unicode without control characters."""
    if not isinstance(name, str) or not name:
        raise MetricError(f"metric name {name!r} must be a non-empty string")
    if len(name) > MAX_NAME_LEN or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise MetricError(f"metric name {name[:60]!r}... is too long or has control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: it could not be encoded at flush time
        raise MetricError(f"metric name {name[:60]!r} is not valid Unicode") from None
    return name


def coerce_value(name: str, value: Any) -> float:
    """A float for a logged value, or a :class:`MetricError` naming the metric.

    Accepts Python and NumPy numbers, bools, and one-element arrays or tensors (a CUDA
    tensor is copied to the host: log ``.item()`` yourself to choose when that syncs).
    NaN and inf are stored as they are.
    """
    if type(value) is float:
        return value
    if isinstance(value, (str, bytes)):
        raise MetricError(f"metric {name!r}: value {value!r:.60} is not a number")
    try:
        if hasattr(value, "item") and callable(value.item):
            if getattr(value, "ndim", 0) and int(np.prod(getattr(value, "shape", ()))) != 1:
                raise TypeError("more than one element")
            if hasattr(value, "detach"):
                value = value.detach()
            value = value.item()
        return float(value)
    except (TypeError, ValueError, OverflowError) as e:
        kind = type(value).__name__
        raise MetricError(
            f"metric {name!r}: {kind} value {value!r:.60} is not a number ({e})"
        ) from None


def coerce_step(step: Any) -> int:
    """Steps are integers from 0 to 2**53 (NumPy integers and integral tensors accepted)."""
    if type(step) is int and 0 <= step <= MAX_STEP:
        return step
    if isinstance(step, (bool, str, bytes)):
        raise MetricError(f"step {step!r} must be a non-negative integer")
    try:
        if hasattr(step, "item") and callable(step.item):
            step = step.item()
        if isinstance(step, float) and not step.is_integer():
            raise ValueError
        as_int = int(step)
    except (TypeError, ValueError, OverflowError):
        raise MetricError(f"step {step!r} must be a non-negative integer") from None
    if as_int < 0:
        raise MetricError(f"step {step!r} must be a non-negative integer")
    if as_int > MAX_STEP:
        raise MetricError(
            f"step {step!r} is above 2**53, the largest step stored exactly (float64)"
        )
    return as_int


SAMPLE_PREFIX = "system/"  # the run's own clock-driven samples (hpclab.tracking.system)


def is_sample_series(name: str) -> bool:
    """A series of system samples: its steps are sample indices, not training steps."""
    return name.startswith(SAMPLE_PREFIX)


@dataclass
class _Series:
    name: str
    array: str
    length: int = 0  # committed rows on disk
    last_step: int = -1  # step of the last accepted row (committed or pending)
    committed_step: int = -1  # step of the last row on disk
    last_value: float = math.nan
    dropped: int = 0
    pending: list[np.ndarray] = field(default_factory=list)  # accepted, not yet written
    created: bool = False  # its array exists on disk (it goes in the commit record)
    direct: bool = True  # our own layout: chunks written by _write_direct, not through zarr
    chunk_rows: int = 4096  # rows per chunk of its array
    capacity: int = 0  # rows the array's shape holds (>= length; whole chunks when direct)
    tail: np.ndarray | None = None  # committed rows of the last, partly filled chunk (None:
    # not in memory, read back on the next write)


class MetricWriter:
    """Buffers ``log`` calls in memory and appends them to ``metrics.zarr`` on ``flush``.

    ``log`` validates the values and appends one record to a deque: no lock, no numpy, no
    filesystem. ``flush`` (the run's background thread, every flush interval or when
    ``buffer_size`` points wait; also on finish, signals and exit) turns the records into
    one block per metric with NumPy, applies the step rule, and appends the blocks. If the
    filesystem is slow or failing, points wait in memory (past ``max_buffer`` new points are
    dropped and counted) and the write is retried on the next flush.

    With ``flush_interval`` (the run's background thread flushes that often), ``log`` also
    keeps the store from falling behind in a tight, GIL-bound loop, where the flush thread
    gets the GIL too seldom to finish (every file it writes releases the GIL, and getting
    it back takes a switch interval, 5 ms, while the loop holds it): once nothing logged
    an interval ago is stored, ``log`` wakes the flush and waits, releasing the GIL, until
    a flush that started after that moment has ended, for at most a quarter of an
    interval, at most once per interval: at most a fifth of the loop's time, and only while
    the store is behind (a flush of tens of metrics takes milliseconds with the GIL free).
    A loop the flush keeps up with never waits.
    """

    def __init__(
        self,
        path: Path,
        *,
        buffer_size: int = 100_000,
        max_buffer: int = 20_000_000,
        chunk_rows: int = 4096,
        wake: threading.Event | None = None,
        flush_interval: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.buffer_size = buffer_size
        self.max_buffer = max_buffer
        self.chunk_rows = chunk_rows
        self.wake = wake or threading.Event()
        # deque.append/popleft are atomic: the training thread never takes a lock, and a
        # signal handler that flushes in the middle of log() cannot corrupt anything.
        self._records: deque[tuple[int, float, dict[str, float]]] = deque()
        self._known: set[str] = set()
        self._known_samples: set[str] = set()  # system/ series (log_samples only)
        self._points = 0  # approximate count of buffered points (a wake-up hint)
        self._overflow = 0
        self._step = -1
        self._sample = -1  # the last sample index of the system/ series (log_samples)
        self._write_lock = threading.RLock()  # one flush at a time, in order
        self._series: dict[str, _Series] = {}
        self._seq = 0
        self._group: Any = None
        self._arrays: dict[str, Any] = {}
        self.last_error: BaseException | None = None
        self._uncommitted = False  # rows written whose commit record is not (a failed commit)
        self.flush_interval = flush_interval
        self._stored_at = _time()  # points logged before this are stored
        self._check_at = math.inf if flush_interval is None else self._stored_at + flush_interval
        self._flushed = threading.Event()  # set at the end of every flush attempt
        self._running_since: float | None = None  # when the running flush started
        self._budget_at = -math.inf  # when log()'s waiting budget is next renewed
        self._budget = 0.0  # seconds log() may still wait for flushes this interval
        self._open_existing()

    # -- the hot path ---------------------------------------------------------------
    def log(
        self, data: Mapping[str, Any], step: int | None = None, *, wall_time: float | None = None
    ) -> int:
        """Buffer one value per metric at ``step`` (default: the last step + 1), stamped
        now, or at ``wall_time`` (epoch seconds: history brought in by ``hpclab import``)."""
        now = _time()
        if now >= self._check_at:
            self._keep_up(now)
        known = self._known
        for name, value in data.items():
            if type(value) is not float or name not in known:
                data = self._prepare(data)
                break
        else:
            data = dict(data)  # the caller may reuse its dict
        if step is None:
            step = self._step + 1
            if step > MAX_STEP:
                step = coerce_step(step)  # raises
        elif type(step) is not int or step < 0 or step > MAX_STEP:
            step = coerce_step(step)
        if step > self._step:
            self._step = step
        points = self._points + len(data)
        if points > self.max_buffer:
            self._overflow += len(data)
            return step
        self._records.append((step, now if wall_time is None else float(wall_time), data))
        self._points = points
        if points >= self.buffer_size:
            self.wake.set()
        return step

    def _keep_up(self, now: float) -> None:
        """Let a late flush catch up (see the class docstring), within a budget of
        ``KEEP_UP_WAIT`` of each flush interval.

        Two cases: a flush running for more than ``KEEP_UP_AFTER`` of an interval is
        starved of the GIL (each file it writes hands the GIL to this loop, and getting it
        back takes a switch interval) or on a slow disk: wait for it to end. Nothing logged
        an interval ago stored yet: wake the flush and wait for one that *started* after
        ``now`` (a starved flush that started before may end first, having stored only
        what was logged before it began)."""
        interval = self.flush_interval
        if interval is None:
            self._check_at = math.inf
            return
        if now >= self._budget_at:  # a new interval, a new budget
            self._budget_at = now + interval
            self._budget = KEEP_UP_WAIT * interval
        self._flushed.clear()
        running = self._running_since
        if running is not None and now - running >= KEEP_UP_AFTER * interval:
            self._wait_flushed()
        while self._stored_at + interval <= now and self._budget > 0:
            self._flushed.clear()
            self.wake.set()
            if not self._wait_flushed():
                break
        running = self._running_since
        if self._budget <= 0:  # spent: no more waiting this interval
            self._check_at = self._budget_at
        elif running is not None:
            self._check_at = running + KEEP_UP_AFTER * interval
        else:
            self._check_at = self._stored_at + interval

    def _wait_flushed(self) -> bool:
        """Wait, releasing the GIL, for the end of a flush (``_flushed`` cleared by the
        caller), at most for what is left of the budget; False if none ended."""
        started = time.monotonic()
        ended = self._flushed.wait(max(0.0, self._budget))
        self._budget -= time.monotonic() - started
        return ended

    def log_samples(self, data: Mapping[str, Any]) -> int:
        """Buffer one sample of clock-driven series (``system/...``: CPU, memory, GPU), at
        their own step, the sample index: they are drawn against wall time, and never move
        the run's step (progress, ETA, ``log`` without a step). Returns the index."""
        for name in data:
            if not is_sample_series(name):
                raise MetricError(f"{name!r}: samples are series under {SAMPLE_PREFIX!r}")
        prepared = {check_metric_name(n): coerce_value(n, v) for n, v in data.items()}
        self._known_samples.update(prepared)
        self._sample += 1
        points = self._points + len(prepared)
        if points > self.max_buffer:
            self._overflow += len(prepared)
            return self._sample
        self._records.append((self._sample, _time(), prepared))
        self._points = points
        return self._sample

    def _prepare(self, data: Mapping[str, Any]) -> dict[str, float]:
        """Validate names and coerce values before anything is buffered (all or nothing)."""
        if not isinstance(data, Mapping):
            raise MetricError(
                f"log() takes a mapping of metric name to value, not {type(data).__name__}"
            )
        out = {check_metric_name(name): coerce_value(name, value) for name, value in data.items()}
        for name in out:  # checked once per new name: log() skips this for known ones
            if is_sample_series(name):
                raise MetricError(
                    f"{name!r}: series under {SAMPLE_PREFIX!r} are the run's system samples "
                    "(hpclab.tracking.system); name yours otherwise"
                )
        self._known.update(out)
        return out

    # -- state ------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """The highest step logged so far (-1 before any)."""
        return self._step

    def last_values(self) -> dict[str, float]:
        """The last written value of every metric (what a run's summary shows)."""
        with self._write_lock:
            return {n: s.last_value for n, s in self._series.items() if s.last_step >= 0}

    def dropped(self) -> dict[str, int]:
        """Points dropped per metric by the step rule (and ``"*overflow*"`` past max_buffer)."""
        with self._write_lock:
            out = {n: s.dropped for n, s in self._series.items() if s.dropped}
        if self._overflow:
            out["*overflow*"] = self._overflow
        return out

    def buffered(self) -> int:
        """Points waiting in memory (not yet on disk)."""
        return self._points + sum(len(b) for s in self._series.values() for b in s.pending)

    # -- flushing -----------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Write every buffered point, then commit. True only when every point logged
        before the call is stored and committed; False if another flush held the lock past
        ``timeout`` or the filesystem failed (``last_error``): the points stay queued, and
        the next flush writes them and commits again."""
        if not self._write_lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            started = _time()
            self._running_since = started
            if self.flush_interval is not None:  # log() lets a long flush run (_keep_up)
                self._check_at = min(self._check_at, started + KEEP_UP_AFTER * self.flush_interval)
            try:
                self._collect()
                self._write_pending()
            except Exception as e:  # keep the blocks; retry on the next flush
                self.last_error = e
                return False
            self.last_error = None
            self._stored_at = started
            return True
        finally:
            self._running_since = None
            self._flushed.set()
            self._write_lock.release()

    def _collect(self) -> None:
        """Move records from the deque into per-metric blocks, applying the step rule.

        Vectorised by key set: training loops log the same keys call after call, so the
        records fall into a few groups whose values are read in one ``np.fromiter`` each.
        """
        records = self._records
        n = len(records)
        if not n:
            self.wake.clear()  # or the background thread, woken, spins on empty flushes
            return
        batch = [records.popleft() for _ in range(n)]
        try:
            steps = np.fromiter((r[0] for r in batch), np.int64, n)
            times = np.fromiter((r[1] for r in batch), np.float64, n)
        except (OverflowError, TypeError, ValueError):  # log() refuses these: a bug, but
            records.extendleft(reversed(batch))  # keep the points rather than lose the batch
            raise
        self._points = max(0, self._points - sum(len(r[2]) for r in batch))
        self.wake.clear()
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, r in enumerate(batch):
            key = tuple(r[2])
            members = groups.get(key)
            if members is None:
                groups[key] = [i]
            else:
                members.append(i)
        parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for key, members in groups.items():
            width = len(key)
            if not width:
                continue
            flat = chain.from_iterable(batch[i][2].values() for i in members)
            values = np.fromiter(flat, np.float64, len(members) * width).reshape(-1, width)
            idx = np.asarray(members, dtype=np.int64)
            for j, name in enumerate(key):
                parts.setdefault(name, []).append((idx, values[:, j]))
        for name, pieces in parts.items():
            if len(pieces) == 1:
                idx, values_1d = pieces[0]
            else:  # the metric appears in several key sets: restore logging order
                idx = np.concatenate([p[0] for p in pieces])
                values_1d = np.concatenate([p[1] for p in pieces])
                order = np.argsort(idx, kind="stable")
                idx, values_1d = idx[order], values_1d[order]
            self._accept(name, steps[idx], values_1d, times[idx])

    def _accept(self, name: str, steps: np.ndarray, values: np.ndarray, times: np.ndarray) -> None:
        s = self._series.get(name)
        if s is None:
            s = self._series[name] = _Series(
                name=name, array=encode_metric_name(name), chunk_rows=self.chunk_rows
            )
        # keep a point only if its step is above every earlier step of this metric
        before = np.maximum.accumulate(np.concatenate(([s.last_step], steps[:-1])))
        keep = steps > before
        kept = int(keep.sum())
        if kept < len(steps):
            s.dropped += len(steps) - kept
        if not kept:
            return
        block = np.empty((kept, 3), dtype=np.float64)
        block[:, 0] = steps[keep]
        block[:, 1] = values[keep]
        block[:, 2] = times[keep]
        s.last_step, s.last_value = int(block[-1, 0]), float(block[-1, 1])
        s.pending.append(block)

    def _write_pending(self) -> None:
        """Append each series' pending block, then commit once (a failed commit is retried
        by the next flush, even with nothing new to write).

        A flush writes only what is new. Every array the writer creates is in its own
        layout (:data:`_OWN_CODECS`), whose chunks it encodes itself from rows it keeps in
        memory (the tail chunk's committed rows and the new ones): per metric, the chunks
        the new rows fall in, one small file each, and the array's ``zarr.json`` only when
        its shape grows (by whole chunks: readers trust the committed length, never the
        shape). No zarr call, no event loop, nothing read back: a flush of n metrics with
        a point each writes n files (docs/scaling.md). An array in another layout (made by
        something else) is appended through zarr, all in one call into its event loop. The
        group is never listed. A block that fails stays pending; the others are committed.
        """
        jobs = [s for s in self._series.values() if s.pending]
        try:
            if not jobs:
                return
            self._ensure_group()
            failed: list[BaseException] = []
            via_zarr = [s for s in jobs if not s.direct]
            for s in jobs:
                if s.direct:
                    try:
                        self._write_direct(s)
                    except (OSError, StoreError, ValueError, RuntimeError) as e:
                        failed.append(e)
                    else:
                        self._uncommitted = True
            if via_zarr:
                from zarr.core.sync import sync

                results = sync(self._write_blocks(via_zarr))
                errors = [r for r in results if isinstance(r, BaseException)]
                if len(errors) < len(via_zarr):
                    self._uncommitted = True
                failed += errors
            if failed:
                raise failed[0]
        finally:
            if self._uncommitted:
                self._commit(self._ensure_group())
                self._uncommitted = False

    def _write_direct(self, s: _Series) -> None:
        """Append one series' pending block to its array in the writer's own layout: the
        chunks the new rows fall in, rebuilt whole from memory (fill NaN past the last
        row) and replaced atomically; the metadata first when the shape must grow. The
        series' state moves on only once every file is written."""
        block = s.pending[0] if len(s.pending) == 1 else np.concatenate(s.pending)
        rows_per_chunk = s.chunk_rows
        root = self.path / s.array
        if not s.created:
            if root.exists():  # a leftover of a killed writer that never committed it:
                shutil.rmtree(root)  # its old chunks must not outlive it
            root.mkdir()
        tail = s.tail if s.tail is not None else self._read_tail(s)
        start, stop = s.length, s.length + len(block)
        first = start - len(tail)  # the tail chunk's first row
        rows = np.concatenate((tail, block)) if len(tail) else block
        capacity = -(-stop // rows_per_chunk) * rows_per_chunk
        if not s.created or capacity > s.capacity:
            _put(root / ZARR_META, _own_metadata(s.name, capacity, rows_per_chunk))
        for c in range(first // rows_per_chunk, capacity // rows_per_chunk):
            part = rows[c * rows_per_chunk - first : (c + 1) * rows_per_chunk - first]
            if len(part) < rows_per_chunk:
                whole = np.full((rows_per_chunk, 3), np.nan)
                whole[: len(part)] = part
                part = whole
            chunk_dir = root / "c" / str(c)
            if c * rows_per_chunk >= start:  # a chunk with no committed rows: maybe new
                os.makedirs(chunk_dir, exist_ok=True)
            _put(chunk_dir / "0", _zstd_compress(np.ascontiguousarray(part, "<f8"), _ZSTD_LEVEL))
        s.created = True
        s.capacity = max(s.capacity, capacity)
        s.length, s.committed_step = stop, int(block[-1, 0])
        keep = stop % rows_per_chunk
        s.tail = rows[len(rows) - keep :].copy() if keep else _NO_ROWS
        s.pending = []

    def _read_tail(self, s: _Series) -> np.ndarray:
        """The committed rows of a series' last, partly filled chunk (none when its length
        is a whole number of chunks), read back from disk (after a resume)."""
        keep = s.length % s.chunk_rows
        if not keep:
            return _NO_ROWS
        return self._read_chunk_rows(s, s.length // s.chunk_rows, keep)

    def _read_chunk_rows(self, s: _Series, c: int, n: int) -> np.ndarray:
        """The first ``n`` rows of chunk ``c`` of a series in the writer's own layout."""
        from numcodecs.zstd import decompress

        chunk = self.path / s.array / "c" / str(c) / "0"
        expected = s.chunk_rows * 3 * 8
        try:
            data = decompress(chunk.read_bytes())
        except (OSError, RuntimeError, ValueError) as e:
            raise StoreError(f"{chunk}: unreadable metric chunk ({e})") from None
        if len(data) != expected:
            raise StoreError(f"{chunk}: chunk decodes to {len(data)} bytes, expected {expected}")
        return np.frombuffer(data, dtype="<f8").reshape(-1, 3)[:n].astype(np.float64)

    async def _write_blocks(self, jobs: list[_Series]) -> list[BaseException | None]:
        import asyncio

        return await asyncio.gather(*(self._write_block(s) for s in jobs), return_exceptions=True)

    async def _write_block(self, s: _Series) -> None:
        """Append one series' pending block to its array in another layout, through zarr."""
        block = s.pending[0] if len(s.pending) == 1 else np.concatenate(s.pending)
        start, stop = s.length, s.length + len(block)
        arr = self._arrays[s.name]
        await arr.resize((stop, 3))
        await arr.setitem(slice(start, stop), block)
        s.length, s.capacity, s.committed_step = stop, stop, int(block[-1, 0])
        s.pending = []

    def _commit(self, group: Any) -> None:
        self._seq += 1
        series: dict[str, SeriesCommit] = {}
        for s in self._series.values():
            if not s.created:
                continue
            entry: SeriesCommit = {
                "array": s.array,
                "length": s.length,
                "last_step": s.committed_step,
            }
            if s.direct:  # the writer's own layout: readers may skip the array's zarr.json
                entry["chunk_rows"] = s.chunk_rows
            series[s.name] = entry
        commit: MetricsCommit = {
            "format": FORMAT,
            "columns": list(COLUMNS),
            "seq": self._seq,
            "updated_at": time.time(),
            "series": series,
        }
        group.attrs.put({ATTR_KEY: commit})

    def _ensure_group(self) -> Any:
        if self._group is None:
            import zarr

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._group = zarr.open_group(str(self.path), mode="a", zarr_format=3)
        return self._group

    def _open_existing(self) -> None:
        """Resume: continue after what the store has committed; uncommitted rows are
        overwritten by the next points (readers never see them: they are past the
        committed length). Arrays in the writer's own layout are resumed from their
        metadata and last chunk alone; others are opened with zarr and cut to length."""
        if not zarr_meta(self.path).exists():
            return
        commit = read_commit(self.path)
        group = self._ensure_group()
        for name, info in commit.get("series", {}).items():
            array = info.get("array") if isinstance(info, dict) else None
            if not isinstance(array, str) or not _is_member_name(array):
                raise StoreError(f"{zarr_meta(self.path)}: metric {name!r} names array {array!r}")
            length = int(info["length"])
            s = _Series(name=name, array=array, length=length, created=True)
            meta = zarr_meta(self.path / array)
            shape, rows_per_chunk = _own_layout(meta)
            if rows_per_chunk:
                if shape < length:
                    raise StoreError(
                        f"{meta}: array holds {shape} rows, fewer than the {length} committed"
                    )
                s.chunk_rows, s.capacity = rows_per_chunk, shape
                if length:
                    last_chunk = (length - 1) // rows_per_chunk
                    rows = self._read_chunk_rows(
                        s, last_chunk, length - last_chunk * rows_per_chunk
                    )
                    s.tail = rows if length % rows_per_chunk else _NO_ROWS
                    last = rows[-1]
                else:
                    s.tail = _NO_ROWS
            else:
                import zarr

                arr = zarr.open_array(store=str(self.path / array), mode="r+")
                if arr.shape[0] != length:
                    arr.resize((length, 3))
                s.direct, s.capacity = False, length
                self._arrays[name] = arr.async_array
                if length:
                    last = np.asarray(arr[length - 1], dtype=np.float64)
            if length:
                s.last_step, s.last_value = int(last[0]), float(last[1])
                s.committed_step = s.last_step
            self._series[name] = s
            if is_sample_series(name):
                self._known_samples.add(name)
                self._sample = max(self._sample, s.last_step)
            else:
                self._known.add(name)
                self._step = max(self._step, s.last_step)
        self._seq = int(commit.get("seq", 0))
        self._group = group


_NO_ROWS = np.empty((0, 3), dtype=np.float64)
_ZSTD_LEVEL = 1  # the fastest level; curves compress well anyway
# the writer's own array layout: zarr v3 float64 (n, 3), regular chunks of whole rows,
# default chunk keys, little-endian bytes then zstd (what zarr.create_array writes for it;
# tests check that zarr reads it back)
_OWN_CODECS = [
    {"name": "bytes", "configuration": {"endian": "little"}},
    {"name": "zstd", "configuration": {"level": _ZSTD_LEVEL, "checksum": False}},
]
_OWN_KEYS = {"default": {"name": "default", "configuration": {"separator": "/"}}}


def _own_metadata(name: str, rows: int, rows_per_chunk: int) -> bytes:
    """An array's ``zarr.json`` in the writer's own layout, ``rows`` long."""
    import json

    doc = {
        "shape": [rows, 3],
        "data_type": "float64",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [rows_per_chunk, 3]}},
        "chunk_key_encoding": _OWN_KEYS["default"],
        "fill_value": "NaN",
        "codecs": _OWN_CODECS,
        "attributes": {"metric": name, "columns": list(COLUMNS)},
        "zarr_format": 3,
        "node_type": "array",
        "storage_transformers": [],
    }
    return json.dumps(doc, indent=2).encode()


def _own_layout(meta: Path) -> tuple[int, int]:
    """(rows, rows per chunk) of an array in the writer's own layout, (0, 0) for any other
    layout (zarr appends to those) or unreadable metadata (zarr says why)."""
    import json

    try:
        doc = json.loads(meta.read_bytes())
        grid = doc["chunk_grid"]["configuration"]["chunk_shape"]
        shape = doc["shape"]
        codecs = doc["codecs"]
        zstd = codecs[1]["configuration"]
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return 0, 0
    own = (
        doc.get("zarr_format") == 3
        and doc.get("node_type") == "array"
        and doc.get("data_type") == "float64"
        and doc.get("fill_value") == "NaN"
        and doc["chunk_grid"].get("name") == "regular"
        and doc.get("chunk_key_encoding") == _OWN_KEYS["default"]
        and not doc.get("storage_transformers")
        and set(doc) <= {*_ALL_KEYS}
        and isinstance(shape, list)
        and len(shape) == 2
        and all(type(n) is int and n >= 0 for n in shape)
        and shape[1] == 3
        and isinstance(grid, list)
        and len(grid) == 2
        and type(grid[0]) is int
        and grid[0] > 0
        and grid[1] == 3
        and len(codecs) == 2
        and codecs[0] == _OWN_CODECS[0]
        and codecs[1].get("name") == "zstd"
        and isinstance(zstd, dict)
        and not zstd.get("checksum", False)
    )
    return (shape[0], grid[0]) if own else (0, 0)


_ALL_KEYS = (
    "shape",
    "data_type",
    "chunk_grid",
    "chunk_key_encoding",
    "fill_value",
    "codecs",
    "attributes",
    "zarr_format",
    "node_type",
    "storage_transformers",
    "dimension_names",
)


def _zstd_compress(data: np.ndarray, level: int) -> bytes:
    from hpclab.store.zstd_frames import compress

    return compress(data, level)


def _put(path: Path, data: bytes) -> None:
    """Write a file atomically, as zarr's local store does (a temporary file beside it,
    then a rename): a reader, or a kill at any instant, sees the old file or the new one."""
    tmp = path.with_suffix(f".{os.urandom(16).hex()}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _is_member_name(array: str) -> bool:
    """An array name of the group's own: one path segment, not hidden, not its metadata
    (older stores kept dots in names, so a dot alone is no sign of tampering)."""
    return (
        bool(array)
        and not array.startswith(".")
        and "/" not in array
        and "\\" not in array
        and array != "zarr.json"
    )


# -- reading -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricSeries:
    """One metric's committed points."""

    name: str
    step: np.ndarray  # int64
    value: np.ndarray  # float64
    wall_time: np.ndarray  # float64, epoch seconds

    def __len__(self) -> int:
        return len(self.step)


def read_commit(path: Path) -> MetricsCommit:
    """The commit record of a metrics store ({} when nothing was committed yet)."""
    import json

    meta = os.path.join(os.fspath(path), ZARR_META)  # a str: the indexer reads 10,000 of these
    try:
        doc = json.loads(read_regular(meta, MAX_JSON_BYTES))
    except FileNotFoundError:
        return {}
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested past the limit
        raise StoreError(f"{meta}: unreadable metrics metadata") from None
    if not isinstance(doc, dict):
        raise StoreError(f"{meta}: malformed metrics metadata")
    attributes = doc.get("attributes")
    commit = attributes.get(ATTR_KEY, {}) if isinstance(attributes, dict) else {}
    if not isinstance(commit, dict):
        raise StoreError(f"{meta}: malformed metrics metadata")
    fmt = commit.get("format", FORMAT)
    if type(fmt) is not int:
        raise StoreError(f"{meta}: malformed metrics format {fmt!r}")
    if commit and fmt > FORMAT:
        raise StoreError(f"{meta}: metrics format {fmt} is newer than this hpclab")
    return cast(MetricsCommit, commit)


def read_metrics(path: Path, names: list[str] | None = None) -> dict[str, MetricSeries]:
    """Read committed points of every metric (or of ``names``) of a metrics store.

    Safe while the run is writing: only committed rows are read, and arrays are reopened.
    """
    import zarr

    commit = read_commit(path)
    out: dict[str, MetricSeries] = {}
    for name, info in commit.get("series", {}).items():
        if names is not None and name not in names:
            continue
        length = int(info["length"])
        if length:
            try:
                arr = zarr.open_array(store=str(Path(path) / info["array"]), mode="r")
                data = np.asarray(arr[:length], dtype=np.float64)
            except Exception as e:
                raise StoreError(
                    f"{Path(path) / info['array']}: unreadable metric {name!r} ({e})"
                ) from None
        else:
            data = np.empty((0, 3))
        out[name] = MetricSeries(
            name=name,
            step=data[:, 0].astype(np.int64),
            value=data[:, 1].copy(),
            wall_time=data[:, 2].copy(),
        )
    return out
