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
  through NVML (``nvidia-ml-py``, imported only when present), else AMD's ``amdsmi``
  (same figures: GFX activity, VRAM used, socket power, edge temperature; visible GPUs
  after ``ROCR_VISIBLE_DEVICES``/``HIP_VISIBLE_DEVICES``/``CUDA_VISIBLE_DEVICES``).

Samples go through :meth:`~hpclab.tracking.metrics.MetricWriter.log_samples`: their step
is the sample's index and they are drawn against wall time; they never move the run's
step. The first process of each node samples (local rank 0: ``LOCAL_RANK``,
``SLURM_LOCALID``, MPI's local rank; where none is set, global rank 0 alone): global rank 0
into the run's metrics, the first process of every other node into
``nodes/<node>/system.zarr`` (:meth:`~hpclab.store.layout.RunPaths.node_system_zarr`,
``<node>`` from ``SLURMD_NODENAME`` or the host name), so two nodes' samples never share a
series. With ``per_rank`` every rank also samples its own process into its own metrics;
the GPUs stay the node's first process's, so no GPU is counted twice. A sampler that fails
(a GPU lost, ``/proc`` unreadable) drops that figure, says so once, and goes on: the
training is never stopped for a system metric.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)
MB = 1024.0 * 1024.0


class SystemSampler:
    """One sample of the process, the node and its visible GPUs per :meth:`sample` call."""

    def __init__(
        self, pid: int | None = None, *, gpus: GpuSource | None = None, read_gpus: bool = True
    ) -> None:
        """``gpus``: the reader to use (default: detected, NVML then amdsmi);
        ``read_gpus=False``: the process and node only (a rank that is not its node's
        first process)."""
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process(pid or os.getpid())
        self._last_t: float | None = None
        self._last_cpu: float | None = None
        self._last_io: tuple[float, float] | None = None
        self._last_net: tuple[float, float] | None = None
        self._warned: set[str] = set()
        self.gpus: GpuSource | None = (
            gpus if gpus is not None else detect_gpus() if read_gpus else None
        )

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


_LOCAL_RANK_VARS = (
    "LOCAL_RANK",  # torchrun, Lightning, accelerate
    "SLURM_LOCALID",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "MPI_LOCALRANKID",  # Intel MPI, MPICH's hydra
    "MV2_COMM_WORLD_LOCAL_RANK",
)


def local_rank(environ: Mapping[str, str] | None = None) -> int | None:
    """This process's rank on its node (``LOCAL_RANK``, ``SLURM_LOCALID``, MPI's), None
    when no launcher says."""
    env = os.environ if environ is None else environ
    return next((int(env[v]) for v in _LOCAL_RANK_VARS if env.get(v, "").isdigit()), None)


