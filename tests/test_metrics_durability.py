"""Nothing logged is lost silently: metric names that look like Zarr's own files, steps and
values past what the store holds, a failed commit, settings, the loss window of a tight
logging loop killed by SIGKILL, and the run's end on signals and full disks (issue 20).

A full disk cannot be made here: the ENOSPC cases make the one function that writes the
file raise ``OSError(ENOSPC)``; everything else is real Zarr on a real filesystem.
"""

from __future__ import annotations

import errno
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
import zarr.storage._local as zarr_local
from helpers import poll, python_script

import hpclab
import hpclab.tracking.metrics as metrics_module
from hpclab.errors import ConfigError, MetricError, StoreError
from hpclab.settings import TrackingSettings
from hpclab.store import RunStatus, Store
from hpclab.tracking.metrics import MetricWriter, read_commit, read_metrics

QUIET = {"snapshot_env": False, "system_interval": 0, "capture_output": "off"}


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


# -- 1. names ------------------------------------------------------------------------------
FORMAT_LIKE = [
    "zarr.json",
    ".zgroup",
    ".zattrs",
    ".zarray",
    "zarr.0123456789abcdef0123456789abcdef.partial",  # zarr's temporary file name
    "../x",
    "../../escaped",
    "a//b",
    "/lead",
    "trail/",
    ".",
    "..",
    "c/zarr.json",
    "x~0123456789abcdef",  # what a shortened long name ends with
    "val.acc",
]


def test_names_like_format_files_are_stored_and_later_points_too(tmp_path: Path) -> None:
    path = tmp_path / "m.zarr"
    w = MetricWriter(path)
    w.log({n: float(i) for i, n in enumerate(FORMAT_LIKE)}, step=0)
    w.log({"after": 7.0}, step=1)  # first logged after them: must not be lost
    assert w.flush()
    got = read_metrics(path)
    assert sorted(got) == sorted([*FORMAT_LIKE, "after"])
    for i, n in enumerate(FORMAT_LIKE):
        assert got[n].value.tolist() == [float(i)] and got[n].step.tolist() == [0]
    assert got["after"].value.tolist() == [7.0]
    # every array is a direct member of the group; nothing was written beside it
    assert {p.parts[0] for p in _files(tmp_path)} == {"m.zarr"}
    assert zarr.open_group(str(path), mode="r").attrs["hpclab"]["seq"] == 1
    assert all("." not in info["array"] for info in read_commit(path)["series"].values())
    # and a resumed writer (a requeued job) continues every one of them
    w2 = MetricWriter(path)
    w2.log({n: 1.0 for n in FORMAT_LIKE}, step=5)
    assert w2.flush()
    assert read_metrics(path)["zarr.json"].step.tolist() == [0, 5]


@pytest.mark.parametrize("name", ["", "a\x1b[31mred", "del\x7f", "csi\x9b2J", "half\ud800"])
def test_unstorable_names_are_refused_at_log_and_the_rest_kept(tmp_path: Path, name: str) -> None:
    w = MetricWriter(tmp_path / "m.zarr")
    w.log({"loss": 1.0}, step=0)
    with pytest.raises(MetricError, match="metric name"):
        w.log({name: 2.0, "loss": 2.0}, step=1)
    w.log({"loss": 3.0}, step=2)
    assert w.flush()
    assert read_metrics(tmp_path / "m.zarr")["loss"].step.tolist() == [0, 2]


def test_a_tampered_commit_cannot_point_the_writer_outside_its_group(tmp_path: Path) -> None:
    path = tmp_path / "m.zarr"
    w = MetricWriter(path)
    w.log({"loss": 1.0}, step=0)
    assert w.flush()
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["hpclab"]["series"]["loss"]["array"] = "../../elsewhere"
    meta.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="elsewhere"):
        MetricWriter(path)


