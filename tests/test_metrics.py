"""The Zarr metric writer and reader: names, values, the step rule, resume, readers."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr
from helpers import poll

from hpclab.errors import MetricError
from hpclab.tracking.metrics import (
    MetricWriter,
    decode_metric_name,
    encode_metric_name,
    fitted_chunk_rows,
    read_commit,
    read_metrics,
)


def test_tensorboard_style_names_round_trip(store_root: Path) -> None:
    names = ["train/loss", "val/acc@1", "a", "a/b", "weird name %/é", ".hidden", "__x", "x" * 300]
    w = MetricWriter(store_root / "m.zarr")
    w.log({n: float(i) for i, n in enumerate(names)}, step=0)
    assert w.flush()
    got = read_metrics(store_root / "m.zarr")
    assert sorted(got) == sorted(names)
    for i, n in enumerate(names):
        assert got[n].value.tolist() == [float(i)]
    # one flat array per metric, named reversibly (long names are shortened with a hash)
    for n in names[:-1]:
        assert decode_metric_name(encode_metric_name(n)) == n
        assert "/" not in encode_metric_name(n)
    assert len(encode_metric_name(names[-1])) <= 180


def test_nan_and_inf_are_stored_faithfully(store_root: Path) -> None:
    w = MetricWriter(store_root / "m.zarr")
    values = [1.5, math.nan, math.inf, -math.inf, 0.0]
    for step, v in enumerate(values):
        w.log({"loss": v}, step=step)
    w.flush()
    got = read_metrics(store_root / "m.zarr")["loss"]
    assert got.step.tolist() == [0, 1, 2, 3, 4]
    assert got.value[0] == 1.5 and math.isnan(got.value[1])
    assert got.value[2] == math.inf and got.value[3] == -math.inf


def test_numeric_types_are_accepted(store_root: Path) -> None:
    import torch

    w = MetricWriter(store_root / "m.zarr")
    w.log(
        {"i": 3, "np": np.float32(0.25), "b": True, "t": torch.tensor(2.5), "a": np.array([7.0])},
        step=np.int64(4),
    )
    w.flush()
    got = read_metrics(store_root / "m.zarr")
    assert {k: v.value.tolist() for k, v in got.items()} == {
        "i": [3.0],
        "np": [0.25],
        "b": [1.0],
        "t": [2.5],
        "a": [7.0],
    }
    assert got["i"].step.tolist() == [4]


@pytest.mark.parametrize("value", ["0.3", None, [1.0, 2.0], object(), np.zeros(3)])
def test_non_numeric_value_is_a_clear_error_naming_the_metric(
    store_root: Path, value: object
) -> None:
    w = MetricWriter(store_root / "m.zarr")
    with pytest.raises(MetricError, match="'train/acc'"):
        w.log({"train/loss": 0.1, "train/acc": value}, step=0)
    # all or nothing: the valid value of the same call was not recorded either
    w.log({"train/loss": 0.2}, step=1)
    w.flush()
    assert read_metrics(store_root / "m.zarr")["train/loss"].step.tolist() == [1]


@pytest.mark.parametrize("step", [-1, 1.5, "3", True])
def test_bad_step_is_rejected(store_root: Path, step: object) -> None:
    w = MetricWriter(store_root / "m.zarr")
    with pytest.raises(MetricError, match="step"):
        w.log({"x": 1.0}, step=step)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", 3, "bad\nname"])
def test_bad_metric_name_is_rejected(store_root: Path, name: object) -> None:
    w = MetricWriter(store_root / "m.zarr")
    with pytest.raises(MetricError):
        w.log({name: 1.0}, step=0)  # type: ignore[dict-item]


def test_step_rule_first_recording_wins_per_metric(store_root: Path) -> None:
    w = MetricWriter(store_root / "m.zarr")
    w.log({"a": 1.0, "b": 10.0}, step=0)
    w.log({"a": 2.0}, step=1)
    w.log({"a": 99.0, "b": 20.0}, step=1)  # a@1 again: dropped; b@1 is new
    w.log({"a": 98.0}, step=0)  # backwards: dropped
    w.flush()
    w.log({"a": 97.0}, step=1)  # across a flush: still dropped
    w.log({"a": 3.0})  # default step = highest so far + 1
    w.flush()
    got = read_metrics(store_root / "m.zarr")
    assert got["a"].step.tolist() == [0, 1, 2] and got["a"].value.tolist() == [1.0, 2.0, 3.0]
    assert got["b"].step.tolist() == [0, 1] and got["b"].value.tolist() == [10.0, 20.0]
    assert w.dropped() == {"a": 3}


def test_resume_continues_without_duplicates_and_drops_uncommitted_rows(store_root: Path) -> None:
    path = store_root / "m.zarr"
    w = MetricWriter(path, chunk_rows=16)
    for s in range(40):
        w.log({"loss": float(s)}, step=s)
    w.flush()
    # a writer killed between resize and commit leaves rows past the committed length
    arr = zarr.open_array(store=str(path / "loss"), mode="r+")
    arr.resize((45, 3))
    arr[40:45] = -1.0
    assert read_commit(path)["series"]["loss"]["length"] == 40

    w2 = MetricWriter(path, chunk_rows=16)
    assert w2.step == 39
    for s in range(30, 60):  # the requeued job replays from its checkpoint at 30
        w2.log({"loss": 1000.0 + s}, step=s)
    w2.flush()
    got = read_metrics(path)["loss"]
    assert got.step.tolist() == list(range(60))
    assert got.value[:40].tolist() == [float(s) for s in range(40)]
    assert got.value[40:].tolist() == [1000.0 + s for s in range(40, 60)]
    assert w2.dropped() == {"loss": 10}


def test_many_chunks_and_partial_tail(store_root: Path) -> None:
    w = MetricWriter(store_root / "m.zarr", chunk_rows=7)
    expected = []
    for s in range(100):
        w.log({"x": s * 0.5}, step=s)
        expected.append(s * 0.5)
        if s % 13 == 0:
            w.flush()
    w.flush()
    got = read_metrics(store_root / "m.zarr")["x"]
    assert got.value.tolist() == expected
    assert np.all(np.diff(got.wall_time) >= 0)


def test_log_never_touches_the_filesystem(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = MetricWriter(store_root / "m.zarr")
    calls = []
    monkeypatch.setattr(w, "_write_pending", lambda: calls.append(1))
    for s in range(1000):
        w.log({"a": 1.0, "b": 2.0}, step=s)
    assert calls == [] and not (store_root / "m.zarr").exists()
    assert w.buffered() == 2000


def test_failed_flush_keeps_points_and_retries(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = MetricWriter(store_root / "m.zarr")
    w.log({"a": 1.0}, step=0)
    real = MetricWriter._ensure_group

    def broken(self: MetricWriter) -> None:
        raise OSError("NFS server not responding")

    monkeypatch.setattr(MetricWriter, "_ensure_group", broken)
    assert not w.flush()
    assert isinstance(w.last_error, OSError)
    w.log({"a": 2.0}, step=1)
    monkeypatch.setattr(MetricWriter, "_ensure_group", real)
    assert w.flush()
    assert read_metrics(store_root / "m.zarr")["a"].value.tolist() == [1.0, 2.0]


def test_overflow_past_max_buffer_is_counted_not_blocking(store_root: Path) -> None:
    w = MetricWriter(store_root / "m.zarr", max_buffer=10)
    for s in range(20):
        w.log({"a": 1.0}, step=s)
    assert w.dropped() == {"*overflow*": 10}
    w.flush()
    assert len(read_metrics(store_root / "m.zarr")["a"]) == 10


WRITER = r"""
import sys, time
from pathlib import Path
from hpclab.tracking.metrics import MetricWriter
w = MetricWriter(Path(sys.argv[1]), chunk_rows=64)
for s in range(3000):
    w.log({"train/loss": s * 1.0, "lr": 0.5}, step=s)
    if s % 37 == 0:
        w.flush()
