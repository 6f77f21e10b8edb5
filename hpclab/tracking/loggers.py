"""Which training loggers ran in this process, for the warning about a run with no metrics.

A Lightning ``Trainer(logger=CSVLogger(...))`` or a Hugging Face ``Trainer`` reporting to
W&B writes its metrics where hpclab does not read them, and the run would end
``completed`` with an empty chart. The trainers' constructors are wrapped (when their
modules are imported, as the TensorBoard hooks are) to note the loggers they were given;
nothing else about them is changed.
"""

from __future__ import annotations

import functools
import threading
from types import ModuleType
from typing import Any

_seen: dict[str, None] = {}  # insertion-ordered set
_lock = threading.Lock()
_watching = False

# logger class -> what captures it (a logger hpclab reads needs no advice)
_CAPTURED = {"HpclabLogger", "TensorBoardLogger", "HpclabCallback", "TensorBoardCallback"}
_ADVICE = {
    "lightning": "add hpclab.integrations.lightning.HpclabLogger",
    "transformers": "add hpclab.integrations.transformers.HpclabCallback",
}


def note(name: str) -> None:
    """Remember that the logger ``name`` (``"lightning.CSVLogger"``) ran."""
    with _lock:
        _seen[name] = None


def seen() -> list[str]:
    """The loggers noted so far, in order."""
    with _lock:
        return list(_seen)


def reset() -> None:
    """Forget the loggers noted (a new run in the same process, tests)."""
    with _lock:
        _seen.clear()


def no_metrics_warning(run_id: str) -> str:
    """The one line said when run ``run_id`` completed without a single metric."""
    names = seen()
    if not names:
        return (
            f"run {run_id} completed with no metrics; loggers seen: none "
            "(log with run.log, a TensorBoard SummaryWriter or an hpclab integration)"
        )
    parts = []
    for name in names:
        family, _, cls = name.partition(".")
        advice = _ADVICE.get(family)
        if cls in _CAPTURED or advice is None:
            parts.append(name)
        else:
            parts.append(f"{name} (not captured: {advice})")
    return f"run {run_id} completed with no metrics; loggers seen: {', '.join(parts)}"


def watch() -> None:
    """Note the loggers of every Lightning and Hugging Face trainer built from now on."""
    global _watching
    if _watching:
        return
    _watching = True
    from hpclab.tracking import tensorboard

    tensorboard.add_patchers(
        {
            "lightning.pytorch.trainer.trainer": _patch_lightning,
            "pytorch_lightning.trainer.trainer": _patch_lightning,
            "transformers.trainer": _patch_transformers,
        }
    )


def _wrap_init(cls: Any, after: Any) -> None:
    if getattr(cls, "_hpclab_loggers_patched", False):
        return
    init = cls.__init__

    @functools.wraps(init)
    def patched_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        try:
            after(self)
        except Exception:  # noting loggers must never break a trainer
            pass

    cls.__init__ = patched_init
    cls._hpclab_loggers_patched = True


def _patch_lightning(module: ModuleType) -> None:
    def after(trainer: Any) -> None:
        for logger in getattr(trainer, "loggers", None) or []:
            note(f"lightning.{type(logger).__name__}")
            attach = getattr(logger, "_hpclab_attach", None)
            if callable(attach):  # HpclabLogger: its step budget comes from the trainer
                attach(trainer)

    _wrap_init(module.Trainer, after)


def _patch_transformers(module: ModuleType) -> None:
    def after(trainer: Any) -> None:
        callbacks = getattr(getattr(trainer, "callback_handler", None), "callbacks", [])
        reporters = [
            type(cb).__name__
            for cb in callbacks
            if type(cb).__module__.startswith(("transformers.integrations", "hpclab."))
        ]
        for name in reporters or ["Trainer"]:
            note(f"transformers.{name}")

    _wrap_init(module.Trainer, after)
