"""The node side: what runs inside a training job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpclab.tracking.metrics import MetricSeries, read_metrics
    from hpclab.tracking.run import Run, current_run, init

__all__ = ["MetricSeries", "Run", "current_run", "init", "read_metrics"]

# imported on first use (PEP 562): the command line imports tracking helpers (logs, the
# secret scanner) without NumPy and the Run machinery
_LAZY = {
    "MetricSeries": "hpclab.tracking.metrics",
    "read_metrics": "hpclab.tracking.metrics",
    "Run": "hpclab.tracking.run",
    "current_run": "hpclab.tracking.run",
    "init": "hpclab.tracking.run",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpclab.tracking' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
