"""Hyperparameter search on Slurm: Optuna studies driven from the login node, each batch
of trials one array job (``python -m hpclab.launch -m hydra/sweeper=optuna ...``).

Inside a trial's job, :func:`report` hands the study an intermediate value; when the
study's pruner says the trial is not worth finishing it raises
:class:`~hpclab.errors.TrialPruned`, which ends the run ``completed`` and marked pruned::

    for epoch in range(cfg.epochs):
        loss = train_one_epoch()
        run.log({"val/loss": loss}, step=epoch)
        hpclab.search.report(loss, step=epoch)   # no-op outside a search
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from hpclab.errors import TrialPruned

_lock = threading.Lock()
_trial: Any = None  # (Optuna trial, study) of this job, opened on first report


def report(value: float, step: int) -> None:
    """Report ``value`` at ``step`` to this job's trial; raise TrialPruned if the study's
    pruner stops it. Does nothing when the job is not a trial of a search, or of a
    multi-objective one (Optuna's pruners judge one objective)."""
    from hpclab.search.driver import PRUNED_ATTR, TRIAL_ENV

    spec = os.environ.get(TRIAL_ENV)
    if not spec:
        return
    trial = _open(spec)
    if trial is None:  # a multi-objective study: Optuna prunes single objectives only
        return
    trial.report(float(value), int(step))
    if trial.should_prune():
        trial.set_user_attr(PRUNED_ATTR, int(step))
        raise TrialPruned(int(step))


def _open(spec: str) -> Any:
    global _trial
    with _lock:
        if _trial is not None and _trial[1] == spec:
            return _trial[0]
        import optuna
        from hydra.utils import instantiate

        from hpclab.search.study import journal_storage

        doc = json.loads(spec)
        pruner = instantiate(doc["pruner"]) if doc.get("pruner") else None
        study = optuna.load_study(
            study_name=doc["study"],
            storage=journal_storage(Path(doc["journal"])),
            pruner=pruner,
        )
        trial = (
            optuna.trial.Trial(study, int(doc["trial_id"])) if len(study.directions) == 1 else None
        )
        _trial = (trial, spec)
        return trial


__all__ = ["TrialPruned", "report"]
