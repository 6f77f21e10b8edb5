"""A run's system metrics (issue 18): the background thread samples the process and its
children, the node and the visible GPUs every ``system_interval`` seconds into
``system/...`` series whose steps are sample indices, never the run's step. The CPU path
is tested for real (a busy child process, real psutil); NVML is the one fake (no GPU
here), a module with NVML's functions."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from helpers import poll

import hpclab
from hpclab.errors import ConfigError, MetricError
from hpclab.settings import TrackingSettings
from hpclab.site.series import run_series
from hpclab.store import Store
from hpclab.tracking.metrics import MetricWriter, read_metrics
from hpclab.tracking.system import GpuReader, SystemSampler, visible_devices


def test_a_run_samples_its_process_and_children_beside_its_own_steps(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    run = hpclab.init("lab", {"x": 1}, store=store.root, settings={"system_interval": 0.2})
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 3: pass"]
    )
    try:
        for step in range(5):
            run.log({"train/loss": 1.0 / (step + 1)}, step=step)
        assert run.paths is not None
        zarr = run.paths.metrics_zarr

        def sampled() -> dict[str, Any] | None:
            run.flush()
            series = read_metrics(zarr)
            cpu = series.get("system/cpu_percent")
            return series if cpu is not None and len(cpu) >= 4 else None

        series = poll(sampled, timeout=20, interval=0.2, message="4 system samples")
    finally:
        busy.wait(30)
    cpu = series["system/cpu_percent"]
    assert max(cpu.value) > 40  # the busy child, one CPU: its share counts to the run
    assert list(cpu.step) == list(range(len(cpu)))  # sample indices
    assert all(b > a for a, b in zip(cpu.wall_time, cpu.wall_time[1:], strict=False))
    rss = series["system/rss_mb"]
    assert min(rss.value) > 10  # this interpreter alone holds more than 10 MB
    assert 0 < max(series["system/node_mem_used_percent"].value) <= 100
    assert min(series["system/node_mem_available_mb"].value) > 0
    # the run's step is the training's: progress, a log() without step, the site's doc
    assert run._writer is not None and run._writer.step == 4
    assert run.log({"train/loss": 0.1}) == 5
    run.flush()
    doc = run_series(store, "lab", run.id)
    assert doc["step"] == 5 and "system/cpu_percent" in doc["metrics"]
    with pytest.raises(MetricError, match="system samples"):
        run.log({"system/cpu_percent": 1.0}, step=6)  # the prefix is the sampler's
    run.finish()


def test_samples_resume_after_their_own_last_index(tmp_path: Path) -> None:
    path = tmp_path / "metrics.zarr"
    w = MetricWriter(path)
    w.log({"loss": 1.0}, step=100)
    for i in range(3):
        assert w.log_samples({"system/rss_mb": 10.0 + i}) == i
    w.flush()
    again = MetricWriter(path)  # a requeued job opens the same metrics
    assert again.step == 100  # not moved by the samples
    assert again.log_samples({"system/rss_mb": 20.0}) == 3
    with pytest.raises(MetricError, match="under 'system/'"):
        again.log_samples({"loss": 1.0})
    again.flush()
    assert list(read_metrics(path)["system/rss_mb"].step) == [0, 1, 2, 3]


def test_system_interval_zero_turns_sampling_off_and_bad_values_are_refused(
    tmp_path: Path,
) -> None:
    run = hpclab.init("lab", {}, store=tmp_path / "store", settings={"system_interval": 0})
    assert run.system_sampler is None and run._worker is not None and run._worker._sample is None
    run.finish()
    assert TrackingSettings.from_sources({}).system_interval == 15.0
    for bad in (-1, "often"):
        with pytest.raises(ConfigError, match="system_interval"):
            TrackingSettings.from_sources({"system_interval": bad})
    assert TrackingSettings.from_sources({}, {"HPCLAB_SYSTEM_INTERVAL": "0"}).system_interval == 0


def test_visible_devices_follow_cuda_visible_devices() -> None:
    assert visible_devices(4, {}) == [0, 1, 2, 3]
    assert visible_devices(4, {"CUDA_VISIBLE_DEVICES": "2,0"}) == [2, 0]
    assert visible_devices(4, {"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_devices(4, {"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == [1]  # CUDA stops at -1
    assert visible_devices(2, {"CUDA_VISIBLE_DEVICES": "GPU-ab12,7"}) == ["GPU-ab12"]


def fake_nvml(gpus: dict[Any, dict[str, float]]) -> types.ModuleType:
    """NVML's functions over fixed readings per physical index (and UUID)."""
    nv = types.ModuleType("pynvml")
    nv.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    nv.nvmlInit = lambda: None  # type: ignore[attr-defined]
    nv.nvmlDeviceGetCount = lambda: sum(isinstance(k, int) for k in gpus)  # type: ignore[attr-defined]
    nv.nvmlDeviceGetHandleByIndex = lambda i: gpus[i]  # type: ignore[attr-defined]
    nv.nvmlDeviceGetHandleByUUID = lambda u: gpus[u]  # type: ignore[attr-defined]
    nv.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=h["util"])  # type: ignore[attr-defined]
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=h["mem"])  # type: ignore[attr-defined]
    nv.nvmlDeviceGetPowerUsage = lambda h: h["mw"]  # type: ignore[attr-defined]
    nv.nvmlDeviceGetTemperature = lambda h, kind: h["temp"]  # type: ignore[attr-defined]
    return nv


def test_gpus_are_read_through_nvml_in_cuda_order(monkeypatch: pytest.MonkeyPatch) -> None:
    a = {"util": 10, "mem": 1024**3, "mw": 50_000, "temp": 40}
    b = {"util": 95, "mem": 30 * 1024**3, "mw": 310_500, "temp": 71}
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml({0: a, 1: {}, 2: b, "GPU-b": b}))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    reader = GpuReader.detect()
    assert reader is not None
    assert reader.read() == {
        "system/gpu0/util_percent": 95.0,
        "system/gpu0/memory_used_mb": 30 * 1024.0,
        "system/gpu0/power_w": 310.5,
        "system/gpu0/temperature_c": 71.0,
        "system/gpu1/util_percent": 10.0,
        "system/gpu1/memory_used_mb": 1024.0,
        "system/gpu1/power_w": 50.0,
        "system/gpu1/temperature_c": 40.0,
    }
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-b")
    reader = GpuReader.detect()
    assert reader is not None and reader.read()["system/gpu0/util_percent"] == 95.0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert GpuReader.detect() is None  # no GPU visible: no GPU series
    # a sampler with GPUs puts their figures beside the process's
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    sample = SystemSampler(gpus=GpuReader.detect()).sample()
    assert sample["system/gpu0/util_percent"] == 10.0 and "system/rss_mb" in sample
