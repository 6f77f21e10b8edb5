"""A Hydra app run without ``-m`` under an hpclab launcher is tracked as a one-point sweep.

Hydra's run mode never calls a launcher, so ``python train.py hydra/launcher=hpclab_local``
would run untracked. The hpclab launcher configs pull this callback into
``hydra.callbacks`` through their defaults list (``hydra/hpclab=run_mode``); in run mode
it records a one-point sweep (scheduler ``local``, job id = this process's pid), opens the
point's run around the job and closes it with the job's status and return value. In
multirun mode it does nothing: the launcher already wraps each job.

Imported during Hydra's plugin discovery: hpclab is imported only when a job starts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

SLURM_LAUNCHER = "HpclabSlurmLauncher"


class HpclabRunModeCallback(Callback):
    """Open a run for a run-mode job (``on_job_start``) and finish it (``on_job_end``)."""

    def __init__(self) -> None:
        self.run: Any = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.RUN:
            return
        target = str(OmegaConf.select(config, "hydra.launcher._target_") or "")
        if target.endswith(SLURM_LAUNCHER):
            print(
                "hpclab: hydra/launcher=hpclab_slurm without -m runs here, not on Slurm; "
                "add -m to submit it as a Slurm job",
                file=sys.stderr,
            )
        try:
            self.run = open_run_mode_run(config)
        except Exception as e:  # noqa: BLE001 - Hydra would only warn; say why, once
            from hpclab.errors import HpclabError

            if not isinstance(e, HpclabError):
                raise
            print(f"hpclab: error: {e}; this run is not tracked", file=sys.stderr)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        from hydra.core.utils import JobStatus

        from hpclab.launch.task import final_metrics

        if job_return.status == JobStatus.COMPLETED:
            run.returned.update(final_metrics(job_return.return_value))
            run.finish("completed")
        else:
            error = job_return._return_value
            run.finish("failed", error=error if isinstance(error, BaseException) else None)


def open_run_mode_run(config: DictConfig) -> Any:
    """Record a one-point sweep for this run-mode job and open its run."""
    from hydra.core.hydra_config import HydraConfig

    import hpclab
    from hpclab.launch.sweep import PlannedPoint, plan_sweep, record_submission
    from hpclab.launch.task import run_fields
    from hpclab.store import Store
    from hpclab.store.layout import check_project_name

    cwd = Path(HydraConfig.get().runtime.cwd)  # the user's directory (Hydra may chdir)
    task_cfg = {k: v for k, v in config.items() if k != "hydra"}
    container = OmegaConf.to_container(OmegaConf.create(task_cfg), resolve=True)
    assert isinstance(container, dict)
    task: dict[str, Any] = {str(k): v for k, v in container.items()}
    launcher = config.hydra.launcher
    app = task.get("hpclab") or {}
    store_root = (
        launcher.get("store")
        or app.get("store")
        or os.environ.get("HPCLAB_STORE")
        or "hpclab-store"
    )
    project = str(
        launcher.get("project")
        or app.get("project")
        or os.environ.get("HPCLAB_PROJECT")
        or config.hydra.job.name
    )
    check_project_name(project)
    store = Store(cwd / Path(str(store_root)).expanduser())
    overrides = [str(o) for o in config.hydra.overrides.task]
    fields = run_fields(task)
    plan = plan_sweep(
        store,
        project,
        [PlannedPoint(index=0, overrides=overrides, config=task)],
        launcher="local",
        meta={"hydra_run_dir": str(config.hydra.run.dir), "hydra_mode": "run"},
        run_fields=fields,
    )
    record_submission(store, plan, [str(os.getpid())], scheduler="local", array_job_id=None)
    run_id = plan.points[0].run_id
    os.environ["HPCLAB_RUN_ID"] = run_id
    os.environ["HPCLAB_STORE"] = str(store.root)
    os.environ["HPCLAB_PROJECT"] = project
    print(f"hpclab: run {run_id} (one-point sweep {plan.id}, project {project})", file=sys.stderr)
    return hpclab.Run(
        project=project,
        store=store,
        run_id=run_id,
        config=task,
        overrides=overrides,
        sweep_id=plan.id,
        code_dir=cwd,
        **fields,
    )