# -- 2. steps ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "step", [2**53 + 1, 2**63, 2**64, np.uint64(2**63), -1, 1.5, "3", True, float("nan")]
)
def test_steps_the_store_cannot_hold_are_refused_and_nothing_lost(
    tmp_path: Path, step: Any
) -> None:
    w = MetricWriter(tmp_path / "m.zarr")
    w.log({"a": 0.0}, step=0)
    with pytest.raises(MetricError, match="step"):
        w.log({"a": 1.0, "b": 1.0}, step=step)
    w.log({"a": 2.0, "b": 2.0}, step=3)
    assert w.flush()
    got = read_metrics(tmp_path / "m.zarr")
    assert got["a"].step.tolist() == [0, 3] and got["a"].value.tolist() == [0.0, 2.0]
    assert got["b"].step.tolist() == [3]


def test_step_2_53_is_stored_exactly_and_the_next_default_step_refused(tmp_path: Path) -> None:
    w = MetricWriter(tmp_path / "m.zarr")
    w.log({"a": 1.0}, step=2**53 - 1)
    w.log({"a": 2.0})  # the default step: 2**53
    with pytest.raises(MetricError, match="2\\*\\*53"):
        w.log({"a": 3.0})
    assert w.flush()
    assert read_metrics(tmp_path / "m.zarr")["a"].step.tolist() == [2**53 - 1, 2**53]


# -- 3. values -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [10**400, -(10**400), np.array([10**300], dtype=object)])
def test_a_value_too_large_for_a_float_is_a_metric_error(tmp_path: Path, value: Any) -> None:
    w = MetricWriter(tmp_path / "m.zarr")
    w.log({"a": 1.0}, step=0)
    with pytest.raises(MetricError, match="'big'") as info:
        w.log({"a": 2.0, "big": value * 10**200}, step=1)
    assert not isinstance(info.value, OverflowError)
    w.log({"a": 3.0, "big": 10**300}, step=2)  # large but a float: stored
    assert w.flush()
    got = read_metrics(tmp_path / "m.zarr")
    assert got["a"].step.tolist() == [0, 2]
    assert got["big"].value.tolist() == [1e300]


# -- 4. a failed commit --------------------------------------------------------------------
def _fail_once(monkeypatch: pytest.MonkeyPatch, when: Callable[[Path], bool]) -> list[Path]:
    """Make the two file-writing functions (zarr's, which writes the group's commit record,
    and the writer's own, which writes its arrays' chunks and metadata) raise ENOSPC once,
    for the first path ``when`` accepts (as a full disk would); returns the paths refused."""
    real_zarr, real_own = zarr_local._put, metrics_module._put
    refused: list[Path] = []

    def refuse(path: Any) -> None:
        if not refused and when(Path(path)):
            refused.append(Path(path))
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    def put(path: Path, value: Any, exclusive: bool = False) -> int:
        refuse(path)
        return real_zarr(path, value, exclusive=exclusive)

    def own_put(path: Path, data: bytes) -> None:
        refuse(path)
        real_own(path, data)

    monkeypatch.setattr(zarr_local, "_put", put)
    monkeypatch.setattr(metrics_module, "_put", own_put)
    return refused


def test_enospc_at_the_commit_record_keeps_the_block_and_the_next_flush_stores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.zarr"
    w = MetricWriter(path)
    w.log({"a": 0.0}, step=0)
    assert w.flush()
    refused = _fail_once(monkeypatch, lambda p: p == path / "zarr.json")
    for s in range(1, 50):
        w.log({"a": float(s), "new": float(s)}, step=s)
    assert w.flush() is False, "points are not readable: flush must not say they are"
    assert refused == [path / "zarr.json"]
    assert isinstance(w.last_error, OSError) and w.last_error.errno == errno.ENOSPC
    assert read_metrics(path)["a"].step.tolist() == [0]  # the reader sees the old commit
    assert w.flush() is True  # nothing new logged: the retry commits what was written
    got = read_metrics(path)
    assert got["a"].step.tolist() == list(range(50))
    assert got["new"].value.tolist() == [float(s) for s in range(1, 50)]


