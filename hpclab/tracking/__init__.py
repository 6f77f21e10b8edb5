"""The node side: what runs inside a training job."""

from hpclab.tracking.metrics import MetricSeries, read_metrics
from hpclab.tracking.run import Run, current_run, init

__all__ = ["MetricSeries", "Run", "current_run", "init", "read_metrics"]
