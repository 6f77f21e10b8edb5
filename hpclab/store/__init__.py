"""The on-disk store: layout, run ids, run records, atomic writes."""

from hpclab.store.layout import DEFAULT_PROJECT, RunPaths, Store
from hpclab.store.record import FINAL_STATUSES, RunRecord, RunStatus
from hpclab.store.sweep import SweepPoint, SweepRecord

__all__ = [
    "DEFAULT_PROJECT",
    "FINAL_STATUSES",
    "RunPaths",
    "RunRecord",
    "RunStatus",
    "Store",
    "SweepPoint",
    "SweepRecord",
]