w.flush()
"""


def test_reader_during_writes_sees_only_committed_points(store_root: Path) -> None:
    path = store_root / "m.zarr"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    lengths = []
    while proc.poll() is None:
        got = read_metrics(path)
        if "train/loss" in got:
            s = got["train/loss"]
            assert not np.isnan(s.value).any(), "a reader saw a fill value as data"
            assert s.step.tolist() == list(range(len(s)))
            assert s.value.tolist() == [float(i) for i in range(len(s))]
            lengths.append(len(s))
    assert proc.wait() == 0
    assert lengths == sorted(lengths)
    assert len(read_metrics(path)["train/loss"]) == 3000


def test_background_thread_and_logging_thread_do_not_lose_points(store_root: Path) -> None:
    w = MetricWriter(store_root / "m.zarr", buffer_size=50)
    stop = threading.Event()

    def flusher() -> None:
        while not stop.is_set():
            w.flush()

    t = threading.Thread(target=flusher)
    t.start()
    for s in range(20_000):
        w.log({"a": float(s), "b": 1.0}, step=s)
    stop.set()
    t.join()
    w.flush()
    got = read_metrics(store_root / "m.zarr")
    assert got["a"].step.tolist() == list(range(20_000))
    assert len(got["b"]) == 20_000


def test_logging_goes_on_while_the_filesystem_is_stuck(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background write blocks until the test releases it; log() must keep returning
    meanwhile (if it waited on the write, the write's 60 s timeout would be hit)."""
    import hpclab

    real = MetricWriter._write_pending
    entered, release = threading.Event(), threading.Event()
    timed_out = []

    def stuck(self: MetricWriter) -> None:
        entered.set()
        if not release.wait(60):
            timed_out.append(True)
        real(self)

    monkeypatch.setattr(MetricWriter, "_write_pending", stuck)
    run = hpclab.Run(
        project="p",
        store=store_root,
        flush_interval=0.01,
        buffer_size=10,
        settings={"snapshot_env": False},
    )
    run.log({"a": 0.0}, step=0)
    poll(entered.is_set, message="the background flush to start")
    for s in range(1, 5000):
        run.log({"a": float(s)}, step=s)
    assert not timed_out, "log() waited on the stuck filesystem"
    release.set()
    run.finish()
    assert len(read_metrics(run.paths.metrics_zarr)["a"]) == 5000


