"""Scheduler adapters: parsing of real Slurm 22.05 output, and real jobs on the dev cluster
(array jobs seen in one batched call, cancel, failures with exit codes, partitions)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers import poll
from slurm_fixtures import job_name, sbatch, scancel, slurm_cluster  # noqa: F401

from hpclab.errors import ConfigError, SchedulerError
from hpclab.launch.scheduler import (
    UNKNOWN_ENDED,
    JobState,
    Watcher,
    get_scheduler,
    register_scheduler,
    scheduler_names,
    unregister_scheduler,
)
from hpclab.launch.scheduler.local import LocalScheduler, pid_alive, process_state
from hpclab.launch.scheduler.pyslurm_backend import PySlurm, pyslurm_usable
from hpclab.launch.scheduler.slurm_cli import (
    SlurmCLI,
    expand_job_id,
    gpus_from_gres,
    gpus_from_tres,
    parse_config,
    parse_duration,
    parse_key_values,
    parse_minutes,
    parse_partitions,
    parse_sacct,
    parse_squeue,
    run_slurm,
    tres_count,
)
from hpclab.store import RunStatus

# -- captured from the dev cluster (Slurm 22.05.8) ---------------------------------------------
SQUEUE_OUT = """\
1_8|PENDING|1|2027-11-22T06:23:07|0:00||N/A|1|Resources
1_9|PENDING|1|2027-11-22T06:23:07|0:00||N/A|1|Resources
1_7|RUNNING|9|2026-11-22T06:23:07|0:01|hpclabnode|N/A|1|None
1_0|RUNNING|2|2026-11-22T06:23:07|1-02:03:04|hpclabnode|gres:gpu:a100:2|8|None
"""
SACCT_OUT = "\n".join(
    [
        "11|11|FAILED|3:0|2026-11-22T06:23:41|2026-11-22T06:23:41|0|hpclabnode|00:00:00|"
        "billing=1,cpu=1,node=1|None",
        "12|12|COMPLETED|0:0|2026-11-22T06:23:41|2026-11-22T06:23:41|0|hpclabnode|01:02.345|"
        "billing=1,cpu=1,node=1|None",
        "13|13|TIMEOUT|0:0|2026-11-22T06:23:41|2026-11-22T06:25:01|80|hpclabnode|00:00:00|"
        "billing=1,cpu=1,gres/gpu=4,node=1|None",
        "10_7|9|CANCELLED by 0|0:0|2026-11-22T06:23:39|2026-11-22T06:23:41|2|hpclabnode|"
        "00:00:00|billing=1,cpu=1,node=1|None",
        "10_[8-11]|1|CANCELLED by 0|0:0|None|2026-11-22T06:23:41|0|None assigned|00:00:00||None",
        "1_[8-9]|1|PENDING|0:0|Unknown|Unknown|0|None assigned|00:00:00||None",
    ]
)
PARTITION_OUT = (
    "PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL "
    "Default=YES QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 "
    "Hidden=NO MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 LLN=NO "
    "MaxCPUsPerNode=UNLIMITED Nodes=hpclabnode PriorityJobFactor=1 PriorityTier=1 "
    "RootOnly=NO ReqResv=NO OverSubscribe=FORCE:4 OverTimeLimit=NONE PreemptMode=OFF "
    "State=UP TotalCPUs=2 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) "
    "DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED "
    "TRES=cpu=2,mem=23081M,node=1,billing=2\n"
    "PartitionName=gpu Default=NO MaxTime=1-12:00:00 DefaultTime=30:00 Nodes=g[01-02] "
    "MaxCPUsPerNode=32 MaxMemPerNode=UNLIMITED State=UP TotalCPUs=128 TotalNodes=2\n"
)
NODE_OUT = (
    "NodeName=hpclabnode Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=2 CPUTot=2 "
    "CPULoad=0.52 AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) "
    "NodeAddr=127.0.0.1 NodeHostName=vm Version=22.05.8 "
    "OS=Linux 6.18.44-fc-v669 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=23081 AllocMem=0 "
    "FreeMem=23617 Sockets=2 Boards=1 State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 "
    "Owner=N/A MCS_label=N/A Partitions=debug  BootTime=2026-11-22T05:56:02 "
    "CfgTRES=cpu=2,mem=23081M,billing=2 AllocTRES= CapWatts=n/a CurrentWatts=0\n"
    "NodeName=g01 CPUTot=64 RealMemory=512000 Gres=gpu:a100:4(S:0-1) State=IDLE "
    "Partitions=gpu\n"
    "NodeName=g02 CPUTot=64 RealMemory=1024000 Gres=gpu:a100:8(S:0-1),mps:100 State=IDLE "
    "Partitions=gpu,debug2\n"
)


def test_parse_duration_forms() -> None:
    assert parse_duration("UNLIMITED") is None
    assert parse_duration("INFINITE") is None
    assert parse_duration("1-02:03:04") == 86400 + 2 * 3600 + 3 * 60 + 4
    assert parse_duration("02:03:04") == 2 * 3600 + 3 * 60 + 4
    assert parse_duration("30:00") == 30 * 60  # MM:SS
    assert parse_duration("0:01") == 1
    assert parse_duration("5") == 5 * 60  # a bare number is minutes
    assert parse_duration("2-12") == 2 * 86400 + 12 * 3600
    assert parse_duration("01:02.345") == pytest.approx(62.345)
    assert parse_minutes("1-12:00:00") == 36 * 60
    assert parse_minutes("UNLIMITED") is None


def test_expand_job_ids() -> None:
    assert expand_job_id("123") == ["123"]
    assert expand_job_id("123_4") == ["123_4"]
    assert expand_job_id("123_[4-6]") == ["123_4", "123_5", "123_6"]
    assert expand_job_id("123_[1,3-4%2]") == ["123_1", "123_3", "123_4"]
    assert expand_job_id("7_[0-6:3]") == ["7_0", "7_3", "7_6"]
    for bad in ("abc", "12;rm -rf /", "", "12_x"):
        with pytest.raises(SchedulerError, match="invalid Slurm job id"):
            expand_job_id(bad)


def test_parse_squeue_lines() -> None:
    rows = dict((job.job_id, (raw, job)) for raw, job in parse_squeue(SQUEUE_OUT))
    assert set(rows) == {"1_8", "1_9", "1_7", "1_0"}
    raw, pending = rows["1_9"]
    assert (raw, pending.state, pending.reason, pending.start) == (
        "1",
        "PENDING",
        "Resources",
        None,
    )
    assert pending.status is RunStatus.QUEUED and not pending.is_final
    raw, running = rows["1_0"]
    assert raw == "2" and running.nodes == "hpclabnode" and running.gpus == 2
    assert running.cpus == 8
    assert running.elapsed_s == 86400 + 2 * 3600 + 3 * 60 + 4
    assert rows["1_7"][1].reason is None  # Slurm says "None"


def test_parse_sacct_lines() -> None:
    rows = {job.job_id: job for _, job in parse_sacct(SACCT_OUT)}
    assert rows["11"].state == "FAILED" and rows["11"].returncode == 3
    assert rows["11"].status is RunStatus.FAILED and rows["11"].is_final
    assert rows["12"].cpu_s == pytest.approx(62.345)
    assert rows["13"].status is RunStatus.TIMEOUT and rows["13"].elapsed_s == 80
    assert rows["13"].gpus == 4 and rows["12"].cpus == 1 and rows["10_8"].cpus is None
    assert rows["10_7"].state == "CANCELLED" and rows["10_7"].reason == "cancelled by uid 0"
    # a pending range cancelled as a whole: expanded, never started
    for task in ("10_8", "10_9", "10_10", "10_11"):
        assert rows[task].state == "CANCELLED"
        assert rows[task].start is None and rows[task].nodes is None
    assert rows["1_8"].state == rows["1_9"].state == "PENDING"
    assert rows["1_9"].end is None


def test_parse_scontrol_records() -> None:
    node = parse_key_values(NODE_OUT.splitlines()[0])
    assert node["OS"] == "Linux 6.18.44-fc-v669 #1 SMP PREEMPT_DYNAMIC @0"
    assert node["CfgTRES"] == "cpu=2,mem=23081M,billing=2"
    assert node["AllocTRES"] == ""
    parts = parse_partitions(PARTITION_OUT, NODE_OUT)
    debug, gpu = parts["debug"], parts["gpu"]
    assert debug.max_time_min is None and debug.max_cpus == 2 and debug.max_mem_mb == 23081
    assert debug.max_gpus is None and debug.default and debug.nodes == 1
    assert gpu.max_time_min == 36 * 60 and gpu.extra["default_time_min"] == 30
    assert gpu.max_cpus == 32  # capped by MaxCPUsPerNode
    assert gpu.max_mem_mb == 1024000 and gpu.max_gpus == 8 and not gpu.default
    assert gpus_from_gres("gpu:4") == 4
    assert gpus_from_gres("gpu:a100:2(S:0),gpu:v100:1") == 3
    assert gpus_from_gres("(null)") is None and gpus_from_gres("mps:100") is None
    assert gpus_from_tres("billing=1,cpu=1,node=1") is None
    assert tres_count("billing=12,cpu=12,gres/gpu=4,node=1", "cpu") == 12
    assert tres_count("gres/gpu:a100=2,gres/gpu=2", "gres/gpu") == 2
    config = parse_config("Configuration data as of 2026-11-22\nMaxArraySize            = 10001\n")
    assert config["MaxArraySize"] == "10001"


# -- the command runner ------------------------------------------------------------------------
def test_missing_command_is_a_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SchedulerError, match="`squeue` not found on PATH"):
        SlurmCLI().states(["1"])


def test_missing_slurm_conf_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    # the Slurm clients would retry for 60 s on a missing config
    monkeypatch.setenv("SLURM_CONF", "/nonexistent/slurm.conf")
    with pytest.raises(SchedulerError, match="SLURM_CONF=/nonexistent/slurm.conf does not exist"):
        run_slurm(["squeue", "-h"])


def test_failing_command_names_it() -> None:
    with pytest.raises(SchedulerError, match=r"`ls /nonexistent-dir` failed: .*No such file"):
        run_slurm(["ls", "/nonexistent-dir"])
    with pytest.raises(SchedulerError, match="timed out after 0.2 s"):
        run_slurm(["sleep", "5"], timeout=0.2)


# -- choosing a backend ------------------------------------------------------------------------
def test_slurm_available_needs_the_config_slurm_conf_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One definition for the launcher and the scheduler factory: a ``$SLURM_CONF`` naming a
    missing file is no Slurm, even when the system's config exists (the Slurm commands read
    only ``$SLURM_CONF`` when it is set)."""
    import hpclab.launch.scheduler as scheduler
    from hpclab.launch.__main__ import translate_argv

    bin_dir = tmp_path / "bin dir"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").chmod(0o755)
    system = tmp_path / "etc" / "slurm.conf"
    system.parent.mkdir()
    system.write_text("ClusterName=x\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(scheduler, "SYSTEM_SLURM_CONF", str(system))

    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "missing.conf"))
    assert not scheduler.slurm_available()
    assert isinstance(get_scheduler(), LocalScheduler)
    assert translate_argv(["-m", "seed=0,1"])[-1] == "hydra/launcher=local"

    monkeypatch.setenv("SLURM_CONF", str(system))
    assert scheduler.slurm_available()
    assert translate_argv(["-m", "seed=0,1"])[-1] == "hydra/launcher=slurm"

    monkeypatch.delenv("SLURM_CONF")
    assert scheduler.slurm_available(), "no $SLURM_CONF: the system's config"
    system.unlink()
    assert not scheduler.slurm_available()


