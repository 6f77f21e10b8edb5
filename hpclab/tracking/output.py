"""Capture a process's stdout and stderr into log files as they are produced, while they
still reach the terminal (or Slurm's ``.out``/``.err`` files).

The capture works on file descriptors 1 and 2, not on ``sys.stdout``: each is replaced by
the write end of a pipe (``os.pipe`` + ``os.dup2``) and a daemon thread copies whatever
arrives to the original descriptor and to the log file. So C extensions, ``os.system``,
``subprocess`` children and DataLoader workers, which inherit descriptors 1 and 2, are
captured too.

::

    from hpclab.tracking.output import OutputCapture

    capture = OutputCapture.start(paths.stdout_log, paths.stderr_log, max_bytes=100_000_000)
    try:
        ...  # run the user's code
    finally:
        capture.stop()

Guarantees:

- Python's ``sys.stdout``/``sys.stderr`` buffers are flushed before the redirect and on
  ``stop()``, and are line-buffered while captured, so a ``print`` reaches the log (and the
  terminal) when its line ends, not when a block buffer fills.
- Log files are opened for appending (a requeued run adds to its logs).
- A failing log write (disk full, quota, stale NFS handle) stops writing that log and never
  breaks the program: output keeps flowing to the terminal.
- ``max_bytes`` caps each log file; past it one note line is written and the rest goes only
  to the terminal.
- ``stop()`` restores descriptors 1 and 2 and waits (``timeout``) for the copy threads to
  drain; output of children still alive after that keeps reaching the terminal.

``hpclab.Run`` starts a capture when :func:`capture_wanted` says so (the
``capture_output`` setting). A launcher that captures a child process itself (``hpclab run
-- CMD``) sets ``HPCLAB_CAPTURE_OUTPUT=off`` in the child's environment, so an
``hpclab.Run`` inside the child does not capture the same output a second time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from hpclab.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 100_000_000
_CHUNK = 65536


def capture_wanted(setting: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a run captures its output: ``on``/``off``, or ``auto`` = on when a launcher,
    ``hpclab run`` or Slurm started the process (``HPCLAB_RUN_ID`` or ``SLURM_JOB_ID``)."""
    environ = os.environ if environ is None else environ
    value = str(setting).strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    if value == "auto":
        return bool(environ.get("HPCLAB_RUN_ID") or environ.get("SLURM_JOB_ID"))
    raise ConfigError(f"capture_output: invalid value {setting!r}; valid values: auto, on, off")


def _truncation_note(max_bytes: int) -> bytes:
    return (
        f"\n[hpclab: this log reached its size cap of {max_bytes} bytes (capture_max_bytes); "
        "the rest went only to the terminal]\n"
    ).encode()


class _Tee:
    """One captured descriptor: pipe in, copy thread out to the original fd and the log."""

    def __init__(self, fd: int, log_path: Path, max_bytes: int | None) -> None:
        self.fd = fd
        self.log_path = log_path
        self.max_bytes = max_bytes
        self.log: IO[bytes] | None = None
        self.log_error: OSError | None = None
        self.written = 0
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log = open(log_path, "ab", buffering=0)  # noqa: SIM115 (closed by the thread)
            self.written = self.log.tell()
        except OSError as e:
            self.log_error = e
        self.saved = os.dup(fd)  # OSError if the process has no such descriptor
        try:
            read_end, write_end = os.pipe()
        except OSError:
            os.close(self.saved)
            self._close_log()
            raise
        self.read_end = read_end
        os.dup2(write_end, fd)
        os.close(write_end)
        self.thread = threading.Thread(target=self._copy, name=f"hpclab-output-{fd}", daemon=True)
        self.thread.start()

    def _copy(self) -> None:
        try:
            while True:
                try:
                    data = os.read(self.read_end, _CHUNK)
                except InterruptedError:  # pragma: no cover - retried by Python since 3.5
                    continue
                except OSError:
                    break
                if not data:
                    break
                self._to_terminal(data)
                self._to_log(data)
        finally:
            with contextlib.suppress(OSError):
                os.close(self.read_end)
            self._close_log()

    def _to_terminal(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.saved, view)
            except InterruptedError:  # pragma: no cover
                continue
            except OSError:
                return  # terminal gone (closed pipe): keep draining so the program never blocks
            view = view[n:]

    def _to_log(self, data: bytes) -> None:
        if self.log is None:
            return
        try:
            if self.max_bytes is not None and self.written + len(data) > self.max_bytes:
                room = max(0, self.max_bytes - self.written)
                self.log.write(data[:room])
                self.log.write(_truncation_note(self.max_bytes))
                self._close_log()
                return
            self.log.write(data)
            self.written += len(data)
        except OSError as e:
            self.log_error = e
            self._close_log()

    def _close_log(self) -> None:
        log, self.log = self.log, None
        if log is not None:
            with contextlib.suppress(OSError):
                log.close()

    def restore(self) -> None:
        """Put the original descriptor back; closes this process's pipe write end."""
        os.dup2(self.saved, self.fd)

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        if not self.thread.is_alive():
            with contextlib.suppress(OSError):
                os.close(self.saved)


