"""Hyperparameter search on Slurm: Optuna studies driven from the login node, each batch
of trials one array job (``python -m hpclab.launch -m hydra/sweeper=optuna ...``).

Inside a trial's job, :func:`report` hands the study an intermediate value; when the
study's pruner says the trial is not worth finishing it raises
:class:`~hpclab.errors.TrialPruned`, which ends the run ``completed`` and marked pruned::

    for epoch in range(cfg.epochs):
        loss = train_one_epoch()
        run.log({"val/loss": loss}, step=epoch)
        hpclab.search.report(loss, step=epoch)   # no-op outside a search

When the study's objective is a metric the task logs (``hydra.sweeper.objective=
val/loss``), the launcher reports it from ``run.log`` by itself: no call is needed.
"""

from __future__ import annotations

from hpclab.errors import TrialPruned
from hpclab.launch.trial import report

__all__ = ["TrialPruned", "report"]
