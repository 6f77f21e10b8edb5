"""The catalog: indexing (cold, incremental, restart-safe, robust), reading while indexing."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import hpclab_cli, hpclab_subprocess, poll

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import Indexer
from hpclab.errors import CatalogError
from hpclab.launch.sweep import PlannedPoint, plan_sweep
from hpclab.store import Store
from hpclab.store.atomic import write_yaml_atomic

NO_SNAP = {"snapshot_env": False}


def make_run(
    store: Path,
    run_id: str,
    steps: int,
    *,
    project: str = "p",
    lr: float = 0.1,
    finish: bool = True,
    **metrics_fn: Any,
) -> hpclab.Run:
    run = hpclab.Run(
        project=project,
        store=store,
        run_id=run_id,
        settings=NO_SNAP,
        config={"optim": {"lr": lr, "name": "adam"}, "layers": [64, 32], "seed": 0},
    )
    for s in range(steps):
        run.log({"train/loss": 10.0 / (s + 1), "val/acc": s / 100}, step=s)
    if finish:
        run.finish()
    else:
        run.flush()
    return run


def tables(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, without the columns that legitimately differ."""
    con = connect(Store(store))
    out = {}
    for t in ("runs", "metric_summary", "features", "sweeps", "sweep_points", "artifacts", "notes"):
        rows = con.execute(
            f"SELECT * EXCLUDE (dir) FROM {t}" if t == "runs" else f"SELECT * FROM {t}"
        )
        out[t] = sorted(map(repr, rows.fetchall()))
    out["metrics"] = sorted(map(repr, con.execute("SELECT * FROM metrics").fetchall()))
    return out


def test_cold_index_builds_every_table(store_root: Path, tmp_path: Path) -> None:
    make_run(store_root, "a", 50, lr=0.1)
    make_run(store_root, "b", 30, lr=0.01)
    (tmp_path / "ckpt.pt").write_bytes(b"weights")
    run2 = hpclab.Run(project="p", store=store_root, run_id="b", settings=NO_SNAP)
    run2.log_artifacts(tmp_path / "ckpt.pt")
    run2.finish()
    plan_sweep(Store(store_root), "p", [PlannedPoint(0, ["seed=0"], {"seed": 0})], launcher="local")
    with Indexer(Store(store_root)) as ix:
        report = ix.index()
    assert report.indexed == 3 and report.errors == 0
    con = connect(store_root)
    assert con.execute(
        "SELECT count(*) FROM metrics WHERE run_id='a' AND name='train/loss'"
    ).fetchone() == (50,)
    last, best, mean, n, last_step, direction = con.execute(
        "SELECT last, best, mean, n, last_step, direction FROM metric_summary "
        "WHERE run_id='a' AND name='train/loss'"
    ).fetchone()
    assert (last, best, n, last_step, direction) == (10.0 / 50, 10.0 / 50, 50, 49, "minimize")
    assert mean == pytest.approx(sum(10.0 / (s + 1) for s in range(50)) / 50)
    assert con.execute(
        "SELECT direction, best FROM metric_summary WHERE run_id='a' AND name='val/acc'"
    ).fetchone() == ("maximize", 0.49)
    feats = dict(con.execute("SELECT path, value_num FROM features WHERE run_id='b'").fetchall())
    assert feats == {
        "optim.lr": 0.01,
        "optim.name": None,
        "layers[0]": 64.0,
        "layers[1]": 32.0,
        "seed": 0.0,
    }
    ((path, size, sha),) = con.execute("SELECT path, size, sha256 FROM artifacts").fetchall()
    assert path.endswith("ckpt.pt") and size == 7 and len(sha) == 64
    statuses = dict(con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    assert statuses == {"completed": 2, "planned": 1}
    assert con.execute("SELECT n_points, launcher FROM sweeps").fetchall() == [(1, "local")]
    # a typical query: best run by the last train/loss
    assert con.execute(
        "SELECT run_id FROM metric_summary WHERE name='train/loss' ORDER BY last LIMIT 1"
    ).fetchone() == ("a",)


def test_incremental_reads_only_the_new_tail(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hpclab.catalog.metrics_reader as reader

    make_run(store_root, "done", 20)
    live = make_run(store_root, "live", 40, finish=False)
    calls: list[tuple[str, dict[str, int] | None]] = []
    real = reader.read_run_metrics

    def spy(path: Path, since: Any = None) -> Any:
        calls.append((Path(path).parent.name, dict(since) if since else None))
        return real(path, since)

    monkeypatch.setattr(reader, "read_run_metrics", spy)
    with Indexer(Store(store_root)) as ix:
        ix.index()
        calls.clear()
        for s in range(40, 55):
            live.log({"train/loss": 1.0}, step=s)
        live.flush()
        report = ix.index()
    live.finish()
    assert report.indexed == 1
    assert calls == [("live", {"train/loss": 40, "val/acc": 40})]
    con = connect(store_root)
    assert con.execute(
        "SELECT count(*), max(step) FROM metrics WHERE run_id='live' AND name='train/loss'"
    ).fetchone() == (55, 54)
    assert con.execute(
        "SELECT n, last FROM metric_summary WHERE run_id='live' AND name='train/loss'"
    ).fetchone() == (55, 1.0)


def test_restart_reads_nothing_unchanged(store_root: Path) -> None:
    make_run(store_root, "a", 10)
    with Indexer(Store(store_root)) as ix:
        ix.index()
    with Indexer(Store(store_root)) as ix:
        report = ix.index()
    assert (report.scanned, report.indexed) == (1, 0)


KILLER = r"""
import sys
from hpclab.catalog.indexer import Indexer
from hpclab.store import Store
with Indexer(Store(sys.argv[1])) as ix:
    print("ready", flush=True)
    while True:
        ix.index()
"""

WRITER = r"""
import sys, hpclab
for i in range(int(sys.argv[2])):
    run = hpclab.Run(project="p", store=sys.argv[1], run_id=f"w{i}", config={"i": i},
                     settings={"snapshot_env": False}, flush_interval=0.01)
    for s in range(300):
        run.log({"loss": float(s), "x": i * 1.0}, step=s)
        if s % 50 == 0:
            run.flush()
    run.finish()
"""


def test_killed_indexer_then_restart_equals_a_cold_index(store_root: Path) -> None:
    import random

    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store_root), "6"])
    for _ in range(3):
        ix = subprocess.Popen(
            [sys.executable, "-c", KILLER, str(store_root)], stdout=subprocess.PIPE, text=True
        )
        assert ix.stdout.readline().strip() == "ready"
        # let it index for a random while, then kill it wherever it is
        try:
            ix.wait(timeout=random.uniform(0.1, 1.0))
        except subprocess.TimeoutExpired:
            pass
        os.kill(ix.pid, signal.SIGKILL)
        ix.wait()
    assert writer.wait(timeout=300) == 0
    with Indexer(Store(store_root)) as ix:
        ix.index()
    warm = tables(store_root)
    import shutil

    shutil.rmtree(Store(store_root).catalog_dir)
    with Indexer(Store(store_root)) as ix:
        ix.index()
    assert tables(store_root) == warm
    assert len(warm["metrics"]) == 6 * 300 * 2


