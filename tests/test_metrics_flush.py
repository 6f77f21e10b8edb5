"""A flush writes only what is new (issue 20, flush cost per metric), and a GIL-bound
logging loop lets a late flush catch up (issue 20, the loss window after SIGKILL).

The writer encodes its own arrays' chunks: each flush writes, per metric, the chunks its
new rows fall in and the array's metadata only when the shape grows by a chunk. These
tests count the files written and read every store back through zarr itself and through
the catalog's chunk reader; the timings are in scripts/bench_flush_metrics.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.codecs import GzipCodec

import hpclab.tracking.metrics as metrics_module
from hpclab.catalog.metrics_reader import read_run_metrics
from hpclab.tracking.metrics import MetricWriter, encode_metric_name, read_commit, read_metrics


def _record_puts(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    written: list[Path] = []
    real = metrics_module._put

    def put(path: Path, data: bytes) -> None:
        written.append(Path(path))
        real(path, data)

    monkeypatch.setattr(metrics_module, "_put", put)
    return written


def test_a_flush_writes_one_chunk_per_metric_and_metadata_only_when_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.zarr"
    w = MetricWriter(path, chunk_rows=4)
    names = [f"layer{i}/grad_norm" for i in range(30)]
    written = _record_puts(monkeypatch)
    w.log({n: 0.0 for n in names}, step=0)
    assert w.flush()
    created = {p.relative_to(path).as_posix() for p in written}
    assert created == {
        f"{encode_metric_name(n)}/{f}" for n in names for f in ("zarr.json", "c/0/0")
    }
    for step in range(1, 6):  # rows 1-3 fill chunk 0; row 4 starts chunk 1 (shape 4 -> 8)
        written.clear()
        w.log({n: float(step) for n in names}, step=step)
        assert w.flush()
        first = path / encode_metric_name(names[0])
        files = sorted(p.relative_to(first).as_posix() for p in written if first in p.parents)
        assert len(written) == len(names) * len(files)
        if step < 4:
            assert files == ["c/0/0"]
        elif step == 4:
            assert files == ["c/1/0", "zarr.json"]
        else:
            assert files == ["c/1/0"]
    for name, got in read_metrics(path).items():  # through zarr itself
        assert got.step.tolist() == list(range(6)), name
        assert got.value.tolist() == [float(s) for s in range(6)]
    fast = read_run_metrics(path)  # the catalog's chunk reader
    assert all(fast[n][:, 1].tolist() == [float(s) for s in range(6)] for n in names)
    arr = zarr.open_array(store=str(path / encode_metric_name(names[0])), mode="r")
    assert arr.shape == (8, 3)  # whole chunks ahead of the committed length
    assert np.isnan(arr[6:]).all()
    assert read_commit(path)["series"][names[0]]["length"] == 6


@pytest.mark.parametrize("chunk_rows", [1, 3, 16])
def test_resume_in_the_middle_of_a_chunk_reads_the_tail_back(
    tmp_path: Path, chunk_rows: int
) -> None:
    path = tmp_path / "m.zarr"
    w = MetricWriter(path, chunk_rows=chunk_rows)
    for s in range(0, 20, 2):
        w.log({"a": s * 0.5, "b": -s}, step=s)
        w.flush()
    # a killed writer left rows past the committed length in the tail chunk and beyond
    w.log({"a": 99.0}, step=100)
    real_commit = w._commit
    w._commit = lambda group: None  # type: ignore[method-assign]
    assert w.flush()
    w._commit = real_commit  # type: ignore[method-assign]
    assert read_commit(path)["series"]["a"]["length"] == 10

    w2 = MetricWriter(path, chunk_rows=64)  # the array's own chunking wins
    assert w2.step == 18
    for s in range(20, 31):
        w2.log({"a": s * 0.5}, step=s)
    assert w2.flush()
    got = read_metrics(path)["a"]
    assert got.step.tolist() == list(range(0, 20, 2)) + list(range(20, 31))
    assert got.value.tolist() == [s * 0.5 for s in got.step.tolist()]
    assert read_run_metrics(path)["a"][:, 0].tolist() == got.step.tolist()
    assert read_metrics(path)["b"].step.tolist() == list(range(0, 20, 2))


def test_an_array_in_another_layout_is_appended_through_zarr(tmp_path: Path) -> None:
    """A store whose arrays something else wrote (gzip, other chunks): resumed and appended
    through the zarr API, as before."""
    path = tmp_path / "m.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    arr = zarr.create_array(
        store=str(path / "loss"),
        shape=(5, 3),
        chunks=(2, 3),
        dtype="float64",
        compressors=[GzipCodec()],
        fill_value=np.nan,
    )
    arr[:] = np.array([[s, s * 2.0, 1e9 + s] for s in range(5)])
    group.attrs.put({"hpclab": {"format": 1, "columns": ["step", "value", "wall_time"],
                                "seq": 1, "series": {"loss": {"array": "loss", "length": 5,
                                                              "last_step": 4}}}})  # fmt: skip
    w = MetricWriter(path)
    assert w.step == 4
    for s in range(5, 9):
        w.log({"loss": s * 2.0, "new": 1.0}, step=s)
    assert w.flush()
    got = read_metrics(path)
    assert got["loss"].step.tolist() == list(range(9))
    assert got["loss"].value.tolist() == [s * 2.0 for s in range(9)]
    assert got["new"].step.tolist() == [5, 6, 7, 8]
    meta = zarr.open_array(store=str(path / "loss"), mode="r").metadata
    assert "GzipCodec" in str(meta.codecs) and meta.shape == (9, 3)  # its layout is kept


def test_a_leftover_array_of_a_killed_writer_is_replaced(tmp_path: Path) -> None:
    """An array directory that no commit names (the writer died before committing it)
    holds stale chunks; a new series of that name must not show them."""
    path = tmp_path / "m.zarr"
    w = MetricWriter(path, chunk_rows=2)
    w.log({"keep": 0.0}, step=0)
    assert w.flush()
    stale = zarr.create_array(store=str(path / "x"), shape=(6, 3), chunks=(2, 3),
                              dtype="float64", fill_value=np.nan)  # fmt: skip
    stale[:] = -7.0
    w2 = MetricWriter(path, chunk_rows=2)
    w2.log({"x": 1.0}, step=1)
    assert w2.flush()
    assert read_metrics(path)["x"].value.tolist() == [1.0]
    arr = zarr.open_array(store=str(path / "x"), mode="r")
    assert arr.shape == (2, 3) and np.isnan(arr[1]).all()
    assert not (path / "x" / "c" / "1").exists()


# -- the loss window: a late flush catches up -------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_late_flush_is_followed_by_a_fresh_one_before_log_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a GIL-bound loop the background flush is starved: it can end long after it
    started, having stored only what was logged before then. ``log`` must then wait for a
    flush that started after it (bounded), not return as soon as the stale one ends: that
    left the store a whole flush behind each interval (3-4 intervals lost on SIGKILL)."""
    clock = _Clock()
    monkeypatch.setattr(metrics_module, "_time", clock)
    interval = 8.0  # fake seconds; log() waits at most a quarter of it (real seconds)
    w = MetricWriter(tmp_path / "m.zarr", flush_interval=interval)
    real = MetricWriter._write_pending
    in_stale = threading.Event()
    calls: list[float] = []
    late = clock.now + 10.0  # when the loop notices the store is behind

    def write_pending(self: MetricWriter) -> None:
        calls.append(clock.now)
        if len(calls) == 1:  # the starved flush: it ends once log() asks for a flush
            in_stale.set()  # or the loop has moved on past ``late``
            pause = threading.Event()
            while not (self.wake.is_set() or clock.now >= late):
                pause.wait(0.005)
        real(self)

    monkeypatch.setattr(MetricWriter, "_write_pending", write_pending)
    stop = threading.Event()

    def background() -> None:  # the run's worker: flush when woken
        while not stop.is_set():
            if w.wake.wait(0.01) and not stop.is_set():
                w.flush()

    w.log({"loss": 0.0}, step=0)
    thread = threading.Thread(target=background, daemon=True)
    thread.start()
    try:
        w.wake.set()
        assert in_stale.wait(30)
        clock.now += 1.0
        w.log({"loss": 1.0}, step=1)  # logged after the stale flush collected its points
        clock.now = late  # nothing stored for more than an interval: the flush is late
        w.log({"loss": 2.0}, step=2)  # waits for a flush that stores step 1
        committed = read_metrics(tmp_path / "m.zarr")["loss"].step.tolist()
    finally:
        stop.set()
        w.wake.set()
        thread.join(30)
    assert committed == [0, 1], f"log() returned with the store still behind: {committed}"
    assert len(calls) >= 2


def test_a_loop_the_flush_keeps_up_with_never_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(metrics_module, "_time", clock)
    w = MetricWriter(tmp_path / "m.zarr", flush_interval=10.0)
    waits: list[Any] = []
    real_wait = w._flushed.wait
    monkeypatch.setattr(w._flushed, "wait", lambda t=None: waits.append(t) or real_wait(0))
    for step in range(200):
        clock.now += 0.3  # a flush every 3 s of fake time: well within the interval
        w.log({"loss": float(step)}, step=step)
        if step % 10 == 9:
            assert w.flush()
    assert waits == []
    assert not w.wake.is_set()
