"""A job's side of a hyperparameter search: the trial it evaluates, named by the search
driver in ``HPCLAB_TRIAL`` (the study's journal, the trial, its pruner, its objective),
and the intermediate values it reports so the study's pruner can stop it early.

Here, below the search driver (:mod:`hpclab.search`), because the launcher's task
wrapper reports a trial's objective metric from ``run.log`` on its own: a job whose
objective is ``val/loss`` is pruned from the values it logs, with no code of its own.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hpclab.errors import TrialPruned

TRIAL_ENV = "HPCLAB_TRIAL"  # the job's trial: {"journal", "study", "trial_id", ...}
PRUNED_ATTR = "hpclab_pruned_at"  # the trial's user attribute: the step it was pruned at
NOT_METRICS = ("return", "gpu_hours", "cpu_hours")  # objectives no run.log call carries

_lock = threading.Lock()
_trial: Any = None  # (Optuna trial or None, spec) of this job, opened on first report


def trial_spec() -> dict[str, Any] | None:
    """This job's trial, or None outside a search."""
    spec = os.environ.get(TRIAL_ENV)
    return json.loads(spec) if spec else None


def report(value: float, step: int) -> None:
    """Report ``value`` at ``step`` to this job's trial; raise TrialPruned if the study's
    pruner stops it. Does nothing when the job is not a trial of a search, or of a
    multi-objective one (Optuna's pruners judge one objective)."""
    spec = os.environ.get(TRIAL_ENV)
    if not spec:
        return
    trial = _open(spec)
    if trial is None:
        return
    trial.report(float(value), int(step))
    if trial.should_prune():
        trial.set_user_attr(PRUNED_ATTR, int(step))
        raise TrialPruned(int(step))


def reporting_log(log: Callable[..., int]) -> Callable[..., int]:
    """``run.log`` that also reports the trial's objective metric when it is logged (the
    study's first objective, a metric name): pruning from what the task logs anyway."""
    spec = trial_spec()
    objective = spec.get("objective") if spec else None
    if not objective or objective in NOT_METRICS:
        return log

    def log_and_report(data: Mapping[str, Any], step: int | None = None, **kw: Any) -> int:
        used = log(data, step, **kw)
        value = data.get(objective) if isinstance(data, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            report(float(value), used)
        return used

    return log_and_report


def _open(spec: str) -> Any:
    global _trial
    with _lock:
        if _trial is not None and _trial[1] == spec:
            return _trial[0]
        import optuna
        from hydra.utils import instantiate
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        doc = json.loads(spec)
        pruner = instantiate(doc["pruner"]) if doc.get("pruner") else None
        storage = JournalStorage(JournalFileBackend(str(Path(doc["journal"]))))
        study = optuna.load_study(study_name=doc["study"], storage=storage, pruner=pruner)
        single = len(study.directions) == 1
        trial = optuna.trial.Trial(study, int(doc["trial_id"])) if single else None
        _trial = (trial, spec)
        return trial


__all__ = ["PRUNED_ATTR", "TRIAL_ENV", "report", "reporting_log", "trial_spec"]
