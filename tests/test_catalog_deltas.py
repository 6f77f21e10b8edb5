"""Publishing what changed: the run-keyed tables as a base + a delta of the changed runs,
the knowledge layer left to the next full pass when runs only progressed, and a restart
with nothing changed that publishes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_catalog import make_run
from test_catalog_segments import tables

import hpclab.catalog.indexer as indexer_module
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import Indexer
from hpclab.catalog.knowledge import Knowledge
from hpclab.store import Store


def _manifest(root: Path) -> dict[str, Any]:
    return json.loads(Store(root).catalog_manifest.read_text())


def _cold(root: Path) -> dict[str, list[str]]:
    """The tables a cold index of the store gives (the catalog rebuilt aside)."""
    store = Store(root)
    shutil.rmtree(store.catalog_dir)
    with Indexer(store) as ix:
        ix.index()
    return tables(root)


@pytest.fixture
def computes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the knowledge layer computed (a list, appended to per call)."""
    calls: list[int] = []
    real = Knowledge.compute

    def spy(self: Knowledge, projects: Any) -> Any:
        calls.append(len(projects))
        return real(self, projects)

    monkeypatch.setattr(Knowledge, "compute", spy)
    return calls


def test_a_changed_run_is_published_as_a_delta(store_root: Path, computes: list[int]) -> None:
    runs = [make_run(store_root, f"r{i}", 5, lr=0.1 * (i + 1), finish=i > 0) for i in range(4)]
    store = Store(store_root)
    with Indexer(store) as ix:
        ix.index()
        base = _manifest(store_root)
        assert base["delta_keys"] is None and base["deltas"] == {}
        computes.clear()
        for s in range(5, 9):
            runs[0].log({"train/loss": 0.25}, step=s)
        runs[0].flush()
        report = ix.index([("p", "r0")])  # what the watcher asks
        assert report.indexed == 1 and report.published
        assert computes == [], "a running run's progress leaves the knowledge to a full pass"
        after = _manifest(store_root)
        assert after["tables"]["runs"] == base["tables"]["runs"], "the base is not rewritten"
        con = connect(store)
        keys = con.execute(
            "SELECT * FROM read_parquet(?)", [str(store.catalog_dir / after["delta_keys"])]
        )
        assert keys.fetchall() == [("p", "r0")]
        delta = store.catalog_dir / after["deltas"]["metric_summary"]
        assert {
            r[0] for r in con.execute("SELECT run_id FROM read_parquet(?)", [str(delta)]).fetchall()
        } == {"r0"}
        assert con.execute(
            "SELECT n, last FROM metric_summary WHERE run_id = 'r0' AND name = 'train/loss'"
        ).fetchone() == (9, 0.25)
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (4,)
        ix.index()  # the full pass brings the knowledge layer up to date
        assert computes == [1]
        warm = tables(store_root)
    # a restart keeps the deltas: nothing read, nothing published, nothing computed
    computes.clear()
    with Indexer(store) as ix:
        report = ix.index()
    assert (report.indexed, report.published, computes) == (0, False, [])
    assert tables(store_root) == warm
    runs[0].finish()
    with Indexer(store) as ix:
        ix.index([("p", "r0")])
        assert computes == [1], "a run that ended changes the knowledge at once"
        warm = tables(store_root)
    assert _cold(store_root) == warm


def test_many_changed_runs_rewrite_the_base(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [make_run(store_root, f"r{i}", 5, finish=False) for i in range(4)]
    monkeypatch.setattr(indexer_module, "DELTA_MIN", 2)
    with Indexer(Store(store_root)) as ix:
        ix.index()
        for run in runs[:2]:
            run.log({"train/loss": 0.5}, step=5)
            run.flush()
        ix.index()
        assert _manifest(store_root)["delta_keys"], "two changed runs: a delta"
        runs[2].log({"train/loss": 0.5}, step=5)
        runs[2].flush()
        ix.index()
        manifest = _manifest(store_root)
        assert (manifest["delta_keys"], manifest["deltas"]) == (None, {}), "three: a new base"
        warm = tables(store_root)
    assert _cold(store_root) == warm
    for run in runs:
        run.finish()


def test_a_removed_run_leaves_every_table(store_root: Path) -> None:
    runs = [make_run(store_root, f"r{i}", 5, lr=0.1 * (i + 1)) for i in range(3)]
    store = Store(store_root)
    with Indexer(store) as ix:
        ix.index()
        shutil.rmtree(runs[1].paths.dir)
        ix.index()
        manifest = _manifest(store_root)
        assert manifest["delta_keys"], "the removal is a delta"
        con = connect(store)
        for table in ("runs", "features", "metric_summary", "metrics"):
            assert con.execute(f"SELECT count(*) FROM {table} WHERE run_id = 'r1'").fetchone() == (
                0,
            ), table
        warm = tables(store_root)
    assert _cold(store_root) == warm


def test_the_watchers_pass_publishes_runs_before_the_knowledge_layer(
    store_root: Path, computes: list[int]
) -> None:
    """``index(runs, knowledge=False)``: a new run and its points are in the catalog at
    once; its seed group only after ``update_knowledge``, which then agrees with a cold
    index."""
    make_run(store_root, "r0", 5)
    store = Store(store_root)
    with Indexer(store) as ix:
        ix.index()
        computes.clear()
        make_run(store_root, "r1", 7, lr=0.2)
        report = ix.index([("p", "r1")], knowledge=False)
        assert report.published and computes == []
        con = connect(store)
        assert con.execute("SELECT count(*) FROM metrics WHERE run_id = 'r1'").fetchone() == (14,)
        assert con.execute("SELECT status FROM runs WHERE run_id = 'r1'").fetchone() == (
            "completed",
        )
        grouped = "SELECT count(*) FROM seed_groups WHERE run_id = 'r1'"
        assert con.execute(grouped).fetchone() == (0,), "the knowledge layer waits"
        assert ix.knowledge_waiting
        assert ix.update_knowledge().published and computes == [1]
        assert not ix.knowledge_waiting
        assert connect(store).execute(grouped).fetchone() == (1,)
        assert not ix.update_knowledge().published, "nothing waits: nothing published"
        warm = tables(store_root)
    assert _cold(store_root) == warm


def test_a_running_runs_status_goes_stale_without_its_files_changing(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statuses are kept per run between passes; a running run's is recomputed each pass
    (a heartbeat that stopped makes it ``lost``), the others' only when their rows change."""
    import time

    make_run(store_root, "done", 3)
    running = make_run(store_root, "live", 3, finish=False)
    store = Store(store_root)
    with Indexer(store) as ix:
        ix.index()
        status = "SELECT run_id, status FROM runs ORDER BY run_id"
        assert connect(store).execute(status).fetchall() == [
            ("done", "completed"),
            ("live", "running"),
        ]
        later = time.time() + 10 * 3600  # long after the last heartbeat
        monkeypatch.setattr(indexer_module.time, "time", lambda: later)
        assert ix.index([]).published, "nothing read, but a status changed"
        assert connect(store).execute(status).fetchall() == [
            ("done", "completed"),
            ("live", "lost"),
        ]
        assert not ix.index([]).published
    running.finish()
