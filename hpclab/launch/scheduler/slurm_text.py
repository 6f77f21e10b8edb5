"""Slurm's text forms that every parser of its commands' output needs: durations, job
ids and ranges, unset values (shared by :mod:`.slurm_cli` and :mod:`.usage`)."""

from __future__ import annotations

import re

from hpclab.errors import SchedulerError

SEP = "|"  # sacct -P uses it; squeue's format below puts the only free-text field last
# 123 | 123_4 | 123_[4-9] | 123_[1,3-5:2%4]
JOB_ID_RE = re.compile(r"^(\d+)(?:_(\d+|\[[0-9,\-:%]+\]))?$")
_UNSET = {"", "unknown", "none", "n/a", "(null)", "none assigned", "invalid"}
_NO_LIMIT = {"unlimited", "infinite", "none", "n/a", ""}


def parse_duration(text: str | None) -> float | None:
    """Seconds from a Slurm duration; None for ``UNLIMITED``, ``INFINITE``, ``N/A`` or empty.

    Slurm's forms: ``D-HH:MM:SS``, ``D-HH:MM``, ``D-HH``, ``HH:MM:SS``, ``MM:SS``, ``MM``
    (a bare number is minutes), with optional fractional seconds (``TotalCPU``'s
    ``01:02.345``).
    """
    if text is None:
        return None
    s = text.strip()
    if s.lower() in _NO_LIMIT or s.lower() == "partition_limit":
        return None
    days = 0.0
    if "-" in s:
        d, _, s = s.partition("-")
        days = float(d)
        parts = [float(p) for p in s.split(":")]
        while len(parts) < 3:  # D-H, D-H:M
            parts.append(0.0)
        h, m, sec = parts
    else:
        parts = [float(p) for p in s.split(":")]
        if len(parts) == 1:
            h, m, sec = 0.0, parts[0], 0.0
        elif len(parts) == 2:
            h, (m, sec) = 0.0, parts
        elif len(parts) == 3:
            h, m, sec = parts
        else:
            raise ValueError(f"not a Slurm duration: {text!r}")
    return days * 86400 + h * 3600 + m * 60 + sec


def parse_minutes(text: str | None) -> float | None:
    """Minutes from a Slurm time limit (``MaxTime``); None when unlimited."""
    secs = parse_duration(text)
    return None if secs is None else secs / 60.0


def expand_ranges(spec: str) -> list[int]:
    """Task ids of ``1,3-5,0-8:2`` (a ``%N`` throttle suffix is ignored)."""
    spec = spec.split("%")[0]
    out: list[int] = []
    for part in spec.split(","):
        if not part:
            continue
        rng, _, step = part.partition(":")
        lo, _, hi = rng.partition("-")
        start, end = int(lo), int(hi) if hi else int(lo)
        out.extend(range(start, end + 1, int(step) if step else 1))
    return out


def expand_job_id(job_id: str) -> list[str]:
    """``12_[4-6]`` -> ``[12_4, 12_5, 12_6]``; plain and task ids come back unchanged.

    Raises :class:`SchedulerError` for something that is not a Slurm job id.
    """
    m = JOB_ID_RE.match(job_id.strip())
    if not m:
        raise SchedulerError(f"invalid Slurm job id {job_id!r}")
    base, task = m.groups()
    if task is None or not task.startswith("["):
        return [job_id.strip()]
    return [f"{base}_{t}" for t in expand_ranges(task[1:-1])]


def _unset(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    return None if v.lower() in _UNSET else v


__all__ = [
    "JOB_ID_RE",
    "SEP",
    "expand_job_id",
    "expand_ranges",
    "parse_duration",
    "parse_minutes",
]
