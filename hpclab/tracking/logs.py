"""Read a run's captured output (``logs/stdout.log``, ``logs/stderr.log``, written by
:mod:`hpclab.tracking.output`): the last lines, and following the logs as they grow.

Used by ``hpclab runs show`` and ``hpclab logs`` (the tail and ``-f``), by the site's run
page (the tail), and by the ``hpclab_local`` launcher with ``wait=true``, which streams each
job's output to the terminal with a ``[#i]`` prefix (:func:`stream_jobs`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from hpclab.errors import HpclabError, LogsNotFound
from hpclab.store import RunPaths, RunRecord, RunStatus, Store
from hpclab.store.record import ENDED_STATUSES
from hpclab.store.views import effective_status

STREAMS = ("stdout", "stderr")
FINAL_GRACE = 1.0  # seconds to keep reading after the run ended: the last lines of finish()


def tail_lines(
    path: str | os.PathLike[str], n: int, *, max_bytes: int = 1_000_000, end: int | None = None
) -> list[str]:
    """The last ``n`` lines of a text file (at most its last ``max_bytes``, of its first
    ``end`` bytes if given); [] if absent. Undecodable bytes are replaced, never an error."""
    if n <= 0:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell() if end is None else min(end, f.tell())
            f.seek(max(0, size - max_bytes))
            data = f.read(size - max(0, size - max_bytes))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # the first one is cut
    return lines[-n:]


@dataclass
class LogFollower:
    """Copies the lines a growing file gets to ``out``, each with ``prefix``; keeps a line
    without its newline until it is complete (or :meth:`pump` is told it is the last)."""

    path: Path
    out: TextIO
    prefix: str = ""
    offset: int = 0
    _partial: bytes = field(default=b"", repr=False)

    @classmethod
    def at_end(cls, path: Path, out: TextIO, prefix: str = "") -> LogFollower:
        """A follower that skips what ``path`` already holds."""
        try:
            offset = path.stat().st_size
        except OSError:
            offset = 0
        return cls(path, out, prefix, offset)

    def pump(self, final: bool = False) -> int:
        """Write the new complete lines (all of them when ``final``); how many bytes were
        new."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            data = b""
        self.offset += len(data)
        buf = self._partial + data
        *lines, self._partial = buf.split(b"\n")
        if final and self._partial:
            lines.append(self._partial)
            self._partial = b""
        for line in lines:
            self.out.write(self.prefix + line.decode("utf-8", errors="replace") + "\n")
        if lines:
            self.out.flush()
        return len(data)


def follow(
    followers: Sequence[LogFollower],
    done: Callable[[], bool],
    *,
    interval: float = 0.2,
    grace: float = FINAL_GRACE,
) -> None:
    """Pump ``followers`` until ``done()`` and the files have stopped growing for
    ``grace`` seconds (what a task prints while finishing lands after its final status)."""
    ended_at: float | None = None
    while True:
        new = sum(f.pump() for f in followers)
        if ended_at is None and done():
            ended_at = time.monotonic()
        elif ended_at is not None and not new and time.monotonic() - ended_at >= grace:
            break
        if not new:
            time.sleep(interval)
    for f in followers:
        f.pump(final=True)


def run_ended(store: Store, paths: RunPaths) -> bool:
    """Whether the run is over as readers see it (final, or lost: heartbeat gone)."""
    try:
        record = store.read_record(paths)
    except HpclabError:
        return False
    return effective_status(record) in ENDED_STATUSES


def stream_jobs(
    runs: Sequence[tuple[int, RunPaths]],
    done: Sequence[Callable[[], bool]],
    *,
    out: TextIO,
    err: TextIO,
    interval: float = 0.2,
) -> None:
    """Stream each run's stdout/stderr to ``out``/``err`` with a ``[#i]`` prefix (``i``
    its sweep index) until every ``done[k]()`` is true and the logs are drained: what the
    ``hpclab_local`` launcher shows while it waits. Output problems never raise."""
    followers = [
        LogFollower(paths.output_log(stream), out if stream == "stdout" else err, f"[#{i}] ")
        for i, paths in runs
        for stream in STREAMS
    ]
    try:
        follow(followers, lambda: all(d() for d in done), interval=interval, grace=0.0)
    except (OSError, ValueError):  # the terminal went away: the results still count
        return


