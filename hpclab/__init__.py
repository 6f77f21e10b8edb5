"""hpclab: experiment tracking, Slurm sweeps and a lab website, with no server.

import hpclab
with hpclab.Run(project="demo", config={"lr": 1e-3}) as run:
    run.log({"train/loss": 0.3}, step=0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpclab.errors import HpclabError, MetricError, RunNotFound
from hpclab.lazy import lazy_exports

if TYPE_CHECKING:
    from hpclab.store import RunStatus, Store
    from hpclab.tracking import Run, current_run, init, read_metrics

__version__ = "0.1.0"

# imported on first use (PEP 562): ``import hpclab`` stays cheap for the command line,
# which must not pay for NumPy and the tracking code it does not run
_LAZY = {
    "RunStatus": "hpclab.store",
    "Store": "hpclab.store",
    "Run": "hpclab.tracking",
    "current_run": "hpclab.tracking",
    "init": "hpclab.tracking",
    "read_metrics": "hpclab.tracking",
}


__getattr__ = lazy_exports(__name__, _LAZY)


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
