"""System metrics of a run, sampled by its background thread every ``system_interval``
seconds (setting, default 15; 0 turns it off) into ``system/...`` series:

* ``system/cpu_percent``: the process and its children, percent of one CPU (200 = two
  CPUs busy), over the interval since the last sample;
* ``system/rss_mb``: resident memory of the process and its children;
* ``system/node_mem_used_percent``, ``system/node_mem_available_mb``: the node's memory;
* ``system/io_read_mb_s``, ``system/io_write_mb_s``: the process's (and children's) disk
  reads and writes per second (where the kernel reports them);
* ``system/net_recv_mb_s``, ``system/net_sent_mb_s``: the node's network, per second;
* per visible GPU ``i`` (CUDA's numbering after ``CUDA_VISIBLE_DEVICES``):
  ``system/gpu{i}/util_percent``, ``memory_used_mb``, ``power_w``, ``temperature_c``,
  through NVML (``nvidia-ml-py``, imported only when present; AMD GPUs are not read yet).

Samples go through :meth:`~hpclab.tracking.metrics.MetricWriter.log_samples`: their step
is the sample's index and they are drawn against wall time; they never move the run's
step. Rank 0 samples (every rank with ``per_rank``, each into its own metrics). A sampler
that fails (a GPU lost, ``/proc`` unreadable) drops that figure, says so once, and goes
on: the training is never stopped for a system metric.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
MB = 1024.0 * 1024.0


class SystemSampler:
    """One sample of the process, the node and its visible GPUs per :meth:`sample` call."""

    def __init__(self, pid: int | None = None, *, gpus: GpuReader | None = None) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process(pid or os.getpid())
        self._last_t: float | None = None
        self._last_cpu: float | None = None
        self._last_io: tuple[float, float] | None = None
        self._last_net: tuple[float, float] | None = None
        self._warned: set[str] = set()
        self.gpus = gpus if gpus is not None else GpuReader.detect()

    def _family(self) -> list[Any]:
        procs = [self._proc]
        try:
            procs += self._proc.children(recursive=True)
        except self._psutil.Error:
            pass
        return procs

    def sample(self) -> dict[str, float]:
        """The figures of this moment (rates over the time since the last call; the first
        call gives no rates)."""
        now = time.monotonic()
        out: dict[str, float] = {}
        family = self._family()
        cpu_s, rss, read_b, write_b, io_seen = 0.0, 0.0, 0.0, 0.0, False
        for p in family:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    cpu_s += t.user + t.system
                    rss += p.memory_info().rss
                    try:
                        io = p.io_counters()
                        read_b += io.read_bytes
                        write_b += io.write_bytes
                        io_seen = True
                    except (AttributeError, self._psutil.Error):
                        pass
            except self._psutil.Error:  # a child that just ended
                continue
        dt = now - self._last_t if self._last_t is not None else None
        if dt and dt > 0 and self._last_cpu is not None:
            out["system/cpu_percent"] = max(0.0, 100.0 * (cpu_s - self._last_cpu) / dt)
        out["system/rss_mb"] = rss / MB
        vm = self._psutil.virtual_memory()
        out["system/node_mem_used_percent"] = float(vm.percent)
        out["system/node_mem_available_mb"] = vm.available / MB
        if io_seen:
            if dt and dt > 0 and self._last_io is not None:
                out["system/io_read_mb_s"] = max(0.0, (read_b - self._last_io[0]) / MB / dt)
                out["system/io_write_mb_s"] = max(0.0, (write_b - self._last_io[1]) / MB / dt)
            self._last_io = (read_b, write_b)
        net = self._guard("network", self._psutil.net_io_counters)
        if net is not None:
            if dt and dt > 0 and self._last_net is not None:
                recv, sent = self._last_net
                out["system/net_recv_mb_s"] = max(0.0, (net.bytes_recv - recv) / MB / dt)
                out["system/net_sent_mb_s"] = max(0.0, (net.bytes_sent - sent) / MB / dt)
            self._last_net = (float(net.bytes_recv), float(net.bytes_sent))
        if self.gpus is not None:
            gpu = self._guard("GPU", self.gpus.read)
            out.update(gpu or {})
        self._last_t, self._last_cpu = now, cpu_s
        return out

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as e:  # a figure missing, never the training stopped
            if what not in self._warned:
                self._warned.add(what)
                log.warning("hpclab: system metrics: %s not sampled (%s)", what, e)
            return None


def visible_devices(count: int, environ: dict[str, str] | None = None) -> list[int | str]:
    """The physical GPUs this process sees, in CUDA's order: ``CUDA_VISIBLE_DEVICES``'s
    indices or UUIDs (``GPU-...``), every GPU when unset, none when empty or ``-1``."""
    env = os.environ if environ is None else environ
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(range(count))
    out: list[int | str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if part.lstrip("-").isdigit():
            i = int(part)
            if i < 0:
                break  # CUDA stops at the first invalid index
            if i < count:
                out.append(i)
        else:
            out.append(part)
    return out


class GpuReader:
    """Per visible GPU: utilisation, memory used, power and temperature (NVML)."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def detect(cls) -> GpuReader | None:
        """NVML's reader when ``pynvml`` (nvidia-ml-py) imports and a driver answers,
        else None (no GPU, or AMD: not read)."""
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = []
            for dev in visible_devices(count):
                if isinstance(dev, int):
                    handles.append(pynvml.nvmlDeviceGetHandleByIndex(dev))
                else:
                    handles.append(pynvml.nvmlDeviceGetHandleByUUID(dev))
        except Exception as e:  # no driver, a bad CUDA_VISIBLE_DEVICES: no GPU figures
            log.info("hpclab: system metrics: no GPU through NVML (%s)", e)
            return None
        return cls(pynvml, handles) if handles else None

    def read(self) -> dict[str, float]:
        nv = self._nvml
        out: dict[str, float] = {}
        for i, h in enumerate(self._handles):
            p = f"system/gpu{i}/"
            util = nv.nvmlDeviceGetUtilizationRates(h)
            out[p + "util_percent"] = float(util.gpu)
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            out[p + "memory_used_mb"] = mem.used / MB
            out[p + "power_w"] = nv.nvmlDeviceGetPowerUsage(h) / 1000.0  # milliwatts
            out[p + "temperature_c"] = float(
                nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
            )
        return out


__all__ = ["GpuReader", "SystemSampler", "visible_devices"]
