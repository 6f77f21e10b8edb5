"""GPU use of a run (issue 18): GPU-hours used from accounting's ``gres/gpuutil`` where
the site tracks it, else integrated from the run's own ``system/gpu<i>/util_percent``
samples on every node (checked against the trapezoid worked out by hand); the first
process of every node samples (local rank 0, into its own node's series), the others do
not; AMD GPUs read through ``amdsmi``. NVML and amdsmi are the fakes (no GPU here):
modules with their functions over fixed readings. Everything else is real: psutil, Zarr,
the run store, sacct's text through the Slurm client's parser, DuckDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import pytest
from test_system_metrics import fake_nvml

import hpclab.tracking.metrics as metrics_mod
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import index_store
from hpclab.launch.resources import gpu_hours_from_samples, record_usage
from hpclab.launch.scheduler.slurm_cli import SlurmCLI
from hpclab.site.cost import accounting
from hpclab.site.data import load
from hpclab.site.details import run_details
from hpclab.site.research import _cost
from hpclab.store import RunRecord, RunStatus, Store
from hpclab.store.record import utcnow_iso
from hpclab.tracking.metrics import MetricWriter, read_metrics
from hpclab.tracking.system import (
    AmdGpuReader,
    GpuReader,
    SystemSampler,
    detect_gpus,
    local_rank,
    node_name,
    samples_node,
)

TESTS = Path(__file__).parent
# sacct -n -P -o SACCT_USAGE_FIELDS of a 2-GPU job on a site that does not account GPU use
# (no gres/gpuutil in TRESUsageInTot), and of one that does (gpuutil=150: 1.5 GPUs busy)
NO_GPUUTIL = """\
930|COMPLETED|0:0|100|2|16|gpu[01-02]|00:00:00|billing=16,cpu=16,gres/gpu=3,mem=64G,node=2|billing=16,cpu=16,gres/gpu=3,mem=64G,node=2|64G|||
930.0|COMPLETED|0:0|98|2|16|gpu[01-02]|00:40.000|cpu=16,gres/gpu=3,mem=64G,node=2|||2G|cpu=00:00:40,mem=2G|cpu=00:00:40,mem=2G
"""
WITH_GPUUTIL = NO_GPUUTIL.replace("930", "931").replace(
    "cpu=00:00:40,mem=2G|", "cpu=00:00:40,gres/gpuutil=150,mem=2G|", 1
)


class Clock:
    """The metric writer's wall clock, set by the test (hpclab.tracking.metrics._time)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _ended_slurm_run(store: Store, job_id: str) -> Any:
    paths = store.create_run_dir("lab")
    record = RunRecord(id=paths.id, project="lab", status=RunStatus.COMPLETED)
    record.scheduler = {"kind": "slurm", "job_id": job_id}
    record.started_at, record.ended_at = utcnow_iso(time.time() - 100), utcnow_iso()
    store.write_record(paths, record)
    return paths


