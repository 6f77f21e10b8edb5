#!/usr/bin/env python
"""Generate a realistic store for the catalog and site benchmarks.

    python scripts/make_bench_store.py /tmp/bench-store --runs 1000 --steps 10000 --metrics 4
    python scripts/make_bench_store.py /tmp/bench-store --runs 50 --sweeps 5 --jobs 2

Every run is what a finished sweep point leaves behind: a run directory made by
``Store.create_run_dir``, ``config.yaml`` (the example project's nested config, its
hyper-parameters varying per point), ``overrides.yaml``, a ``completed`` ``run.json`` with
its sweep id, summary and Slurm ids, and ``metrics.zarr`` written by the real
``MetricWriter``: one ``log`` per step with every metric, so chunks, codecs and the commit
record are exactly what training leaves. Each sweep gets ``sweeps/<id>.json`` in the
launcher's format (``SweepPlan.to_dict``). Wall times are simulated (a run takes
``steps x step time`` seconds, runs start one after another over the past days), through
the writer's clock hook ``hpclab.tracking.metrics._time``.

Runs are written by ``--jobs`` processes; the time taken is printed at the end.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpclab.errors import RunExists
from hpclab.launch.sweep import PlannedPoint, SweepPlan
from hpclab.settings import TrackingSettings
from hpclab.store import RunRecord, RunStatus, Store
from hpclab.store.atomic import write_json_atomic, write_yaml_atomic
from hpclab.store.config_twin import write_config
from hpclab.store.ids import new_run_id
from hpclab.store.record import utcnow_iso
from hpclab.store.views import total_steps
from hpclab.tracking import metrics as metrics_module
from hpclab.tracking.metrics import MetricWriter, fitted_chunk_rows

BASE_METRICS = ("train/loss", "val/loss", "lr", "grad_norm")
LRS = (3e-4, 1e-3, 3e-3, 1e-2)
WEIGHT_DECAYS = (0.0, 1e-4, 1e-2)
MODELS = ({"hidden": 64, "depth": 2}, {"hidden": 256, "depth": 3}, {"hidden": 512, "depth": 4})
SECONDS_BETWEEN_RUNS = 120.0


@dataclass
class RunTask:
    """Everything a worker needs to write one run."""

    root: str
    project: str
    run_id: str
    sweep_id: str | None
    index: int
    array_job_id: str
    config: dict[str, Any]
    overrides: list[str]
    created: float
    steps: int
    metrics: tuple[str, ...]
    seed: int


def metric_names(n: int) -> tuple[str, ...]:
    extra = tuple(f"extra/m{i}" for i in range(max(0, n - len(BASE_METRICS))))
    return (BASE_METRICS + extra)[:n]


def point_config(i: int, sweep: int) -> tuple[dict[str, Any], list[str]]:
    """The resolved config and overrides of point ``i`` of sweep ``sweep``."""
    model = MODELS[sweep % len(MODELS)]
    optim_name = "sgd" if sweep % 4 == 3 else "adam"
    lr = LRS[i % len(LRS)]
    wd = WEIGHT_DECAYS[(i // len(LRS)) % len(WEIGHT_DECAYS)]
    seed = i // (len(LRS) * len(WEIGHT_DECAYS))
    optim: dict[str, Any] = {"name": optim_name, "lr": lr, "weight_decay": wd}
    if optim_name == "sgd":
        optim["momentum"] = 0.9
    config = {
        "model": dict(model),
        "optim": optim,
        "data": {
            "n_train": 2048,
            "n_val": 512,
            "n_features": 16,
            "noise": float(round(0.05 + 0.05 * (sweep % 3), 2)),
        },
        "engine": {"name": "torch"},
        "seed": seed,
        "task": {"_target_": "hpclab.examples.train.train"},
        "train": {"steps": 0, "batch_size": 64 * (1 + sweep % 2), "eval_every": 25},
        "hpclab": {"project": "", "name": None, "parent": None, "tags": []},
    }
    overrides = [
        f"model={'mlp' if model['hidden'] == 64 else 'mlp_wide'}",
        f"optim={optim_name}",
        f"optim.lr={lr:g}",
        f"optim.weight_decay={wd:g}",
        f"seed={seed}",
    ]
    if model["hidden"] == 512:
        overrides += ["model.hidden=512", "model.depth=4"]
    return config, overrides


def step_time(hidden: int) -> float:
    """Simulated seconds per training step of a model of width ``hidden``."""
    return 0.05 + 0.0002 * hidden


def curves(task: RunTask) -> tuple[np.ndarray, np.ndarray]:
    """(values of shape (steps, n_metrics), wall times) of a plausible training run."""
    rng = np.random.default_rng(task.seed)
    n = task.steps
    step = np.arange(n, dtype=np.float64)
    lr0 = float(task.config["optim"]["lr"])
    hidden = task.config["model"]["hidden"]
    floor = 0.05 + 0.4 * abs(math.log10(lr0 / 1e-3)) ** 2 / 4 + 8.0 / hidden + rng.normal(0, 0.01)
    tau = max(n, 1) / (2.0 + 2000 * lr0)
    train = floor + 2.0 * np.exp(-step / tau)
    train *= np.exp(rng.normal(0, 0.05, n))
    val = (floor * 1.08 + 2.0 * np.exp(-step / (tau * 1.1))) * np.exp(rng.normal(0, 0.02, n))
    warmup = max(1, n // 20)
    lr = np.where(
        step < warmup,
        lr0 * (step + 1) / warmup,
        lr0 * 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, n - warmup))),
    )
    grad = 0.2 + 3.0 * np.exp(-step / (tau / 2)) + np.abs(rng.normal(0, 0.1, n))
    cols = [train, val, lr, grad]
    for _ in task.metrics[len(cols) :]:
        cols.append(np.cumsum(rng.normal(0, 0.01, n)))
    values = np.column_stack(cols[: len(task.metrics)])
    started = task.created + 5.0
    wall = started + (step + 1) * step_time(hidden) + np.cumsum(rng.exponential(0.002, n))
    return values, wall


def write_run(task: RunTask) -> int:
    """Write one run's files; returns the number of points logged."""
    store = Store(task.root)
    paths = store.run_paths(task.project, task.run_id)
    write_config(paths, task.config, fsync=False)  # config.yaml + config.json, as hpclab.Run
    write_yaml_atomic(paths.overrides_yaml, task.overrides, fsync=False)
    values, wall = curves(task)
    names = task.metrics
    # the chunks hpclab.Run gives a run whose config plans train.steps (fitted_chunk_rows)
    rows = fitted_chunk_rows(total_steps(task.config), TrackingSettings().chunk_rows)
    writer = MetricWriter(paths.metrics_zarr, buffer_size=1 << 62, chunk_rows=rows)
    # the writer stamps each log() with _time(): replay the simulated clock through it
    metrics_module._time = iter(wall.tolist()).__next__
    try:
        log = writer.log
        for row in values.tolist():
            log(dict(zip(names, row, strict=True)))
    finally:
        metrics_module._time = time.time
    if not writer.flush():
        raise RuntimeError(f"{paths.metrics_zarr}: flush failed ({writer.last_error})")
    started = task.created + 5.0
    ended = float(wall[-1]) + 1.0 if len(wall) else started
    task_id = str(task.index)
    host = f"node{task.index % 16:03d}"
    record = RunRecord(
        id=task.run_id,
        project=task.project,
        status=RunStatus.COMPLETED,
        sweep_id=task.sweep_id,
        created_at=utcnow_iso(task.created),
        started_at=utcnow_iso(started),
        ended_at=utcnow_iso(ended),
        heartbeat_at=utcnow_iso(ended),
        host=host,
        pid=10_000 + task.index,
        user="bench",
        cwd="/home/bench/project",
        argv=["hpclab.launch", "-m", *task.overrides],
        key=f"slurm-{task.array_job_id}_{task_id}",
        scheduler={
            "kind": "slurm",
            "job_id": str(int(task.array_job_id) + task.index + 1),
            "array_job_id": task.array_job_id,
            "array_task_id": task_id,
            "restart_count": 0,
            "partition": "gpu",
        },
        step=writer.step,
        summary={k: (v if math.isfinite(v) else None) for k, v in writer.last_values().items()},
        metrics_dropped=writer.dropped(),
        history=[{"event": "started", "at": utcnow_iso(started), "host": host}],
    )
    if task.sweep_id:
        record.sweep_index = task.index
    store.write_record(paths, record, fsync=False)
    # the files a finished run last wrote, dated when it ended, as in a lab's store of
    # past runs: a site build takes such runs from the catalog, where runs that ended
    # in the last RECENT_S (15 minutes) come from their zarr one by one
    for done in (paths.run_json, paths.metrics_commit):
        os.utime(done, (ended, ended))
    return len(values) * len(names)


