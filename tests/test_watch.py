"""hpclab watch: the catalog follows runs while they train, natively and by polling."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import poll

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.watch import Watcher, choose_polling
from hpclab.store import Store


def rows(store: Path, run_id: str) -> int:
    return (
        connect(store)
        .execute("SELECT count(*) FROM metrics WHERE run_id = ?", [run_id])
        .fetchone()[0]
    )


def status(store: Path, run_id: str) -> str | None:
    got = connect(store).execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall()
    return got[0][0] if got else None


@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
def test_watch_follows_a_training_run(store_root: Path, polling: bool) -> None:
    store = Store(store_root)
    stop = threading.Event()
    passes = []
    watcher = Watcher(store, polling=polling, interval=0.1, full_every=3600, on_pass=passes.append)
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:
        poll(lambda: passes, message="the first pass")
        run = hpclab.Run(project="p", store=store_root, settings={"snapshot_env": False})
        run.log({"loss": 1.0}, step=0)
        run.flush()
        poll(lambda: rows(store_root, run.id) == 1, message="the new run's first point")
        assert status(store_root, run.id) == "running"
        for s in range(1, 50):
            run.log({"loss": 1.0 / (s + 1)}, step=s)
        run.flush()
        poll(lambda: rows(store_root, run.id) == 50, message="the new points")
        run.finish()
        poll(lambda: status(store_root, run.id) == "completed", message="the final status")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert watcher.mode == ("polling" if polling else "native")


def test_shared_filesystems_poll() -> None:
    assert choose_polling(Path("/proc")) is False  # proc: local, not shared
    from hpclab.store.fsinfo import is_shared_filesystem

    assert is_shared_filesystem("nfs4") and is_shared_filesystem("lustre")


def test_watch_command_runs_until_interrupted(store_root: Path) -> None:
    hpclab.init(project="p", store=store_root, settings={"snapshot_env": False}).finish()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpclab",
            "--store",
            str(store_root),
            "watch",
            "--polling",
            "--interval",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(f"watching {store_root} (polling)")
    assert "indexed 1 run(s)" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    assert status(store_root, Store(store_root).run_ids("p")[0]) == "completed"


@pytest.mark.usefixtures("slurm_cluster")
def test_watch_asks_slurm_how_lost_runs_ended(store_root: Path) -> None:
    """A run whose process died without a word (stale heartbeat) is shown as Slurm says it
    ended, not as running or lost."""
    job = subprocess.run(
        ["sbatch", "--parsable", "--wrap", "sleep 60", "-o", "/dev/null"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        run = hpclab.Run(project="p", store=store_root, settings={"snapshot_env": False})
        run._worker.stop()
        run.finished = True  # the node died
        store = Store(store_root)
        rec = store.read_record(run.paths)
        rec.heartbeat_at = "2020-01-01T00:00:00+00:00"
        rec.scheduler = {"kind": "slurm", "job_id": job, "restart_count": 0}
        store.write_record(run.paths, rec)
    finally:
        subprocess.run(["scancel", job], check=True)
    stop = threading.Event()
    watcher = Watcher(store, polling=True, interval=0.2, full_every=0.5)
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:
        poll(
            lambda: status(store_root, run.id) == "cancelled",
            timeout=60,
            message="the catalog to show the cancelled job",
        )
    finally:
        stop.set()
        thread.join(30)
    assert store.read_record(run.paths).status.value == "cancelled"


@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
def test_watch_follows_hypotheses_and_dag_edits(store_root: Path, polling: bool) -> None:
    from hpclab.catalog.dag import set_parent
    from hpclab.store.atomic import write_yaml_atomic

    store = Store(store_root)
    for rid, val in (("base", 1.0), ("new", 0.5)):
        run = hpclab.Run(
            project="p", store=store_root, run_id=rid, settings={"snapshot_env": False}
        )
        run.log({"val/loss": val}, step=0)
        run.finish()
    stop = threading.Event()
    watcher = Watcher(store, polling=polling, interval=0.1, full_every=3600)
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()

    def verdict() -> list[tuple[str, int]]:
        return (
            connect(store_root).execute("SELECT status, n_units FROM hypothesis_status").fetchall()
        )

    try:
        poll(lambda: status(store_root, "new") == "completed", message="the first pass")
        store.hypotheses_dir("p").mkdir()
        write_yaml_atomic(
            store.hypothesis_yaml("p", "h"),
            {"title": "new beats base", "metrics": ["val/loss"], "runs": ["new"]},
        )
        poll(lambda: verdict() == [("Inconclusive", 0)], message="the new hypothesis")
        set_parent(store, "p", "new", "base", None)  # now it has a baseline
        # 2 runs: no MAD, scale = |baseline| = 1; (1.0 - 0.5) / 1 = 0.5 < 1: Inconclusive
        poll(lambda: verdict() == [("Inconclusive", 1)], message="evidence after the DAG edit")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