def test_get_scheduler_without_slurm_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert isinstance(get_scheduler(), LocalScheduler)
    assert isinstance(get_scheduler("local"), LocalScheduler)
    with pytest.raises(ConfigError, match="unknown scheduler 'pbs'"):
        get_scheduler("pbs")


def test_get_scheduler_names_the_valid_backends_on_a_typo() -> None:
    assert scheduler_names()[:2] == ["slurm", "local"]
    with pytest.raises(ConfigError) as err:
        get_scheduler("slrum")
    assert str(err.value) == (
        "unknown scheduler 'slrum' (did you mean 'slurm'?): "
        "use one of slurm, local, slurm_cli, pyslurm"
    )
    with pytest.raises(ConfigError, match=r"'pbs': use one of slurm, local, slurm_cli"):
        get_scheduler("pbs")  # nothing close: no guess


def test_a_registered_backend_is_chosen_by_name() -> None:
    made: list[LocalScheduler] = []

    def factory() -> LocalScheduler:
        made.append(LocalScheduler())
        return made[-1]

    register_scheduler("my-cluster", factory, "a site's own scheduler")
    try:
        assert "my-cluster" in scheduler_names()
        assert get_scheduler("my-cluster") is made[0]
        with pytest.raises(ValueError, match="already registered as 'my-cluster'"):
            register_scheduler("my-cluster", factory)
        with pytest.raises(ConfigError, match="did you mean 'my-cluster'"):
            get_scheduler("my_cluster")
    finally:
        unregister_scheduler("my-cluster")
    assert "my-cluster" not in scheduler_names()