def test_enospc_at_a_chunk_keeps_its_points_and_commits_the_other_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.zarr"
    w = MetricWriter(path)
    refused = _fail_once(monkeypatch, lambda p: p.relative_to(path).parts[:2] == ("b", "c"))
    for s in range(20):
        w.log({"a": float(s), "b": -float(s)}, step=s)
    assert w.flush() is False
    assert refused
    committed = read_metrics(path)
    assert "b" not in committed or len(committed["b"]) == 0
    assert w.buffered() == 20  # b's points wait in memory
    w.log({"a": 20.0, "b": -20.0}, step=20)
    assert w.flush() is True
    got = read_metrics(path)
    assert got["a"].step.tolist() == got["b"].step.tolist() == list(range(21))
    assert got["b"].value.tolist() == [-float(s) for s in range(21)]


# -- 5. settings ---------------------------------------------------------------------------
def test_settings_given_to_init_are_used(store_root: Path) -> None:
    run = hpclab.init(
        project="p",
        store=store_root,
        settings={**QUIET, "flush_interval": 3600, "heartbeat_interval": 0.2, "buffer_size": 5},
    )
    try:
        assert (run.settings.flush_interval, run.settings.heartbeat_interval) == (3600, 0.2)
        assert run.settings.buffer_size == 5 and run._writer is not None
        assert run._writer.flush_interval == 3600
        first = json.loads(run.paths.run_json.read_text())  # type: ignore[union-attr]
        assert first["heartbeat_interval"] == 0.2
        # heartbeat_interval: run.json is rewritten long before the default 30 s
        poll(
            lambda: (
                json.loads(run.paths.run_json.read_text())["heartbeat_at"]  # type: ignore[union-attr]
                != first["heartbeat_at"]
            ),
            timeout=20,
            message="a heartbeat every 0.2 s",
        )
        # buffer_size: 5 points wake the flush, an hour before flush_interval would
        for s in range(5):
            run.log({"loss": float(s)}, step=s)
        poll(
            lambda: len(read_metrics(run.dir / "metrics.zarr").get("loss", [])) == 5,
            timeout=20,
            message="a flush at buffer_size points",
        )
    finally:
        run.finish()