def test_corrupt_runs_are_reported_once_and_retried(
    store_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = make_run(store_root, "good", 5)
    bad = make_run(store_root, "bad", 5)
    chunkless = make_run(store_root, "chunkless", 5)
    text = bad.paths.run_json.read_text()
    bad.paths.run_json.write_text(text[: len(text) // 2])  # truncated JSON
    for chunk in (chunkless.paths.metrics_zarr / "train%2Floss").rglob("c/*/*"):
        chunk.unlink()
    with Indexer(Store(store_root)) as ix:
        first = ix.index()
        again = ix.index()
        assert first.errors == 2 and again.errors == 0, "a failure is reported once"
        warnings = _warnings(caplog)
        assert len(warnings) == 2
        assert any(str(bad.paths.dir) in w and "run.json" in w for w in warnings)
        assert any("train%2Floss" in w for w in warnings)
        con = connect(store_root)
        assert {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()} == {
            "good",
            "chunkless",
        }
        bad.paths.run_json.write_text(text)  # the run becomes readable again
        ix.index()
    con = connect(store_root)
    assert {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()} == {
        "good",
        "bad",
        "chunkless",
    }
    assert good.id == "good"


def test_readers_query_while_the_indexer_writes(store_root: Path) -> None:
    make_run(store_root, "seed", 5)
    stop = threading.Event()
    errors: list[BaseException] = []
    counts: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                con = connect(store_root)
                counts.append(con.execute("SELECT count(*) FROM metrics").fetchone()[0])
                con.execute(
                    "SELECT * FROM runs JOIN metric_summary USING (project, run_id)"
                ).fetchall()
                con.close()
            except BaseException as e:  # noqa: BLE001 - any failure is the finding
                errors.append(e)
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        with Indexer(Store(store_root)) as ix:
            for i in range(15):
                make_run(store_root, f"r{i}", 20)
                ix.index()
        final = 5 * 2 + 15 * 20 * 2
        poll(lambda: (counts and counts[-1] == final) or errors, message="the reader to see it all")
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert counts == sorted(counts), "a reader never sees the catalog go back"
    assert len(set(counts)) > 1, "the reader saw the catalog change while it read"


def test_only_one_indexer_at_a_time(store_root: Path) -> None:
    Store(store_root).catalog_dir.mkdir(parents=True)
    with Indexer(Store(store_root)):
        with pytest.raises(CatalogError, match=f"pid {os.getpid()}"):
            Indexer(Store(store_root)).acquire()


def test_stale_running_runs_show_how_they_ended(store_root: Path) -> None:
    store = Store(store_root)
    for run_id, state in (("lost-run", None), ("cancelled-run", "CANCELLED by 0")):
        run = make_run(store_root, run_id, 3, finish=False)
        run._worker.stop()
        run.finished = True  # the process died: no finish
        rec = store.read_record(run.paths)
        rec.heartbeat_at = "2020-01-01T00:00:00+00:00"
        if state:
            rec.scheduler_state = {"state": state}
        store.write_record(run.paths, rec)
    with Indexer(store) as ix:
        ix.index()
    con = connect(store_root)
    got = dict(con.execute("SELECT run_id, status || '/' || stored_status FROM runs").fetchall())
    assert got == {"lost-run": "lost/running", "cancelled-run": "cancelled/running"}


def test_project_key_metrics(store_root: Path) -> None:
    make_run(store_root, "a", 10)
    write_yaml_atomic(
        Store(store_root).project_yaml("p"),
        {
            "key_metrics": [
                {"name": "train/loss", "direction": "minimize", "aggregation": "mean"},
                {"name": "val/acc", "direction": "minimize", "aggregation": "best"},
            ]
        },
    )
    with Indexer(Store(store_root)) as ix:
        ix.index()
    con = connect(store_root)
    rows = dict(con.execute("SELECT name, key_value FROM metric_summary WHERE is_key").fetchall())
    assert rows["train/loss"] == pytest.approx(sum(10 / (s + 1) for s in range(10)) / 10)
    assert rows["val/acc"] == 0.0, "the project's direction wins over the name's"


def test_malformed_project_yaml_is_reported_with_its_field(
    store_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_run(store_root, "a", 3)
    write_yaml_atomic(
        Store(store_root).project_yaml("p"), {"key_metrics": [{"name": "x", "direction": "up"}]}
    )
    with Indexer(Store(store_root)) as ix:
        ix.index()
    warnings = _warnings(caplog)
    assert any("key_metrics[0].direction" in w and "project.yaml" in w for w in warnings)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the indexer logged as warnings (the CLI prints them as ``hpclab: warning:``)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("hpclab.") and r.levelno == logging.WARNING
    ]


def test_nan_metrics_survive_the_catalog(store_root: Path) -> None:
    run = hpclab.Run(project="p", store=store_root, run_id="n", settings=NO_SNAP)
    run.log({"loss": math.nan}, step=0)
    run.log({"loss": math.inf}, step=1)
    run.log({"loss": 2.0}, step=2)
    run.finish()
    with Indexer(Store(store_root)) as ix:
        ix.index()
    con = connect(store_root)
    values = [r[0] for r in con.execute("SELECT value FROM metrics ORDER BY step").fetchall()]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == 2.0
    assert con.execute("SELECT min, max, n, last FROM metric_summary").fetchone() == (
        2.0,
        2.0,
        3,
        2.0,
    )


def test_cli_index_sql_and_note(store_root: Path, tmp_path: Path) -> None:
    make_run(store_root, "a", 5, lr=0.1)
    make_run(store_root, "b", 5, lr=0.2)
    out = hpclab_cli(store_root, "note", "a", "--tag", "PUBLISH", "--append", "best so far")
    assert out.returncode == 0, out.stderr
    out = hpclab_cli(store_root, "index")
    assert out.returncode == 0 and "2 run(s), 2 (re)indexed" in out.stdout
    again = hpclab_cli(store_root, "index")
    assert "catalog current: 2 run(s), 0 (re)indexed" in again.stdout  # nothing changed
    q = "SELECT run_id, list_contains(tags, 'PUBLISH') AS pub FROM runs ORDER BY run_id"
    # a fresh process: DuckDB writes these formats to /dev/stdout itself, past
    # sys.stdout (and so past CliRunner)
    js = hpclab_subprocess(store_root, "sql", q, "--format", "json")
    assert json.loads(js.stdout) == [{"run_id": "a", "pub": True}, {"run_id": "b", "pub": False}]
    csv = hpclab_subprocess(store_root, "sql", "SELECT text FROM notes", "--format", "csv")
    assert csv.stdout.splitlines() == ["text", "best so far"]
    pq = tmp_path / "out.parquet"
    out = hpclab_cli(
        store_root, "sql", "SELECT * FROM metrics", "--format", "parquet", "-o", str(pq)
    )
    assert out.returncode == 0, out.stderr
    assert connect(store_root).execute(f"SELECT count(*) FROM '{pq}'").fetchone() == (20,)
    bad = hpclab_cli(store_root, "sql", "SELEC 1")
    assert bad.returncode == 1 and bad.stderr.startswith("hpclab: error: SQL: Parser Error")
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = hpclab_cli(store_root, "sql", "SELECT nope FROM runs")
    assert (
        missing.returncode == 1 and "nope" in missing.stderr and "Traceback" not in missing.stderr
    )


def test_connect_before_any_index_has_empty_tables(store_root: Path) -> None:
    con = connect(store_root)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM metrics").fetchone() == (0,)
    cols = [d[0] for d in con.execute("SELECT * FROM metric_summary").description]
    assert cols[:4] == ["project", "run_id", "name", "last"]


def test_a_connection_outlives_a_publish_and_old_files_are_collected(store_root: Path) -> None:
    live = make_run(store_root, "live", 10, finish=False)
    store = Store(store_root)
    with Indexer(store) as ix:
        ix.index()
        before = connect(store_root)  # bound to this version's files
        for s in range(10, 20):
            live.log({"train/loss": 0.5}, step=s)
        live.flush()
        ix.index()
        # the old connection still reads its version; a new one sees the new rows
        assert before.execute(
            "SELECT count(*) FROM metrics WHERE name='train/loss'"
        ).fetchone() == (10,)
        assert connect(store_root).execute(
            "SELECT count(*) FROM metrics WHERE name='train/loss'"
        ).fetchone() == (20,)
        ix.grace = 0.0
        ix._collect_garbage()
        from hpclab.catalog.manifest import read_manifest

        manifest = read_manifest(store)
        published = [*manifest.tables.values(), *manifest.metrics.values()]
        published += [*manifest.deltas.values(), manifest.delta_keys]
        assert manifest.delta_keys, "one run changed: its rows are published as a delta"
        named = {store.catalog_dir / p for p in published if p}
        on_disk = {p for p in store.catalog_dir.glob("*/**/*.parquet")}
        assert on_disk == named, "only the published version's files remain"
    live.finish()


def test_runs_list_top_and_compare(store_root: Path) -> None:
    make_run(store_root, "a", 10, lr=0.1)
    make_run(store_root, "b", 20, lr=0.01)
    run = hpclab.Run(
        project="p",
        store=store_root,
        run_id="c",
        settings=NO_SNAP,
        name="wide one",
        config={"optim": {"lr": 0.1, "name": "adam"}, "layers": [64, 32], "seed": 1},
    )
    run.log({"train/loss": 0.05, "val/acc": 0.9}, step=0)
    run.finish()
    assert hpclab_cli(store_root, "note", "b", "--tag", "PUBLISH").returncode == 0

    def listed(*args: str) -> list[str]:
        out = hpclab_cli(store_root, "runs", "list", "--json", *args)
        assert out.returncode == 0, out.stderr
        return [json.loads(line)["id"] for line in out.stdout.splitlines()]

    assert listed() == ["a", "b", "c"]
    assert listed("--tag", "PUBLISH") == ["b"]
    assert listed("--text", "WIDE") == ["c"]
    assert listed("--where", "train/loss<0.6") == ["b", "c"]  # last: 1.0, 0.5, 0.05
    assert listed("--where", "train/loss<0.6", "--where", "val/acc>0.5") == ["c"]
    bad = hpclab_cli(store_root, "runs", "list", "--where", "loss~1")
    assert bad.returncode == 1 and "--where 'loss~1'" in bad.stderr

    out = hpclab_cli(store_root, "runs", "top", "--metric", "train/loss")
    ranked = [line.split()[1] for line in out.stdout.splitlines()[1:]]
    assert ranked == ["c", "b", "a"], out.stdout
    out = hpclab_cli(store_root, "runs", "top", "--metric", "val/acc", "-n", "1")
    assert out.stdout.splitlines()[1].split()[1] == "c", "accuracy is maximized"
    missing = hpclab_cli(store_root, "runs", "top", "--metric", "nope")
    assert missing.returncode == 1 and "metrics: train/loss, val/acc" in missing.stderr

    out = hpclab_cli(store_root, "runs", "compare", "a", "c")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    diff_section = text.split("config differences:")[1].split("seed groups")[0]
    assert "seed" in diff_section and "optim.lr" not in diff_section
    assert any(ln.split()[:3] == ["train/loss", "1", "0.05"] for ln in text.splitlines())
    nope = hpclab_cli(store_root, "runs", "compare", "a", "zzz")
    assert nope.returncode == 1 and "zzz" in nope.stderr
