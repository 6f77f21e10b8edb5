"""hpclab's Hydra launchers: hydra-submitit-launcher's, plus tracking, preflight, a
sweep record, and detached submission.

An adapter only (STYLE 4): it translates Hydra's call into core calls. ``launch`` runs on
the login node: preflight every point, record the sweep (every point a ``planned`` run),
submit one array job through submitit, mark the runs ``queued``, and either return
(detached, the Slurm default) or wait for the results (``wait=true``, the local default).
``__call__`` runs on the compute node: it opens the point's run and runs the task in it.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import OmegaConf, open_dict

from hpclab.errors import HpclabError
from hydra_plugins.hpclab_launcher.config import HPCLAB_FIELDS

log = logging.getLogger(__name__)


class _HpclabLauncher(BaseSubmititLauncher):
    _EXECUTOR = "abstract"
    composes_points = True  # hydra/sweeper=hpclab leaves point validation to launch()

    def __init__(self, **params: Any) -> None:
        own = {k: params.pop(k, None) for k in HPCLAB_FIELDS}
        super().__init__(**params)
        self.wait = bool(own["wait"])
        self.preflight = bool(own["preflight"])
        self.preflight_only = bool(own["preflight_only"])
        self.project_option: str | None = own["project"]
        self.store_option: str | None = own["store"]
        self.store_root: str | None = None
        self.project: str | None = None
        self.sweep_id: str | None = None

    # -- login node -------------------------------------------------------------------
    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        try:
            return self._launch(job_overrides, initial_job_idx)
        except HpclabError as e:
            print(f"hpclab: error: {e}", file=sys.stderr)
            sys.exit(e.exit_code)

    def _launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:

        from hpclab.launch import preflight as pf
        from hpclab.launch.sweep import plan_sweep, record_submission
        from hpclab.launch.task import run_fields
        from hpclab.store import Store

        assert self.config is not None and self.hydra_context is not None
        store, project = self._resolve_store_project()
        self.store_root, self.project = str(store.root), project
        points = pf.compose_points(self.hydra_context, self.config, job_overrides, initial_job_idx)
        if self.preflight or self.preflight_only:
            findings = pf.check_points(points, self._executor_kind(), self.params)
            pf.report(findings, n_points=len(points))
        if self.preflight_only:
            return [
                JobReturn(
                    overrides=list(p.overrides),
                    status=JobStatus.COMPLETED,
                    _return_value="preflight ok",
                )
                for p in points
            ]
        plan = plan_sweep(
            store,
            project,
            points,
            launcher=self._executor_kind(),
            meta={
                "hydra_sweep_dir": str(self.config.hydra.sweep.dir),
                # what hpclab rerun submits with again (submitit's folder is per sweep)
                "launcher_params": {k: v for k, v in self.params.items() if k != "submitit_folder"},
            },
            run_fields=run_fields(self.config),
        )
        self.sweep_id = plan.id
        executor = self._executor(n_jobs=len(points))
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # The launcher (Hydra context, config, task) is pickled once for the whole sweep;
        # submitit pickles only a small entry per array task (1,000 copies of the launcher
        # would take minutes to write).
        entry = JobEntry.save(self, Singleton.get_state(), sweep_dir / f".hpclab-{plan.id}.pkl")
        for point in plan.points:
            shown = " ".join(filter_overrides(point.overrides))
            log.info(f"\t#{point.index} : {shown}  -> run {point.run_id}")
        jobs = executor.map_array(
            entry,
            [p.overrides for p in plan.points],
            [p.index for p in plan.points],
            [p.run_id for p in plan.points],
        )
        job_ids = [str(j.job_id) for j in jobs]
        array_id = job_ids[0].split("_")[0] if self._executor_kind() == "slurm" else None
        record_submission(
            Store(store.root), plan, job_ids, scheduler=self._executor_kind(), array_job_id=array_id
        )
        self._announce(plan.id, array_id, len(jobs), store.root)
        if self.wait:
            if self._executor_kind() == "local":  # the jobs' own output, [#i] by [#i]
                from hpclab.tracking.logs import stream_sweep

                stream_sweep(store, project, plan.points, jobs)
            return [j.results()[0] for j in jobs]
        return [
            # detached: Hydra reads every return value, so report the submission as done
            JobReturn(
                overrides=list(p.overrides),
                status=JobStatus.COMPLETED,
                _return_value=f"queued: run {p.run_id}, job {p.job_id}",
            )
            for p in plan.points
        ]

    def _executor(self, n_jobs: int) -> Any:
        """A submitit executor from the launcher parameters (as hydra-submitit does)."""
        import submitit

        params = dict(self.params)
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in params.items()}
        )
        if self._EXECUTOR == "local" and "OMP_NUM_THREADS" not in os.environ:
            # parallel local points share this machine's cores instead of oversubscribing them
            os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n_jobs))
        return executor

    def _announce(self, sweep_id: str, array_id: str | None, n: int, store_root: Path) -> None:
        where = f"Slurm array job {array_id}" if array_id else f"{n} local processes"
        print(f"hpclab: sweep {sweep_id}: {n} point(s) submitted as {where}", file=sys.stderr)
        if not self.wait:
            print(
                f"hpclab: follow it with: hpclab --store {store_root} status {sweep_id}",
                file=sys.stderr,
            )

    def _executor_kind(self) -> str:
        return "slurm" if self._EXECUTOR == "slurm" else "local"

    def _resolve_store_project(self) -> tuple[Any, str]:
        from hpclab.store import Store
        from hpclab.store.layout import check_project_name

        assert self.config is not None
        app = self.config.get("hpclab") or {}
        store = (
            self.store_option
            or app.get("store")
            or os.environ.get("HPCLAB_STORE")
            or "hpclab-store"
        )
        project = (
            self.project_option
            or app.get("project")
            or os.environ.get("HPCLAB_PROJECT")
            or str(self.config.hydra.job.name)
        )
        check_project_name(project)
        # jobs may run in another directory (Hydra changes into the job's dir): absolute
        return Store(Path(str(store)).expanduser().absolute()), project

    # -- compute node -----------------------------------------------------------------
    def __call__(
        self,
        sweep_overrides: list[str],
        job_dir_key: str,
        job_num: int,
        job_id: str,
        singleton_state: dict[type, Singleton],
        run_id: str,
    ) -> JobReturn:
        import submitit

        from hpclab.launch.task import tracked

        assert (
            self.hydra_context is not None
            and self.config is not None
            and self.task_function is not None
        )
        os.environ["HPCLAB_RUN_ID"] = run_id
        os.environ["HPCLAB_STORE"] = str(self.store_root)
        os.environ["HPCLAB_PROJECT"] = str(self.project)
        Singleton.set_state(singleton_state)
        setup_globals()
        sweep_config = self.hydra_context.config_loader.load_sweep_config(
            self.config, sweep_overrides
        )
        with open_dict(sweep_config.hydra.job) as job:
            job.id = submitit.JobEnvironment().job_id  # type: ignore[attr-defined]
            sweep_config.hydra.job.num = job_num
        task = tracked(
            self.task_function,
            store=str(self.store_root),
            project=str(self.project),
            run_id=run_id,
            overrides=list(sweep_overrides),
            sweep_id=self.sweep_id,
        )
        return run_job(
            hydra_context=self.hydra_context,
            task_function=task,
            config=sweep_config,
            job_dir_key=job_dir_key,
            job_subdir_key="hydra.sweep.subdir",
        )


class JobEntry:
    """What submitit runs for each array task: loads the sweep's launcher (pickled once,
    beside the sweep) and runs one point. Also submitit's checkpoint hook."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def save(cls, launcher: _HpclabLauncher, singleton_state: Any, path: Path) -> JobEntry:
        import cloudpickle

        with open(path, "wb") as f:
            cloudpickle.dump((launcher, singleton_state), f)
        return cls(str(path))

    def __call__(self, overrides: list[str], job_num: int, run_id: str) -> JobReturn:
        with open(self.path, "rb") as f:
            launcher, singleton_state = pickle.load(f)
        return launcher(
            overrides, "hydra.sweep.dir", job_num, f"job_id_for_{job_num}", singleton_state, run_id
        )

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Slurm is about to stop the job (time limit or preemption): let the task save its
        state (``run.on_preempt``), record the run ``preempted``, and requeue the same call,
        which resumes the same run."""
        import submitit

        import hpclab

        run = hpclab.current_run()
        if run is not None:
            run.preempt()
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


class HpclabLocalLauncher(_HpclabLauncher):
    """``hydra/launcher=hpclab_local``."""

    _EXECUTOR = "local"


class HpclabSlurmLauncher(_HpclabLauncher):
    """``hydra/launcher=hpclab_slurm``."""

    _EXECUTOR = "slurm"
