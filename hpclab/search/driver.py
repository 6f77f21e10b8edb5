"""The search loop on the login node: ask Optuna for a batch of trials, run the batch as
one array job through an hpclab launcher, read each trial's values from its run, tell
Optuna, and go on until ``n_trials`` are done or the budget would be exceeded.

Backend-neutral: a ``launch`` callable runs a batch of override lists and returns their
run ids once they ended (the Hydra adapter passes the launcher's). Resuming
(``hpclab search resume``) finds the trials a dead driver left running and collects
their runs' results from the store, waiting for those still going.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpclab.errors import SearchError
from hpclab.launch.trial import PRUNED_ATTR, TRIAL_ENV
from hpclab.search.objective import COSTS, Allocation, check_objectives, run_cost, trial_values
from hpclab.search.space import SearchSpace
from hpclab.search.study import StudyInfo, journal_storage, write_info
from hpclab.store import Store

log = logging.getLogger(__name__)

RUN_ATTR = "hpclab_run_id"  # trial user attribute: the run that evaluates it
NOT_RUN_ATTR = "hpclab_not_run"  # why a trial asked for was not launched (the budget)

LaunchBatch = Callable[
    [list[list[str]], list[dict[str, Any]], Callable[[list[str]], None]], list[str]
]
"""Runs the batch's override lists (with each trial's job environment), calls the third
argument with their run ids as soon as the runs exist (before anything is queued: a
driver killed while they run leaves trials that name their runs), waits until they ended,
returns the run ids in order."""

EstimateBatch = Callable[[list[list[str]]], list[float | None]]
"""Each override list's estimated training time in seconds (preflight's step-time
estimate), None where the config does not say enough."""


@dataclass
class SearchReport:
    completed: int = 0
    failed: int = 0
    pruned: int = 0
    stopped: str | None = None
    best: list[dict[str, Any]] = field(default_factory=list)


class SearchDriver:
    def __init__(
        self,
        store: Store,
        info: StudyInfo,
        space: SearchSpace,
        *,
        sampler: Any = None,
        pruner: Any = None,
        alloc: Allocation | None = None,
        max_failure_rate: float = 0.5,
        poll_s: float = 5.0,
        estimate: EstimateBatch | None = None,
    ) -> None:
        check_objectives(info.objectives, info.directions)
        if info.n_trials < 1 or info.n_jobs < 1:
            raise SearchError("hydra.sweeper: n_trials and n_jobs must be at least 1")
        for kind in info.budget:
            if kind not in COSTS:
                raise SearchError(f"budget: {kind!r} is not one of {', '.join(COSTS)}")
        self.store = store
        self.info = info
        self.space = space
        self.alloc = alloc or Allocation()
        self.max_failure_rate = max_failure_rate
        self.poll_s = poll_s
        self.estimate = estimate
        self.journal = store.study_journal(info.project, info.name)
        self._sampler = sampler
        self._pruner = pruner
        self.exhausted = False  # the sampler has no point left (grid, brute force)

    # -- the study ---------------------------------------------------------------------
    def open(self, *, resume: bool) -> Any:
        import optuna

        exists = self.journal.is_file()
        if exists and not resume:
            raise SearchError(
                f"study {self.info.name!r} exists ({self.journal}): go on with `hpclab search "
                f"resume {self.info.name}`, or give another hydra.sweeper.study_name"
            )
        if resume and not exists:
            raise SearchError(f"study {self.info.name!r}: no journal at {self.journal}")
        study = optuna.create_study(
            study_name=self.info.name,
            storage=journal_storage(self.journal),
            sampler=self._sampler,
            pruner=self._pruner,
            directions=self._directions(),
            load_if_exists=resume,
        )
        write_info(self.store, self.info)
        return study

    def _directions(self) -> list[Any]:
        from optuna.study import StudyDirection

        return [StudyDirection[d.upper()] for d in self.info.directions]  # checked in __init__

    def run(self, launch: LaunchBatch, *, resume: bool = False) -> SearchReport:
        import optuna
        from optuna.trial import TrialState

        study = self.open(resume=resume)
        report = SearchReport()
        self._collect_orphans(study, report)
        while True:
            done = [
                t
                for t in study.get_trials(deepcopy=False)
                if t.state.is_finished() and NOT_RUN_ATTR not in t.user_attrs
            ]
            todo = self.info.n_trials - len(done)
            if todo <= 0:
                break
            if self.exhausted:
                report.stopped = "every point of the search space was tried"
                break
            failed = sum(t.state == TrialState.FAIL for t in done)
            if done and failed / len(done) > self.max_failure_rate:
                report.stopped = (
                    f"{failed} of {len(done)} trials failed (more than max_failure_rate "
                    f"{self.max_failure_rate:g})"
                )
                break
            size = min(todo, self.info.n_jobs)
            size, stopped = self._within_budget(study, size)
            if stopped:
                report.stopped = stopped
                break
            trials = [study.ask(self.space.distributions) for _ in range(size)]
            overrides = [self.space.overrides(t.params) for t in trials]
            keep, stopped = self._fit_estimates(study, overrides)
            for trial in trials[keep:]:  # asked, but over the budget: never launched
                trial.set_user_attr(NOT_RUN_ATTR, stopped)
                self._told(study, trial.number, state=TrialState.FAIL)
            trials, overrides = trials[:keep], overrides[:keep]
            if not trials:
                report.stopped = stopped
                break
            envs = [self._trial_env(study, t) for t in trials]

            def planned(run_ids: list[str], trials: list[Any] = trials) -> None:
                for trial, run_id in zip(trials, run_ids, strict=True):
                    trial.set_user_attr(RUN_ATTR, run_id)

            run_ids = launch(overrides, envs, planned)
            for trial, run_id in zip(trials, run_ids, strict=True):
                self._tell(study, trial.number, run_id, report)
            if stopped:
                report.stopped = stopped
                break
        self.info.stopped = report.stopped
        write_info(self.store, self.info)
        report.best = _best(study, optuna)
        return report

    # -- one trial ---------------------------------------------------------------------
    def _trial_env(self, study: Any, trial: Any) -> dict[str, Any]:
        return {
            TRIAL_ENV: json.dumps(
                {
                    "journal": str(self.journal),
                    "study": self.info.name,
                    "trial_id": trial._trial_id,
                    "number": trial.number,
                    "pruner": self.info.pruner,
                    "objective": self.info.objectives[0],
                }
            )
        }

    def _tell(self, study: Any, number: int, run_id: str, report: SearchReport) -> None:
        from optuna.trial import TrialState

        frozen = study.get_trials(deepcopy=False)[number]
        if frozen.user_attrs.get(PRUNED_ATTR) is not None:
            self._told(study, number, state=TrialState.PRUNED)
            report.pruned += 1
            return
        status = self._status(run_id)
        if status != "completed":
            log.warning("hpclab: trial %d: run %s ended %s", number, run_id, status)
            self._told(study, number, state=TrialState.FAIL)
            report.failed += 1
            return
        try:
            values = trial_values(
                self.store, self.info.project, run_id, self.info.objectives, self.alloc
            )
        except SearchError as e:
            log.warning("hpclab: trial %d: %s", number, e)
            print(f"hpclab: warning: trial {number}: {e}", file=sys.stderr)
            self._told(study, number, state=TrialState.FAIL)
            report.failed += 1
            return
        self._told(study, number, values=values)
        report.completed += 1

    def _told(self, study: Any, number: int, **kwargs: Any) -> None:
        try:
            study.tell(number, **kwargs)
        except RuntimeError as e:
            # grid and brute-force samplers stop the study once every point was tried;
            # Optuna allows that only inside optimize(): here it means "no more trials"
            if "Study.stop" not in str(e):
                raise
            self.exhausted = True

    def _status(self, run_id: str) -> str:
        try:
            record = self.store.read_record(self.store.run_paths(self.info.project, run_id))
        except Exception as e:  # noqa: BLE001  (an unreadable run is a failed trial)
            return f"unreadable ({e})"
        return str(record.status.value)

    # -- resume ------------------------------------------------------------------------
    def _collect_orphans(self, study: Any, report: SearchReport) -> None:
        """Trials a dead driver left RUNNING: their runs' results once they ended (jobs
        keep running on the cluster when the login shell goes); never launched: failed."""
        from optuna.trial import TrialState

        orphans = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
        waiting: dict[int, tuple[int, str]] = {}
        for t in orphans:
            run_id = t.user_attrs.get(RUN_ATTR)
            if not run_id:
                self._told(study, t.number, state=TrialState.FAIL)
                report.failed += 1
            else:
                waiting[t._trial_id] = (t.number, str(run_id))
        if waiting:
            print(
                f"hpclab: study {self.info.name}: waiting for {len(waiting)} trial(s) the "
                "last driver left running",
                file=sys.stderr,
            )
        while waiting:
            self._reconcile([r for _, r in waiting.values()])
            for trial_id, (number, run_id) in list(waiting.items()):
                if self._final(run_id):
                    self._tell(study, number, run_id, report)
                    del waiting[trial_id]
            if waiting:
                time.sleep(self.poll_s)  # waiting on jobs of a cluster, not synchronising

    def _final(self, run_id: str) -> bool:
        try:
            record = self.store.read_record(self.store.run_paths(self.info.project, run_id))
        except Exception:  # noqa: BLE001  (unreadable: give up on it, a failed trial)
            return True
        return bool(record.status.is_final)

    def _reconcile(self, run_ids: Sequence[str]) -> None:
        from hpclab.launch.reconcile import reconcile_runs

        try:
            reconcile_runs(self.store, [(self.info.project, r) for r in run_ids])
        except Exception as e:  # noqa: BLE001  (no scheduler here: the records decide)
            log.debug("reconcile: %s", e)

    # -- budget ------------------------------------------------------------------------
    def _within_budget(self, study: Any, size: int) -> tuple[int, str | None]:
        """How many of ``size`` trials fit the budget: used (accounting, else durations)
        plus the estimate (the mean cost of the finished trials; before any finished, each
        trial's preflight estimate, see :meth:`_fit_estimates`, else the allocation's time
        limit) must not exceed it."""
        if not self.info.budget:
            return size, None
        costs = self._costs(study)
        if not costs and self.estimate is not None:
            return size, None  # each asked trial's own estimate decides (_fit_estimates)
        fit = size
        for kind, limit in self.info.budget.items():
            used = sum(c.get(kind) for c in costs)
            per = (
                sum(c.get(kind) for c in costs) / len(costs)
                if costs
                else _upper_bound(self.alloc, kind)
            )
            if per is None:
                raise SearchError(
                    f"budget {kind}: no trial has finished and the launcher has no "
                    "timeout_min to bound one: set hydra.launcher.timeout_min"
                )
            left = limit - used
            n = size if per <= 0 else max(0, math.floor(left / per + 1e-9))
            if n < 1:
                return 0, (
                    f"budget: {used:.3g} of {limit:g} {kind.replace('_', ' ')} used, the next "
                    f"trial is estimated at {per:.3g}"
                )
            fit = min(fit, n)
        return fit, None

    def _costs(self, study: Any) -> list[Any]:
        costs = []
        for t in study.get_trials(deepcopy=False):
            run_id = t.user_attrs.get(RUN_ATTR)
            if run_id:
                c = run_cost(self.store, self.info.project, str(run_id), self.alloc)
                if c is not None:
                    costs.append(c)
        return costs

    def _fit_estimates(self, study: Any, overrides: list[list[str]]) -> tuple[int, str | None]:
        """Before any trial has finished, how many of the asked trials fit the budget by
        their own preflight estimate (training seconds x the job's CPUs or GPUs; the time
        limit where a config says too little), and why the rest do not."""
        if not self.info.budget or self.estimate is None or self._costs(study):
            return len(overrides), None
        seconds = self.estimate(overrides)
        keep, why = len(overrides), None
        for kind, limit in self.info.budget.items():
            total = 0.0
            for i, s in enumerate(seconds):
                per = s / 3600.0 * _per_hour(self.alloc, kind) if s is not None else None
                source = "preflight"
                if per is None:
                    per, source = _upper_bound(self.alloc, kind), "time limit"
                if per is None:
                    raise SearchError(
                        f"budget {kind}: trial {i} has no preflight step-time estimate (its "
                        "task has no estimate_model or no hardware.tflops and train.steps) "
                        "and the launcher no timeout_min to bound it: set one"
                    )
                if total + per > limit + 1e-12:
                    if i < keep:
                        keep = i
                        why = (
                            f"budget: 0 of {limit:g} {kind.replace('_', ' ')} used, the next "
                            f"trial is estimated at {per:.3g} ({source})"
                            if i == 0
                            else f"budget: {i} trial(s) estimated at {total:.3g} of {limit:g} "
                            f"{kind.replace('_', ' ')}, the next at {per:.3g} ({source})"
                        )
                    break
                total += per
        return keep, why


def _per_hour(alloc: Allocation, kind: str) -> float:
    return alloc.gpus if kind == "gpu_hours" else alloc.cpus


def _upper_bound(alloc: Allocation, kind: str) -> float | None:
    if alloc.timeout_h is None:
        return None
    return alloc.timeout_h * _per_hour(alloc, kind)


def _best(study: Any, optuna: Any) -> list[dict[str, Any]]:
    try:
        best = study.best_trials
    except ValueError:
        return []
    return [
        {"number": t.number, "values": t.values, "params": t.params,
         "run_id": t.user_attrs.get(RUN_ATTR)}
        for t in best
    ]  # fmt: skip