@pytest.mark.parametrize(
    ("planned", "limit", "rows"),
    [(None, 4096, 4096), (0, 4096, 4096), (10, 4096, 1024), (1023, 4096, 1024),
     (1024, 4096, 2048), (3000, 4096, 4096), (100_000, 4096, 4096), (10, 512, 512)],
)  # fmt: skip
def test_chunks_fit_the_planned_steps(planned: int | None, limit: int, rows: int) -> None:
    assert fitted_chunk_rows(planned, limit) == rows


def test_a_run_planned_for_1000_steps_stores_1024_row_chunks_and_can_run_longer(
    store_root: Path,
) -> None:
    """The chunks follow the config's train.steps; a run set ``total_steps`` later fits
    the metrics first stored from then on; logging past the plan adds chunks, loses nothing."""
    import hpclab

    run = hpclab.Run(
        project="p",
        store=store_root,
        run_id="planned",
        settings={"snapshot_env": False},
        config={"train": {"steps": 1000}},
    )
    for s in range(2500):  # past the plan
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    run.flush()  # loss's array exists: its chunks stay as they are
    run.total_steps = 100_000  # a longer plan: later metrics get the largest chunks
    run.log({"late": 1.0}, step=2500)
    run.finish()
    metrics = run.paths.metrics_zarr
    series = read_commit(metrics)["series"]
    assert series["loss"]["chunk_rows"] == 1024 and series["late"]["chunk_rows"] == 4096
    assert zarr.open_array(metrics / "loss", mode="r").chunks == (1024, 3)
    assert sorted(p.name for p in (metrics / "loss" / "c").iterdir()) == ["0", "1", "2"]
    got = read_metrics(metrics)["loss"]
    assert got.step.tolist() == list(range(2500))