def _sample(
    path: Path,
    clock: Clock,
    gpus: dict[Any, dict[str, float]],
    plan: list[tuple[float, list[float]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Samples into ``path`` taken by a real SystemSampler over a fake NVML: at each
    (time, utilisations per visible GPU) of ``plan``."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(gpus))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", ",".join(str(i) for i in sorted(gpus)))
    sampler = SystemSampler(gpus=GpuReader.detect())
    writer = MetricWriter(path)
    for t, utils in plan:
        for i, u in enumerate(utils):
            gpus[i]["util"] = u
        clock.t = t
        writer.log_samples(sampler.sample())
    assert writer.flush(10)


def _gpu(util: float) -> dict[str, float]:
    return {"util": util, "mem": 1024**3, "mw": 100_000, "temp": 50}


def test_gpu_hours_used_are_integrated_from_every_nodes_samples_without_gpuutil(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "store")
    paths = _ended_slurm_run(store, "930")
    clock = Clock(0.0)
    monkeypatch.setattr(metrics_mod, "_time", clock)
    # rank 0's node, two GPUs sampled every 10 s:
    #   gpu0 100, 100, 50, 50 -> 10 x (100 + 75 + 50) / 100 = 22.5 GPU-seconds
    #   gpu1   0,  20, 40, 60 -> 10 x (10 + 30 + 50) / 100  =  9.0
    _sample(paths.metrics_zarr, clock, {0: _gpu(0), 1: _gpu(0)},
            [(1000, [100, 0]), (1010, [100, 20]), (1020, [50, 40]), (1030, [50, 60])],
            monkeypatch)  # fmt: skip
    # the second node's first process, one GPU at 80% every 15 s, with a requeue's pause
    # (1030 -> 2000: over 3 x the median 15 s, left out): 3 x 15 x 0.8 = 36 GPU-seconds
    _sample(paths.node_system_zarr("gpu02"), clock, {0: _gpu(0)},
            [(1000, [80]), (1015, [80]), (1030, [80]), (2000, [80]), (2015, [80])],
            monkeypatch)  # fmt: skip
    by_hand = (22.5 + 9.0 + 36.0) / 3600
    assert gpu_hours_from_samples(paths) == pytest.approx(by_hand, rel=1e-12)
    # the samples are the node's own series: two nodes' gpu0 never share one
    assert (
        read_metrics(paths.node_system_zarr("gpu02"))["system/gpu0/util_percent"].value.tolist()
        == [80.0] * 5
    )
    assert read_metrics(paths.metrics_zarr)["system/gpu0/util_percent"].value.tolist() == [
        100,
        100,
        50,
        50,
    ]

    cli = SlurmCLI(runner=lambda argv: NO_GPUUTIL)
    assert record_usage(store, [("lab", paths.id)], cli) == [("lab", paths.id)]
    doc = json.loads(paths.resources_json.read_text())
    assert doc["gpu_util_pct"] is None and doc["gpu_used_source"] == "samples"
    assert doc["gpu_hours_used"] == pytest.approx(by_hand)
    assert doc["gpu_hours"] == pytest.approx(3 * 100 / 3600)  # allocated: 3 GPUs x 100 s

    # accounting that tracks gpuutil wins over the samples: 150% / 100 x 100 s
    tres_paths = _ended_slurm_run(store, "931")
    _sample(tres_paths.metrics_zarr, clock, {0: _gpu(0)}, [(0, [10]), (10, [10])], monkeypatch)
    cli = SlurmCLI(runner=lambda argv: WITH_GPUUTIL)
    assert record_usage(store, [("lab", tres_paths.id)], cli) == [("lab", tres_paths.id)]
    tres_doc = json.loads(tres_paths.resources_json.read_text())
    assert tres_doc["gpu_used_source"] == "tres"
    assert tres_doc["gpu_hours_used"] == pytest.approx(1.5 * 100 / 3600)

    assert index_store(store).errors == 0
    rows = (
        connect(store)
        .execute(
            "SELECT job_id, gpu_hours_used, gpu_used_source FROM run_resources ORDER BY job_id"
        )
        .fetchall()
    )
    assert rows[0][0] == "930" and rows[0][1] == pytest.approx(by_hand) and rows[0][2] == "samples"
    assert (
        rows[1][0] == "931"
        and rows[1][1] == pytest.approx(1.5 * 100 / 3600)
        and rows[1][2] == "tres"
    )
    # the run page's efficiency card gets both, with where the figure came from
    card = run_details(load(store), ("lab", paths.id))["resources"]
    assert card["gpu_hours_used"] == pytest.approx(by_hand) and card["gpu_used_source"] == "samples"
    # a sweep's or hypothesis's totals: (67.5 + 150) / 3600 used of 2 x 300 / 3600 allocated
    data = load(store)
    line = str(_cost(accounting(data), [("lab", paths.id), ("lab", tres_paths.id)]))
    assert "GPU hours <b>0.167</b>" in line
    assert "GPU used <b>0.0604</b> h (2 runs, 36% of allocated; from samples, tres)" in line


def test_a_run_without_gpu_samples_has_no_gpu_hours_used(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    paths = _ended_slurm_run(store, "930")
    w = MetricWriter(paths.metrics_zarr)
    w.log_samples({"system/rss_mb": 100.0})
    w.log_samples({"system/rss_mb": 110.0})
    assert w.flush(10)
    assert gpu_hours_from_samples(paths) is None
    assert record_usage(store, [("lab", paths.id)], SlurmCLI(runner=lambda argv: NO_GPUUTIL))
    doc = json.loads(paths.resources_json.read_text())
    assert doc["gpu_hours_used"] is None and doc["gpu_used_source"] is None


def test_local_rank_and_node_name_come_from_the_launchers_variables() -> None:
    assert local_rank({}) is None and local_rank({"SLURM_LOCALID": "3"}) == 3
    assert local_rank({"LOCAL_RANK": "1", "SLURM_LOCALID": "0"}) == 1  # torchrun's first
    assert samples_node(4, {"SLURM_LOCALID": "0"})  # the first process of another node
    assert not samples_node(0, {"LOCAL_RANK": "1"}) and not samples_node(1, {})
    assert samples_node(0, {})  # no launcher: global rank 0 alone
    assert node_name({"SLURMD_NODENAME": "gpu01"}) == "gpu01"
    assert node_name({"SLURMD_NODENAME": "../x y"}) == "_x_y"  # a path part, never a path
    assert "/" not in node_name({}) and node_name({})


RANK_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from test_system_metrics import fake_nvml
    sys.modules["pynvml"] = fake_nvml({0: {"util": 50, "mem": 2**30, "mw": 1000, "temp": 40}})
    import hpclab
    from hpclab.tracking.metrics import read_metrics
    run = hpclab.init("lab", {"x": 1}, settings={"system_interval": 0.1})
    deadline = time.monotonic() + 30
    def enough():
        if run.paths is not None:  # rank 0: its samples in the run's metrics
            run.flush()
            s = read_metrics(run.paths.metrics_zarr).get("system/gpu0/util_percent")
            return s is not None and len(s) >= 3
        sampling = run._node_sampling
        return sampling is not None and sampling.taken >= 3
    if sys.argv[1] == "sample":
        while not enough():
            assert time.monotonic() < deadline, "no samples in 30 s"
            time.sleep(0.05)  # polling with a deadline
    print("sampler:", run._node_sampling is not None or run.system_sampler is not None)
    run.finish()
    """
)


def test_the_first_process_of_each_node_samples_into_its_own_nodes_series(
    tmp_path: Path,
) -> None:
    """Three ranks on two simulated nodes (Slurm's variables): rank 0 (n1), rank 1 (the
    first process of n2), rank 2 (n2's second): the first two sample, each its node."""
    store = tmp_path / "store"
    base = {**os.environ, "HPCLAB_STORE": str(store), "HPCLAB_RUN_ID": "twonodes",
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
            "SLURM_NTASKS": "3", "CUDA_VISIBLE_DEVICES": "0"}  # fmt: skip
    for v in ("LOCAL_RANK", "RANK", "SLURM_JOB_ID", "OMPI_COMM_WORLD_LOCAL_RANK"):
        base.pop(v, None)

    def rank(r: int, local: int, node: str, mode: str) -> subprocess.Popen[str]:
        env = {**base, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(local),
               "SLURMD_NODENAME": node}  # fmt: skip
        return subprocess.Popen(
            [sys.executable, "-c", RANK_SCRIPT, mode], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    procs = [rank(0, 0, "n1", "sample"), rank(1, 0, "n2", "sample"), rank(2, 1, "n2", "once")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    assert [o.strip() for o, _ in outs] == ["sampler: True", "sampler: True", "sampler: False"]
    run_dir = store / "lab" / "runs" / "twonodes"
    paths = Store(store).run_paths("lab", "twonodes")
    assert paths.dir == run_dir
    own = read_metrics(paths.metrics_zarr)
    n2 = read_metrics(paths.node_system_zarr("n2"))
    for series in (own, n2):
        assert len(series["system/gpu0/util_percent"]) >= 3
        assert set(series["system/gpu0/util_percent"].value.tolist()) == {50.0}
        assert min(series["system/rss_mb"].value) > 10
        assert list(series["system/rss_mb"].step) == list(range(len(series["system/rss_mb"])))
    # only n2 has a node directory (n1's first process is rank 0); rank 2 left nothing
    assert sorted(p.name for p in paths.nodes_dir.iterdir()) == ["n2"]
    assert not (run_dir / "ranks").exists()


def test_a_rank_that_is_not_its_nodes_first_samples_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml({0: _gpu(30)}))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert SystemSampler(read_gpus=False).gpus is None  # per_rank's other ranks
    assert "system/gpu0/util_percent" in SystemSampler().sample()


def fake_amdsmi(gpus: list[dict[str, Any]]) -> types.ModuleType:
    """amdsmi's functions over fixed readings, one dict per GPU (its handle)."""
    smi = types.ModuleType("amdsmi")
    smi.AmdSmiTemperatureType = types.SimpleNamespace(EDGE="edge", HOTSPOT="hotspot")  # type: ignore[attr-defined]
    smi.AmdSmiTemperatureMetric = types.SimpleNamespace(CURRENT="current")  # type: ignore[attr-defined]
    smi.amdsmi_init = lambda *a: None  # type: ignore[attr-defined]
    smi.amdsmi_get_processor_handles = lambda: list(gpus)  # type: ignore[attr-defined]
    smi.amdsmi_get_gpu_device_uuid = lambda h: h["uuid"]  # type: ignore[attr-defined]
    smi.amdsmi_get_gpu_activity = lambda h: {
        "gfx_activity": h["gfx"],
        "umc_activity": 1,
        "mm_activity": 0,
    }  # type: ignore[attr-defined]
    smi.amdsmi_get_gpu_vram_usage = lambda h: {"vram_used": h["vram"], "vram_total": 65536}  # type: ignore[attr-defined]
    smi.amdsmi_get_power_info = lambda h: h["power"]  # type: ignore[attr-defined]

    def temp(h: dict[str, Any], kind: str, metric: str) -> int:
        assert (kind, metric) == ("edge", "current")
        return h["temp"]

    smi.amdsmi_get_temp_metric = temp  # type: ignore[attr-defined]
    return smi


def test_amd_gpus_are_read_through_amdsmi_behind_the_same_interface(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = {"uuid": "aa11", "gfx": 12, "vram": 2048, "temp": 45,
         "power": {"current_socket_power": 150, "average_socket_power": 140}}  # fmt: skip
    b = {"uuid": "bb22", "gfx": 97, "vram": 60000, "temp": 80,
         "power": {"current_socket_power": "N/A", "average_socket_power": 540}}  # fmt: skip
    monkeypatch.setitem(sys.modules, "amdsmi", fake_amdsmi([a, b]))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVML: import fails
    for v in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(v, raising=False)
    assert GpuReader.detect() is None
    reader = detect_gpus()
    assert isinstance(reader, AmdGpuReader)
    assert reader.read() == {
        "system/gpu0/util_percent": 12.0, "system/gpu0/memory_used_mb": 2048.0,
        "system/gpu0/power_w": 150.0, "system/gpu0/temperature_c": 45.0,
        "system/gpu1/util_percent": 97.0, "system/gpu1/memory_used_mb": 60000.0,
        "system/gpu1/power_w": 540.0,  # no current figure: the average
        "system/gpu1/temperature_c": 80.0,
    }  # fmt: skip
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "1")  # Slurm's binding of AMD GPUs
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # read after ROCR's
    reader = AmdGpuReader.detect()
    assert reader is not None and reader.read()["system/gpu0/util_percent"] == 97.0
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "GPU-AA11")
    reader = AmdGpuReader.detect()
    assert reader is not None and reader.read()["system/gpu0/util_percent"] == 12.0
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "")
    assert detect_gpus() is None  # none visible
    monkeypatch.delenv("ROCR_VISIBLE_DEVICES")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    sample = SystemSampler().sample()  # the sampler takes AMD's figures like NVML's
    assert sample["system/gpu1/power_w"] == 540.0 and "system/rss_mb" in sample
    # NVML, where it answers, comes first
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml({0: _gpu(5)}))
    assert isinstance(detect_gpus(), GpuReader)