def samples_node(rank: int, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process samples its node: local rank 0, or global rank 0 where no
    launcher gives a local rank."""
    local = local_rank(environ)
    return local == 0 if local is not None else rank == 0


def node_name(environ: Mapping[str, str] | None = None) -> str:
    """The node's name as a path part: ``SLURMD_NODENAME``, else the host name before its
    first dot (anything but letters, digits, ``.``, ``_``, ``-`` as ``_``)."""
    env = os.environ if environ is None else environ
    name = env.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0] or "node"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "node"


def visible_devices(
    count: int, environ: Mapping[str, str] | None = None, variables: tuple[str, ...] = ()
) -> list[int | str]:
    """The physical GPUs this process sees, in CUDA's order: ``CUDA_VISIBLE_DEVICES``'s
    indices or UUIDs (``GPU-...``), every GPU when unset, none when empty or ``-1``.
    ``variables``: the ones to read instead, the first set wins (AMD's)."""
    env = os.environ if environ is None else environ
    raw = next((env[v] for v in variables or ("CUDA_VISIBLE_DEVICES",) if v in env), None)
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


class GpuSource(Protocol):
    """What the sampler reads GPUs through: one ``system/gpu{i}/...`` figure set per
    visible GPU (NVML's :class:`GpuReader`, AMD's :class:`AmdGpuReader`)."""

    def read(self) -> dict[str, float]: ...


def detect_gpus() -> GpuSource | None:
    """NVML's reader where an NVIDIA driver answers, else amdsmi's, else None."""
    return GpuReader.detect() or AmdGpuReader.detect()


def _gpu_figures(
    i: int, util: float, mem_mb: float, power_w: float | None, temp_c: float
) -> dict[str, float]:
    p = f"system/gpu{i}/"
    out = {p + "util_percent": float(util), p + "memory_used_mb": float(mem_mb)}
    if power_w is not None:  # a GPU that reports no power: no power series
        out[p + "power_w"] = float(power_w)
    out[p + "temperature_c"] = float(temp_c)
    return out


class GpuReader:
    """Per visible GPU: utilisation, memory used, power and temperature (NVML)."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def detect(cls) -> GpuReader | None:
        """NVML's reader when ``pynvml`` (nvidia-ml-py) imports and a driver answers,
        else None (no GPU, or not NVIDIA's)."""
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
            out.update(
                _gpu_figures(
                    i,
                    nv.nvmlDeviceGetUtilizationRates(h).gpu,
                    nv.nvmlDeviceGetMemoryInfo(h).used / MB,
                    nv.nvmlDeviceGetPowerUsage(h) / 1000.0,  # milliwatts
                    nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU),
                )
            )
        return out


class NodeSampling:
    """The samples of a node's first process where that process does not record the run
    (its global rank is not 0 and ``per_rank`` is off): its own background thread and
    metrics (``nodes/<node>/system.zarr``), system series only. :meth:`stop` flushes
    them."""

    def __init__(self, path: Path, settings: Any, sampler: SystemSampler | None = None) -> None:
        from hpclab.tracking.metrics import MetricWriter
        from hpclab.tracking.worker import Worker

        self.path = path
        self.sampler = sampler or SystemSampler()
        self.writer = MetricWriter(
            path,
            buffer_size=settings.buffer_size,
            max_buffer=settings.max_buffer,
            chunk_rows=settings.chunk_rows,
            flush_interval=settings.flush_interval,
        )
        writer, take = self.writer, self.sampler.sample
        self.taken = 0  # samples logged so far

        def sample() -> None:
            writer.log_samples(take())
            self.taken += 1

        def prime() -> None:
            take()

        self._worker = Worker(
            flush=writer.flush,
            beat=lambda: None,
            flush_interval=settings.flush_interval,
            heartbeat_interval=settings.heartbeat_interval,
            wake=writer.wake,
            name="hpclab-node-sampler",
            sample_interval=settings.system_interval,
            sample=sample,
            prime=prime,
        )
        self._worker.start()
        self.stopped = False

    def stop(self, timeout: float = 30.0) -> bool:
        """End the thread and store the samples it took; True when all are stored."""
        if self.stopped:
            return True
        self.stopped = True
        self._worker.stop(timeout)
        return self.writer.flush(timeout)


AMD_VISIBLE = ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")


class AmdGpuReader:
    """Per visible AMD GPU, through ``amdsmi``: GFX activity (%), VRAM used (MB), socket
    power (W: the current figure, the average where the current one is not reported) and
    the edge temperature (C)."""

    def __init__(self, smi: Any, handles: list[Any]) -> None:
        self._smi = smi
        self._handles = handles

    @classmethod
    def detect(cls) -> AmdGpuReader | None:
        """amdsmi's reader when ``amdsmi`` imports and finds GPUs, else None."""
        try:
            import amdsmi
        except ImportError:
            return None
        try:
            amdsmi.amdsmi_init()
            every = list(amdsmi.amdsmi_get_processor_handles())
            handles = []
            for dev in visible_devices(len(every), variables=AMD_VISIBLE):
                if isinstance(dev, int):
                    handles.append(every[dev])
                else:
                    uuids = {str(amdsmi.amdsmi_get_gpu_device_uuid(h)).lower(): h for h in every}
                    h = uuids.get(dev.lower().removeprefix("gpu-"))
                    if h is not None:
                        handles.append(h)
        except Exception as e:  # no driver, no GPU: no GPU figures
            log.info("hpclab: system metrics: no GPU through amdsmi (%s)", e)
            return None
        return cls(amdsmi, handles) if handles else None

    def read(self) -> dict[str, float]:
        smi = self._smi
        out: dict[str, float] = {}
        for i, h in enumerate(self._handles):
            power = smi.amdsmi_get_power_info(h)
            watts = power.get("current_socket_power")
            if not isinstance(watts, (int, float)):  # "N/A" on some GPUs
                watts = power.get("average_socket_power")
            out.update(
                _gpu_figures(
                    i,
                    smi.amdsmi_get_gpu_activity(h)["gfx_activity"],
                    smi.amdsmi_get_gpu_vram_usage(h)["vram_used"],  # MB
                    watts if isinstance(watts, (int, float)) else None,
                    smi.amdsmi_get_temp_metric(
                        h,
                        smi.AmdSmiTemperatureType.EDGE,
                        smi.AmdSmiTemperatureMetric.CURRENT,
                    ),
                )
            )
        return out


__all__ = [
    "AmdGpuReader",
    "GpuReader",
    "GpuSource",
    "NodeSampling",
    "SystemSampler",
    "detect_gpus",
    "local_rank",
    "node_name",
    "samples_node",
    "visible_devices",
]