class OutputCapture:
    """An fd-level tee of stdout and stderr into log files; see the module docstring."""

    def __init__(self, tees: list[_Tee], line_buffering: dict[str, bool]) -> None:
        self._tees = tees
        self._line_buffering = line_buffering
        self._lock = threading.Lock()
        self.stopped = False

    @classmethod
    def start(
        cls,
        stdout_path: str | os.PathLike[str],
        stderr_path: str | os.PathLike[str],
        *,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> OutputCapture:
        """Start capturing descriptors 1 and 2 into ``stdout_path`` and ``stderr_path``
        (appended; ``max_bytes`` per file, None for no cap)."""
        _flush_python_streams()
        tees: list[_Tee] = []
        for fd, path in ((1, stdout_path), (2, stderr_path)):
            try:
                tees.append(_Tee(fd, Path(path), max_bytes))
            except OSError as e:  # a daemon without fd 1/2, out of descriptors: not captured
                logger.warning("output not captured into %s (%s)", path, e)
        line_buffering = {}
        for name in ("stdout", "stderr"):
            stream: Any = getattr(sys, name)
            if hasattr(stream, "reconfigure") and hasattr(stream, "line_buffering"):
                line_buffering[name] = bool(stream.line_buffering)
                with contextlib.suppress(Exception):
                    stream.reconfigure(line_buffering=True)
        return cls(tees, line_buffering)

    @property
    def log_errors(self) -> dict[str, OSError]:
        """Log writes that failed, by log path (the capture went on to the terminal only)."""
        return {str(t.log_path): t.log_error for t in self._tees if t.log_error is not None}

    def stop(self, timeout: float = 5.0) -> None:
        """Flush Python's buffers, restore descriptors 1 and 2 and drain the logs.
        Idempotent; never raises for a log problem."""
        with self._lock:
            if self.stopped:
                return
            self.stopped = True
        _flush_python_streams()
        for tee in self._tees:
            tee.restore()
        for tee in self._tees:
            tee.join(timeout)
        for name, value in self._line_buffering.items():
            stream: Any = getattr(sys, name)
            with contextlib.suppress(Exception):
                stream.reconfigure(line_buffering=value)

    def __enter__(self) -> OutputCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()


def append_traceback(log_path: str | os.PathLike[str], error: BaseException) -> None:
    """Append ``error``'s traceback to a log file (not the terminal), unless the log
    already ends with it (Python printed it while captured); never raises."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    with contextlib.suppress(OSError), open(log_path, "a+b") as f:
        data = text.encode("utf-8", errors="replace")
        end = f.seek(0, os.SEEK_END)
        f.seek(max(0, end - len(data) - 4096))
        if data.strip() in f.read():
            return
        f.write(data)
