"""One definition per concept: every reader of a run's status (``hpclab runs show``, the
catalog's ``runs.status``, the Training page's live data) gives the same answer for the same
record, and the status vocabulary has one source."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import Indexer
from hpclab.cli import cli
from hpclab.site.livedoc import run_info
from hpclab.store import RunRecord, RunStatus, Store
from hpclab.store.record import utcnow_iso

STALE = 3600.0  # seconds: far past 3 heartbeat intervals + grace

# (name, stored status, heartbeat age or None (never beat), scheduler state recorded by
# ``hpclab status`` or None, the status every reader shows)
CASES = [
    ("completed", RunStatus.COMPLETED, STALE, None, "completed"),
    ("fresh", RunStatus.RUNNING, 0.0, None, "running"),
    ("fresh-timeout", RunStatus.RUNNING, 0.0, "TIMEOUT", "running"),
    ("stale", RunStatus.RUNNING, STALE, None, "lost"),
    ("never-beat", RunStatus.RUNNING, None, None, "lost"),
    ("stale-was-running", RunStatus.RUNNING, STALE, "RUNNING", "lost"),
    ("stale-timeout", RunStatus.RUNNING, STALE, "TIMEOUT", "timeout"),
    ("stale-cancelled", RunStatus.RUNNING, STALE, "CANCELLED by 0", "cancelled"),
    ("stale-oom", RunStatus.RUNNING, STALE, "OUT_OF_MEMORY", "failed"),
    ("stale-completed", RunStatus.RUNNING, STALE, "COMPLETED", "failed"),
    ("queued", RunStatus.QUEUED, None, "PENDING", "queued"),
    ("planned", RunStatus.PLANNED, None, None, "planned"),
    ("preempted", RunStatus.PREEMPTED, STALE, "REQUEUED", "preempted"),
    ("failed", RunStatus.FAILED, STALE, "COMPLETED", "failed"),
    ("timeout", RunStatus.TIMEOUT, STALE, "TIMEOUT", "timeout"),
]


def _write_cases(store: Store) -> dict[str, str]:
    """name -> run id, one run per case in project ``p``."""
    now = time.time()
    ids = {}
    for name, status, beat_age, state, _ in CASES:
        paths = store.create_run_dir("p")
        record = RunRecord(id=paths.id, project="p", status=status, name=name)
        record.started_at = utcnow_iso(now - 2 * STALE)
        if beat_age is not None:
            record.heartbeat_at = utcnow_iso(now - beat_age)
        if state is not None:
            record.scheduler_state = {"state": state, "checked_at": utcnow_iso(now)}
        store.write_record(paths, record)
        ids[name] = paths.id
    return ids


def _cli_status(store: Store, run_id: str) -> str:
    out = CliRunner().invoke(cli, ["--store", str(store.root), "runs", "show", run_id])
    assert out.exit_code == 0, out.output
    line = next(ln for ln in out.output.splitlines() if ln.startswith("status "))
    return line.split()[1]


def test_every_reader_shows_the_same_status(store_root: Path) -> None:
    store = Store(store_root)
    ids = _write_cases(store)
    with Indexer(store) as ix:
        ix.index()
    catalog = dict(connect(store_root).execute("SELECT name, status FROM runs").fetchall())
    want = {name: expected for name, *_, expected in CASES}
    cli_says = {name: _cli_status(store, run_id) for name, run_id in ids.items()}
    live_says = {
        name: run_info(store, ("p", run_id), {}, None)["status"] for name, run_id in ids.items()
    }
    assert cli_says == want
    assert catalog == want
    assert live_says == want


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_effective_status_cases(name: str) -> None:
    from hpclab.catalog.indexer import row_status
    from hpclab.store.views import status_view

    _, status, beat_age, state, expected = next(c for c in CASES if c[0] == name)
    now = time.time()
    record = RunRecord(id="r", project="p", status=status)
    record.heartbeat_at = None if beat_age is None else utcnow_iso(now - beat_age)
    record.scheduler_state = None if state is None else {"state": state}
    row = {
        "stored_status": status.value,
        "heartbeat_at": record.heartbeat_at,
        "heartbeat_interval": record.heartbeat_interval,
        "scheduler_state": state,
    }
    stale = status is RunStatus.RUNNING and (beat_age is None or beat_age > 100)
    assert status_view(record, now) == (expected, stale)
    assert row_status(row, now) == (expected, stale)
