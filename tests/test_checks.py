"""Preflight resource checks and filesystem detection: every finding with its message."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpclab.launch import checks
from hpclab.launch.checks import (
    Finding,
    ResourceRequest,
    check_interpreter,
    check_point,
    check_request,
    resolve_partition,
)
from hpclab.launch.estimate import MemoryEstimate
from hpclab.launch.scheduler.base import PartitionLimits
from hpclab.store import fsinfo
from hpclab.store.fsinfo import filesystem_type, is_shared_filesystem

GIB = 1024**3

PARTITIONS = {
    "debug": PartitionLimits(
        "debug",
        max_time_min=120,
        max_mem_mb=4096,
        max_cpus=8,
        max_gpus=0,
        nodes=2,
        state="up",
        default=True,
    ),
    "gpu": PartitionLimits(
        "gpu", max_time_min=2880, max_mem_mb=262144, max_cpus=64, max_gpus=4, nodes=8, state="UP"
    ),
    "old": PartitionLimits("old", state="down"),
}


def messages(findings: list[Finding], level: str = "error") -> list[str]:
    return [f.message for f in findings if f.level == level]


# --- check_request ------------------------------------------------------------------


def test_a_request_that_fits_has_no_findings() -> None:
    req = ResourceRequest(
        partition="gpu", timeout_min=600, mem_gb=64, cpus_per_task=8, gpus_per_node=4, nodes=2
    )
    assert check_request(req, PARTITIONS, max_array_size=1001) == []
    assert check_request(ResourceRequest(), PARTITIONS, max_array_size=None) == []


def test_unknown_partition_lists_the_valid_ones() -> None:
    findings = check_request(ResourceRequest(partition="gpus"), PARTITIONS, None)
    assert messages(findings) == [
        "hydra.launcher.partition=gpus: no partition 'gpus'; valid: 'debug', 'gpu', 'old'"
    ]


def test_default_partition_when_unset() -> None:
    findings = check_request(ResourceRequest(timeout_min=600), PARTITIONS, None)
    assert messages(findings) == [
        "hydra.launcher.timeout_min=600 exceeds partition 'debug' MaxTime 120 min"
    ]
    assert resolve_partition(None, PARTITIONS) is PARTITIONS["debug"]
    assert resolve_partition("gpu", PARTITIONS) is PARTITIONS["gpu"]
    assert resolve_partition("nope", PARTITIONS) is None


def test_no_partition_and_no_default() -> None:
    partitions = {"gpu": PARTITIONS["gpu"]}
    findings = check_request(ResourceRequest(), partitions, None)
    assert messages(findings) == [
        "hydra.launcher.partition is unset and the cluster has no default; valid: 'gpu'"
    ]


def test_time_over_maxtime() -> None:
    req = ResourceRequest(partition="debug", timeout_min=120.5)
    assert messages(check_request(req, PARTITIONS, None)) == [
        "hydra.launcher.timeout_min=120.5 exceeds partition 'debug' MaxTime 120 min"
    ]
    assert (
        check_request(ResourceRequest(partition="debug", timeout_min=120), PARTITIONS, None) == []
    )


def test_memory_over_the_largest_node() -> None:
    req = ResourceRequest(partition="debug", mem_gb=8)
    assert messages(check_request(req, PARTITIONS, None)) == [
        "hydra.launcher.mem_gb=8 exceeds the largest node in partition 'debug' (4 GB = 4096 MB)"
    ]
    assert check_request(ResourceRequest(partition="debug", mem_gb=4), PARTITIONS, None) == []


def test_cpus_over_the_largest_node() -> None:
    req = ResourceRequest(partition="debug", cpus_per_task=16)
    assert messages(check_request(req, PARTITIONS, None)) == [
        "hydra.launcher.cpus_per_task=16 exceeds the largest node in partition 'debug' (8 CPUs)"
    ]
    req = ResourceRequest(partition="debug", cpus_per_task=8, tasks_per_node=2)
    assert messages(check_request(req, PARTITIONS, None)) == [
        "hydra.launcher.cpus_per_task=8 x tasks_per_node=2 = 16 CPUs exceeds the largest node "
        "in partition 'debug' (8 CPUs)"
    ]


def test_gpus_over_what_nodes_have() -> None:
    req = ResourceRequest(partition="debug", gpus_per_node=1)
    assert messages(check_request(req, PARTITIONS, None)) == [
        "hydra.launcher.gpus_per_node=1: partition 'debug' has no GPUs"
    ]
    req = ResourceRequest(partition="gpu", gpus_per_node=8)
    assert messages(check_request(req, PARTITIONS, None)) == [
        "hydra.launcher.gpus_per_node=8: partition 'gpu' has at most 4 GPUs per node"
    ]
    # unknown GPU count: nothing to say
    assert check_request(ResourceRequest(partition="old", gpus_per_node=8), PARTITIONS, None) == [
        Finding("warning", "partition 'old' is down: jobs will wait until it is up again")
    ]


def test_nodes_over_the_partition() -> None:
    req = ResourceRequest(partition="debug", nodes=3)
    assert messages(check_request(req, PARTITIONS, None)) == [
        "hydra.launcher.nodes=3 exceeds partition 'debug', which has 2 nodes"
    ]


def test_array_over_max_array_size() -> None:
    findings = check_request(ResourceRequest(array_size=1500), PARTITIONS, max_array_size=1001)
    assert messages(findings) == [
        "the sweep has 1500 points but the cluster's MaxArraySize is 1001 (array indexes "
        "0..1000): split the sweep into sweeps of at most 1001 points"
    ]
    assert check_request(ResourceRequest(array_size=1001), PARTITIONS, 1001) == []
    # checked even where there are no partitions (local executor)
    assert messages(check_request(ResourceRequest(array_size=5), {}, 4))


def test_partition_not_up_is_a_warning() -> None:
    findings = check_request(ResourceRequest(partition="old", timeout_min=99999), PARTITIONS, None)
    assert findings == [
        Finding("warning", "partition 'old' is down: jobs will wait until it is up again")
    ]
    assert (
        str(findings[0]) == "warning: partition 'old' is down: jobs will wait until it is up again"
    )


def test_partition_list_checks_each() -> None:
    req = ResourceRequest(partition="debug,gpu", timeout_min=600)
    assert messages(check_request(req, PARTITIONS, None)) == [
        "hydra.launcher.timeout_min=600 exceeds partition 'debug' MaxTime 120 min"
    ]


def test_nonsense_values() -> None:
    req = ResourceRequest(timeout_min=0, mem_gb=-1, nodes=0, gpus_per_node=0)
    assert messages(check_request(req, {}, None)) == [
        "hydra.launcher.timeout_min=0 must be positive",
        "hydra.launcher.mem_gb=-1 must be positive",
        "hydra.launcher.nodes=0 must be at least 1",
    ]


def test_request_from_launcher_settings() -> None:
    params = {"partition": "gpu", "timeout_min": 60, "mem_gb": None, "cpus_per_task": "4"}
    req = ResourceRequest.from_launcher(params, array_size=12)
    assert req == ResourceRequest(
        partition="gpu", timeout_min=60.0, cpus_per_task=4, nodes=1, array_size=12
    )


# --- check_point --------------------------------------------------------------------

# 1 GiB weights + 1 GiB grads + 2 GiB Adam states + 1 GiB activations = 5 GiB per device
EST = MemoryEstimate(weights=GIB, grads=GIB, optimizer_states=2 * GIB, activations=GIB)
PARTS = "weights 1.0 GiB, grads 1.0 GiB, optimizer 2.0 GiB, activations 1.0 GiB"


def test_memory_over_mem_gb_is_an_error() -> None:
    assert EST.total == 5 * GIB
    req = ResourceRequest(mem_gb=4)
    assert check_point(3, {}, req, EST, None, None) == [
        Finding(
            "error",
            f"estimated 5.0 GiB per node exceeds hydra.launcher.mem_gb=4: {PARTS}",
            3,
        )
    ]
    assert check_point(3, {}, ResourceRequest(mem_gb=6), EST, None, None) == []


def test_memory_counts_every_task_on_the_node() -> None:
    req = ResourceRequest(mem_gb=8, tasks_per_node=2)
    assert messages(check_point(0, {}, req, EST, None, None)) == [
        f"estimated 10.0 GiB per node (2 tasks x 5.0 GiB) exceeds hydra.launcher.mem_gb=8: {PARTS}"
    ]


def test_memory_over_the_node_when_mem_gb_unset_is_a_warning() -> None:
    findings = check_point(1, {}, ResourceRequest(), EST, None, None, limits=PARTITIONS["debug"])
    assert findings == [
        Finding(
            "warning",
            "estimated 5.0 GiB per node exceeds the largest node in partition 'debug' "
            f"(4096 MB) and hydra.launcher.mem_gb is unset: {PARTS}",
            1,
        )
    ]
    # without the partition's limits there is nothing to compare with
    assert check_point(1, {}, ResourceRequest(), EST, None, None) == []


def test_gpu_memory_against_the_device() -> None:
    req = ResourceRequest(gpus_per_node=1, mem_gb=1)
    expected = [
        f"estimated 5.0 GiB per GPU exceeds the GPU's 4 GiB (hardware.device_mem_gb): {PARTS}"
    ]
    assert messages(check_point(0, {}, req, EST, None, None, device_mem_gb=4)) == expected
    cfg = {"hardware": {"device_mem_gb": 4, "tflops": 100}}
    assert messages(check_point(0, cfg, req, EST, None, None)) == expected
    # the device's memory is not the job's host memory (mem_gb=1 is not exceeded by it)
    assert check_point(0, {}, req, EST, None, None) == []


def test_gpu_job_host_memory_against_mem_gb() -> None:
    est = MemoryEstimate(
        weights=GIB,
        grads=0,
        optimizer_states=0,
        activations=0,
        host=10 * GIB,
        source="DeepSpeed ZeRO-2: estimate_zero2_model_states_mem_needs",
    )
    req = ResourceRequest(gpus_per_node=4, mem_gb=8)
    assert messages(check_point(2, {}, req, est, None, None)) == [
        "estimated 10.0 GiB of host memory per node exceeds hydra.launcher.mem_gb=8: "
        "DeepSpeed ZeRO-2: estimate_zero2_model_states_mem_needs"
    ]


def test_time_over_timeout_is_an_error() -> None:
    # 3000 steps x 1.0 s = 50 min
    req = ResourceRequest(timeout_min=40)
    assert check_point(7, {}, req, None, 1.0, 3000) == [
        Finding(
            "error",
            "estimated run time 50 min (3000 steps x 1 s) exceeds hydra.launcher.timeout_min=40",
            7,
        )
    ]


def test_time_over_80_percent_is_a_warning() -> None:
    # 50 min of 60 = 83%
    assert check_point(7, {}, ResourceRequest(timeout_min=60), None, 1.0, 3000) == [
        Finding(
            "warning",
            "estimated run time 50 min (3000 steps x 1 s) is 83% of "
            "hydra.launcher.timeout_min=60: startup, evaluation and checkpoints may push it over",
            7,
        )
    ]
    assert check_point(7, {}, ResourceRequest(timeout_min=63), None, 1.0, 3000) == []
    assert check_point(7, {}, ResourceRequest(timeout_min=40), None, None, 3000) == []
    assert check_point(7, {}, ResourceRequest(timeout_min=40), None, 1.0, None) == []


def test_time_without_timeout_against_partition_maxtime() -> None:
    # 10 h of compute, no timeout_min, partition MaxTime 2 h: a warning, not an error
    findings = check_point(0, {}, ResourceRequest(), None, 36.0, 1000, limits=PARTITIONS["debug"])
    assert findings == [
        Finding(
            "warning",
            "estimated run time 10.0 h (1000 steps x 36 s) exceeds partition 'debug' "
            "MaxTime 120 min",
            0,
        )
    ]


# --- check_interpreter --------------------------------------------------------------


def test_missing_interpreter_is_an_error(tmp_path: Path) -> None:
    path = str(tmp_path / "venv" / "bin" / "python")
    assert check_interpreter(path, 4) == [
        Finding("error", f"the Python interpreter jobs would run, {path!r}, does not exist")
    ]


def test_single_node_partition_needs_no_shared_filesystem() -> None:
    assert check_interpreter(sys.executable, 1) == []
    assert check_interpreter(sys.executable, None) == []


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A directory on this machine's tmpfs /dev/shm, removed afterwards."""
    if filesystem_type("/dev/shm") != "tmpfs" or not os.access("/dev/shm", os.W_OK):
        pytest.skip("no writable tmpfs at /dev/shm")
    path = Path(tempfile.mkdtemp(prefix="hpclab test ", dir="/dev/shm"))
    yield path
    shutil.rmtree(path)


