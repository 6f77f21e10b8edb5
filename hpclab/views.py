"""Read-only views of the store shared by the CLI (and later the catalog): how a run's
status reads to a person, and one summary row per run."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from hpclab.errors import StoreError
from hpclab.store import RunRecord, RunStatus, Store


def effective_status(record: RunRecord) -> str:
    """The stored status, except that a ``running`` run with a stale heartbeat is ``lost``
    (its process died without a word: SIGKILL, node failure) until the scheduler says more."""
    if record.status is RunStatus.RUNNING and record.is_stale():
        return "lost"
    return record.status.value


def run_rows(store: Store, project: str | None = None) -> Iterator[dict[str, Any]]:
    """One dict per readable run; an unreadable run is reported on stderr and skipped."""
    for proj, paths in store.iter_runs(project):
        try:
            record = store.read_record(paths)
        except StoreError as e:
            print(f"hpclab: warning: skipped {paths.dir}: {e}", file=sys.stderr)
            continue
        yield {
            "project": proj,
            "id": record.id,
            "status": effective_status(record),
            "name": record.name,
            "step": record.step if record.step >= 0 else None,
            "started_at": (record.started_at or "")[:19].replace("T", " "),
            "tags": record.tags,
            "summary": record.summary,
        }
