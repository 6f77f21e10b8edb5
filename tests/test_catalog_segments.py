"""Segments: a cold pass writes many runs' metrics per file; the catalog reads the same as
when every run has its own file, through incremental passes, removals and restarts."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_catalog import NO_SNAP, make_run
from test_catalog import tables as exact_tables

import hpclab
import hpclab.catalog.indexer as indexer_module
import hpclab.catalog.segments as segments
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import Indexer
from hpclab.store import Store


def tables(root: Path) -> dict[str, list[str]]:
    """The catalog's rows, floats to 12 digits: a mean kept as a running sum over
    incremental passes differs from a cold pass's in the last bits."""
    return {
        t: sorted(re.sub(r"\d+\.\d+(e-?\d+)?", lambda m: f"{float(m[0]):.12g}", r) for r in rows)
        for t, rows in exact_tables(root).items()
    }


def _index(root: Path, *, segment_min: int, processes: int = 1) -> None:
    with Indexer(Store(root)) as ix:
        ix.segment_min = segment_min
        ix.processes = processes
        ix.index()


def _manifest(root: Path) -> dict:
    return json.loads(Store(root).catalog_manifest.read_text())


def _runs(root: Path, n: int) -> list:
    return [make_run(root, f"r{i:02d}", 5 + i, lr=0.1 * (i + 1), finish=i != 0) for i in range(n)]


