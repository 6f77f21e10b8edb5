"""Catalog garbage collection: a killed indexer's leftovers, files readers may still hold,
generation numbers never handed out twice, and ``hpclab.catalog.connect()`` called again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import hpclab_subprocess, poll

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import Indexer
from hpclab.catalog.manifest import GRACE_SECONDS, read_manifest
from hpclab.store import Store

REPO = Path(__file__).resolve().parents[1]
NO_SNAP = {"snapshot_env": False}
RUNS, STEPS, METRICS = 400, 20, 2  # 400 runs: a cold pass writes two segments, in-process


def _catalog_files(store: Store) -> set[Path]:
    """Every file under the catalog's folders (not manifest.json, the lock, the counter)."""
    return {p for p in store.catalog_dir.glob("*/**/*") if p.is_file()}


def _named(store: Store) -> set[Path]:
    return {store.catalog_dir / rel for rel in read_manifest(store).files()}


def _age(store: Store, seconds: float) -> None:
    """Every catalog file, the manifest too, last modified ``seconds`` ago."""
    old = time.time() - seconds
    for path in store.catalog_dir.rglob("*"):
        os.utime(path, (old, old))


def _metric_queries_work(store: Store, runs: int, points: int) -> None:
    con = connect(store)
    assert con.execute("SELECT count(*) FROM metrics").fetchone() == (points,)
    assert con.execute("SELECT count(DISTINCT run_id) FROM metrics").fetchone() == (runs,)
    per_run = con.execute(
        "SELECT r.run_id, count(*) FROM runs r JOIN metrics m USING (project, run_id)"
        " GROUP BY r.run_id"
    ).fetchall()
    assert len(per_run) == runs and {n for _, n in per_run} == {points // runs}


def _kill_mid_pass(store: Store) -> None:
    """Start ``hpclab index`` on the cold store and SIGKILL it once its first segment file
    is written and before it publishes (tried again, the catalog removed, should it have
    published first)."""
    segments = store.catalog_metrics_dir() / "p"
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpclab", "--store", str(store.root), "index"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def written_or_ended(proc: subprocess.Popen[bytes] = proc) -> bool:
            return any(segments.glob("seg-*.parquet")) or proc.poll() is not None

        try:
            poll(
                written_or_ended,
                timeout=120,
                interval=0.002,
                message="the indexer's first segment file",
            )
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        if not store.catalog_manifest.exists() and any(segments.glob("seg-*.parquet")):
            return
        shutil.rmtree(store.catalog_dir)
    raise AssertionError("the indexer published before it could be killed, 5 times")


def test_a_killed_index_leaves_nothing_that_deletes_live_files(tmp_path: Path) -> None:
    root = tmp_path / "st ore"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_bench_store.py"), str(root)]
        + ["--runs", str(RUNS), "--steps", str(STEPS), "--metrics", str(METRICS)]
        + ["--sweeps", "0", "--jobs", "1", "--project", "p"],
        check=True,
        capture_output=True,
    )
    store = Store(root)
    _kill_mid_pass(store)
    leftovers = _catalog_files(store)
    assert leftovers, "the killed pass left its segment files"
    points = RUNS * STEPS * METRICS

    # `hpclab watch` started right after the kill: its first pass publishes...
    with Indexer(store) as ix:
        ix.index()
        named = _named(store)
        assert not named & leftovers, "no file written under a leftover's name"
        # ... and its passes five minutes later collect the leftovers, nothing else
        ix._collect_garbage(now=time.time() + 2 * GRACE_SECONDS)
    assert all(p.exists() for p in named), "every file the manifest names is there"
    assert _catalog_files(store) == named
    _metric_queries_work(store, RUNS, points)

    # killed again; the leftovers are 10 minutes old when `hpclab index` starts
    shutil.rmtree(store.catalog_dir)
    _kill_mid_pass(store)
    leftovers = _catalog_files(store)
    _age(store, 600)
    done = hpclab_subprocess(root, "index")
    assert done.returncode == 0, done.stderr
    named = _named(store)
    assert not named & leftovers
    assert all(p.exists() for p in named)
    _metric_queries_work(store, RUNS, points)


def _run(root: Path, run_id: str, steps: int, *, finish: bool = True) -> hpclab.Run:
    run = hpclab.Run(project="p", store=root, run_id=run_id, settings=NO_SNAP)
    for s in range(steps):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    if finish:
        run.finish()
    else:
        run.flush()
    return run


def test_a_restart_keeps_the_files_a_reader_may_hold_whatever_their_age(
    store_root: Path,
) -> None:
    live = _run(store_root, "live", 10, finish=False)
    _run(store_root, "done", 5)
    store = Store(store_root)
    with Indexer(store) as ix:
        ix.index()
    reader = connect(store)  # holds the first version's files
    first = _named(store)
    for s in range(10, 30):
        live.log({"loss": 0.1}, step=s)
    live.flush()
    with Indexer(store) as ix:  # `hpclab index` again: a second version, then exit
        ix.index()
    second = _named(store)
    held = first - second
    assert held, "the second version superseded some of the first's files"

    _age(store, 3600)  # written an hour ago, superseded a moment ago
    with Indexer(store) as ix:  # a restart (`hpclab watch`): collects at start
        ix.index()
    assert all(p.exists() for p in held), "a reader of the first version may hold them"
    assert reader.execute("SELECT count(*) FROM metrics").fetchone() == (15,)

    with Indexer(store) as ix:  # a grace period after the second version was published
        ix._collect_garbage(now=time.time() + GRACE_SECONDS + 1)
    assert not any(p.exists() for p in held)
    assert _catalog_files(store) == second
    assert connect(store).execute("SELECT count(*) FROM metrics").fetchone() == (35,)
    live.finish()


def test_a_file_the_manifest_names_is_never_collected(store_root: Path) -> None:
    _run(store_root, "a", 5)
    store = Store(store_root)
    with Indexer(store) as ix:
        ix.index()
        named = _named(store)
        # queued as superseded long ago (as a reused name was): the name keeps it
        ix.superseded.extend((p, 0.0) for p in sorted(named))
        ix.grace = 0.0
        ix._collect_garbage()
    assert all(p.exists() for p in named)
    assert connect(store).execute("SELECT count(*) FROM metrics").fetchone() == (5,)


def test_generation_numbers_are_never_handed_out_twice(store_root: Path) -> None:
    _run(store_root, "a", 5)
    store = Store(store_root)
    with Indexer(store) as ix:
        unpublished = ix.generation  # taken, then the indexer ends without publishing
    with Indexer(store) as ix:
        assert ix.generation > unpublished
        ix.index()
        published = read_manifest(store).generation
        assert published > unpublished
        assert ix.generation > published
        after_publish = ix.generation
    with Indexer(store) as ix:
        assert ix.generation > after_publish


def test_connect_works_every_time_it_is_called(store_root: Path) -> None:
    _run(store_root, "a", 5)
    with Indexer(Store(store_root)) as ix:
        ix.index()
    code = (
        "import sys, hpclab.catalog\n"
        "counts = [hpclab.catalog.connect(sys.argv[1]).execute("
        "'SELECT count(*) FROM metrics').fetchone()[0] for _ in range(3)]\n"
        "import hpclab.catalog.connect\n"
        "from hpclab.catalog.connect import connect\n"
        "counts.append(connect(sys.argv[1]).execute('SELECT count(*) FROM runs').fetchone()[0])\n"
        "counts.append(hpclab.catalog.connect(sys.argv[1]).execute("
        "'SELECT count(*) FROM metrics').fetchone()[0])\n"
        "print(counts)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(store_root)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[5, 5, 5, 1, 5]"
