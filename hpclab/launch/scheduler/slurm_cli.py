"""The Slurm backend over the command-line tools: ``squeue``, ``sacct``, ``scancel``,
``scontrol``. Every call is batched (one ``squeue`` and one ``sacct`` per 500 job ids) and
goes through :func:`run_slurm`, which adds a timeout and turns failures into
:class:`~hpclab.errors.SchedulerError` naming the command.

Slurm behaviour this module relies on (checked against Slurm 22.05):

* ``squeue -j ID`` with a single unknown id fails (exit 1, "Invalid job id specified");
  with several ids it silently drops the unknown ones. Both mean "not in the queue".
* ``squeue -r`` prints one line per array task, pending ones included (``12_8``);
  without it pending tasks fold into ``12_[8-9]``. ``sacct`` always folds pending (and
  cancelled-while-pending) tasks into such ranges, so ranges are expanded here.
* ``sacct -j 12_9`` finds nothing while task 9 is still pending inside ``12_[8-9]``;
  ``sacct -j 12`` (the array id) lists every task. For a second or two after an array's
  tasks start, sacct still shows the array id and the tasks' raw ids as plain ``PENDING``
  jobs; squeue knows better then.
* A task's raw job id (``SLURM_JOB_ID`` inside it) is its own, except that the last task
  to start keeps the array's id. A pending task cancelled on its own
  vanishes from both ``squeue`` and ``sacct``.
* ``sacct`` prints ``CANCELLED by 0`` (the uid), ``Unknown``/``None`` for times that are
  not set and ``None assigned`` for the nodes of a job that never ran.
* A missing ``SLURM_CONF`` file makes every client retry for 60 s before failing, so it is
  checked up front.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from hpclab.errors import SchedulerError
from hpclab.launch.scheduler.base import JobState, PartitionLimits, Scheduler
from hpclab.launch.scheduler.slurm_text import (
    _UNSET,
    JOB_ID_RE,
    SEP,
    _unset,
    expand_job_id,
    parse_duration,
    parse_minutes,
)

CHUNK = 500  # job ids per squeue/sacct call: keeps command lines and replies small
CANCEL_CHUNK = 5000  # scancel takes many ids at once; one call in practice
DEFAULT_TIMEOUT = 60.0

# squeue fields: id, state, raw id, start, time used, nodes, gres per node, CPUs, reason
# (last: a reason such as "ReqNodeNotAvail, UnavailableNodes:n[1-3]" has spaces and commas)
SQUEUE_FORMAT = SEP.join(["%i", "%T", "%A", "%S", "%M", "%N", "%b", "%C", "%r"])
SACCT_FIELDS = [
    "JobID",
    "JobIDRaw",
    "State",
    "ExitCode",
    "Start",
    "End",
    "ElapsedRaw",
    "NodeList",
    "TotalCPU",
    "AllocTRES",
    "Reason",
]


Runner = Callable[[Sequence[str]], str]


# -- running commands ------------------------------------------------------------------------
def run_slurm(
    argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, ok_stderr: Iterable[str] = ()
) -> str:
    """Run a Slurm command and return its stdout.

    ``SLURM_CONF`` is inherited from the environment. A missing command, a non-zero exit or
    a timeout raises :class:`SchedulerError` naming the command; a non-zero exit whose
    stderr contains one of ``ok_stderr`` counts as an empty answer.
    """
    cmd = shlex.join(argv)
    shown = cmd if len(cmd) <= 200 else cmd[:200] + " ..."
    conf = os.environ.get("SLURM_CONF")
    if conf and not os.path.exists(conf):
        # the clients would retry for a minute before saying so
        raise SchedulerError(f"`{shown}`: SLURM_CONF={conf} does not exist")
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise SchedulerError(
            f"`{argv[0]}` not found on PATH: is Slurm installed here (or its module loaded)?"
        ) from None
    except subprocess.TimeoutExpired:
        raise SchedulerError(f"`{shown}` timed out after {timeout:g} s") from None
    except OSError as e:
        raise SchedulerError(f"`{shown}` could not run: {e}") from None
    if proc.returncode != 0:
        if any(text in proc.stderr for text in ok_stderr):
            return ""
        msg = " ".join(proc.stderr.split()) or f"exit status {proc.returncode}"
        raise SchedulerError(f"`{shown}` failed: {msg[:500]}")
    return proc.stdout


def slurm_version(runner: Callable[..., str] = run_slurm) -> str | None:
    """The cluster's Slurm version (``22.05.8``) from ``scontrol --version``, or None."""
    for tool in ("scontrol", "sinfo"):
        try:
            out = runner([tool, "--version"])
        except SchedulerError:
            continue
        m = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
        if m:
            return m.group(1)
    return None