class _Point(Protocol):
    index: int
    run_id: str


class _Job(Protocol):
    def done(self) -> bool: ...


def stream_sweep(
    store: Store, project: str, points: Sequence[_Point], jobs: Sequence[_Job]
) -> None:
    """:func:`stream_jobs` for a sweep's points and their submitit jobs, to this process's
    terminal."""
    import sys

    runs = [(p.index, store.run_paths(project, p.run_id)) for p in points]
    stream_jobs(runs, [j.done for j in jobs], out=sys.stdout, err=sys.stderr)


# -- what ``hpclab runs show`` and ``hpclab logs`` print ------------------------------------
SHOW_TAIL = 20  # lines of each stream ``runs show`` prints for a run that did not complete


def submitit_logs(store: Store, project: str, record: RunRecord) -> list[Path]:
    """The submitit ``.out``/``.err`` files of the run's job, where they exist (Hydra's
    sweep dir from the sweep record, submitit's default ``.submitit/<job_id>`` folder)."""
    job_id = (record.submission or {}).get("job_id")
    if not job_id or not record.sweep_id:
        return []
    try:
        sweep = store.read_sweep(project, record.sweep_id)
    except HpclabError:
        return []
    if not sweep.hydra_sweep_dir:
        return []
    folder = Path(sweep.hydra_sweep_dir) / ".submitit" / str(job_id)
    if not folder.is_absolute() and sweep.cwd:
        folder = Path(sweep.cwd) / folder
    found = [folder / f"{job_id}_0_log.{ext}" for ext in ("out", "err")]
    return [p for p in found if p.is_file()]


def show_lines(store: Store, project: str, paths: RunPaths, record: RunRecord) -> list[str]:
    """The ``runs show`` lines about a run's output: the log paths, submitit's files, and
    for a run that ended without completing the last lines of stderr and stdout."""
    lines: list[str] = []
    logs = [p for p in sorted(paths.logs_dir.glob("*.log")) if p.is_file()]
    for i, p in enumerate(logs):
        lines.append(f"{'logs' if i == 0 else '':<9} {p}")
    for i, p in enumerate(submitit_logs(store, project, record)):
        lines.append(f"{'job logs' if i == 0 else '':<9} {p}")
    status = effective_status(record)
    if status in ENDED_STATUSES and status != RunStatus.COMPLETED.value:
        for stream in ("stderr", "stdout"):
            tail = tail_lines(paths.output_log(stream), SHOW_TAIL)
            if tail:
                lines.append(f"{stream} (last {len(tail)} lines):")
                lines.extend(f"  {line}" for line in tail)
    return lines


def print_logs(
    store: Store,
    paths: RunPaths,
    *,
    streams: Sequence[str] = STREAMS,
    lines: int | None = None,
    follow_run: bool = False,
    out: TextIO,
    err: TextIO,
    interval: float = 0.2,
) -> None:
    """``hpclab logs``: print the run's captured ``streams`` (stdout to ``out``, stderr to
    ``err``; the last ``lines`` of each, or all), then with ``follow_run`` keep printing
    what they get until the run has ended and the files are drained.

    :class:`LogsNotFound` if the run has none and is not going to get any."""
    files = {s: paths.output_log(s) for s in streams}
    if not any(p.exists() for p in files.values()) and (not follow_run or run_ended(store, paths)):
        raise LogsNotFound(
            f"run {paths.id} has no captured output in {paths.logs_dir} "
            "(capture_output was off, or the run has not started)"
        )
    followers = []
    for stream, path in files.items():
        target = out if stream == "stdout" else err
        follower = LogFollower(path, target)
        if lines is not None:
            follower = LogFollower.at_end(path, target)
            for line in tail_lines(path, lines, end=follower.offset):
                target.write(line + "\n")
        follower.pump(final=not follow_run)
        followers.append(follower)
    if follow_run:
        follow(followers, lambda: run_ended(store, paths), interval=interval)