@pytest.mark.usefixtures("slurm_cluster")
def test_get_scheduler_with_slurm() -> None:
    sched = get_scheduler()
    assert isinstance(sched, SlurmCLI)  # pyslurm is not installed here
    assert sched.version() is not None


def _fake_pyslurm(monkeypatch: pytest.MonkeyPatch, version: str | None) -> None:
    """pyslurm cannot be installed here: a stand-in module at the import boundary, only to
    test which backend is chosen."""
    if version is None:
        monkeypatch.setitem(sys.modules, "pyslurm", None)  # import raises ImportError
        return
    mod = types.ModuleType("pyslurm")
    mod.__version__ = version  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyslurm", mod)


@pytest.mark.usefixtures("slurm_cluster")
def test_pyslurm_not_chosen_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pyslurm(monkeypatch, None)
    assert not pyslurm_usable()
    assert isinstance(get_scheduler("slurm"), SlurmCLI)
    with pytest.raises(SchedulerError, match="pyslurm does not import"):
        PySlurm()


@pytest.mark.usefixtures("slurm_cluster")
def test_pyslurm_not_chosen_when_mismatched(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = SlurmCLI().version()
    assert cluster is not None
    major, minor = (int(x) for x in cluster.split(".")[:2])
    _fake_pyslurm(monkeypatch, f"{major + 1}.{minor}.0")
    assert not pyslurm_usable()
    assert type(get_scheduler("slurm")) is SlurmCLI
    # same release, different numbering (22.05 vs pyslurm's 22.5): chosen
    _fake_pyslurm(monkeypatch, f"{major}.{minor}.1")
    assert pyslurm_usable()
    assert isinstance(get_scheduler("slurm"), PySlurm)


def test_pyslurm_not_chosen_without_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pyslurm(monkeypatch, "22.5.1")
    monkeypatch.setenv("PATH", "/nonexistent")  # no scontrol/sinfo to say the version
    assert not pyslurm_usable()


# -- the local backend -------------------------------------------------------------------------
def test_local_states_and_cancel() -> None:
    sched = LocalScheduler()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        jid = str(proc.pid)
        assert sched.states([jid, "not-a-pid"]) == {jid: sched.states([jid])[jid]}
        assert sched.states([jid])[jid].state == "RUNNING"
        assert sched.states([jid])[jid].status is RunStatus.RUNNING
        sched.cancel([jid])
        assert proc.wait(timeout=10) == -signal.SIGTERM
        gone = sched.states([jid])[jid]
        assert gone.state == UNKNOWN_ENDED and gone.status is None and gone.has_ended
        assert not gone.is_final  # the run record decides how it ended
        sched.cancel([jid])  # already gone: nothing to do
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(SchedulerError, match="invalid local job id"):
        sched.cancel(["12_3"])


def test_local_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    # not reaped: a zombie that kill(pid, 0) still finds
    poll(lambda: process_state(proc.pid) == "Z", timeout=10, message="zombie")
    os.kill(proc.pid, 0)
    assert not pid_alive(proc.pid)
    assert LocalScheduler().states([str(proc.pid)])[str(proc.pid)].state == UNKNOWN_ENDED
    proc.wait()


# -- the watcher -------------------------------------------------------------------------------
class _Counting(LocalScheduler):
    """The real local backend, counting its calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        self.calls.append(list(job_ids))
        return super().states(job_ids)


def test_watcher_batches_caches_and_throttles() -> None:
    now = [1000.0]
    sched = _Counting()
    watcher = Watcher(sched, min_interval=5.0, clock=lambda: now[0])
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        a, b = str(alive.pid), str(os.getpid())
        watcher.register([a, b])
        assert watcher.state(a) is not None and watcher.state(a).state == "RUNNING"  # type: ignore[union-attr]
        assert watcher.state(b) is not None
        assert sched.calls == [[a, b]]  # one batched call for both
        now[0] += 4.9
        watcher.state(a)
        assert len(sched.calls) == 1  # not due yet
        now[0] += 0.2
        watcher.state(a)
        assert len(sched.calls) == 2
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.usefixtures("slurm_cluster")
def test_watcher_caches_final_states() -> None:
    now = [0.0]
    calls: list[Sequence[str]] = []

    def counting(argv: Sequence[str]) -> str:
        calls.append(argv)
        return run_slurm(argv, ok_stderr=["Invalid job id specified"])

    jid = sbatch("-J", job_name(), "--wrap", "exit 3")
    try:
        watcher = Watcher(SlurmCLI(counting), min_interval=0.0, clock=lambda: now[0])
        poll(
            lambda: (s := watcher.state(jid)) is not None and s.is_final,
            timeout=60,
            interval=0.2,
            message=f"job {jid} to end",
        )
        assert watcher.is_final(jid)
        n = len(calls)
        for _ in range(3):
            now[0] += 100
            assert watcher.state(jid).state == "FAILED"  # type: ignore[union-attr]
        assert len(calls) == n  # final: never asked again
    finally:
        scancel(jid)


def test_watcher_backs_off_while_the_scheduler_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # squeue is missing: a real failure
    now = [0.0]
    watcher = Watcher(SlurmCLI(), min_interval=5.0, max_interval=60.0, clock=lambda: now[0])
    assert watcher.state("123") is None
    assert isinstance(watcher.last_error, SchedulerError)
    intervals = []
    for _ in range(6):
        intervals.append(watcher.interval)
        now[0] += watcher.interval
        watcher.state("123")
    assert intervals == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert watcher.calls == 7
    now[0] += 30  # not due at the backed-off interval
    watcher.state("123")
    assert watcher.calls == 7


# -- the real cluster --------------------------------------------------------------------------
def _counting_cli() -> tuple[SlurmCLI, list[list[str]]]:
    """The real CLI backend, recording every command it runs."""
    calls: list[list[str]] = []

    def runner(argv: Sequence[str]) -> str:
        calls.append(list(argv))
        ok = ["Invalid job id specified"] if argv[0] == "squeue" else []
        return run_slurm(argv, ok_stderr=ok)

    return SlurmCLI(runner), calls


@pytest.mark.usefixtures("slurm_cluster")
def test_array_states_cancel_and_accounting() -> None:
    sched, calls = _counting_cli()
    jid = sbatch("--array=0-3", "-J", job_name(), "--wrap", "sleep 30")
    tasks = [f"{jid}_{i}" for i in range(4)]
    try:
        states = sched.states([jid])
        assert [c[0] for c in calls] == ["squeue", "sacct"]  # one call each
        assert set(states) == set(tasks)
        assert {s.state for s in states.values()} <= {"PENDING", "RUNNING", "CONFIGURING"}
        calls.clear()
        by_task = sched.states(tasks)
        assert set(by_task) == set(tasks)
        assert len(calls) <= 2
        sched.cancel([jid])

        def all_cancelled() -> bool:
            got = sched.states([jid])
            return set(got) == set(tasks) and all(s.state == "CANCELLED" for s in got.values())

        poll(all_cancelled, timeout=60, interval=0.3, message=f"array {jid} cancelled in sacct")
        final = sched.states(tasks)
        assert set(final) == set(tasks)
        assert all(s.is_final and s.status is RunStatus.CANCELLED for s in final.values())
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
def test_pending_tasks_expand_and_cancel() -> None:
    # more tasks than the node can run: the rest stay pending as one folded range
    sched = SlurmCLI()
    jid = sbatch("--array=0-11", "-J", job_name(), "--wrap", "sleep 30")
    try:
        states = sched.states([jid])
        assert set(states) == {f"{jid}_{i}" for i in range(12)}
        assert sched.states([f"{jid}_[9-11]"]).keys() == {f"{jid}_9", f"{jid}_10", f"{jid}_11"}
        sched.cancel([jid, f"{jid}_11"])  # the task is covered by its array

        def all_cancelled() -> bool:
            got = sched.states([jid])
            return len(got) == 12 and all(s.state == "CANCELLED" for s in got.values())

        poll(all_cancelled, timeout=60, interval=0.3, message="all 12 tasks cancelled")
        # never-started tasks live in sacct's folded range record: asked one by one too
        assert sched.states([f"{jid}_11"])[f"{jid}_11"].state == "CANCELLED"
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
def test_failed_job_has_its_exit_code() -> None:
    sched = SlurmCLI()
    jid = sbatch("-J", job_name(), "--wrap", "exit 3")
    try:

        def ended() -> object:
            s = sched.states([jid]).get(jid)
            return s if s is not None and s.is_final else None

        state = poll(ended, timeout=60, interval=0.3, message=f"job {jid} to fail")
        assert state.state == "FAILED"
        assert state.returncode == 3 and state.exit_code == "3:0"
        assert state.status is RunStatus.FAILED
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
def test_raw_task_id_answers_too() -> None:
    # inside an array task SLURM_JOB_ID is the task's own raw id (but the last task to
    # start keeps the array's id)
    sched = SlurmCLI()
    jid = sbatch("--array=0-1", "-J", job_name(), "--wrap", "sleep 30")
    try:

        def raw_ids() -> dict[str, str] | None:
            out = subprocess.run(
                ["squeue", "-h", "-r", "-j", jid, "-o", "%i|%A|%T"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            rows = [line.split("|") for line in out]
            if len(rows) == 2 and all(r[2] == "RUNNING" for r in rows):
                return {r[0]: r[1] for r in rows}
            return None

        raws = poll(raw_ids, timeout=60, interval=0.3, message=f"array {jid} running")
        task, raw = next((t, r) for t, r in raws.items() if r != jid)
        got = sched.states([raw])
        assert got[raw].job_id == raw and got[raw].state == "RUNNING"
        assert got[task].state == "RUNNING"
        whole = sched.states([jid])  # the array id: its tasks only, no record of its own
        assert set(whole) == set(raws)
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
def test_unknown_ids_and_chunking() -> None:
    sched, calls = _counting_cli()
    assert sched.states(["987654321"]) == {}  # squeue's "Invalid job id" is not an error
    calls.clear()
    jid = sbatch("-J", job_name(), "--wrap", "sleep 30")
    try:
        ids = [str(900000000 + i) for i in range(1100)] + [jid]
        states = sched.states(ids)
        assert list(states) == [jid]
        squeues = [c for c in calls if c[0] == "squeue"]
        assert len(squeues) == 3  # 1101 ids in chunks of 500
        assert all(len(c[c.index("-j") + 1].split(",")) <= 500 for c in squeues)
        assert len([c for c in calls if c[0] == "sacct"]) == 3
    finally:
        scancel(jid)


@pytest.mark.usefixtures("slurm_cluster")
def test_partitions_and_config() -> None:
    sched = SlurmCLI()
    parts = sched.partitions()
    debug = parts["debug"]
    assert debug.default and debug.state == "UP"
    assert debug.max_cpus == len(os.sched_getaffinity(0)) == 2
    assert debug.max_time_min is None  # MaxTime=INFINITE
    assert debug.max_mem_mb and debug.max_mem_mb > 0
    assert sched.max_array_size() == 10001


@pytest.mark.usefixtures("slurm_cluster")
def test_cancel_rejects_bad_ids() -> None:
    with pytest.raises(SchedulerError, match="invalid Slurm job id"):
        SlurmCLI().cancel(["1; rm -rf /"])
