"""The Slurm backend over pyslurm's C-API bindings, used only when ``import pyslurm`` works
and its release matches the cluster's Slurm (PyPI builds are tied to one Slurm release;
a mismatched build can crash or misread structs). :func:`pyslurm_usable` decides.

States come from pyslurm (the call that is polled, where skipping a subprocess pays);
cancel, partitions and the config go through :class:`SlurmCLI`, whose output formats are
stable across releases and which are asked rarely.

It is written against pyslurm's long-standing dictionary API (``pyslurm.job().get()``,
``pyslurm.slurmdb_jobs().get(jobids=...)``), present from 20.x through 23.x.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from hpclab.errors import SchedulerError
from hpclab.launch.scheduler.base import JobState, PartitionLimits, Scheduler
from hpclab.launch.scheduler.slurm_cli import SlurmCLI, gpus_from_tres, slurm_version, tres_count
from hpclab.launch.scheduler.slurm_text import expand_job_id, expand_ranges

NO_VAL = 0xFFFFFFFE  # Slurm's "not set" for 32-bit fields (array_task_id of a plain job)
_STATE_BASE = 0x000000FF  # JOB_STATE_BASE: the low byte is the state, the rest are flags


def _major_minor(version: str | None) -> tuple[int, int] | None:
    """``22.05.8`` and ``22.5.1`` -> (22, 5)."""
    if not version:
        return None
    m = re.match(r"^\D*(\d+)\.(\d+)", str(version))
    return (int(m.group(1)), int(m.group(2))) if m else None


def pyslurm_version() -> str | None:
    """The importable pyslurm's version, or None when it does not import."""
    try:
        import pyslurm
    except Exception:  # ImportError, or a build that fails to load libslurm
        return None
    version = getattr(pyslurm, "__version__", None)
    if version is None and callable(getattr(pyslurm, "version", None)):
        try:
            version = pyslurm.version()
        except Exception:
            version = None
    return str(version) if version else None


def pyslurm_usable(cluster_version: Callable[[], str | None] = slurm_version) -> bool:
    """Whether pyslurm imports and its major.minor equals the cluster's Slurm release."""
    ours = _major_minor(pyslurm_version())
    if ours is None:
        return False
    try:
        theirs = _major_minor(cluster_version())
    except SchedulerError:
        return False
    return theirs is not None and ours == theirs


def _when(epoch: Any) -> str | None:
    """Slurm's local-time ISO form (as sacct prints) of an epoch; None when unset."""
    try:
        ts = int(epoch)
    except (TypeError, ValueError):
        return None
    if ts <= 0:
        return None
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%dT%H:%M:%S")


def _exit_code(status: Any) -> str | None:
    """``code:signal`` from a raw wait status (slurmdb's ``exitcode``)."""
    try:
        raw = int(status)
    except (TypeError, ValueError):
        return str(status) if status else None
    return f"{(raw >> 8) & 0xFF}:{raw & 0x7F}"


def _task_ids(array_job_id: Any, task_id: Any, task_str: Any) -> list[str] | None:
    """Array task ids of a record, expanding a pending range (``8-9`` or a hex bitmap)."""
    try:
        base = int(array_job_id or 0)
    except (TypeError, ValueError):
        return None
    if not base:
        return None
    if task_str:
        text = str(task_str).split("%")[0]
        if text.startswith("0x"):  # slurmdb keeps pending tasks as a hex bitmap
            bits = int(text, 16)
            return [f"{base}_{i}" for i in range(bits.bit_length()) if bits >> i & 1]
        return [f"{base}_{i}" for i in expand_ranges(text)]
    if task_id is None or int(task_id) >= NO_VAL:
        return None
    return [f"{base}_{int(task_id)}"]


def _matches(record_ids: list[str], raw: str, wanted: set[str]) -> bool:
    return raw in wanted or any(r in wanted or r.split("_")[0] in wanted for r in record_ids)


