"""Latency profiling (issue 19): ``hpclab.profile.latency`` times each call, records
percentiles, throughput and a histogram into a real run and the catalog's ``latency``
table. Percentiles are checked against NumPy with a function of known latencies on an
injected fake clock (no sleeps, no timed assertions)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import hpclab
from hpclab.errors import ProfileError
from hpclab.profile import latency
from hpclab.store import Store


class FakeClock:
    """A nanosecond clock that only moves when a call says how long it took."""

    def __init__(self) -> None:
        self.now = 10**12
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.now

    def work(self, ns: int) -> None:
        self.now += int(ns)


def _known(n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(4)
    return np.round(rng.lognormal(mean=np.log(2e6), sigma=0.6, size=n)).astype(np.int64)


def test_percentiles_throughput_and_histogram_match_numpy() -> None:
    ns = _known()
    clock = FakeClock()
    res = latency(clock.work, ns.tolist(), warmup=7, iters=len(ns), clock=clock)
    ms = ns / 1e6
    assert res.calls == len(ns) and res.warmup == 7
    for q, got in ((50, res.p50_ms), (95, res.p95_ms), (99, res.p99_ms)):
        assert got == pytest.approx(np.percentile(ms, q), rel=1e-12)
    assert res.mean_ms == pytest.approx(ms.mean()) and res.max_ms == pytest.approx(ms.max())
    # the clock moved only inside the timed calls: wall time is their sum
    assert res.wall_s == pytest.approx(ns.sum() / 1e9)
    assert res.throughput_per_s == pytest.approx(len(ns) / (ns.sum() / 1e9))
    counts, edges = np.histogram(ms, bins=30)
    assert res.histogram["counts"] == counts.tolist()
    assert res.histogram["edges_ms"] == pytest.approx(edges.tolist())
    curve = {c["q"]: c["ms"] for c in res.curve}
    assert curve[0] == pytest.approx(ms.min()) and curve[99.9] == pytest.approx(
        np.percentile(ms, 99.9)
    )
    assert clock.reads == 2 * len(ns) + 2  # each call's start and end, and the wall's


def test_warmup_calls_are_not_timed() -> None:
    clock = FakeClock()
    seen: list[int] = []

    def fn(x: int) -> None:
        seen.append(x)
        clock.work(x)

    res = latency(fn, [10**9, 10**6, 2 * 10**6], warmup=1, iters=2, clock=clock)
    assert seen == [10**9, 10**6, 2 * 10**6]  # the slow first call was the warm-up
    assert res.max_ms == pytest.approx(2.0) and res.p50_ms == pytest.approx(1.5)


def test_a_profile_is_recorded_into_the_run_and_indexed(store_root: Path) -> None:
    from hpclab.catalog.connect import connect
    from hpclab.catalog.indexer import index_store

    ns = _known(200)
    clock = FakeClock()
    with hpclab.Run(store=store_root, project="lat") as run:
        res = latency(clock.work, ns.tolist(), iters=200, warmup=0, name="predict", clock=clock)
        assert run.summary["latency/predict/p50_ms"] == res.p50_ms
    assert run.paths is not None
    doc = json.loads(run.paths.latency_json("predict").read_text())
    assert doc["p99_ms"] == pytest.approx(np.percentile(ns / 1e6, 99))
    assert "numpy.percentile" in doc["method"] and "latencies_ms" not in doc
    store = Store(store_root)
    record = store.read_record(run.paths)
    assert record.summary["latency/predict/throughput_per_s"] == pytest.approx(res.throughput_per_s)
    index_store(store)
    con = connect(store)
    got = con.execute("SELECT name, calls, concurrency, p95_ms FROM latency").fetchall()
    assert got == [("predict", 200, 1, pytest.approx(res.p95_ms))]
    con.close()
    # a second profile of the ended run (a directory): another row, summary merged
    clock2 = FakeClock()
    kw = {"iters": 5, "warmup": 0, "name": "batch.8", "clock": clock2}
    latency(clock2.work, [3 * 10**6], run=run.paths.dir, **kw)
    index_store(store)
    con = connect(store)
    got = con.execute("SELECT name, p50_ms FROM latency ORDER BY name").fetchall()
    assert got == [("batch.8", pytest.approx(3.0)), ("predict", pytest.approx(res.p50_ms))]
    con.close()
    summary = store.read_record(run.paths).summary
    assert summary["latency/batch.8/p50_ms"] == pytest.approx(3.0)
    assert "latency/predict/p50_ms" in summary


def test_concurrency_runs_the_calls_on_that_many_threads() -> None:
    n = 4
    barrier = threading.Barrier(n, timeout=30)  # each round of calls waits for all n
    names: set[str] = set()
    lock = threading.Lock()

    def fn(x: int) -> int:
        with lock:
            names.add(threading.current_thread().name)
        barrier.wait()
        return x * 2

    res = latency(fn, list(range(10)), warmup=0, iters=4 * n, concurrency=n)
    assert len(names) == n and all(t.startswith("hpclab-latency") for t in names)
    assert res.calls == 4 * n and res.concurrency == n
    assert res.throughput_per_s == pytest.approx(res.calls / res.wall_s)
    assert res.min_ms <= res.p50_ms <= res.p99_ms <= res.max_ms


def test_without_a_run_nothing_is_written_and_the_current_run_is_used(store_root: Path) -> None:
    res = latency(len, ["abc"], warmup=0, iters=3)
    assert res.path is None and res.calls == 3
    with hpclab.Run(store=store_root, project="lat") as run:
        res = latency(len, ["abc"], warmup=0, iters=3, name="len")
    assert run.paths is not None and res.path == str(run.paths.latency_json("len"))
    assert Path(res.path).is_file()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iters": 0}, "iters: an integer of at least 1, not 0"),
        ({"warmup": -1}, "warmup: an integer of at least 0, not -1"),
        ({"concurrency": 1.5}, "concurrency: an integer of at least 1, not 1.5"),
        ({"name": "../x"}, "name: '../x' is not a file name (letters, digits, '._-')"),
        ({"inputs": []}, "inputs: empty (at least one input to call fn with)"),
        (
            {"fn": lambda x: 1 / x, "inputs": [0]},
            "fn raised ZeroDivisionError on warm-up call 0: division by zero",
        ),  # fmt: skip
        (
            {"fn": lambda x: 1 / x, "inputs": [0], "warmup": 0, "concurrency": 2},
            "fn raised ZeroDivisionError on timed call 0: division by zero",
        ),  # fmt: skip
    ],
)
def test_bad_input_is_one_named_line(kwargs: dict, message: str) -> None:
    args = {"fn": len, "inputs": ["a"], **kwargs}
    with pytest.raises(ProfileError) as e:
        latency(**args)
    assert str(e.value) == message


def test_run_and_compare_pages_show_latency_in_chromium(store_root: Path, tmp_path: Path) -> None:
    from site_fixtures import served_site

    from hpclab.site.chromium import Chromium, find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium")
    ids, results = [], []
    for scale in (1, 3):
        clock = FakeClock()
        with hpclab.Run(store=store_root, project="lat") as run:
            ns = (_known(100) * scale).tolist()
            results.append(
                latency(clock.work, ns, iters=100, warmup=0, name="predict", clock=clock)
            )
        ids.append(run.id)
    with served_site(Store(store_root), tmp_path / "site") as base, Chromium() as browser:
        page = browser.new_page()
        page.goto(f"{base}runs/run.html?p=lat&id={ids[0]}")
        ready = "(document.querySelector('.hl-latency-curve') || {dataset: {}}).dataset.rendered"
        page.wait_for(f"{ready} === '1'", timeout=30)
        row = page.evaluate(
            "Array.from(document.querySelector('table.hl-latency tbody tr').cells,"
            " c => c.textContent)"
        )
        assert row[0] == "predict" and row[1] == "100"
        wanted = (results[0].p50_ms, results[0].p95_ms, results[0].p99_ms)
        for cell, value in zip(row[3:6], wanted, strict=True):
            assert float(cell) == pytest.approx(value, rel=1e-3)
        points = page.evaluate(
            "document.querySelectorAll('.hl-latency-curve path[aria-roledescription=\"point\"]')"
            ".length"
        )
        assert points == 12  # the percentile curve's quantiles
        assert page.errors == [], page.errors
        page.goto(f"{base}runs/compare.html?r=lat/{ids[0]},lat/{ids[1]}")
        page.wait_for(f"{ready} === '1'", timeout=30)
        rows = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-latency-compare-table tbody tr'),"
            " tr => Array.from(tr.cells, c => c.textContent))"
        )
        assert [r[0] for r in rows] == ids
        assert float(rows[1][4]) == pytest.approx(results[1].p50_ms, rel=1e-3)
        assert results[1].p50_ms == pytest.approx(3 * results[0].p50_ms, rel=1e-6)
        assert page.errors == [], page.errors
        page.close()
