"""Preflight: before anything queues, compose every point of the sweep and check it.

Composition errors (a typo in an override, a missing config group) stop the sweep at the
first bad point, naming its overrides. Resource checks (memory and time estimates against
the request, the request against the partition's limits, the interpreter the nodes will
run) produce findings: errors block, warnings print.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hpclab.errors import HpclabError
from hpclab.launch.sweep import PlannedPoint


class PreflightError(HpclabError):
    """A sweep point does not compose, or the request cannot run where it is sent."""


def compose_points(
    hydra_context: Any,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
) -> list[PlannedPoint]:
    """Compose every point as its job will; return the resolved task configs.

    Hydra composes each point from scratch (~0.1-0.2 s: defaults list, merges, deep
    copies), too slow for a 1,000-point sweep. Points differ mostly in values, so the
    config is composed once per distinct set of config-group choices and each point's
    value overrides are applied to a copy, with Hydra's own override code.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    loader = hydra_context.config_loader
    repo = getattr(loader, "repository", None)
    parser = OverridesParser.create()
    bases: dict[tuple[str, ...], tuple[DictConfig, DictConfig]] = {}
    points = []
    current: DictConfig | None = None
    saved = HydraConfig.instance().cfg
    try:
        for i, overrides in enumerate(job_overrides):
            index = initial_job_idx + i
            try:
                parsed = parser.parse_overrides(list(overrides))
                structural = [o for o in parsed if repo is None or _composes(o, repo)]
                values = [o for o in parsed if not (repo is None or _composes(o, repo))]
                key = tuple(str(o.input_line) for o in structural)
                if key not in bases:
                    full = loader.load_sweep_config(config, list(key))
                    task = copy.deepcopy(full)
                    with _writable(task):
                        del task["hydra"]
                    bases[key] = (task, full)
                task_base, full = bases[key]
                if current is not full:
                    # ${hydra:...} interpolations resolve against the point's hydra config
                    HydraConfig.instance().set_config(full)
                    current = full
                task_cfg = copy.deepcopy(task_base)
                _apply_overrides(values, task_cfg)
                resolved = OmegaConf.to_container(task_cfg, resolve=True)
            except Exception as e:  # Hydra's own errors carry the useful message
                text = str(e).strip()
                msg = text.splitlines()[0] if text else type(e).__name__
                raise PreflightError(
                    f"sweep point {index} ({' '.join(overrides)}): {msg}; nothing was submitted"
                ) from None
            assert isinstance(resolved, dict)
            config_dict = {str(k): v for k, v in resolved.items()}
            points.append(PlannedPoint(index=index, overrides=list(overrides), config=config_dict))
    finally:
        if saved is not None:
            HydraConfig.instance().set_config(saved)  # type: ignore[arg-type]
    return points


def _composes(override: Any, repo: Any) -> bool:
    """Whether an override changes what is composed (a config group choice, a package,
    or a hydra setting) rather than a value of the composed config."""
    key = str(override.key_or_group)
    if override.package is not None or key == "hydra" or key.startswith(("hydra.", "hydra/")):
        return True
    return bool(repo.group_exists(key))


def _apply_overrides(overrides: list[Any], cfg: DictConfig) -> None:
    """Hydra's own application of ``key=value``/``+key``/``++key``/``~key`` overrides."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


class _writable:
    def __init__(self, cfg: DictConfig) -> None:
        from omegaconf import open_dict, read_write

        self._rw = read_write(cfg)
        self._od = open_dict(cfg)

    def __enter__(self) -> None:
        self._rw.__enter__()
        self._od.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._od.__exit__(*exc)
        self._rw.__exit__(*exc)


def check_points(
    points: Sequence[PlannedPoint], executor: str, params: Mapping[str, Any]
) -> list[Any]:
    """Resource findings for the sweep (see :mod:`hpclab.launch.checks`)."""
    from hpclab.launch import checks

    req = checks.ResourceRequest.from_launcher(params, array_size=len(points))
    findings: list[Any] = []
    part = None
    if executor == "slurm":
        from hpclab.launch.scheduler import get_scheduler

        scheduler = get_scheduler("slurm")
        partitions = scheduler.partitions()
        findings += checks.check_request(req, partitions, scheduler.max_array_size())
        part = checks.resolve_partition(req.partition, partitions)
    findings += checks.check_interpreter(sys.executable, part.nodes if part else None)
    for point, estimate, step_s, steps in _estimates(points, req):
        findings += checks.check_point(
            point.index, point.config, req, estimate, step_s, steps, limits=part
        )
    return findings


def run_seconds(points: Sequence[PlannedPoint], params: Mapping[str, Any]) -> list[float | None]:
    """Each point's estimated training time, seconds: the step-time estimate (the task
    module's ``estimate_model``, ``hardware.tflops``) times ``train.steps``; None where the
    config does not say enough (what a search's budget falls back from)."""
    from hpclab.launch import checks

    req = checks.ResourceRequest.from_launcher(params, array_size=len(points))
    out: dict[int, float | None] = {p.index: None for p in points}
    for point, _, step_s, steps in _estimates(points, req):
        if step_s is not None and steps:
            out[point.index] = step_s * steps
    return [out[p.index] for p in points]


def _estimates(
    points: Sequence[PlannedPoint], req: Any
) -> Iterator[tuple[PlannedPoint, Any, float | None, int | None]]:
    """(point, memory estimate, seconds per step, steps) of each point whose task module
    has an ``estimate_model``."""
    from hpclab.launch.estimate import (
        find_estimator,
        memory_estimate,
        optimizer_kind,
        step_time_estimate,
    )

    estimators: dict[str, Any] = {}
    for point in points:
        cfg = point.config
        target = _get(cfg, "task._target_")
        if not target:
            continue
        if target not in estimators:
            estimators[target] = find_estimator(str(target))
        estimator = estimators[target]
        if estimator is None:
            continue
        size = estimator(cfg)
        batch = int(_get(cfg, "train.batch_size") or 1)
        engine = _get(cfg, "engine")
        optim = _get(cfg, "optim")
        estimate = memory_estimate(
            size,
            batch_size=batch,
            dtype=str(_get(cfg, "train.dtype") or "float32"),
            optimizer=optimizer_kind(optim) if isinstance(optim, Mapping) else "adam",
            engine=dict(engine) if isinstance(engine, Mapping) else None,
            gpus=int(req.gpus_per_node or 1),
            nodes=req.nodes,
        )
        hardware = _get(cfg, "hardware")
        step_s = step_time_estimate(
            size, batch, hardware if isinstance(hardware, Mapping) else None
        )
        steps = _get(cfg, "train.steps")
        yield point, estimate, step_s, int(steps) if steps else None


def report(findings: Sequence[Any], *, n_points: int) -> None:
    """Print warnings; raise :class:`PreflightError` listing the errors (nothing submitted)."""
    errors = [f for f in findings if f.level == "error"]
    for f in findings:
        if f.level != "error":
            where = f" (point {f.point})" if f.point is not None else ""
            print(f"hpclab: warning{where}: {f.message}", file=sys.stderr)
    if errors:
        first = errors[0]
        where = f"point {first.point}: " if first.point is not None else ""
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        raise PreflightError(
            f"preflight failed: {where}{first.message}{more}; nothing was submitted"
        )
    print(f"hpclab: preflight ok: {n_points} point(s)", file=sys.stderr)


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
