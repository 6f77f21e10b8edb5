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
from hpclab.launch.codetree import CodeTree
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
        self.isolate_code: bool | None = own["isolate_code"]
        self.code_isolation: dict[str, Any] | None = None  # the runs' code.json "isolation"
        self.sweep_dir: str | None = None  # absolute: tasks may run from the code copy
        # set by hydra/sweeper=optuna: every batch of a study runs the code snapshotted
        # for its first batch, failed trials are results, each point gets its trial's env
        self.search: dict[str, Any] | None = None  # the sweep record's "search" entry
        self.point_env: dict[int, dict[str, str]] = {}  # job number -> environment
        self.last_run_ids: list[str] = []
        self.on_planned: Any = None  # called with the batch's run ids before it queues
        self._search_code: Any = None

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
        if self.search is not None and self._search_code is not None:
            code = self._search_code  # one study, one code: edits made meanwhile do not run
        else:
            code = self._snapshot_code(store, project)
        plan = plan_sweep(
            store,
            project,
            points,
            launcher=self._executor_kind(),
            meta={
                "hydra_sweep_dir": str(self.config.hydra.sweep.dir),
                "code": code.isolation() if code else None,
                # what hpclab rerun submits with again (submitit's folder is per sweep)
                "launcher_params": {k: v for k, v in self.params.items() if k != "submitit_folder"},
                **({"search": self.search} if self.search is not None else {}),
            },
            run_fields=run_fields(self.config),
        )
        self.sweep_id = plan.id
        self.last_run_ids = [p.run_id for p in plan.points]
        planned, self.on_planned = self.on_planned, None  # not pickled with the launcher
        if planned is not None:
            planned(list(self.last_run_ids))
        tree = None
        if code is not None:
            for point in plan.points:
                code.link_into(store.run_paths(project, point.run_id))
            if self.search is None:
                code.discard_staging()
            else:
                self._search_code = code  # kept for the next batch (release_code)
            self.code_isolation = dict(code.isolation())
            if code.isolated:
                tree = CodeTree.at_submission(code.code_id, code.paths.tree, code.root)
        executor = self._executor(n_jobs=len(points))
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        self.sweep_dir = str(sweep_dir)
        # The launcher (Hydra context, config, task) is pickled once for the whole sweep;
        # submitit pickles only a small entry per array task (1,000 copies of the launcher
        # would take minutes to write). The entry carries the code copy to enter before
        # the launcher (and the modules its task refers to) is unpickled.
        entry = JobEntry.save(
            self, Singleton.get_state(), sweep_dir / f".hpclab-{plan.id}.pkl", code=tree
        )
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
            if self.search is not None:
                return [
                    _result_or_failure(j, p.overrides)
                    for j, p in zip(jobs, plan.points, strict=True)
                ]
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

    def estimate_seconds(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int = 0
    ) -> list[float | None]:
        """Each point's preflight estimate of its training time (seconds; None where its
        config does not say enough), composed as launch() would; nothing is queued."""
        from hpclab.launch import preflight as pf

        assert self.config is not None and self.hydra_context is not None
        points = pf.compose_points(self.hydra_context, self.config, job_overrides, initial_job_idx)
        return pf.run_seconds(points, self.params)

    def release_code(self) -> None:
        """The end of a search: drop the snapshot its batches shared."""
        if self._search_code is not None:
            self._search_code.discard_staging()
            self._search_code = None

    def _snapshot_code(self, store: Any, project: str) -> Any:
        """The working tree, snapshotted once for the whole sweep (None: snapshots off).
        With isolation (the default) its restored copy is what every task runs from."""
        from hpclab.restore.isolation import snapshot_sweep_code
        from hpclab.settings import TrackingSettings

        settings = TrackingSettings.from_sources()
        if not settings.snapshot_code:
            return None
        isolate = settings.isolate_code if self.isolate_code is None else self.isolate_code
        return snapshot_sweep_code(
            store, project, Path.cwd(), settings=settings, isolate=bool(isolate)
        )

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
        os.environ.update(self.point_env.get(job_num, {}))
        Singleton.set_state(singleton_state)
        setup_globals()
        sweep_config = self.hydra_context.config_loader.load_sweep_config(
            self.config, sweep_overrides
        )
        with open_dict(sweep_config.hydra.job) as job:
            job.id = submitit.JobEnvironment().job_id  # type: ignore[attr-defined]
            sweep_config.hydra.job.num = job_num
        if self.sweep_dir is not None:
            with open_dict(sweep_config.hydra.sweep):
                sweep_config.hydra.sweep.dir = (
                    self.sweep_dir
                )  # the login node's, not one inside the code copy
        task = tracked(
            self.task_function,
            store=str(self.store_root),
            project=str(self.project),
            run_id=run_id,
            overrides=list(sweep_overrides),
            sweep_id=self.sweep_id,
            code_isolation=self.code_isolation,
        )
        return run_job(
            hydra_context=self.hydra_context,
            task_function=task,
            config=sweep_config,
            job_dir_key=job_dir_key,
            job_subdir_key="hydra.sweep.subdir",
        )


