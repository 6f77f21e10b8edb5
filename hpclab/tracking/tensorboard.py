"""Route TensorBoard and DeepSpeed monitor scalars into the current run.

Legacy code keeps calling ``SummaryWriter.add_scalar``/``add_scalars`` (torch's and
tensorboardX's) and DeepSpeed keeps its monitors; the values also land in the active
:class:`~hpclab.Run`. The event files are still written unless the run's
``tensorboard_events`` setting is off.

Importing torch costs seconds, so nothing is imported here: the classes are patched as
soon as their modules are imported (now, if they already are; otherwise through an import
hook), by whatever code imports them and however it imports them.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

_PATCHERS: dict[str, Callable[[ModuleType], None]] = {}
_lock = threading.Lock()
_installed = False
_local = threading.local()
_warned: set[str] = set()


def _current() -> Any:
    from hpclab.tracking.context import current_run

    return current_run()


def _log(run: Any, data: dict[str, Any], step: Any) -> None:
    from hpclab.errors import MetricError

    try:
        run.log(data, step=step)
    except MetricError as e:  # legacy code must not break because a value is odd
        key = str(e)
        if key not in _warned:
            _warned.add(key)
            print(f"hpclab: warning: not recorded: {e}", file=sys.stderr)


def _patch_writer_class(cls: Any) -> None:
    if getattr(cls, "_hpclab_patched", False):
        return
    add_scalar = cls.add_scalar
    add_scalars = cls.add_scalars

    @functools.wraps(add_scalar)
    def patched_add_scalar(
        self: Any, tag: str, scalar_value: Any, global_step: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        run = _current()
        if run is not None and not getattr(_local, "in_monitor", False):
            _log(run, {tag: scalar_value}, global_step)
            if not run.settings.tensorboard_events:
                return None
        return add_scalar(self, tag, scalar_value, global_step, *args, **kwargs)

    @functools.wraps(add_scalars)
    def patched_add_scalars(
        self: Any,
        main_tag: str,
        tag_scalar_dict: dict[str, Any],
        global_step: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        run = _current()
        if run is not None and not getattr(_local, "in_monitor", False):
            _log(run, {f"{main_tag}/{k}": v for k, v in tag_scalar_dict.items()}, global_step)
            if not run.settings.tensorboard_events:
                return None
        return add_scalars(self, main_tag, tag_scalar_dict, global_step, *args, **kwargs)

    cls.add_scalar = patched_add_scalar
    cls.add_scalars = patched_add_scalars
    cls._hpclab_patched = True


def _patch_torch_tb(module: ModuleType) -> None:
    _patch_writer_class(module.SummaryWriter)


def _patch_tensorboardx(module: ModuleType) -> None:
    cls = getattr(module, "SummaryWriter", None)
    if cls is not None:
        _patch_writer_class(cls)


def _patch_deepspeed_monitor(module: ModuleType) -> None:
    """``MonitorMaster.write_events`` fans out to DeepSpeed's TensorBoard, CSV, W&B and
    Comet monitors; take its events once, whichever monitors are enabled."""
    cls = getattr(module, "MonitorMaster", None)
    if cls is None or getattr(cls, "_hpclab_patched", False):
        return
    write_events = cls.write_events

    @functools.wraps(write_events)
    def patched_write_events(
        self: Any, event_list: Sequence[tuple[str, Any, Any]], *args: Any, **kwargs: Any
    ) -> Any:
        run = _current()
        if run is not None:
            for event in event_list:
                name, value, step = event[0], event[1], event[2]
                _log(run, {name: value}, step)
        _local.in_monitor = True  # its TensorBoard monitor must not log the events twice
        try:
            return write_events(self, event_list, *args, **kwargs)
        finally:
            _local.in_monitor = False

    cls.write_events = patched_write_events
    cls._hpclab_patched = True


_PATCHERS.update(
    {
        "torch.utils.tensorboard.writer": _patch_torch_tb,
        "tensorboardX.writer": _patch_tensorboardx,
        "deepspeed.monitor.monitor": _patch_deepspeed_monitor,
    }
)


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, patcher: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._patcher = patcher

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        try:
            self._patcher(module)
        except Exception as e:  # a changed upstream API must not break the user's import
            print(f"hpclab: warning: could not hook {module.__name__}: {e}", file=sys.stderr)


class _PatchingFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the modules we patch; every other import is untouched."""

    def find_spec(
        self, fullname: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        patcher = _PATCHERS.get(fullname)
        if patcher is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, patcher)
                return spec
        return None


class Patch:
    """Handle returned by :func:`patch`. The hooks are process-wide and route to whichever
    run is current, so releasing is a no-op kept for symmetry."""

    def release(self) -> None:
        return None


def patch(keep_events: bool = True) -> Patch:
    """Install the hooks (idempotent): patch loaded modules now, the others on import."""
    global _installed
    with _lock:
        if not _installed:
            sys.meta_path.insert(0, _PatchingFinder())
            _installed = True
        for name, patcher in _PATCHERS.items():
            module = sys.modules.get(name)
            if module is not None:
                patcher(module)
    return Patch()
