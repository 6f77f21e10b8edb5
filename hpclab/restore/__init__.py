"""Restore, rerun and reproduce runs from what they recorded.

* :mod:`hpclab.restore.tree`: ``hpclab restore``: the source tree back, verified;
* :mod:`hpclab.restore.rerun`: ``hpclab rerun``: restore and submit again, as a child;
* :mod:`hpclab.restore.repro`: ``hpclab repro``: rerun and compare metrics;
* :mod:`hpclab.restore.envbuild`: ``hpclab env build``: a virtualenv from the stored spec.
"""

from hpclab.restore.tree import RestoreReport, restore_run
from hpclab.restore.verify import Verification, verify_tree

__all__ = ["RestoreReport", "Verification", "restore_run", "verify_tree"]