def test_interpreter_on_local_filesystem_warns(shm_dir: Path) -> None:
    # A venv-style link on tmpfs; its target (this test's interpreter) checked as well.
    bindir = shm_dir / "venv" / "bin"
    bindir.mkdir(parents=True)
    python = bindir / "python"
    python.symlink_to(sys.executable)
    findings = check_interpreter(str(python), 4)
    assert [f.level for f in findings] == ["warning"]
    message = findings[0].message
    assert message.startswith(f"jobs run {python}, but {bindir} is on tmpfs")
    assert "the partition's other 3 node(s) may not see" in message
    target = os.path.realpath(sys.executable)
    if not target.startswith(("/usr/", "/bin/")) and not is_shared_filesystem(
        filesystem_type(target)
    ):
        assert f"{target} is on {filesystem_type(target)}" in message


def test_interpreter_on_shared_filesystem_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No NFS mount can be made here: give the real parser a mount table in which / is NFS.
    mounts = tmp_path / "mounts"
    mounts.write_text("server:/export / nfs4 rw,relatime 0 0\n")
    monkeypatch.setattr(
        checks, "filesystem_type", lambda p: fsinfo.filesystem_type(p, mounts=str(mounts))
    )
    assert check_interpreter(sys.executable, 16) == []


# --- fsinfo ---------------------------------------------------------------------------


