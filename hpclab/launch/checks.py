"""Preflight resource checks: each turns a request that Slurm would reject, kill, or run
somewhere it cannot work into a :class:`Finding` that names the setting to change.

Errors stop the sweep before anything queues; warnings are printed. The checks are pure
functions of the request, the partition limits and the estimates, so they are cheap to
run for every point of a large sweep.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hpclab.launch.estimate import MemoryEstimate, format_bytes
from hpclab.launch.scheduler.base import PartitionLimits
from hpclab.store.fsinfo import filesystem_type, is_shared_filesystem

Level = Literal["error", "warning"]

WARN_TIME_FRACTION = 0.8
"""Estimated run time above this fraction of the time limit is a warning: startup,
evaluation and checkpointing are not in the estimate."""

# Interpreters here come with the OS image, which nodes of one cluster share; anything
# else (a venv, conda, pyenv) must be on a filesystem the nodes mount.
_SYSTEM_PREFIXES = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/")

_GIB = 1024**3
_L = "hydra.launcher."  # prefix of every request setting, as users write overrides


@dataclass(frozen=True)
class Finding:
    """One problem preflight found; ``point`` is the sweep point, None for the sweep."""

    level: Level
    message: str
    point: int | None = None

    def __str__(self) -> str:
        where = f" (point {self.point})" if self.point is not None else ""
        return f"{self.level}{where}: {self.message}"


@dataclass(frozen=True)
class ResourceRequest:
    """What the sweep asks Slurm for, per array task (submitit's parameter names)."""

    partition: str | None = None
    timeout_min: float | None = None
    mem_gb: float | None = None  # per node, as submitit passes it to --mem
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    nodes: int = 1
    tasks_per_node: int = 1
    array_size: int = 1

    @classmethod
    def from_launcher(cls, params: Mapping[str, Any], array_size: int) -> ResourceRequest:
        """From ``hydra.launcher`` settings (absent or null keys stay unset)."""

        def number(key: str, kind: type) -> Any:
            value = params.get(key)
            return None if value is None else kind(value)

        return cls(
            partition=params.get("partition") or None,
            timeout_min=number("timeout_min", float),
            mem_gb=number("mem_gb", float),
            cpus_per_task=number("cpus_per_task", int),
            gpus_per_node=number("gpus_per_node", int),
            nodes=int(params.get("nodes") or 1),
            tasks_per_node=int(params.get("tasks_per_node") or 1),
            array_size=array_size,
        )


def resolve_partition(
    partition: str | None, partitions: Mapping[str, PartitionLimits]
) -> PartitionLimits | None:
    """The limits a job asking for ``partition`` runs under: the named one, or the
    cluster's default when None; None when unknown."""
    if partition:
        return partitions.get(partition)
    return next((p for p in partitions.values() if p.default), None)


def check_request(
    req: ResourceRequest,
    partitions: Mapping[str, PartitionLimits],
    max_array_size: int | None,
) -> list[Finding]:
    """The request against the cluster: partition, time, memory, CPUs, GPUs, nodes, array."""
    findings = _check_values(req)
    if max_array_size is not None and req.array_size > max_array_size:
        findings.append(
            _error(
                f"the sweep has {req.array_size} points but the cluster's MaxArraySize is "
                f"{max_array_size} (array indexes 0..{max_array_size - 1}): split the sweep "
                f"into sweeps of at most {max_array_size} points"
            )
        )
    if not partitions:  # local executor, or a scheduler that reports no partitions
        return findings
    valid = ", ".join(repr(name) for name in sorted(partitions))
    if req.partition is None:
        if resolve_partition(None, partitions) is None:
            findings.append(
                _error(f"{_L}partition is unset and the cluster has no default; valid: {valid}")
            )
            return findings
    else:
        # sbatch accepts a list (-p a,b): the job may start in any of them, so each must fit.
        unknown = [n for n in req.partition.split(",") if n not in partitions]
        if unknown:
            missing = ", ".join(repr(n) for n in unknown)
            findings.append(
                _error(f"{_L}partition={req.partition}: no partition {missing}; valid: {valid}")
            )
            return findings
    requested: list[str | None] = list(req.partition.split(",")) if req.partition else [None]
    for name in requested:
        limits = resolve_partition(name, partitions)
        assert limits is not None  # checked above
        findings += _check_limits(req, limits)
    return findings


def _check_values(req: ResourceRequest) -> list[Finding]:
    findings = []
    for key in ("timeout_min", "mem_gb", "cpus_per_task", "gpus_per_node"):
        value = getattr(req, key)
        # gpus_per_node=0 is a CPU job; everything else must be positive to mean anything.
        if value is not None and (value < 0 or (value == 0 and key != "gpus_per_node")):
            findings.append(_error(f"{_L}{key}={value} must be positive"))
    for key in ("nodes", "tasks_per_node"):
        if getattr(req, key) < 1:
            findings.append(_error(f"{_L}{key}={getattr(req, key)} must be at least 1"))
    return findings


def _check_limits(req: ResourceRequest, p: PartitionLimits) -> list[Finding]:
    findings = []
    name = repr(p.name)
    if p.state is not None and p.state.rstrip("*").upper() != "UP":
        findings.append(
            _warning(f"partition {name} is {p.state}: jobs will wait until it is up again")
        )
    if req.timeout_min is not None and p.max_time_min is not None:
        if req.timeout_min > p.max_time_min:
            findings.append(
                _error(
                    f"{_L}timeout_min={_num(req.timeout_min)} exceeds partition {name} "
                    f"MaxTime {_num(p.max_time_min)} min"
                )
            )
    if req.mem_gb is not None and p.max_mem_mb is not None:
        if req.mem_gb * 1024 > p.max_mem_mb:
            findings.append(
                _error(
                    f"{_L}mem_gb={_num(req.mem_gb)} exceeds the largest node in partition "
                    f"{name} ({_num(p.max_mem_mb / 1024)} GB = {p.max_mem_mb} MB)"
                )
            )
    if req.cpus_per_task is not None and p.max_cpus is not None:
        cpus = req.cpus_per_task * req.tasks_per_node
        if cpus > p.max_cpus:
            what = f"{_L}cpus_per_task={req.cpus_per_task}"
            if req.tasks_per_node > 1:
                what += f" x tasks_per_node={req.tasks_per_node} = {cpus} CPUs"
            findings.append(
                _error(f"{what} exceeds the largest node in partition {name} ({p.max_cpus} CPUs)")
            )
    if req.gpus_per_node and p.max_gpus is not None and req.gpus_per_node > p.max_gpus:
        has = "has no GPUs" if p.max_gpus == 0 else f"has at most {p.max_gpus} GPUs per node"
        findings.append(_error(f"{_L}gpus_per_node={req.gpus_per_node}: partition {name} {has}"))
    if p.nodes is not None and req.nodes > p.nodes:
        findings.append(
            _error(f"{_L}nodes={req.nodes} exceeds partition {name}, which has {p.nodes} nodes")
        )
    return findings


def check_point(
    point: int,
    cfg: Mapping[str, Any],
    req: ResourceRequest,
    estimate: MemoryEstimate | None,
    step_seconds: float | None,
    steps: int | None,
    *,
    limits: PartitionLimits | None = None,
    device_mem_gb: float | None = None,
) -> list[Finding]:
    """One sweep point's estimates against the request.

    Memory: a CPU job holds ``tasks_per_node`` copies of the estimate (plus the engine's
    host memory) per node; a GPU job holds the estimate on each GPU, checked against
    ``device_mem_gb`` (or ``cfg["hardware"]["device_mem_gb"]``), and the engine's host
    memory per node. Either way host memory above ``mem_gb`` is an error, and above the
    largest node of ``limits`` (when ``mem_gb`` is unset) a warning.
    Time: ``step_seconds * steps`` above ``timeout_min`` is an error, above 80% a warning.
    """
    findings: list[Finding] = []
    if estimate is not None:
        if device_mem_gb is None:
            device_mem_gb = _hardware(cfg).get("device_mem_gb")
        findings += _check_memory(point, req, estimate, limits, device_mem_gb)
    if step_seconds is not None and steps:
        findings += _check_time(point, req, step_seconds, steps, limits)
    return findings


def _check_memory(
    point: int,
    req: ResourceRequest,
    est: MemoryEstimate,
    limits: PartitionLimits | None,
    device_mem_gb: float | None,
) -> list[Finding]:
    findings = []
    if req.gpus_per_node:
        if device_mem_gb is not None and est.total > device_mem_gb * _GIB:
            findings.append(
                _error(
                    f"estimated {format_bytes(est.total)} per GPU exceeds the GPU's "
                    f"{_num(device_mem_gb)} GiB (hardware.device_mem_gb): {_parts(est)}",
                    point,
                )
            )
        host = est.host
        what = f"{format_bytes(host)} of host memory per node"
        why = est.source
    else:
        # A CPU job's "device" is the host: every task on the node holds its own copy.
        host = est.total * req.tasks_per_node + est.host
        what = f"{format_bytes(host)} per node"
        if req.tasks_per_node > 1:
            what += f" ({req.tasks_per_node} tasks x {format_bytes(est.total)})"
        why = _parts(est)
    if not host:
        return findings
    if req.mem_gb is not None:
        if host > req.mem_gb * _GIB:
            findings.append(
                _error(f"estimated {what} exceeds {_L}mem_gb={_num(req.mem_gb)}: {why}", point)
            )
    elif limits is not None and limits.max_mem_mb is not None:
        if host > limits.max_mem_mb * 1024**2:
            findings.append(
                _warning(
                    f"estimated {what} exceeds the largest node in partition "
                    f"{limits.name!r} ({limits.max_mem_mb} MB) and {_L}mem_gb is unset: {why}",
                    point,
                )
            )
    return findings


def _check_time(
    point: int,
    req: ResourceRequest,
    step_seconds: float,
    steps: int,
    limits: PartitionLimits | None,
) -> list[Finding]:
    seconds = step_seconds * steps
    what = f"estimated run time {_duration(seconds)} ({steps} steps x {step_seconds:.3g} s)"
    level: Level
    if req.timeout_min is not None:
        limit_s, level = req.timeout_min * 60, "error"
        limit_text = f"{_L}timeout_min={_num(req.timeout_min)}"
    elif limits is not None and limits.max_time_min is not None:
        # No time asked: the job gets the partition's default, at most MaxTime. Only a hint.
        limit_s, level = limits.max_time_min * 60, "warning"
        limit_text = f"partition {limits.name!r} MaxTime {_num(limits.max_time_min)} min"
    else:
        return []
    if seconds > limit_s:
        return [Finding(level, f"{what} exceeds {limit_text}", point)]
    if seconds > WARN_TIME_FRACTION * limit_s:
        share = round(100 * seconds / limit_s)
        return [
            _warning(
                f"{what} is {share}% of {limit_text}: startup, evaluation and "
                "checkpoints may push it over",
                point,
            )
        ]
    return []


def check_interpreter(executable: str, nodes_in_partition: int | None) -> list[Finding]:
    """Jobs run the submitting host's ``sys.executable``: it must exist, and on a
    multi-node partition it should be on a filesystem the other nodes mount."""
    if not executable or not os.path.exists(executable):
        return [_error(f"the Python interpreter jobs would run, {executable!r}, does not exist")]
    if nodes_in_partition is None or nodes_in_partition <= 1:
        return []
    # The venv (where the link sits) and the interpreter it points to must both be there.
    link_dir = os.path.dirname(os.path.abspath(executable))
    places = [(link_dir, filesystem_type(link_dir))]
    target = os.path.realpath(executable)
    if not target.startswith(_SYSTEM_PREFIXES):
        places.append((target, filesystem_type(target)))
    local = [(path, fs) for path, fs in places if not is_shared_filesystem(fs)]
    if not local:
        return []
    where = "; ".join(f"{path} is on {fs}" for path, fs in local)
    return [
        _warning(
            f"jobs run {executable}, but {where}, which the partition's other "
            f"{nodes_in_partition - 1} node(s) may not see: put the environment on a "
            "shared filesystem (NFS, Lustre, GPFS...)"
        )
    ]


def _hardware(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    hardware = cfg.get("hardware")
    return hardware if isinstance(hardware, Mapping) else {}


def _parts(est: MemoryEstimate) -> str:
    parts = [
        ("weights", est.weights),
        ("master weights", est.master_weights),
        ("grads", est.grads),
        ("optimizer", est.optimizer_states),
        ("buffers", est.extra),
        ("activations", est.activations),
    ]
    return ", ".join(f"{name} {format_bytes(v)}" for name, v in parts if v)


def _num(value: float) -> str:
    """``600.0`` -> ``"600"``, ``1.5`` -> ``"1.5"``: settings as the user wrote them."""
    return f"{value:g}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _error(message: str, point: int | None = None) -> Finding:
    return Finding("error", message, point)


def _warning(message: str, point: int | None = None) -> Finding:
    return Finding("warning", message, point)
