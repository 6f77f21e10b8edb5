"""What a trial's values are, read from its run in the store, and what it cost.

An objective is ``return`` (the task's return value: a number, or the one number of a
dict), the name of a summary metric (its final value in ``run.json``, e.g. ``val/loss``),
or a cost: ``gpu_hours`` or ``cpu_hours`` (from accounting when the run has it, else the
run's duration times what it asked for). Multi-objective studies list several
(``[val/loss, gpu_hours]``: the Pareto front of quality against cost).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hpclab.errors import SearchError, StoreError
from hpclab.store import Store
from hpclab.store.atomic import read_json

COSTS = ("gpu_hours", "cpu_hours")


@dataclass(frozen=True)
class Allocation:
    """What one trial's job asks for: CPUs and GPUs per job, and its time limit."""

    cpus: float = 1.0
    gpus: float = 0.0
    timeout_h: float | None = None

    @classmethod
    def of_params(cls, params: Mapping[str, Any]) -> Allocation:
        def num(key: str, default: float) -> float:
            v = params.get(key)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default

        tasks = num("tasks_per_node", 1.0) * num("nodes", 1.0)
        gpus = num("gpus_per_node", 0.0) * num("nodes", 1.0) or num("gpus_per_task", 0.0) * tasks
        timeout = params.get("timeout_min")
        return cls(
            cpus=num("cpus_per_task", 1.0) * tasks,
            gpus=gpus,
            timeout_h=float(timeout) / 60.0 if isinstance(timeout, (int, float)) else None,
        )


@dataclass(frozen=True)
class TrialCost:
    cpu_hours: float
    gpu_hours: float
    source: str  # "sacct" or "run duration"

    def get(self, kind: str) -> float:
        return self.gpu_hours if kind == "gpu_hours" else self.cpu_hours


def check_objectives(objectives: list[str], directions: list[str]) -> None:
    if len(objectives) != len(directions):
        raise SearchError(
            f"hydra.sweeper: {len(objectives)} objective(s) {objectives} but "
            f"{len(directions)} direction(s) {directions}: give one direction per objective"
        )
    for d in directions:
        if d not in ("minimize", "maximize"):
            raise SearchError(f"hydra.sweeper.direction: {d!r} is not minimize or maximize")


def run_cost(store: Store, project: str, run_id: str, alloc: Allocation) -> TrialCost | None:
    """The run's CPU and GPU hours: accounting (``resources.json``) when it has them, else
    its duration times the allocation; None before it started."""
    paths = store.run_paths(project, run_id)
    try:
        res = read_json(paths.resources_json)
    except (OSError, ValueError):
        res = None
    if isinstance(res, dict) and isinstance(res.get("cpu_hours"), (int, float)):
        gpu = res.get("gpu_hours")
        return TrialCost(float(res["cpu_hours"]), float(gpu or 0.0), "sacct")
    try:
        record = store.read_record(paths)
    except StoreError:
        return None
    seconds = _duration_s(record)
    if seconds is None:
        return None
    hours = seconds / 3600.0
    return TrialCost(hours * alloc.cpus, hours * alloc.gpus, "run duration")


def trial_values(
    store: Store, project: str, run_id: str, objectives: list[str], alloc: Allocation
) -> list[float]:
    """The run's value of each objective; SearchError naming the run and what is missing."""
    record = store.read_record(store.run_paths(project, run_id))
    out = []
    for name in objectives:
        if name in COSTS:
            cost = run_cost(store, project, run_id, alloc)
            if cost is None:
                raise SearchError(f"run {run_id}: no {name} (it never started)")
            out.append(cost.get(name))
            continue
        if name == "return":
            returned = record.returned or {}
            value = returned.get("result")
            if value is None and len(returned) == 1:
                value = next(iter(returned.values()))
            if value is None:
                got = ", ".join(sorted(returned)) or "nothing"
                raise SearchError(
                    f"run {run_id}: the task returned {got}, not one number: return the "
                    "objective, or set hydra.sweeper.objective to a metric name"
                )
        else:
            value = (record.summary or {}).get(name)
            if value is None:
                known = ", ".join(sorted(record.summary or {})[:8]) or "none"
                raise SearchError(f"run {run_id}: no summary metric {name!r} (it has: {known})")
        if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise SearchError(f"run {run_id}: {name} is {value!r}, not a finite number")
        out.append(float(value))
    return out


def _duration_s(record: Any) -> float | None:
    from hpclab.store.record import parse_iso

    try:
        start = parse_iso(record.started_at)
        end = parse_iso(record.ended_at or record.heartbeat_at)
    except (TypeError, ValueError):
        return None
    if start is None or end is None:
        return None
    return max(0.0, end - start)
