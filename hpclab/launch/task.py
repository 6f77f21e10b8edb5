"""Running a task inside a run: the wrapper the launchers put around any Hydra task, and
the task of hpclab's own app (``task._target_`` called with the config and the run)."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

import hpclab
from hpclab.errors import TrialPruned
from hpclab.launch.trial import reporting_log

log = logging.getLogger(__name__)


def tracked(
    task_function: Callable[[DictConfig], Any],
    *,
    store: str,
    project: str,
    run_id: str,
    overrides: list[str],
    sweep_id: str | None,
    code_isolation: Mapping[str, Any] | None = None,
) -> Callable[[DictConfig], Any]:
    """Wrap a Hydra task so it runs inside the point's run: config, overrides, snapshot,
    status, SummaryWriter scalars, and its return value as final metrics.

    ``code_isolation`` is how the sweep's code was snapshotted at submission: a task
    running in place records whether its tree still is the one submitted."""

    def run_tracked(cfg: DictConfig) -> Any:
        from hydra.core.hydra_config import HydraConfig

        code_dir = HydraConfig.get().runtime.cwd if HydraConfig.initialized() else None
        with hpclab.Run(
            project=project,
            store=store,
            run_id=run_id,
            config=cfg,
            overrides=overrides,
            sweep_id=sweep_id,
            code_dir=code_dir,
            **run_fields(cfg),
        ) as run:
            if code_isolation and code_isolation.get("mode") == "in-place":
                record_in_place(run.paths, code_isolation)
            # a trial of a search whose objective is a metric: run.log reports it
            run.log = reporting_log(run.log)  # type: ignore[method-assign]
            try:
                result = task_function(cfg)
            except TrialPruned as pruned:  # the search's pruner stopped it: not a failure
                run.summary["search/pruned_at"] = float(pruned.step)
                return None
            run.returned.update(final_metrics(result))
        return result

    run_tracked.__name__ = getattr(task_function, "__name__", "task")
    return run_tracked


def record_in_place(paths: Any, isolation: Mapping[str, Any]) -> None:
    """A task that ran in the working tree: add to its ``code.json`` whether that tree
    differs from the one at submission (``code_changed_since_submit``), and say so."""
    import sys

    from hpclab.store.atomic import read_json, write_json_atomic
    from hpclab.tracking.snapshot import manifest_id

    if paths is None or not paths.code_json.exists() or not paths.code_manifest.exists():
        return
    info = read_json(paths.code_json)
    if not isinstance(info, dict) or "isolation" in info:
        return  # a resumed run keeps what its first attempt found
    code_id = info.get("code_id") or manifest_id(paths.code_manifest)
    changed = code_id != isolation.get("submitted_code_id")
    info["isolation"] = {**isolation, "code_id": code_id, "code_changed_since_submit": changed}
    write_json_atomic(paths.code_json, info)
    if changed:
        print(
            f"hpclab: warning: run {paths.id}: the code changed between submission and the "
            "start of this task (isolate_code is off); the run records the code it started "
            "with",
            file=sys.stderr,
        )


def run_fields(cfg: Any) -> dict[str, Any]:
    """name/parent/tags for a run, from the config's ``hpclab:`` block (if it has one)."""
    app = cfg.get("hpclab") or {}
    return {
        "name": app.get("name"),
        "parent": app.get("parent"),
        "tags": list(app.get("tags") or []) or None,
    }


def final_metrics(result: Any) -> dict[str, float]:
    """A task's return value as final metrics: a number (``result``), or a dict of numbers,
    nested dicts flattened with ``/`` (``{"val": {"acc": 0.9}}`` -> ``val/acc``).

    Values that are not numbers are left out, with one warning naming their keys.
    """
    if _is_number(result):
        return {"result": float(result)}
    if not isinstance(result, Mapping):
        return {}
    out: dict[str, float] = {}
    skipped: list[str] = []
    _flatten(result, "", out, skipped)
    if skipped:
        log.warning("hpclab: return value keys not recorded (not numbers): %s", ", ".join(skipped))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _flatten(
    node: Mapping[Any, Any], prefix: str, out: dict[str, float], skipped: list[str]
) -> None:
    for k, v in node.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            _flatten(v, f"{name}/", out, skipped)
        elif _is_number(v):
            out[name] = float(v)
        else:
            skipped.append(name)


def run_app_task(cfg: DictConfig) -> Any:
    """The task of ``python -m hpclab.launch``: call ``cfg.task._target_(config, run)``.

    Under an hpclab launcher the run is already open (the launcher's wrapper); a single
    run without ``-m`` opens its own.
    """
    from hydra.utils import get_method

    target = OmegaConf.select(cfg, "task._target_")
    if not target:
        raise hpclab.HpclabError("config has no task._target_ (the training function to call)")
    fn = get_method(str(target))
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    run = hpclab.current_run()
    if run is not None:
        return fn(config, run)
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get() if HydraConfig.initialized() else None
    app = cfg.get("hpclab") or {}
    with hpclab.Run(
        project=app.get("project"),
        store=app.get("store"),
        config=config,
        overrides=list(hc.overrides.task) if hc else None,
        code_dir=hc.runtime.cwd if hc else None,
        **run_fields(cfg),
    ) as run:
        result = fn(config, run)
        run.returned.update(final_metrics(result))
    return result