# -- parsing ---------------------------------------------------------------------------------
def _split_state(text: str) -> tuple[str, str | None]:
    """``CANCELLED by 0`` -> (``CANCELLED``, ``cancelled by uid 0``)."""
    word, _, rest = text.strip().partition(" ")
    state = word.rstrip("+").upper()
    if rest.startswith("by "):
        return state, f"{state.lower()} by uid {rest[3:].strip()}"
    return state, (rest.strip() or None)


def gpus_from_gres(text: str | None) -> int | None:
    """GPUs in a gres string: ``gpu:a100:4(S:0-1)``, ``gpu:4``, ``gres:gpu:2``, ``gres/gpu:2``,
    several comma-separated entries summed; None when there are none."""
    if not text or text.strip().lower() in _UNSET:
        return None
    total, found = 0, False
    for entry in re.sub(r"\([^)]*\)", "", text).split(","):
        fields = entry.strip().replace("gres/", "").replace("gres:", "").split(":")
        if fields[0] != "gpu":
            continue
        found = True
        count = fields[-1] if len(fields) > 1 else "1"
        total += int(count) if count.isdigit() else 1
    return total if found else None


def tres_count(text: str | None, name: str) -> int | None:
    """``name=N`` in a TRES string (``billing=1,cpu=2,gres/gpu=4,node=1``); None when absent."""
    if not text:
        return None
    m = re.search(rf"(?:^|,){re.escape(name)}=(\d+)(?:,|$)", text)
    return int(m.group(1)) if m else None


def gpus_from_tres(text: str | None) -> int | None:
    """``gres/gpu=4`` in a TRES string (``billing=1,cpu=1,gres/gpu=4,node=1``)."""
    return tres_count(text, "gres/gpu")