def test_segments_read_like_one_file_per_run(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _runs(store_root, 9)
    monkeypatch.setattr(segments, "BATCH_RUNS", 4)  # 3 batches
    _index(store_root, segment_min=2)
    seg = tables(store_root)
    files = set(_manifest(store_root)["metrics"].values())
    assert len(files) == 3 and all(Path(f).name.startswith("seg-") for f in files)
    shutil.rmtree(Store(store_root).catalog_dir)
    _index(store_root, segment_min=10**9)
    assert len(set(_manifest(store_root)["metrics"].values())) == 9
    assert tables(store_root) == seg


def test_worker_processes_write_the_same_segments(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _runs(store_root, 6)
    monkeypatch.setattr(segments, "BATCH_RUNS", 2)
    monkeypatch.setattr(segments, "PROCESS_MIN", 1)
    _index(store_root, segment_min=2, processes=2)  # spawned workers
    in_workers = tables(store_root)
    assert len(set(_manifest(store_root)["metrics"].values())) == 3
    shutil.rmtree(Store(store_root).catalog_dir)
    _index(store_root, segment_min=10**9)
    assert tables(store_root) == in_workers


def test_a_cold_pass_reads_the_sweeps_while_its_workers_read_the_runs(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep files are read while worker processes read the runs (work overlapped,
    not after them), and the published sweeps are those of a pass read one run at a
    time; a sweep file written after that pass is read by the next."""
    from hpclab.store.atomic import write_json_atomic

    store = Store(store_root)
    runs = _runs(store_root, 6)

    def sweep(sweep_id: str, members: list) -> None:
        store.sweeps_dir("p").mkdir(parents=True, exist_ok=True)
        points = [
            {"index": i, "run_id": r.id, "overrides": [f"lr={i}"]} for i, r in enumerate(members)
        ]
        write_json_atomic(store.sweep_json("p", sweep_id), {"id": sweep_id, "points": points})

    sweep("sweep-a", runs[:4])
    monkeypatch.setattr(segments, "BATCH_RUNS", 2)
    monkeypatch.setattr(segments, "PROCESS_MIN", 1)
    given = 0  # run outcomes the workers had given the pass
    read_when: list[int] = []  # ... each time the sweep files were read
    real_read_all, real_sweeps = indexer_module.read_all, indexer_module._sweeps

    def read_all(*args: Any, **kwargs: Any) -> Iterator[Any]:
        nonlocal given
        for result in real_read_all(*args, **kwargs):
            given += 1
            yield result

    def sweeps(*args: Any, **kwargs: Any) -> Any:
        read_when.append(given)
        return real_sweeps(*args, **kwargs)

    monkeypatch.setattr(indexer_module, "read_all", read_all)
    monkeypatch.setattr(indexer_module, "_sweeps", sweeps)
    _index(store_root, segment_min=2, processes=2)
    assert read_when == [0] and given == 6  # read once, before the first run's outcome
    in_workers = tables(store_root)
    assert len(in_workers["sweep_points"]) == 4
    shutil.rmtree(store.catalog_dir)
    _index(store_root, segment_min=10**9)
    assert tables(store_root) == in_workers
    sweep("sweep-b", runs[4:])
    _index(store_root, segment_min=10**9)
    assert len(tables(store_root)["sweep_points"]) == 6


@pytest.mark.parametrize("how", ["segments", "workers", "one by one"])
def test_a_directory_without_a_record_is_not_a_run_until_it_has_one(
    store_root: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A new run's fingerprint is taken by its reader (in a worker, in a cold pass): a
    directory with no run.json, or one that is not a regular file, is neither indexed nor
    counted nor reported, however it is read; once its record is there, it is a run."""
    import os

    _runs(store_root, 4)
    runs_dir = Store(store_root).runs_dir("p")
    (runs_dir / "starting").mkdir()  # mkdir'd, record not yet written
    (runs_dir / "odd" / "run.json").mkdir(parents=True)
    (runs_dir / "piped").mkdir()
    os.mkfifo(runs_dir / "piped" / "run.json")
    monkeypatch.setattr(segments, "BATCH_RUNS", 2)
    monkeypatch.setattr(segments, "PROCESS_MIN", 1 if how == "workers" else 10**9)
    segment_min = 10**9 if how == "one by one" else 2
    with Indexer(Store(store_root)) as ix:
        ix.segment_min = segment_min
        ix.processes = 2
        report = ix.index()
        assert (report.scanned, report.indexed, report.errors) == (4, 4, 0)
        assert not ix.failed
        (runs_dir / "starting").rmdir()
        make_run(store_root, "starting", 3)  # now a run, with its record
        again = ix.index()
        assert (again.scanned, again.indexed, again.errors) == (5, 1, 0)
    ids = {r for (r,) in connect(store_root).execute("SELECT run_id FROM runs").fetchall()}
    assert ids == {"r00", "r01", "r02", "r03", "starting"}


def test_a_run_that_moves_out_of_its_segment_is_read_once(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _runs(store_root, 4)
    monkeypatch.setattr(segments, "BATCH_RUNS", 10)
    store = Store(store_root)
    with Indexer(store) as ix:
        ix.segment_min = 2
        ix.grace = 0.0
        ix.index()
        (segment,) = set(_manifest(store_root)["metrics"].values())
        live = runs[0]  # unfinished: new points move it to its own file
        for s in range(5, 25):
            live.log({"train/loss": 0.5}, step=s)
        live.flush()
        assert ix.index().indexed == 1
        manifest = _manifest(store_root)
        assert manifest["metrics"]["p/r00"] != segment
        assert manifest["stale"] == {segment: ["r00"]}
        con = connect(store)
        assert con.execute(
            "SELECT count(*), max(step) FROM metrics WHERE run_id = 'r00' AND name = 'train/loss'"
        ).fetchone() == (25, 24)
        # a run removed from the store leaves the catalog, its segment rows too
        shutil.rmtree(runs[1].paths.dir)
        ix.index()
        assert sorted(_manifest(store_root)["stale"][segment]) == ["r00", "r01"]
        assert connect(store).execute(
            "SELECT count(*) FROM metrics WHERE run_id = 'r01'"
        ).fetchone() == (0,)
        warm = tables(store_root)
    # a restart trusts the segment's per-run metadata: nothing is read again
    with Indexer(store) as ix:
        assert ix.index().indexed == 0
    assert tables(store_root) == warm
    shutil.rmtree(store.catalog_dir)
    _index(store_root, segment_min=10**9)
    assert tables(store_root) == warm


def test_a_segment_whose_runs_all_moved_is_collected(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _runs(store_root, 3)
    monkeypatch.setattr(segments, "BATCH_RUNS", 10)
    store = Store(store_root)
    with Indexer(store) as ix:
        ix.segment_min = 2
        ix.grace = 0.0
        ix.index()
        (segment,) = set(_manifest(store_root)["metrics"].values())
        runs[0].finish()
        for run in runs:
            shutil.rmtree(run.paths.dir)
        ix.index()
        ix.index()  # collects what the previous pass superseded
    assert not (store.catalog_dir / segment).exists()
    assert _manifest(store_root)["stale"] == {}


def test_one_run_files_of_ended_runs_are_merged_into_segments(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs indexed one at a time (the watcher) get a file each; a full pass merges the
    ended runs' files once there are enough of them, reading the same rows, and a restart
    or a later change of a merged run keeps the catalog equal to a cold index's."""
    import hpclab.catalog.indexer as indexer_module

    monkeypatch.setattr(indexer_module, "COMPACT_MIN", 4)
    monkeypatch.setattr(indexer_module, "BATCH_RUNS", 3)
    store = Store(store_root)
    runs = []
    with Indexer(store) as ix:
        for i in range(7):
            runs.append(make_run(store_root, f"r{i}", 5 + i, lr=0.1 * (i + 1), finish=i != 6))
            ix.index([("p", f"r{i}")])  # one run at a time: a file each
        one_each = tables(store_root)
        assert len(set(_manifest(store_root)["metrics"].values())) == 7
        ix.index()  # the full pass: 6 ended runs merged 3 by 3, the running r6 left alone
        files = _manifest(store_root)["metrics"]
        assert len(set(files.values())) == 3
        assert not Path(files["p/r6"]).name.startswith("seg-"), "a running run stays apart"
        assert sum(Path(f).name.startswith("seg-") for f in set(files.values())) == 2
        assert tables(store_root) == one_each
        runs[6].finish()
        ix.index([("p", "r6")])
    warm = tables(store_root)
    with Indexer(store) as ix:  # a restart: the merged files are the published ones
        report = ix.index()
        assert (report.indexed, report.published) == (0, False)
    assert tables(store_root) == warm
    shutil.rmtree(Store(store_root).catalog_dir)
    _index(store_root, segment_min=10**9)
    assert tables(store_root) == warm


def test_runs_merged_by_a_restarted_indexer_keep_their_metric_summaries(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted indexer reads runs' metric aggregates only when a pass needs them; the
    merge of their one-run files must read them first (a later publish wrote those runs
    with no metric summary and n_metrics 0)."""
    import hpclab.catalog.indexer as indexer_module

    store = Store(store_root)
    with Indexer(store) as ix:
        for i in range(4):
            make_run(store_root, f"r{i}", 5, lr=0.1 * (i + 1))
            ix.index([("p", f"r{i}")], knowledge=False)  # the watcher: a file each
        ix.index()  # fewer than COMPACT_MIN: nothing merged
    want = tables(store_root)
    assert len(want["metric_summary"]) == 8  # two metrics a run
    monkeypatch.setattr(indexer_module, "COMPACT_MIN", 4)
    with Indexer(store) as ix:
        ix.index()  # restarted, nothing changed: the four files merged
        assert len(set(_manifest(store_root)["metrics"].values())) == 1
        (store_root / "p" / "project.yaml").write_text("features:\n  ignore: [hpclab, foo]\n")
        ix.index()  # every summary row written again
    got = tables(store_root)
    assert got["metric_summary"] == want["metric_summary"]
    assert got["runs"] == want["runs"]


def test_aggregates_round_trip_through_the_metrics_file_metadata() -> None:
    """Agg.to_json lists its fields by hand (asdict deep-copies): every field, and the
    non-finite values JSON cannot hold, come back from from_json."""
    import dataclasses
    import json
    import math

    import numpy as np

    from hpclab.catalog.run_metrics import Agg

    for values in ([1.0, 2.0, 3.0], [1.0, math.inf], [2.0, -math.inf], [math.nan], [0.5]):
        agg = Agg()
        agg.update(np.array([[i, v, 0.0] for i, v in enumerate(values)]))
        doc = json.loads(json.dumps(agg.to_json(), allow_nan=False))
        assert {f.name for f in dataclasses.fields(Agg)} <= doc.keys()
        back = Agg.from_json(doc)
        for f in dataclasses.fields(Agg):
            a, b = getattr(agg, f.name), getattr(back, f.name)
            assert a == b or (math.isnan(a) and math.isnan(b)), (values, f.name, a, b)


def test_a_segments_aggregates_are_each_series_own_to_the_bit() -> None:
    """A cold pass computes every series' aggregates of a segment at once: the same floats
    as Agg.update on that series alone (NaN, +-inf, an all-NaN series, an empty one)."""
    import numpy as np

    from hpclab.catalog.run_metrics import Agg, _Series

    rng = np.random.default_rng(7)
    runs = []
    for r in range(30):
        tails = {}
        for m in range(4):
            n = int(rng.integers(0, 12_000)) if m != 3 else 0
            rows = np.column_stack([np.arange(n) * 3, rng.standard_normal(n) * 1e3, rng.random(n)])
            if m == 1 and n > 10:
                rows[rng.integers(0, n, 6), 1] = rng.choice([np.nan, np.inf, -np.inf], 6)
            if m == 2 and r % 5 == 0:
                rows[:, 1] = np.nan
            tails[f"m{m}"] = rows
        runs.append((f"r{r}", tails))
    expected = []
    for _, tails in runs:
        for rows in tails.values():
            if len(rows):
                agg = Agg()
                agg.update(rows)
                expected.append(agg)

    def bits(a: Agg) -> tuple:
        floats = (a.sum, a.min, a.max, a.last)
        return (a.length, a.n_finite, a.last_step, np.array(floats).tobytes())

    got = _Series.of(runs).aggs()
    assert len(got) == len(expected) > 60
    assert [bits(a) for a in got] == [bits(a) for a in expected]


def test_a_pass_pauses_the_cyclic_collector_and_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector is off while a pass reads and publishes (its full collections walk
    every row of every run) and on again afterwards, also when the pass fails."""
    import gc

    import hpclab.catalog.indexer as indexer

    _runs(tmp_path, 3)
    seen: list[bool] = []
    real = indexer.fingerprint

    def spy(paths):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return real(paths)

    monkeypatch.setattr(indexer, "fingerprint", spy)
    monkeypatch.setattr(segments, "fingerprint", spy)  # a new run's, taken by its reader
    assert gc.isenabled()
    with Indexer(Store(tmp_path)) as ix:
        ix.segment_min = 2
        ix.index()
        assert seen and not any(seen)
        assert gc.isenabled()

        def broken(paths):  # type: ignore[no-untyped-def]
            raise RuntimeError("disk gone")

        monkeypatch.setattr(indexer, "fingerprint_dir", broken)  # the runs known now
        with pytest.raises(RuntimeError, match="disk gone"):
            ix.index()
        assert gc.isenabled()
    batch = segments.read_batch(str(tmp_path), "p", [segments.BatchItem("r01", "x")], 999, 0)
    assert [r.error for r in batch] == [None] and batch[0].rows is not None
    assert gc.isenabled()


def test_a_published_run_with_an_unknown_status_makes_a_restart_rebuild(store_root: Path) -> None:
    """A restarted indexer takes the published runs table as its state; one whose stored
    status is not a run status (a damaged or foreign catalog) is rebuilt from the runs."""
    import duckdb

    _runs(store_root, 3)
    _index(store_root, segment_min=10**9)
    good = tables(store_root)
    runs_file = Store(store_root).catalog_dir / _manifest(store_root)["tables"]["runs"]
    con = duckdb.connect()
    tmp = runs_file.with_name("damaged.parquet")
    con.execute(  # the store's path has quotes in it: parameters, not literals
        "CREATE TABLE t AS SELECT * REPLACE ('exploded' AS stored_status) FROM read_parquet(?)",
        [str(runs_file)],
    )
    con.execute("COPY t TO '" + str(tmp).replace("'", "''") + "' (FORMAT parquet)")
    con.close()
    tmp.replace(runs_file)
    with Indexer(Store(store_root)) as ix:
        assert all(
            e.rows is None or e.rows.runs["stored_status"] != "exploded"
            for e in ix.entries.values()
        )
        ix.index()
    assert tables(store_root) == good


def test_a_batchs_equal_values_come_back_from_a_worker_as_one_object(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of a sweep share most config leaves, statuses and metric names: a batch
    pickles each once, so the indexer holds one copy per batch, not one per run; equal
    rows only (0.0 and -0.0 stay apart), and the rows are those each run alone reads."""
    import pickle

    from hpclab.catalog.extract import extract_run
    from hpclab.catalog.segments import BatchItem, read_batch

    for run_id, lr in (("a", 0.0), ("b", -0.0), ("c", 0.0)):
        run = hpclab.Run(
            project="p",
            store=store_root,
            run_id=run_id,
            settings=NO_SNAP,
            config={"optim": {"lr": lr, "name": "adam"}, "tags": ["x"]},
        )
        run.log({"train/loss": 1.0}, step=0)
        run.finish()
    store = Store(store_root)
    alone = [extract_run(store, "p", store.run_paths("p", r)) for r in "abc"]
    items = [BatchItem(r, None) for r in "abc"]
    # a segment per run: within one segment the metric names are one tuple already
    monkeypatch.setattr(segments, "SEGMENT_ROWS", 1)
    # what a worker process hands back: the results through pickle
    a, b, c = pickle.loads(pickle.dumps(read_batch(str(store_root), "p", items, 1, 0)))
    assert [r.rows.features for r in (a, b, c)] == [x.features for x in alone]
    assert [r.rows.runs for r in (a, b, c)] == [x.runs for x in alone]

    def row(result: Any, path: str) -> tuple:
        return next(f for f in result.rows.features if f[0] == path)

    assert row(a, "optim.name") is row(b, "optim.name") is row(c, "optim.name")
    assert row(a, "optim.lr") is row(c, "optim.lr")
    assert row(b, "optim.lr") == ("optim.lr", "-0.0", -0.0) and row(a, "optim.lr")[1] == "0.0"
    # each record's own text before (the status came as one object already)
    assert a.rows.runs["host"] is b.rows.runs["host"] is c.rows.runs["host"]
    assert a.rows.runs["user"] is c.rows.runs["user"]
    assert len({r.metrics_file for r in (a, b, c)}) == 3  # three segments
    (name_a,), (name_c,) = a.aggs, c.aggs
    assert name_a is name_c == "train/loss"
    assert a.aggs[name_a] is not c.aggs[name_c]  # each run's own aggregates
