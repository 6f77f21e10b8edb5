"""The store layout, run ids under concurrency, key claims, atomic writes."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpclab.errors import RunExists, RunNotFound, StoreError
from hpclab.store import RunRecord, RunStatus, Store, SweepPoint, SweepRecord, ids, layout
from hpclab.store.atomic import read_json, write_json_atomic

N_PROCS = 64


def _create_runs(root: str, barrier: mp.synchronize.Barrier, n: int, q: mp.Queue) -> None:  # type: ignore[name-defined]
    import hpclab

    barrier.wait()
    out = []
    for _ in range(n):
        run = hpclab.Run(project="p", store=root, settings={"snapshot_env": False})
        run.finish()
        out.append(run.id)
    q.put(out)


def test_run_ids_unique_across_64_concurrent_processes(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 4-letter alphabet leaves 256 ids per second: collisions are certain, and must be
    # resolved by the atomic mkdir, not by luck.
    monkeypatch.setattr(ids, "ALPHABET", "abcd")
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(N_PROCS)
    q: mp.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_create_runs, args=(str(store_root), barrier, 3, q))
        for _ in range(N_PROCS)
    ]
    for p in procs:
        p.start()
    got = [rid for _ in procs for rid in q.get(timeout=120)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(got) == N_PROCS * 3
    assert len(set(got)) == len(got)
    store = Store(store_root)
    assert sorted(got) == store.run_ids("p")
    for rid in got:
        assert store.read_record(store.run_paths("p", rid)).status is RunStatus.COMPLETED


def _claim(root: str, barrier: mp.synchronize.Barrier, q: mp.Queue) -> None:  # type: ignore[name-defined]
    store = Store(root)
    barrier.wait()
    mine = store.create_run_dir("p").id
    q.put((mine, store.claim_key("p", "slurm-77_3", mine)))


def test_key_claim_has_exactly_one_winner(store_root: Path) -> None:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(16)
    q: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(str(store_root), barrier, q)) for _ in range(16)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    winners = {won for _, won in results}
    assert len(winners) == 1
    winner = winners.pop()
    assert winner in {mine for mine, _ in results}
    assert Store(store_root).lookup_key("p", "slurm-77_3") == winner


def test_ids_sort_by_creation_time() -> None:
    a = ids.new_run_id(now=1_700_000_000)
    b = ids.new_run_id(now=1_700_000_001)
    assert a < b
    assert a.startswith("20231114-221320-")
    assert ids.RUN_ID_RE.match(a)


def test_layout_paths(store_root: Path) -> None:
    store = Store(store_root)
    paths = store.create_run_dir("proj")
    assert paths.dir == store_root / "proj" / "runs" / paths.id
    assert paths.run_json.name == "run.json"
    assert paths.metrics_zarr == paths.dir / "metrics.zarr"
    assert store.sweep_json("proj", "s1") == store_root / "proj" / "sweeps" / "s1.json"
    assert store.object_path("proj", "ab" + "c" * 62).parent.name == "ab"
    assert store.projects() == ["proj"]


def test_explicit_run_id_is_atomic_and_validated(store_root: Path) -> None:
    store = Store(store_root)
    store.create_run_dir("p", "my-run.1")
    with pytest.raises(RunExists):
        store.create_run_dir("p", "my-run.1")
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(StoreError):
            store.create_run_dir("p", bad)
    with pytest.raises(StoreError, match="invalid project name"):
        store.create_run_dir("../x")


def test_find_run_reports_missing_run(store_root: Path) -> None:
    store = Store(store_root)
    with pytest.raises(RunNotFound, match="nope"):
        store.find_run("nope")


def test_record_keeps_unknown_fields(store_root: Path) -> None:
    store = Store(store_root)
    paths = store.create_run_dir("p")
    rec = RunRecord(id=paths.id, project="p")
    data = rec.to_dict() | {"future_field": {"x": 1}}
    write_json_atomic(paths.run_json, data)
    back = store.read_record(paths)
    back.status = RunStatus.COMPLETED
    store.write_record(paths, back)
    assert read_json(paths.run_json)["future_field"] == {"x": 1}


def test_typed_record_fields_round_trip_under_their_old_keys(store_root: Path) -> None:
    store = Store(store_root)
    paths = store.create_run_dir("p")
    rec = RunRecord(id=paths.id, project="p")
    assert not {"submission", "scheduler_state", "sweep_index", "signal"} & set(rec.to_dict())
    rec.submission = {"scheduler": "slurm", "job_id": "7_1", "array_job_id": "7"}
    rec.scheduler_state = {"state": "RUNNING", "checked_at": "2026-01-01T00:00:00+00:00"}
    rec.sweep_index, rec.signal, rec.last_signal = 1, "SIGTERM", "SIGUSR1"
    rec.cancelled_by = "hpclab cancel"
    store.write_record(paths, rec)
    data = read_json(paths.run_json)
    assert data["submission"]["job_id"] == "7_1" and data["sweep_index"] == 1
    assert data["cancelled_by"] == "hpclab cancel" and data["last_signal"] == "SIGUSR1"
    assert store.read_record(paths) == rec


def test_old_run_json_reads_into_the_typed_fields(store_root: Path) -> None:
    store = Store(store_root)
    paths = store.create_run_dir("p")
    old = {
        "id": paths.id,
        "project": "p",
        "status": "queued",
        "schema": 1,
        "submission": {"scheduler": "slurm", "job_id": "12_0", "submitted_at": None},
        "scheduler_state": {"state": "PENDING"},
        "sweep_index": 0,
        "signal": "SIGTERM",
        "last_signal": "SIGUSR2",
        "cancelled_by": "hpclab cancel",
    }
    paths.run_json.write_text(json.dumps(old))
    rec = store.read_record(paths)
    assert rec.extra == {}
    assert rec.submission == old["submission"] and rec.scheduler_state == {"state": "PENDING"}
    assert (rec.sweep_index, rec.signal, rec.last_signal) == (0, "SIGTERM", "SIGUSR2")
    assert rec.cancelled_by == "hpclab cancel"
    assert {k: v for k, v in rec.to_dict().items() if k in old} == old
    # a writer that holds none of them keeps what other writers put on disk
    mine = RunRecord(id=paths.id, project="p")
    mine.keep_others(rec)
    assert mine.cancelled_by == "hpclab cancel" and mine.submission == old["submission"]


def test_sweep_record_round_trip(store_root: Path) -> None:
    store = Store(store_root)
    sweep = SweepRecord(
        id="sweep-1",
        project="p",
        status="queued",
        launcher="slurm",
        job_id="42",
        points=[SweepPoint(0, "r0", ["seed=0"], "42_0"), SweepPoint(1, "r1", ["seed=1"])],
        argv=["train.py", "-m"],
        base="r-parent",
        hydra_sweep_dir="/tmp/multirun",
        launcher_params={"partition": "debug"},
        extra={"future_field": [1, 2]},
    )
    store.sweeps_dir("p").mkdir(parents=True)
    write_json_atomic(store.sweep_json("p", "sweep-1"), sweep.to_dict())
    data = read_json(store.sweep_json("p", "sweep-1"))
    assert data["n_points"] == 2 and data["points"][1] == {
        "index": 1,
        "run_id": "r1",
        "overrides": ["seed=1"],
        "job_id": None,
    }
    back = store.read_sweep("p", "sweep-1")
    assert back == dataclasses.replace(sweep, n_points=2)
    assert back.run_ids == ["r0", "r1"] and back.to_dict() == data
    assert [s.id for s in store.iter_sweeps("p")] == ["sweep-1"]
    with pytest.raises(StoreError, match="sweep 'nope' not found"):
        store.read_sweep("p", "nope")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"points": []}, "'id'"),
        ({"id": "s", "points": {"0": {}}}, "'points'"),
        ({"id": "s", "points": [{"run_id": "r"}]}, r"'points\[0\].index'"),
        ({"id": "s", "points": [{"index": "zero"}]}, r"'points\[0\].index'"),
        ({"id": "s", "points": [{"index": 0, "overrides": "seed=1"}]}, r"'points\[0\].overrides'"),
        ({"id": "s", "argv": "train.py"}, "'argv'"),
        ({"id": "s", "n_points": "many"}, "'n_points'"),
    ],
)
def test_malformed_sweep_file_names_file_and_field(
    store_root: Path, data: dict[str, object], field: str
) -> None:
    store = Store(store_root)
    store.sweeps_dir("p").mkdir(parents=True)
    path = store.sweep_json("p", "s")
    path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match=f"s.json: malformed sweep record, field {field}"):
        store.read_sweep("p", "s")
    # iterating skips it (and says so); an empty file is an id being claimed: no report
    store.sweep_json("p", "s0").write_text("")
    write_json_atomic(store.sweep_json("p", "s1"), {"id": "s1", "points": []})
    errors: list[tuple[Path, StoreError]] = []
    assert [s.id for s in store.iter_sweeps("p", errors=lambda p, e: errors.append((p, e)))] == [
        "s1"
    ]
    assert [p for p, _ in errors] == [path]


def test_store_version_file_written_and_checked(store_root: Path) -> None:
    store = Store(store_root)
    assert not store.version_file.exists() and store.format_version() == 1
    store.create_run_dir("p")
    assert (store_root / "VERSION").read_text() == f"{layout.FORMAT_VERSION}\n"
    assert Store(store_root).format_version() == layout.FORMAT_VERSION


def test_store_without_version_file_is_version_1_and_gets_one(store_root: Path) -> None:
    old = Store(store_root)
    paths = old.create_run_dir("p")
    old.write_record(paths, RunRecord(id=paths.id, project="p"))
    (store_root / "VERSION").unlink()  # a store from before VERSION files
    store = Store(store_root)
    assert store.format_version() == 1
    assert store.read_record(paths).id == paths.id
    store.write_record(paths, store.read_record(paths))
    assert (store_root / "VERSION").read_text() == "1\n"


def test_store_from_a_newer_hpclab_is_refused(store_root: Path) -> None:
    store_root.mkdir(parents=True)
    (store_root / "VERSION").write_text(f"{layout.FORMAT_VERSION + 1}\n")
    with pytest.raises(StoreError, match="has format version 2; this hpclab reads up to 1"):
        Store(store_root)
    (store_root / "VERSION").write_text("two\n")
    with pytest.raises(StoreError, match="VERSION: not a store format version"):
        Store(store_root)


def test_malformed_record_is_a_store_error_naming_the_file(store_root: Path) -> None:
    store = Store(store_root)
    paths = store.create_run_dir("p")
    paths.run_json.write_text('{"id": "x", "proj')
    with pytest.raises(StoreError, match="run.json"):
        store.read_record(paths)


def test_advance_status_never_moves_backwards(store_root: Path) -> None:
    store = Store(store_root)
    paths = store.create_run_dir("p")
    store.write_record(paths, RunRecord(id=paths.id, project="p", status=RunStatus.RUNNING))
    late = RunRecord(id=paths.id, project="p", status=RunStatus.QUEUED)
    assert store.advance_status(paths, late).status is RunStatus.RUNNING
    assert store.read_record(paths).status is RunStatus.RUNNING
    done = RunRecord(id=paths.id, project="p", status=RunStatus.COMPLETED)
    assert store.advance_status(paths, done).status is RunStatus.COMPLETED


def test_staleness_from_heartbeat() -> None:
    rec = RunRecord(id="r", project="p", status=RunStatus.RUNNING, heartbeat_interval=10)
    rec.heartbeat_at = "2026-01-01T00:00:00+00:00"
    beat = 1767225600.0
    assert not rec.is_stale(now=beat + 30)
    assert rec.is_stale(now=beat + 41)
    rec.status = RunStatus.COMPLETED
    assert not rec.is_stale(now=beat + 10_000)


WRITER = r"""
import sys
from pathlib import Path
from hpclab.store.atomic import write_json_atomic
path = Path(sys.argv[1])
for i in range(400):
    write_json_atomic(path, {"i": i, "pad": "x" * (i * 97 % 20000)}, fsync=False)
"""


def test_readers_never_see_a_half_written_file(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    write_json_atomic(target, {"i": -1})
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
    seen = set()
    while proc.poll() is None:
        seen.add(json.loads(target.read_bytes())["i"])  # raises on a torn file
    assert proc.wait() == 0
    assert json.loads(target.read_bytes())["i"] == 399
    assert len(seen) > 1
    assert not [p for p in os.listdir(tmp_path) if p != "run.json"], "temporary files left behind"
