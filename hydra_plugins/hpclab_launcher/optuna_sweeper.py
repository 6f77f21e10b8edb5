"""``hydra/sweeper=optuna``: an Optuna search whose batches are hpclab array jobs.

An adapter (STYLE 4): the search loop is :class:`hpclab.search.driver.SearchDriver`.
The override syntax is hydra-optuna-sweeper's (``'optim.lr=tag(log, interval(1e-5,
1e-2))'``, ``choice(...)``, ``range(...)``); that plugin pins ``optuna<3``, which has no
JournalStorage, so hpclab carries its own on current Optuna. The study lives in the
project (``<store>/<project>/search/<study>.journal``) and goes on after the driver is
gone with ``hpclab search resume STUDY``.
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf


class HpclabOptunaSweeper(Sweeper):
    def __init__(
        self,
        sampler: Any = None,
        pruner: Any = None,
        direction: Any = "minimize",
        objective: Any = None,
        study_name: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 2,
        max_failure_rate: float = 0.5,
        resume: bool = False,
        budget: Any = None,
        params: Any = None,
    ) -> None:
        self.sampler = sampler
        self.pruner = pruner
        self.direction = direction
        self.objective = objective
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_failure_rate = max_failure_rate
        self.resume = resume
        self.budget = budget
        self.params = params
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.job_idx = 0

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> Any:
        from hpclab.errors import HpclabError

        try:
            return self._sweep(arguments)
        except HpclabError as e:
            print(f"hpclab: error: {e}", file=sys.stderr)
            sys.exit(e.exit_code)

    def _sweep(self, arguments: list[str]) -> Any:
        from hpclab.errors import SearchError
        from hpclab.search.driver import SearchDriver
        from hpclab.search.objective import Allocation
        from hpclab.search.space import parse_space
        from hpclab.search.study import StudyInfo
        from hpclab.store.layout import check_study_name
        from hpclab.store.record import utcnow_iso

        assert self.config is not None
        if not getattr(self.launcher, "composes_points", False):
            raise SearchError(
                "hydra/sweeper=optuna runs its trials through an hpclab launcher: add "
                "hydra/launcher=hpclab_local or hydra/launcher=hpclab_slurm"
            )
        given = [f"{k}={v}" for k, v in (self.params or {}).items()]
        space = parse_space([*given, *arguments])
        store, project = self.launcher._resolve_store_project()
        stamp = utcnow_iso()[:19].replace(":", "").replace("T", "-")
        name = check_study_name(str(self.study_name or f"{self.config.hydra.job.name}-{stamp}"))
        directions = _list(self.direction) or ["minimize"]
        objectives = _list(self.objective) or ["return"] * len(directions)
        pruner_cfg = OmegaConf.select(self.config, "hydra.sweeper.pruner")
        info = StudyInfo(
            name=name,
            project=project,
            directions=[str(d) for d in directions],
            objectives=[str(o) for o in objectives],
            n_trials=int(self.n_trials),
            n_jobs=int(self.n_jobs),
            # the interpreter's own arguments (``-m hpclab.launch`` or a script), as given
            argv=[a for a in sys.orig_argv[1:] if not a.startswith("hydra.sweeper.resume=")],
            python=sys.executable,
            cwd=os.getcwd(),
            space={k: repr(d) for k, d in space.distributions.items()},
            budget=_budget(self.budget, self.config),
            pruner=_container(pruner_cfg),
        )
        driver = SearchDriver(
            store,
            info,
            space,
            sampler=self.sampler,
            pruner=self.pruner,
            alloc=Allocation.of_params(self.launcher.params),
            max_failure_rate=float(self.max_failure_rate),
            estimate=lambda overrides: self.launcher.estimate_seconds(overrides, self.job_idx),
        )
        self.launcher.wait = True  # a batch's values are needed before the next is asked
        self.launcher.search = {"study": name}
        print(
            f"hpclab: study {name}: {info.n_trials} trial(s), {info.n_jobs} at a time",
            file=sys.stderr,
        )
        try:
            report = driver.run(self._launch_batch, resume=bool(self.resume))
        finally:
            self.launcher.release_code()
        _say(report, name)
        return report

    def _launch_batch(
        self, overrides: list[list[str]], envs: list[dict[str, Any]], planned: Any
    ) -> list[str]:
        first = self.job_idx
        self.launcher.point_env = {first + i: env for i, env in enumerate(envs)}
        self.launcher.on_planned = planned
        returns = self.launcher.launch(overrides, initial_job_idx=first)
        self.job_idx += len(returns)
        return list(self.launcher.last_run_ids)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or OmegaConf.is_list(value):
        return list(value)
    return [value]


def _container(node: Any) -> dict[str, Any] | None:
    """A config node as a plain dict (what a job builds the pruner from), None if unset."""
    if node is None:
        return None
    out = OmegaConf.to_container(node, resolve=True)
    return {str(k): v for k, v in out.items()} if isinstance(out, dict) else None


def _budget(given: Any, config: DictConfig) -> dict[str, float]:
    """``hydra.sweeper.budget`` or the app's ``hpclab.budget`` (cpu_hours, gpu_hours)."""
    from hpclab.errors import SearchError

    raw = given or OmegaConf.select(config, "hpclab.budget") or {}
    out = {}
    for k, v in dict(raw).items():
        if v is None:
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            raise SearchError(f"budget.{k}: {v!r} is not a positive number of hours")
        out[str(k)] = float(v)
    return out


def _say(report: Any, name: str) -> None:
    line = (
        f"hpclab: study {name}: {report.completed} completed, {report.failed} failed, "
        f"{report.pruned} pruned"
    )
    print(line + (f"; stopped: {report.stopped}" if report.stopped else ""), file=sys.stderr)
    for best in report.best[:5]:
        params = " ".join(f"{k}={v}" for k, v in best["params"].items())
        print(
            f"hpclab: best trial {best['number']}: {best['values']} ({params}) run "
            f"{best['run_id']}",
            file=sys.stderr,
        )


@dataclass
class HpclabOptunaSweeperConf:
    _target_: str = "hydra_plugins.hpclab_launcher.optuna_sweeper.HpclabOptunaSweeper"
    sampler: Any = field(
        default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None}
    )
    pruner: Any = None  # e.g. {_target_: optuna.pruners.MedianPruner, n_warmup_steps: 5}
    direction: Any = "minimize"  # or a list, one per objective
    objective: Any = None  # "return" (default), a summary metric, gpu_hours/cpu_hours; or a list
    study_name: Any = None  # default: <job name>-<date>
    n_trials: int = 20
    n_jobs: int = 2  # trials per batch: one array job each
    max_failure_rate: float = 0.5
    resume: bool = False
    budget: Any = None  # {gpu_hours: 10} or {cpu_hours: 100}; also the app's hpclab.budget
    params: Any = None  # key: sweep override, as on the command line


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna", node=HpclabOptunaSweeperConf, provider="hpclab"
)