class PySlurm(Scheduler):
    """Slurm through pyslurm (states) and the CLI (cancel, usage, partitions, config)."""

    name = "slurm"

    def __init__(self) -> None:
        try:
            import pyslurm
        except Exception as e:
            raise SchedulerError(f"pyslurm does not import: {e}") from None
        self._pyslurm: Any = pyslurm
        self._cli = SlurmCLI()

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """All live jobs in one controller call, then one accounting call for the rest."""
        wanted = list(dict.fromkeys(t for j in job_ids for t in expand_job_id(str(j))))
        if not wanted:
            return {}
        want = set(wanted)
        live: dict[str, JobState] = {}
        try:
            jobs = self._pyslurm.job().get()
        except ValueError as e:  # pyslurm raises ValueError(message, errno)
            raise SchedulerError(f"pyslurm job().get() failed: {e}") from None
        for raw, info in jobs.items():
            ids = _task_ids(info.get("array_job_id"), info.get("array_task_id"), None)
            ids = ids or _task_ids(info.get("array_job_id"), None, info.get("array_task_str"))
            ids = ids or [str(raw)]
            if not _matches(ids, str(raw), want):
                continue
            state = str(info.get("job_state") or "").upper()
            for jid in ids:
                live[jid] = JobState(
                    job_id=jid,
                    state=state,
                    exit_code=info.get("exit_code"),
                    reason=info.get("state_reason") or None,
                    start=None if state == "PENDING" else _when(info.get("start_time")),
                    end=_when(info.get("end_time")) if state != "RUNNING" else None,
                    elapsed_s=float(info.get("run_time") or 0) or None,
                    nodes=info.get("nodes") or None,
                    cpus=tres_count(info.get("tres_alloc_str"), "cpu"),
                    gpus=gpus_from_tres(info.get("tres_alloc_str")),
                )
        rest = [j for j in wanted if not (j in live and not live[j].is_final)]
        accounted: dict[str, JobState] = {}
        if rest:
            try:
                db = self._pyslurm.slurmdb_jobs().get(jobids=rest)
            except ValueError as e:
                raise SchedulerError(f"pyslurm slurmdb_jobs().get() failed: {e}") from None
            for raw, info in db.items():
                ids = _task_ids(
                    info.get("array_job_id"),
                    info.get("array_task_id"),
                    info.get("array_task_str"),
                ) or [str(raw)]
                word = str(info.get("state_str") or "").split()
                cpu = info.get("tot_cpu_sec")
                for jid in ids:
                    accounted[jid] = JobState(
                        job_id=jid,
                        state=word[0].upper() if word else "UNKNOWN",
                        exit_code=_exit_code(info.get("exitcode")),
                        start=_when(info.get("start")),
                        end=_when(info.get("end")),
                        elapsed_s=float(info["elapsed"]) if info.get("elapsed") else None,
                        nodes=info.get("nodes") or None,
                        cpu_s=(float(cpu) + float(info.get("tot_cpu_usec") or 0) / 1e6)
                        if cpu is not None
                        else None,
                        cpus=tres_count(info.get("tres_alloc_str"), "cpu"),
                        gpus=gpus_from_tres(info.get("tres_alloc_str")),
                    )
        result = dict(accounted)
        for jid, job in live.items():
            if not job.is_final or jid not in accounted:
                result[jid] = job
        return result

    def cancel(self, job_ids: Iterable[str]) -> None:
        """One ``scancel`` (the CLI handles task ranges and whole arrays uniformly)."""
        self._cli.cancel(job_ids)

    def usage(self, job_ids: Sequence[str]) -> dict[str, Any]:
        """Accounting over every step, through ``sacct`` (what seff reads)."""
        return self._cli.usage(job_ids)

    def partitions(self) -> dict[str, PartitionLimits]:
        return self._cli.partitions()

    def max_array_size(self) -> int | None:
        return self._cli.max_array_size()
