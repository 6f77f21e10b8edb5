"""The one background thread of a run: flushes metrics, beats the heartbeat and takes the
system samples (:mod:`hpclab.tracking.system`).

The training loop never waits on it: ``log`` only touches memory, and this thread does
every filesystem write. It wakes every ``flush_interval``, or at once when the metric
buffer reaches its threshold, and writes the heartbeat every ``heartbeat_interval``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable


class Worker:
    """Calls ``flush`` every ``flush_interval`` (or when ``wake`` is set) and ``beat`` every
    ``heartbeat_interval`` seconds, on a daemon thread, until :meth:`stop`."""

    def __init__(
        self,
        *,
        flush: Callable[[], bool],
        beat: Callable[[], None],
        flush_interval: float,
        heartbeat_interval: float,
        wake: threading.Event,
        name: str = "hpclab-worker",
        sample: Callable[[], None] | None = None,
        sample_interval: float = 0.0,
        prime: Callable[[], None] | None = None,
    ) -> None:
        self._flush = flush
        self._beat = beat
        self._sample = sample if sample_interval > 0 else None
        self._prime = prime if sample_interval > 0 else None
        self._sample_interval = sample_interval
        self._flush_interval = flush_interval
        self._heartbeat_interval = heartbeat_interval
        self._wake = wake
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._warned = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to end and wait for it (the caller does the final flush)."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        next_beat = time.monotonic() + self._heartbeat_interval
        # the first sample one interval in (the rates need a start: taken then, silently)
        next_sample = time.monotonic() + self._sample_interval
        next_flush = time.monotonic() + self._flush_interval
        if self._sample is not None and self._prime is not None:
            self._guard("system sample", self._prime)
        while not self._stopping.is_set():
            now = time.monotonic()
            if self._sample is not None and now >= next_sample:
                self._guard("system sample", self._sample)
                next_sample = now + self._sample_interval
            due = min(next_flush, next_beat) - now
            if self._sample is not None:
                due = min(due, next_sample - now)
            self._wake.wait(timeout=max(0.0, due))
            if self._stopping.is_set():
                break
            started = time.monotonic()
            self._guard("metrics flush", self._flush)
            # flushes start every interval (not an interval after the last one ended), so
            # the points a kill can lose stay within one interval and one flush; a flush
            # that overran its interval leaves the training loop a tenth of one first
            next_flush = max(
                started + self._flush_interval, time.monotonic() + 0.1 * self._flush_interval
            )
            if time.monotonic() >= next_beat:
                self._guard("heartbeat", self._beat)
                next_beat = time.monotonic() + self._heartbeat_interval

    def _guard(self, what: str, fn: Callable[[], object]) -> None:
        # The filesystem may be briefly unavailable (NFS hiccup); say so once and retry on
        # the next tick rather than killing the thread and losing every later point.
        err: Exception | None = None
        try:
            ok = fn()
        except Exception as e:
            ok, err = False, e
        if ok is False and not self._warned:
            self._warned = True
            detail = f": {err}" if err else ""
            print(f"hpclab: warning: {what} failed{detail}; retrying", file=sys.stderr)
        elif ok is not False:
            self._warned = False
