"""``HpclabLogger``: a Lightning logger that records into an hpclab run.

::

    from hpclab.integrations.lightning import HpclabLogger

    trainer = L.Trainer(max_steps=1000, logger=HpclabLogger(project="mnist"))
    trainer.fit(model, data)

- ``log_metrics`` -> ``run.log(metrics, step=step)``, names as Lightning gives them.
- ``log_hyperparams`` (``save_hyperparameters()``, a dict, ``Namespace`` or
  ``DictConfig``) -> ``config.yaml`` under ``hparams``.
- ``after_save_checkpoint`` -> every checkpoint the ``ModelCheckpoint`` keeps (top-k and
  ``last``) in ``artifacts.json`` by reference, as ``checkpoints/<file name>``; those it
  deleted since are dropped from the manifest.
- the trainer's step budget (``max_steps``, else ``max_epochs`` times the batches per
  epoch) -> ``run.total_steps``.
- ``save_dir`` is the run directory, so checkpoints land in the run's ``checkpoints/``.

Under an hpclab launcher (or ``hpclab run``) it records into the current run and leaves
ending it to the launcher; otherwise it opens a run (``project``, ``name``, ``store``)
and ends it when the trainer finalizes (``success`` -> completed, ``failed`` -> failed).
"""

from __future__ import annotations

import os
import weakref
from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from hpclab.integrations._run import RunHandle, set_total_steps
from hpclab.store import RunStatus, Store
from hpclab.tracking.run import Run

_FINAL = {"success": RunStatus.COMPLETED, "failed": RunStatus.FAILED}


class HpclabLogger(Logger):
    """A Lightning ``Logger`` writing metrics, hyperparameters and checkpoint references
    into an hpclab run.

    Args:
        project, name, store: the run to open when there is no current run (ignored
            under a launcher); see :class:`hpclab.Run`.
        run: record into this run.
        hash_checkpoints: compute each checkpoint's sha256 (reads the file once).
        run_kwargs: more arguments for :class:`hpclab.Run` when it opens one.
    """

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        store: str | os.PathLike[str] | Store | None = None,
        *,
        run: Run | None = None,
        hash_checkpoints: bool = True,
        **run_kwargs: Any,
    ) -> None:
        super().__init__()
        self._handle = RunHandle(run, project, name, store, run_kwargs)
        self._hash = hash_checkpoints
        self._trainer: Any = None
        self._steps_set = False
        if getattr(rank_zero_only, "rank", 0) == 0:
            _ = self._handle.run  # open it now: its hooks note the trainer that follows

    # -- identity (what Lightning builds paths from) ---------------------------------------
    @property
    def run(self) -> Run:
        """The hpclab run this logger records into."""
        return self._handle.run

    @property
    def name(self) -> str:
        # "" and "" make ModelCheckpoint's default directory <save_dir>/checkpoints
        return ""

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str | None:
        """The run directory (Lightning puts default checkpoints in its ``checkpoints/``);
        None on a rank that does not record (Lightning broadcasts rank 0's directory)."""
        paths = self.run.paths
        return str(paths.dir) if paths is not None else None

    @property
    def log_dir(self) -> str | None:
        return self.save_dir

    @property
    def experiment(self) -> Run:
        return self.run

    # -- hooks -----------------------------------------------------------------------------
    def _hpclab_attach(self, trainer: Any) -> None:
        """Called by hpclab's hook on ``Trainer.__init__`` with the trainer using this
        logger (for its step budget)."""
        self._trainer = weakref.ref(trainer)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        run = self._handle.active()
        if not self._steps_set:
            self._set_total_steps(run)
        run.log(metrics, step)

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace | Any, *args: Any, **kwargs: Any
    ) -> None:
        if params is None:
            return
        if isinstance(params, Namespace):
            params = vars(params)
        self._handle.active().update_config(params, key="hparams")

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        kept = set(getattr(checkpoint_callback, "best_k_models", {}) or {})
        for attr in ("last_model_path", "best_model_path"):
            path = getattr(checkpoint_callback, attr, "")
            if path:
                kept.add(path)
        run = self._handle.active()
        for path in sorted(str(p) for p in kept):
            if Path(path).is_file():
                run.log_artifact_reference(
                    path, name=f"checkpoints/{Path(path).name}", hash=self._hash
                )
        run.prune_artifact_references("checkpoints/")  # rotated out by top-k

    @rank_zero_only
    def save(self) -> None:
        self.run.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        # ModelCheckpoint deletes a rotated-out file after telling the logger of the new one
        self.run.prune_artifact_references("checkpoints/")
        final = _FINAL.get(status)
        if final is None:  # "finished" before a requeue: the run goes on in the next job
            self.run.flush()
        else:
            self._handle.finish(final)

    def _set_total_steps(self, run: Run) -> None:
        trainer = self._trainer() if self._trainer is not None else None
        if trainer is None:
            return
        self._steps_set = True
        steps: Any = None
        try:
            steps = trainer.estimated_stepping_batches
        except Exception:  # no dataloader yet, an iterable of unknown length
            steps = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if steps is not None and steps != float("inf"):
            set_total_steps(run, steps)
