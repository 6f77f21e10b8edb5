"""hpclab: experiment tracking, Slurm sweeps and a lab website, with no server.

import hpclab
with hpclab.Run(project="demo", config={"lr": 1e-3}) as run:
    run.log({"train/loss": 0.3}, step=0)
"""

from hpclab.errors import HpclabError, MetricError, RunNotFound
from hpclab.store import RunStatus, Store
from hpclab.tracking import Run, current_run, init, read_metrics

__version__ = "0.1.0"

__all__ = [
    "HpclabError",
    "MetricError",
    "Run",
    "RunNotFound",
    "RunStatus",
    "Store",
    "__version__",
    "current_run",
    "init",
    "read_metrics",
]