def _result_or_failure(job: Any, overrides: Sequence[str]) -> JobReturn:
    """A job's JobReturn, or a failed one when it raised or was killed: one trial of a
    search failing is a result, not the end of the search."""
    try:
        return job.results()[0]
    except Exception as e:  # noqa: BLE001  (submitit's failed/uncompleted job errors)
        ret = JobReturn(overrides=list(overrides), status=JobStatus.FAILED)
        ret._return_value = e
        return ret


class JobEntry:
    """What submitit runs for each array task: loads the sweep's launcher (pickled once,
    beside the sweep) and runs one point. Also submitit's checkpoint hook."""

    def __init__(self, path: str, code: CodeTree | None = None) -> None:
        self.path = path
        self.code = code

    @classmethod
    def save(
        cls,
        launcher: _HpclabLauncher,
        singleton_state: Any,
        path: Path,
        code: CodeTree | None = None,
    ) -> JobEntry:
        import cloudpickle

        with open(path, "wb") as f:
            cloudpickle.dump((launcher, singleton_state), f)
        return cls(str(path), code)

    def __call__(self, overrides: list[str], job_num: int, run_id: str) -> JobReturn:
        before = set(sys.modules)
        if self.code is not None:
            self.code.enter()  # before anything of the user's is unpickled or imported
        with open(self.path, "rb") as f:
            launcher, singleton_state = pickle.load(f)
        if self.code is not None:
            _config_from_copy(launcher, self.code)
        try:
            return launcher(
                overrides, "hydra.sweep.dir", job_num, f"job_id_for_{job_num}", singleton_state,
                run_id,
            )  # fmt: skip
        finally:
            if self.code is not None:
                _note_imports_outside(launcher, self.code, run_id, before)

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


def _note_imports_outside(
    launcher: _HpclabLauncher, code: CodeTree, run_id: str, before: set[str]
) -> None:
    """Modules the task loaded from the working tree instead of the copy (an editable
    install's import hook, say): recorded in the run's ``code.json`` and said once."""
    from hpclab.store import Store
    from hpclab.store.atomic import read_json, write_json_atomic

    own = ("hpclab", "hydra_plugins")
    leaks = [
        m for m in code.imported_outside()
        if m not in before and m.split(".")[0] not in own
    ]  # fmt: skip
    if not leaks or launcher.store_root is None or launcher.project is None:
        return
    paths = Store(launcher.store_root).run_paths(launcher.project, run_id)
    try:
        info = read_json(paths.code_json)
        info["isolation"]["imported_outside"] = leaks
        write_json_atomic(paths.code_json, info)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    shown = ", ".join(leaks[:5]) + (f" and {len(leaks) - 5} more" if len(leaks) > 5 else "")
    print(
        f"hpclab: warning: run {run_id}: module(s) {shown} were imported from the working "
        f"tree {code.root}, not the sweep's code copy: edits made after submission may have "
        "run (an editable install? install it normally, or set isolate_code=false)",
        file=sys.stderr,
    )


def _config_from_copy(launcher: _HpclabLauncher, code: CodeTree) -> None:
    """Compose the task's config from the code copy's config directories too: Hydra
    composes each point again on the compute node, from its search path."""
    from hydra._internal.config_repository import ConfigRepository
    from hydra.core.plugins import Plugins

    assert launcher.hydra_context is not None
    loader: Any = launcher.hydra_context.config_loader
    search_path = getattr(loader, "config_search_path", None)
    if search_path is None:
        return
    changed = False
    for element in search_path.get_path():
        scheme, sep, rest = str(element.path).rpartition("://")
        local = rest if scheme in ("", "file") else None
        mapped = code.map(local) if local and os.path.isabs(local) else None
        if mapped is not None:
            element.path = f"{scheme}{sep}{mapped}"
            changed = True
    if changed:
        Plugins.instance()  # registers the config sources (file://, pkg://, structured://)
        loader.repository = ConfigRepository(config_search_path=search_path)


class HpclabLocalLauncher(_HpclabLauncher):
    """``hydra/launcher=hpclab_local``."""

    _EXECUTOR = "local"


class HpclabSlurmLauncher(_HpclabLauncher):
    """``hydra/launcher=hpclab_slurm``."""

    _EXECUTOR = "slurm"
