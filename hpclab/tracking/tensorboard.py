"""Route TensorBoard and DeepSpeed monitor scalars into the current run.

Legacy code keeps calling ``SummaryWriter.add_scalar``/``add_scalars`` (torch's and
tensorboardX's) and DeepSpeed keeps its monitors; the values also land in the active
:class:`~hpclab.Run`. ``add_text`` goes to the run's text log (``run.log_text``) and
``add_hparams`` to its config under ``hparams`` (its metric dict to the run's metrics).
The event files are still written unless the run's ``tensorboard_events`` setting is off.
The hooks take values only for a run whose ``sync_tensorboard`` setting is on.

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
    """The current run, if it takes TensorBoard's values (``sync_tensorboard``)."""
    from hpclab.tracking.context import current_run

    run = current_run()
    if run is None or not run.settings.sync_tensorboard:
        return None
    return run


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
    _patch_text_and_hparams(cls)
    _patch_media(cls)
    cls._hpclab_patched = True


def _patch_text_and_hparams(cls: Any) -> None:
    add_text = getattr(cls, "add_text", None)
    add_hparams = getattr(cls, "add_hparams", None)
    if add_text is not None:

        @functools.wraps(add_text)
        def patched_add_text(
            self: Any, tag: str, text_string: str, global_step: Any = None, *a: Any, **kw: Any
        ) -> Any:
            run = _current()
            if run is not None:
                step = None if global_step is None else int(global_step)
                run.log_text(tag, str(text_string), step)
                if not run.settings.tensorboard_events:
                    return None
            return add_text(self, tag, text_string, global_step, *a, **kw)

        cls.add_text = patched_add_text
    if add_hparams is not None:

        @functools.wraps(add_hparams)
        def patched_add_hparams(
            self: Any, hparam_dict: Any, metric_dict: Any, *a: Any, **kw: Any
        ) -> Any:
            run = _current()
            if run is None:
                return add_hparams(self, hparam_dict, metric_dict, *a, **kw)
            run.update_config(dict(hparam_dict or {}), key="hparams")
            step = kw.get("global_step")
            _log(run, dict(metric_dict or {}), None if step is None else int(step))
            if not run.settings.tensorboard_events:
                return None
            # the writer's own add_scalar calls for metric_dict must not log them twice
            _local.in_monitor = True
            try:
                return add_hparams(self, hparam_dict, metric_dict, *a, **kw)
            finally:
                _local.in_monitor = False

        cls.add_hparams = patched_add_hparams


def _media(run: Any, fn: Any, *args: Any) -> None:
    """One media call of legacy code into the run: a value hpclab cannot store is a
    warning (once per message), never the training stopped."""
    from hpclab.errors import MediaError

    try:
        fn(*args)
    except MediaError as e:
        key = str(e)
        if key not in _warned:
            _warned.add(key)
            print(f"hpclab: warning: not recorded: {e}", file=sys.stderr)


def _hwc(img: Any, dataformats: str) -> Any:
    """An image in TensorBoard's ``dataformats`` (CHW, HWC, HW) as HxW[xC]."""
    import numpy as np

    from hpclab.tracking.media import _to_numpy

    arr = np.asarray(_to_numpy(img))
    fmt = dataformats.upper()
    if fmt == "CHW" and arr.ndim == 3:
        return np.moveaxis(arr, 0, -1)
    return arr


MAX_BATCH_IMAGES = 16  # add_images: the first this many of a batch, as TAG/0, TAG/1, ...


def _patch_media(cls: Any) -> None:
    """``add_image``, ``add_images``, ``add_figure`` and ``add_histogram`` into the run's
    media (:meth:`hpclab.Run.log_image`, :meth:`~hpclab.Run.log_histogram`)."""

    def wrap(name: str, record: Any) -> None:
        original = getattr(cls, name, None)
        if original is None:
            return

        @functools.wraps(original)
        def patched(
            self: Any, tag: str, value: Any, global_step: Any = None, *a: Any, **kw: Any
        ) -> Any:
            run = _current()
            if run is not None:
                step = None if global_step is None else int(global_step)
                record(run, str(tag), value, step, a, kw)
                if not run.settings.tensorboard_events:
                    if name == "add_figure" and kw.get("close", True):
                        _close_figure(value)
                    return None
            return original(self, tag, value, global_step, *a, **kw)

        setattr(cls, name, patched)

    def image(
        run: Any, tag: str, value: Any, step: Any, a: tuple[Any, ...], kw: dict[str, Any]
    ) -> None:
        fmt = kw.get("dataformats") or (a[1] if len(a) > 1 else "CHW")
        _media(run, run.log_image, tag, _hwc(value, fmt), step)

    def images(
        run: Any, tag: str, value: Any, step: Any, a: tuple[Any, ...], kw: dict[str, Any]
    ) -> None:
        import numpy as np

        from hpclab.tracking.media import _to_numpy

        fmt = str(kw.get("dataformats") or (a[1] if len(a) > 1 else "NCHW")).upper()
        batch = np.asarray(_to_numpy(value))
        if fmt == "NHWC":
            batch = np.moveaxis(batch, -1, 1)
        for i, img in enumerate(batch[:MAX_BATCH_IMAGES]):
            _media(run, run.log_image, f"{tag}/{i}", _hwc(img, "CHW"), step)

    def figure(
        run: Any, tag: str, value: Any, step: Any, a: tuple[Any, ...], kw: dict[str, Any]
    ) -> None:
        import io

        figs = value if isinstance(value, list) else [value]
        for i, fig in enumerate(figs):
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            name = tag if len(figs) == 1 else f"{tag}/{i}"
            _media(run, run.log_image, name, buf.getvalue(), step)

    def histogram(
        run: Any, tag: str, value: Any, step: Any, a: tuple[Any, ...], kw: dict[str, Any]
    ) -> None:
        _media(run, run.log_histogram, tag, value, step)

    wrap("add_image", image)
    wrap("add_images", images)
    wrap("add_figure", figure)
    wrap("add_histogram", histogram)


def _close_figure(fig: Any) -> None:
    try:
        import matplotlib.pyplot as plt

        for f in fig if isinstance(fig, list) else [fig]:
            plt.close(f)
    except ImportError:
        pass


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


_TB_MODULES = ("torch.utils.tensorboard.writer", "tensorboardX.writer", "deepspeed.monitor.monitor")
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


def add_patchers(patchers: dict[str, Callable[[ModuleType], None]]) -> None:
    """Patch these modules too (hpclab.tracking.loggers: which trainers ran), now if they
    are loaded, else when they are imported."""
    with _lock:
        _PATCHERS.update(patchers)
        _install_finder()
        for name, patcher in patchers.items():
            module = sys.modules.get(name)
            if module is not None:
                _apply(patcher, module)


def _install_finder() -> None:
    global _installed
    if not _installed:
        sys.meta_path.insert(0, _PatchingFinder())
        _installed = True


def _apply(patcher: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        patcher(module)
    except Exception as e:  # a changed upstream API must not break the user's run
        print(f"hpclab: warning: could not hook {module.__name__}: {e}", file=sys.stderr)


def patch(keep_events: bool = True) -> Patch:
    """Install the hooks (idempotent): patch loaded modules now, the others on import."""
    with _lock:
        _install_finder()
        for name in _TB_MODULES:
            module = sys.modules.get(name)
            if module is not None:
                _apply(_PATCHERS[name], module)
    return Patch()
