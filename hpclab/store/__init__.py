"""The on-disk store: layout, run ids, run records, atomic writes."""

from hpclab.store.layout import DEFAULT_PROJECT, RunPaths, Store
from hpclab.store.record import FINAL_STATUSES, RunRecord, RunStatus

__all__ = ["DEFAULT_PROJECT", "FINAL_STATUSES", "RunPaths", "RunRecord", "RunStatus", "Store"]