def plan(args: argparse.Namespace) -> tuple[list[RunTask], list[SweepPlan]]:
    """Create the run directories (ids sort by simulated creation time) and sweep plans."""
    store = Store(args.dir)
    names = metric_names(args.metrics)
    n_sweeps = max(0, min(args.sweeps, args.runs))
    # the last run ends before now: a run lasts at most steps x the slowest step time
    t0 = time.time() - args.runs * SECONDS_BETWEEN_RUNS - args.steps * step_time(512) - 60
    tasks: list[RunTask] = []
    plans: list[SweepPlan] = []
    for i in range(args.runs):
        sweep = i * n_sweeps // args.runs if n_sweeps else i % 7
        if n_sweeps and (not plans or len(plans) <= sweep):
            stamp = t0 + i * SECONDS_BETWEEN_RUNS
            plans.append(
                SweepPlan(
                    id="sweep-" + new_run_id(stamp),
                    project=args.project,
                    launcher="slurm",
                    points=[],
                    meta={
                        "created_at": utcnow_iso(stamp),
                        "host": "login01",
                        "user": "bench",
                        "cwd": "/home/bench/project",
                        "argv": ["hpclab.launch", "-m"],
                    },
                    job_id=str(100_000 + 1_000 * sweep),
                )
            )
        sweep_plan = plans[sweep] if n_sweeps else None
        index = len(sweep_plan.points) if sweep_plan else 0
        config, overrides = point_config(index, sweep)
        config["train"]["steps"] = args.steps
        config["hpclab"]["project"] = args.project
        created = t0 + i * SECONDS_BETWEEN_RUNS
        while True:
            try:
                paths = store.create_run_dir(args.project, new_run_id(created))
                break
            except RunExists:
                continue
        array_job_id = sweep_plan.job_id if sweep_plan and sweep_plan.job_id else str(900_000 + i)
        if sweep_plan:
            sweep_plan.points.append(
                PlannedPoint(
                    index=index,
                    overrides=overrides,
                    config=config,
                    run_id=paths.id,
                    job_id=f"{array_job_id}_{index}",
                )
            )
        tasks.append(
            RunTask(
                root=str(store.root),
                project=args.project,
                run_id=paths.id,
                sweep_id=sweep_plan.id if sweep_plan else None,
                index=index,
                array_job_id=array_job_id,
                config=config,
                overrides=overrides,
                created=created,
                steps=args.steps,
                metrics=names,
                seed=args.seed * 1_000_003 + i,
            )
        )
    return tasks, plans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="store root to create or add to")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=4)
    parser.add_argument("--sweeps", type=int, default=20, help="0: runs outside any sweep")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--project", default="bench")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.runs < 0 or args.steps < 0 or args.metrics < 1:
        parser.error("--runs and --steps must be >= 0 and --metrics >= 1")

    t0 = time.perf_counter()
    tasks, plans = plan(args)
    store = Store(args.dir)
    for sweep_plan in plans:
        store.sweeps_dir(args.project).mkdir(parents=True, exist_ok=True)
        path = store.sweep_json(args.project, sweep_plan.id)
        write_json_atomic(path, sweep_plan.record("queued").to_dict(), fsync=False)
    points = 0
    if args.jobs > 1 and len(tasks) > 1:
        ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with ctx.Pool(args.jobs) as pool:
            for n in pool.imap_unordered(write_run, tasks, chunksize=4):
                points += n
    else:
        for task in tasks:
            points += write_run(task)
    elapsed = time.perf_counter() - t0
    print(
        f"generated {len(tasks)} runs x {args.steps} steps x {args.metrics} metrics "
        f"({points:,} points, {len(plans)} sweeps) in {store.project_dir(args.project)} "
        f"in {elapsed:.1f} s with {args.jobs} jobs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