def _proc_mounts() -> list[tuple[str, str]]:
    with open("/proc/mounts") as fh:
        return [(line.split()[1], line.split()[2]) for line in fh if line.strip()]


@pytest.mark.skipif(not os.path.exists("/proc/mounts"), reason="needs Linux /proc")
def test_filesystem_type_of_proc() -> None:
    assert filesystem_type("/proc") == "proc"
    assert filesystem_type("/proc/self/status") == "proc"


@pytest.mark.skipif(not os.path.exists("/proc/mounts"), reason="needs Linux /proc")
def test_filesystem_type_of_a_tmpfs_or_overlay_mount(tmp_path: Path) -> None:
    mounts = _proc_mounts()
    candidates = [
        (point, fstype)
        for point, fstype in mounts
        if fstype in ("tmpfs", "overlay") and "\\" not in point and os.path.isdir(point)
    ]
    if not candidates:
        pytest.skip("no tmpfs or overlay mount here")
    point, fstype = candidates[0]
    # a later mount at the same point hides this one
    expected = [t for p, t in mounts if p == point][-1]
    assert filesystem_type(point) == expected == fstype
    assert filesystem_type(os.path.join(point, "not", "there")) == expected
    # a symlink is followed to where it points
    link = tmp_path / "link to mount"
    link.symlink_to(point)
    assert filesystem_type(link) == expected
    assert filesystem_type(tmp_path / "link to proc") != "proc"
    (tmp_path / "link to proc").symlink_to("/proc")
    assert filesystem_type(tmp_path / "link to proc") == "proc"