def parse_squeue(text: str) -> list[tuple[str, JobState]]:
    """(raw job id, state) per line of ``squeue -h -r -o SQUEUE_FORMAT``."""
    rows: list[tuple[str, JobState]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(SEP, 8)
        if len(parts) < 9:
            continue
        jid, state, raw, start, used, nodes, gres, cpus, reason = parts
        state = state.strip().upper()
        pending = state == "PENDING"
        for task in expand_job_id(jid):
            job = JobState(
                job_id=task,
                state=state,
                reason=_unset(reason),
                start=None if pending else _unset(start),
                elapsed_s=None if pending else parse_duration(used),
                nodes=_unset(nodes),
                cpus=int(cpus) if cpus.strip().isdigit() else None,
                gpus=gpus_from_gres(gres),
            )
            rows.append((raw.strip(), job))
    return rows


def parse_sacct(text: str) -> list[tuple[str, JobState]]:
    """(raw job id, state) per line of ``sacct -n -P -X -o SACCT_FIELDS``."""
    rows: list[tuple[str, JobState]] = []
    n = len(SACCT_FIELDS)
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(SEP, n - 1)
        if len(parts) < n:
            continue
        jid, raw, state_text, exit_code, start, end, elapsed, nodes, cpu, tres, reason = parts
        state, why = _split_state(state_text)
        for task in expand_job_id(jid):
            job = JobState(
                job_id=task,
                state=state,
                exit_code=_unset(exit_code),
                reason=_unset(reason) or why,
                start=_unset(start),
                end=_unset(end),
                elapsed_s=float(elapsed) if elapsed.strip().isdigit() else None,
                nodes=_unset(nodes),
                cpu_s=parse_duration(cpu) if _unset(cpu) else None,
                cpus=tres_count(tres, "cpu"),
                gpus=gpus_from_tres(tres),
            )
            rows.append((raw.strip(), job))
    return rows


def parse_key_values(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value with spaces ...`` (one ``scontrol show -o`` record).

    Values may hold spaces (``OS=Linux 6.1 #1 SMP``) and ``=`` (``TRES=cpu=2,mem=1G``): a key
    is a word followed by ``=`` at the start of the line or after whitespace.
    """
    out: dict[str, str] = {}
    matches = list(re.finditer(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/.]*)=", line))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        out[m.group(1)] = line[m.end() : end].strip()
    return out


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    m = re.match(r"^\s*(\d+)", value)
    return int(m.group(1)) if m else None


def parse_partitions(partitions_text: str, nodes_text: str) -> dict[str, PartitionLimits]:
    """Limits per partition from ``scontrol show partition -o`` and ``scontrol show node -o``.

    CPUs, memory and GPUs are those of the partition's largest node (what one job can get
    on one node), capped by the partition's ``MaxCPUsPerNode``/``MaxMemPerNode``.
    """
    nodes = [parse_key_values(line) for line in nodes_text.splitlines() if "NodeName=" in line]
    out: dict[str, PartitionLimits] = {}
    for line in partitions_text.splitlines():
        if "PartitionName=" not in line:
            continue
        p = parse_key_values(line)
        name = p["PartitionName"]
        members = [n for n in nodes if name in (n.get("Partitions") or "").split(",")]
        cpus = [_int(n.get("CPUEfctv")) or _int(n.get("CPUTot")) for n in members]
        mems = [_int(n.get("RealMemory")) for n in members]
        gpus = [gpus_from_gres(n.get("Gres")) for n in members]
        max_cpus = max((c for c in cpus if c is not None), default=None)
        max_mem = max((m for m in mems if m is not None), default=None)
        cap_cpus, cap_mem = _int(p.get("MaxCPUsPerNode")), _int(p.get("MaxMemPerNode"))
        if max_cpus is not None and cap_cpus is not None:
            max_cpus = min(max_cpus, cap_cpus)
        if max_mem is not None and cap_mem is not None:
            max_mem = min(max_mem, cap_mem)
        out[name] = PartitionLimits(
            name=name,
            max_time_min=parse_minutes(p.get("MaxTime")),
            max_mem_mb=max_mem,
            max_cpus=max_cpus,
            max_gpus=max((g for g in gpus if g is not None), default=None),
            nodes=_int(p.get("TotalNodes")),
            state=p.get("State"),
            default=p.get("Default", "").upper() == "YES",
            extra={
                "default_time_min": parse_minutes(p.get("DefaultTime")),
                "total_cpus": _int(p.get("TotalCPUs")),
                "oversubscribe": p.get("OverSubscribe"),
                "node_names": [n["NodeName"] for n in members],
            },
        )
    return out


def parse_config(text: str) -> dict[str, str]:
    """``Key = Value`` lines of ``scontrol show config``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


# -- the backend -----------------------------------------------------------------------------
class SlurmCLI(Scheduler):
    """Slurm through its command-line tools, batched like submitit's ``SlurmInfoWatcher``."""

    name = "slurm"

    def __init__(self, runner: Runner | None = None, *, chunk: int = CHUNK) -> None:
        """``runner`` runs one command and returns its stdout (default :func:`run_slurm`)."""
        self._runner = runner
        self.chunk = chunk
        self._config: dict[str, str] | None = None

    def _run(self, argv: Sequence[str], ok_stderr: Iterable[str] = ()) -> str:
        if self._runner is not None:
            return self._runner(argv)
        return run_slurm(argv, ok_stderr=ok_stderr)

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """One ``squeue`` for live jobs, one ``sacct`` for the rest (per 500 ids).

        Array ids expand to their tasks; ranges (``12_[4-9]``) are asked task by task.
        ``squeue`` wins over ``sacct`` for the jobs it lists (accounting lags the
        controller), except that a final state from ``sacct`` wins over ``COMPLETING`` or a
        final state from ``squeue`` (it has the exit code). An id asked by Slurm's raw job
        id of an array task is also answered under the id asked.
        """
        wanted = list(dict.fromkeys(t for j in job_ids for t in expand_job_id(str(j))))
        if not wanted:
            return {}
        live: dict[str, JobState] = {}
        raw_of: dict[str, set[str]] = {}
        for chunk in _chunks(wanted, self.chunk):
            out = self._run(
                ["squeue", "-h", "-r", "-j", ",".join(chunk), "-o", SQUEUE_FORMAT],
                ok_stderr=["Invalid job id specified"],
            )
            for raw, job in parse_squeue(out):
                live[job.job_id] = job
                raw_of.setdefault(raw, set()).add(job.job_id)
        live_raw = {raw for raw, ids in raw_of.items() if raw not in ids}
        # ids squeue answered exactly and non-finally need no accounting; array ids always
        # do (squeue lists only their live tasks)
        rest = [j for j in wanted if not (j in live and not live[j].is_final)]
        # sacct keeps tasks that never started inside one range record (12_[0-9]) that
        # ``-j 12_3`` does not find: ask for their array too, and keep only what was asked
        bases = [j.split("_")[0] for j in rest if "_" in j]
        asked = set(wanted)
        accounted: dict[str, JobState] = {}
        for chunk in _chunks(list(dict.fromkeys(rest + bases)), self.chunk):
            out = self._run(
                [
                    "sacct",
                    "-n",
                    "-P",
                    "-X",
                    "-j",
                    ",".join(chunk),
                    "-o",
                    ",".join(SACCT_FIELDS),
                ],
                ok_stderr=["accounting storage is disabled"],
            )
            for raw, job in parse_sacct(out):
                if job.job_id in asked or job.job_id.split("_")[0] in asked or raw in asked:
                    accounted[job.job_id] = job
                    raw_of.setdefault(raw, set()).add(job.job_id)
        # accounting lags the controller: for a second or two after an array task starts,
        # sacct still shows its raw id (and the array's) as a plain PENDING job
        result = {k: j for k, j in accounted.items() if k not in live_raw}
        for jid, job in live.items():
            ended = result.get(jid)
            if ended is not None and ended.is_final and (job.is_final or job.state == "COMPLETING"):
                continue  # it is over; accounting has the exit code
            result[jid] = job
        for jid in {k.split("_")[0] for k in result if "_" in k} & result.keys():
            del result[jid]  # an array id is never a job of its own
        for jid in wanted:
            # a raw id of one array task (SLURM_JOB_ID inside task 12_3 is e.g. 15)
            tasks = {t for t in raw_of.get(jid, set()) if t in result and t != jid}
            is_array = any(k.startswith(f"{jid}_") for k in result)
            if jid not in result and not is_array and len(tasks) == 1:
                result[jid] = replace(result[next(iter(tasks))], job_id=jid)
        return result

    def usage(self, job_ids: Sequence[str]) -> dict[str, Any]:
        """What each job used (:class:`~hpclab.launch.scheduler.usage.JobUsage`), from one
        ``sacct`` over all its steps per 500 ids (no ``-X``: the steps hold MaxRSS and,
        with some gather plugins, the only non-zero TotalCPU)."""
        from hpclab.launch.scheduler.usage import SACCT_USAGE_FIELDS, parse_sacct_usage

        wanted = list(dict.fromkeys(t for j in job_ids for t in expand_job_id(str(j))))
        out: dict[str, Any] = {}
        for chunk in _chunks(wanted, self.chunk):
            text = self._run(
                ["sacct", "-n", "-P", "-j", ",".join(chunk), "-o", ",".join(SACCT_USAGE_FIELDS)],
                ok_stderr=["accounting storage is disabled"],
            )
            out.update({k: u for k, u in parse_sacct_usage(text).items() if k in wanted})
        return out

    def cancel(self, job_ids: Iterable[str]) -> None:
        """One ``scancel`` for all of them (array ids cancel every task).

        Tasks of an array that is cancelled whole are not named separately: Slurm drops a
        pending task cancelled on its own from its records entirely (neither ``squeue`` nor
        ``sacct`` knows it afterwards), while a cancelled array keeps its never-started
        tasks in accounting as ``12_[0-9] CANCELLED``.
        """
        ids = list(dict.fromkeys(str(j).strip() for j in job_ids))
        for jid in ids:
            if not JOB_ID_RE.match(jid):
                raise SchedulerError(f"invalid Slurm job id {jid!r}")
        whole = {j for j in ids if "_" not in j}
        ids = [j for j in ids if "_" not in j or j.split("_")[0] not in whole]
        for chunk in _chunks(ids, CANCEL_CHUNK):
            self._run(["scancel", *chunk])

    def partitions(self) -> dict[str, PartitionLimits]:
        """Partitions with their time limit and largest node (two ``scontrol`` calls)."""
        parts = self._run(["scontrol", "show", "partition", "-o"])
        nodes = self._run(["scontrol", "show", "node", "-o"])
        return parse_partitions(parts, nodes)

    def config(self) -> dict[str, str]:
        """``scontrol show config`` as a dict (asked once per instance)."""
        if self._config is None:
            self._config = parse_config(self._run(["scontrol", "show", "config"]))
        return self._config

    def max_array_size(self) -> int | None:
        """Slurm's ``MaxArraySize`` (array indices must be below it)."""
        return _int(self.config().get("MaxArraySize"))

    def version(self) -> str | None:
        """The cluster's Slurm version, e.g. ``22.05.8``."""
        return slurm_version(self._run)