def test_a_tracking_settings_object_is_accepted(store_root: Path) -> None:
    settings = TrackingSettings(flush_interval=0.3, snapshot_env=False, system_interval=0)
    run = hpclab.init(project="p", store=store_root, settings=settings)
    run.finish()
    assert run.settings == settings


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"flush_intervall": 1.0}, "flush_intervall"),
        ({"buffer_size": -3}, "buffer_size"),
        ({"heartbeat_interval": "soon"}, "heartbeat_interval"),
        ({"flush_interval": 0}, "flush_interval"),
        ("flush_interval=1", "settings must be a mapping"),
    ],
)
def test_an_unknown_or_invalid_setting_is_one_line_naming_it(
    store_root: Path, settings: Any, named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        hpclab.init(project="p", store=store_root, settings=settings)
    assert named in str(info.value) and "\n" not in str(info.value)
    assert not (store_root / "p" / "runs").exists() or not list(
        (store_root / "p" / "runs").iterdir()
    )


# -- 6. flush cost -------------------------------------------------------------------------
def test_a_flush_never_lists_the_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listing the group once per series made a flush O(n^2) in the number of metrics;
    the timings are in scripts/bench_flush_metrics.py and docs/scaling.md."""
    from zarr.core.group import AsyncGroup

    listings: list[str] = []
    for method in ("nmembers", "members", "keys"):
        real = getattr(AsyncGroup, method)

        def counted(self: Any, *a: Any, _real: Any = real, _m: str = method, **k: Any) -> Any:
            listings.append(_m)
            return _real(self, *a, **k)

        monkeypatch.setattr(AsyncGroup, method, counted)
    w = MetricWriter(tmp_path / "m.zarr")
    for step in range(3):
        w.log({f"m{i}": float(i + step) for i in range(60)}, step=step)
        assert w.flush()
    assert listings == []
    assert len(read_metrics(tmp_path / "m.zarr")) == 60


# -- 7. the loss window of a tight loop: a timing, so a benchmark --------------------------
# scripts/bench_kill_window.py measures what a SIGKILL loses from a GIL-bound logging loop
# (figures in docs/scaling.md); no timed assertion lives here.


# -- 8. the run's end ----------------------------------------------------------------------
SIGNAL_IN_FINISH = r"""
import os, signal, sys, threading, hpclab
run = hpclab.init(project="p", store=sys.argv[1], settings={"snapshot_env": False,
                  "system_interval": 0, "capture_output": "off", "flush_interval": 3600})
print(run.dir, flush=True)
for s in range(300):
    run.log({"loss": s * 0.5}, step=s)
real = run._writer.flush
def flush(timeout=None):
    if threading.current_thread() is threading.main_thread():
        os.kill(os.getpid(), signal.SIGTERM)  # scancel, arriving during the final flush
    return real(timeout)
run._writer.flush = flush
run.finish()
print("unreachable: the held SIGTERM ends the process", flush=True)
"""


def test_a_signal_during_finish_waits_for_the_final_flush(store_root: Path) -> None:
    proc = python_script(SIGNAL_IN_FINISH, str(store_root))
    out, err = proc.communicate(timeout=120)
    run_dir = Path(out.splitlines()[0])
    assert proc.returncode == -signal.SIGTERM, err  # the cancel is still honoured
    assert "unreachable" not in out
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "completed", rec
    assert read_metrics(run_dir / "metrics.zarr")["loss"].step.tolist() == list(range(300))


def _always_enospc(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_finish_on_a_disk_that_never_recovers_records_the_loss(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = hpclab.init(project="p", store=store_root, settings={**QUIET, "flush_interval": 3600})
    for s in range(10):
        run.log({"loss": float(s)}, step=s)
    monkeypatch.setattr(zarr_local, "_put", _always_enospc)  # metrics cannot be written
    with pytest.raises(StoreError, match="10 metric point") as info:
        run.finish(timeout=0.5)
    assert "No space left" in str(info.value) and "\n" not in str(info.value)
    rec = json.loads((run.dir / "run.json").read_text())
    assert rec["status"] == "failed", "neither running nor completed: points were lost"
    assert "not stored" in rec["error"]["message"]


def test_finish_when_run_json_cannot_be_written_is_a_store_error(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = hpclab.init(project="p", store=store_root, settings=QUIET)
    run.log({"loss": 1.0}, step=0)
    monkeypatch.setattr(zarr_local, "_put", _always_enospc)
    monkeypatch.setattr(Store, "write_record", _always_enospc)
    with pytest.raises(StoreError, match="run.json not written") as info:
        run.finish(timeout=0.2)
    assert not isinstance(info.value, OSError)
    assert run.finished


@pytest.mark.parametrize("target", ["record", "config"])
def test_init_on_a_full_disk_leaves_no_run_directory(
    store_root: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    import hpclab.tracking.run as run_module

    if target == "record":
        monkeypatch.setattr(Store, "write_record", _always_enospc)
    else:
        monkeypatch.setattr(run_module, "write_config", _always_enospc)
    with pytest.raises(StoreError, match="No space left") as info:
        hpclab.init(project="p", store=store_root, config={"lr": 0.1}, settings=QUIET)
    assert "\n" not in str(info.value)
    runs = store_root / "p" / "runs"
    if target == "record":  # nothing recorded: nothing left
        assert [p.name for p in runs.iterdir()] == []
    else:  # the record was written: the run is there, failed, with the reason
        (left,) = runs.iterdir()
        rec = json.loads((left / "run.json").read_text())
        assert rec["status"] == "failed" and "No space left" in rec["error"]["message"]
    monkeypatch.undo()  # the disk has room again: the next run starts normally
    run = hpclab.init(project="p", store=store_root, settings=QUIET)
    run.finish()
    assert Store(store_root).read_record(run.paths).status is RunStatus.COMPLETED  # type: ignore[arg-type]


def test_finish_that_loses_nothing_raises_nothing(store_root: Path) -> None:
    run = hpclab.init(project="p", store=store_root, settings=QUIET)
    run.log({"loss": 1.0}, step=0)
    run.finish()
    assert json.loads((run.dir / "run.json").read_text())["status"] == "completed"
    assert read_metrics(run.dir / "metrics.zarr")["loss"].step.tolist() == [0]