@pytest.mark.skipif(not os.path.exists("/proc/mounts"), reason="needs Linux /proc")
def test_filesystem_type_of_root_path(tmp_path: Path) -> None:
    real = os.path.realpath(tmp_path)
    nested = [p for p, _ in _proc_mounts() if p != "/" and (real == p or real.startswith(p + "/"))]
    if nested:
        pytest.skip("tmp_path is under a mount other than /")
    root = [t for p, t in _proc_mounts() if p == "/"][-1]
    assert filesystem_type(tmp_path) == root


def test_filesystem_type_from_a_mount_table(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "server:/data /data nfs4 rw 0 0\n"
        "/dev/sdb1 /data/scratch xfs rw 0 0\n"
        "/dev/sdc1 /mnt/with\\040space btrfs rw 0 0\n"
        "tmpfs /mnt/over tmpfs rw 0 0\n"
        "mds@tcp:/lus /mnt/over lustre rw 0 0\n"
    )
    table = str(mounts)
    assert filesystem_type("/data", mounts=table) == "nfs4"
    assert filesystem_type("/data/run/x", mounts=table) == "nfs4"
    assert filesystem_type("/data/scratch/x", mounts=table) == "xfs"
    assert filesystem_type("/database/x", mounts=table) == "ext4"  # not under /data
    assert filesystem_type("/mnt/with space/a b", mounts=table) == "btrfs"
    assert filesystem_type("/mnt/over/x", mounts=table) == "lustre"  # the later mount hides
    assert filesystem_type("/x", mounts=str(tmp_path / "missing")) == "unknown"


@pytest.mark.parametrize(
    "fstype", ["nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "fuse.sshfs", "NFS4"]
)
def test_shared_filesystems(fstype: str) -> None:
    assert is_shared_filesystem(fstype)


@pytest.mark.parametrize(
    "fstype", ["ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "proc", "unknown"]
)
def test_local_filesystems(fstype: str) -> None:
    assert not is_shared_filesystem(fstype)
