"""``HpclabCallback``: a Hugging Face ``TrainerCallback`` that records into an hpclab run.

::

    from hpclab.integrations.transformers import HpclabCallback

    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[HpclabCallback()])
    trainer.train()

- ``on_train_begin``: ``TrainingArguments.to_dict()`` -> ``config.yaml`` under
  ``training_args``, ``model.config.to_dict()`` under ``model_config``;
  ``state.max_steps`` -> ``run.total_steps``.
- ``on_log``: every numeric value -> ``run.log(logs, step=state.global_step)`` with the
  names the Trainer gives them (``loss``, ``learning_rate``, ``grad_norm``, ``epoch``,
  ``eval_loss``, ``train_runtime``...): no prefix is added, ``eval_`` already tells
  evaluation from training.
- ``on_save``: the files of ``<output_dir>/checkpoint-<step>/`` -> ``artifacts.json`` by
  reference, as ``checkpoints/checkpoint-<step>/<file>`` (those ``save_total_limit``
  deleted are dropped from the manifest).
- ``on_train_end``: ends the run if the callback opened it (completed); under an hpclab
  launcher it only flushes, the launcher ends the run.

Only the main process (``state.is_world_process_zero``) records.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from hpclab.integrations._run import RunHandle, set_total_steps
from hpclab.store import RunStatus, Store
from hpclab.tracking.run import Run

CHECKPOINT_PREFIX = "checkpoint"  # transformers' PREFIX_CHECKPOINT_DIR


class HpclabCallback(TrainerCallback):
    """Record a Hugging Face ``Trainer``'s logs, arguments, model config and checkpoints.

    Args:
        project, name, store: the run to open when there is no current run (ignored
            under a launcher); see :class:`hpclab.Run`.
        run: record into this run.
        hash_checkpoints: compute each checkpoint file's sha256 (reads it once).
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
        self._handle = RunHandle(run, project, name, store, run_kwargs)
        self._hash = hash_checkpoints

    @property
    def run(self) -> Run:
        """The hpclab run this callback records into."""
        return self._handle.run

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        run = self._handle.active()
        run.update_config(args.to_dict(), key="training_args")
        model = kwargs.get("model")
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "to_dict"):
            run.update_config(config.to_dict(), key="model_config")
        set_total_steps(run, state.max_steps)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        numeric = {
            k: v for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if numeric:
            self._handle.active().log(numeric, step=int(state.global_step))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        folder = f"{CHECKPOINT_PREFIX}-{state.global_step}"
        ckpt = Path(args.output_dir) / folder
        if not ckpt.is_dir():
            return
        run = self._handle.active()
        for file in sorted(p for p in ckpt.rglob("*") if p.is_file()):
            rel = file.relative_to(ckpt).as_posix()
            run.log_artifact_reference(file, name=f"checkpoints/{folder}/{rel}", hash=self._hash)
        run.prune_artifact_references("checkpoints/")  # save_total_limit rotated them out

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._handle.finish(RunStatus.COMPLETED)
