"""The runs' series files (``data/series/<project>/<run>.parquet``): the SQL downsampling
is the NumPy one, the full build's bulk writer makes the files the per-run (live) writer
makes, NaN and inf are NULL (a gap, never a zero), and the build takes from the catalog
only the runs it cannot lag."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

import hpclab
from hpclab.catalog.indexer import index_store
from hpclab.site.build import lagging, write_series
from hpclab.site.data import load
from hpclab.site.layout import SiteLayout
from hpclab.site.series import (
    downsample,
    downsample_sql,
    read_series_file,
    run_series,
    write_run_series,
)
from hpclab.store import Store

NO_SNAP = {"snapshot_code": False, "snapshot_env": False}


def _spiky(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=n), 1)  # rounded: ties within buckets
    values[rng.integers(0, n, size=max(1, n // 50))] = 40.0  # spikes
    values[rng.integers(0, n, size=max(1, n // 30))] = np.nan
    values[rng.integers(0, n, size=max(1, n // 90))] = np.inf
    values[rng.integers(0, n, size=max(1, n // 90))] = -np.inf
    if n > 200:
        values[100:160] = np.nan  # whole buckets of NaN keep their first point
    return values


@pytest.mark.parametrize("max_points", [10, 50, 1000])
def test_sql_downsampling_keeps_the_numpy_points(max_points: int) -> None:
    lengths = [1, 9, 10, 11, 49, 50, 51, 999, 1000, 1001, 2500, 7919]
    parts, metrics, steps, values, counts = [], [], [], [], []
    expected: set[tuple[int, str, int]] = set()
    for part, n in enumerate(lengths):
        for metric, seed in (("loss", part), ("lr", part + 100)):
            step = np.arange(n, dtype=np.int64) * 3 + 5
            value = _spiky(n, seed)
            if metric == "lr":
                value = np.full(n, 0.5)  # a flat series: every bucket a tie
            keep = downsample(step.astype(np.float64), value, max_points)
            expected |= {(part, metric, int(s)) for s in step[keep]}
            order = np.random.default_rng(seed).permutation(n)  # rows in no order
            parts.append(np.full(n, part))
            metrics += [metric] * n
            steps.append(step[order])
            values.append(value[order])
            counts.append(np.full(n, n))
    label = np.empty(len(metrics), dtype=object)
    label[:] = metrics
    value = np.concatenate(values)
    con = duckdb.connect()
    con.register(
        "_points",
        {
            "part": np.concatenate(parts),
            "metric": label,
            "step": np.concatenate(steps),
            "value": np.where(np.isnan(value), 0.0, value),
            "nan": np.isnan(value),  # NumPy NaN would arrive as NULL; the catalog keeps NaN
            "n": np.concatenate(counts),
        },
    )
    source = (
        "SELECT part, metric, step, CASE WHEN nan THEN 'NaN'::DOUBLE ELSE value END AS value, n "
        f"FROM _points WHERE n > {max_points}"
    )
    got = {
        (int(p), m, int(s))
        for p, m, s in con.execute(
            f"SELECT part, metric, step FROM ({downsample_sql(source, max_points)})"
        ).fetchall()
    }
    short = {
        (int(p), m, int(s))
        for p, m, s in con.execute(
            f"SELECT part, metric, step FROM _points WHERE n <= {max_points}"
        ).fetchall()
    }
    assert got | short == expected
    assert not got & short


def _long_run(store_root: Path, run_id: str, n: int) -> None:
    run = hpclab.Run(project="p", store=store_root, run_id=run_id, settings=NO_SNAP)
    values = _spiky(n, 7)
    for step in range(n):
        point = {"train/loss": float(values[step]), "lr": 0.1}
        if step % 7 == 0:
            point["val/loss"] = math.nan if step == 14 else 1.0 / (step + 1)
        run.log(point, step=step)
    run.finish()


def _zarr_file(store: Store, key: tuple[str, str], path: Path, max_points: int) -> dict:
    write_run_series(path, run_series(store, *key, max_points=max_points))
    return read_series_file(path)


def test_bulk_files_are_the_per_run_files(tmp_path: Path) -> None:
    root = tmp_path / "store 'q'"
    _long_run(root, "long", 700)
    _long_run(root, "short", 30)
    hpclab.Run(project="p", store=root, run_id="empty", settings=NO_SNAP).finish()
    store = Store(root)
    index_store(store)
    layout = SiteLayout(tmp_path / "site")
    data = load(store)
    keys = [(r["project"], r["run_id"]) for r in data.runs]
    assert write_series(data, layout, keys, max_points=50, from_zarr=[]) == {}
    empty = read_series_file(layout.series_parquet("p", "empty"))  # no points: the fields
    assert empty == _zarr_file(store, ("p", "empty"), tmp_path / "empty.parquet", 50)
    assert empty["metrics"] == {} and empty["step"] is None and empty["version"].endswith("-0")
    for key in [("p", "long"), ("p", "short")]:
        bulk = read_series_file(layout.series_parquet(*key))
        assert bulk == _zarr_file(store, key, tmp_path / f"{key[1]}.parquet", 50), key
    long = read_series_file(layout.series_parquet("p", "long"))
    loss = long["metrics"]["train/loss"]
    assert long["step"] == 699 and long["version"].endswith(f"-{700 + 700 + 100}")
    assert loss["n"] == 700 and 25 < len(loss["step"]) <= 50 and 40.0 in loss["value"]
    assert long["rate"] is not None and long["rate"] > 0 and long["last_time"] > 0
    # each kept point's wall time, as seconds since the run's first point (float32)
    from hpclab.catalog.metrics_reader import read_run_metrics

    raw = read_run_metrics(store.run_paths("p", "long").metrics_zarr)
    start = min(float(r[:, 2].min()) for r in raw.values())
    assert long["start_time"] == pytest.approx(start)
    wall = dict(
        zip(raw["train/loss"][:, 0].astype(int).tolist(), raw["train/loss"][:, 2], strict=True)
    )
    assert loss["time"] == pytest.approx([wall[s] - start for s in loss["step"]], abs=1e-3)
    # NaN and inf are NULL in the file itself (a gap), never a zero
    path = str(layout.series_parquet("p", "long")).replace("'", "''")
    ((nulls, zeros),) = duckdb.execute(
        "SELECT count(*) FILTER (value IS NULL), count(*) FILTER (value = 0) "
        f"FROM read_parquet('{path}') WHERE metric = 'train/loss'"
    ).fetchall()
    logged = _spiky(700, 7)[loss["step"]]
    assert nulls == int((~np.isfinite(logged)).sum()) > 0
    assert zeros == int((logged == 0).sum())
    short = read_series_file(layout.series_parquet("p", "short"))["metrics"]["val/loss"]
    assert short["step"] == [0, 7, 14, 21, 28] and short["value"][2] is None  # NaN: a gap


def test_the_build_reads_from_zarr_only_the_runs_the_catalog_may_lag(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _long_run(root, "old", 20)
    _long_run(root, "recent", 20)
    running = hpclab.Run(project="p", store=root, run_id="running", settings=NO_SNAP)
    running.log({"loss": 1.0}, step=0)
    running.flush()
    store = Store(root)
    hour_ago = time.time() - 3600
    for p in (store.run_paths("p", "old").run_json, store.run_paths("p", "old").metrics_commit):
        os.utime(p, (hour_ago, hour_ago))
    index_store(store)
    data = load(store)
    keys = [(r["project"], r["run_id"]) for r in data.runs]
    assert sorted(lagging(data, keys)) == [("p", "recent"), ("p", "running")]
    layout = SiteLayout(tmp_path / "site")
    infos = write_series(data, layout, keys)
    assert sorted(infos) == [("p", "recent"), ("p", "running")]  # live.json's candidates
    assert infos[("p", "running")]["status"] == "running"
    for key in keys:  # every run has its file, from either writer
        assert read_series_file(layout.series_parquet(*key))["metrics"], key
    running.finish()


def test_the_run_page_charts_a_file_of_the_bulk_writer(tmp_path: Path) -> None:
    """hyparquet in headless Chromium reads what the full build's DuckDB statements wrote
    (the small stores of the other browser tests are recent: their runs' files come from
    the zarr writer): the charts draw the run's lines up to its last step, and a run
    without points loads without an error."""
    from hpclab.site.build import build
    from hpclab.site.chromium import Chromium
    from hpclab.site.serve import make_server, serve_in_thread, url_of

    root = tmp_path / "store"
    _long_run(root, "old", 30)
    hpclab.Run(project="p", store=root, run_id="quiet", settings=NO_SNAP).finish()
    store = Store(root)
    hour_ago = time.time() - 3600
    for run_id in ("old", "quiet"):
        paths = store.run_paths("p", run_id)
        for p in (paths.run_json, paths.metrics_commit):
            if p.exists():
                os.utime(p, (hour_ago, hour_ago))
    index_store(store)
    data = load(store)
    assert lagging(data, [("p", "old"), ("p", "quiet")]) == []  # both from the catalog
    build(store)
    server = make_server(store.site_dir / "html", port=0)
    serve_in_thread(server)
    try:
        with Chromium() as browser:
            page = browser.new_page()
            page.goto(f"{url_of(server)}runs/run.html?p=p&id=old")
            page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
            charts = "Array.from(document.querySelectorAll('.hl-run-chart [data-last-step]'))"
            page.wait_for(f"{charts}.length === 3")  # a chart per metric: each loss, lr
            drawn = page.evaluate(
                f"{charts}.map(c => [c.dataset.lastStep,"
                " c.querySelectorAll('g.mark-line path').length])"
            )
            # each metric's line to its own last step (val/loss is logged every 7 steps)
            assert sorted(drawn) == [["28", 1], ["29", 1], ["29", 1]], drawn
            assert page.errors == [], page.errors
            page.goto(f"{url_of(server)}runs/run.html?p=p&id=quiet")
            page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
            assert page.errors == [], page.errors
            page.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_cut_run_also_gets_every_point_for_zoomed_charts(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _long_run(root, "long", 700)
    _long_run(root, "short", 30)
    store = Store(root)
    index_store(store)
    layout = SiteLayout(tmp_path / "site")
    data = load(store)
    keys = [(r["project"], r["run_id"]) for r in data.runs]
    write_series(data, layout, keys, max_points=50, from_zarr=[])
    full = read_series_file(layout.full_series_parquet("p", "long"))
    loss = full["metrics"]["train/loss"]
    assert loss["step"] == list(range(700)) and loss["n"] == 700  # every point
    assert not layout.full_series_parquet("p", "short").exists()  # nothing was cut
    # the per-run writer (runs the catalog lags) makes the same file
    write_series(data, layout, keys, max_points=50, from_zarr=keys)
    assert read_series_file(layout.full_series_parquet("p", "long")) == full
    assert not layout.full_series_parquet("p", "short").exists()
