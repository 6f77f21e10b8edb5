"""The node side: what runs inside a training job."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpclab.lazy import lazy_exports

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


__getattr__ = lazy_exports(__name__, _LAZY)
