"""``hpclab run -- CMD``: any command tracked as a run, for real (real child processes,
real TensorBoard SummaryWriter, the dev Slurm cluster)."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import hpclab_cli, hpclab_subprocess, poll
from slurm_fixtures import job_name, sbatch, scancel

from hpclab.launch.command import config_from_argv, default_project, load_config_file, merge
from hpclab.store import RunStatus, Store
from hpclab.tracking.metrics import read_metrics

HPCLAB = str(Path(sys.executable).parent / "hpclab")


def _only_run(store_root: Path, project: str) -> tuple[Store, dict]:
    store = Store(store_root)
    runs = sorted((store_root / project / "runs").iterdir())
    assert len(runs) == 1, runs
    return store, json.loads((runs[0] / "run.json").read_text())


def _run_dir(store_root: Path, project: str, run_id: str) -> Path:
    return store_root / project / "runs" / run_id


def test_argv_config_is_typed_and_nested() -> None:
    cfg = config_from_argv(
        [
            "data.csv",
            "--lr",
            "1e-3",
            "--epochs=3",
            "optim.beta=0.9",
            "--fast",
            "--name",
            "x",
            "--shift",
            "-2",
            "--off=false",
        ]
    )
    assert cfg == {
        "lr": 0.001,
        "epochs": 3,
        "optim": {"beta": 0.9},
        "fast": True,
        "name": "x",
        "shift": -2,
        "off": False,
    }
    assert isinstance(cfg["epochs"], int)


def test_config_file_merged_under_argv(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("optim: {lr: 0.1, beta: 0.5}\nepochs: 10\n")
    merged = merge(load_config_file(f), config_from_argv(["optim.lr=0.2"]))
    assert merged == {"optim": {"lr": 0.2, "beta": 0.5}, "epochs": 10}


def test_default_project_is_script_stem(tmp_path: Path) -> None:
    assert default_project(["python", "-u", "my train.py", "--x", "1"], tmp_path) == "my-train"
    assert default_project(["python", "-m", "pkg.trainer"], tmp_path) == "trainer"
    assert default_project(["bash", "-c", "true"], tmp_path / "proj") == "bash"


def test_tensorboard_script_is_tracked_without_edits(store_root: Path, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "import sys\n"
        "from torch.utils.tensorboard import SummaryWriter\n"
        "import hpclab\n"
        "lr = float(sys.argv[sys.argv.index('--lr') + 1])\n"
        "w = SummaryWriter('tb')\n"
        "for i in range(4):\n"
        "    w.add_scalar('train/loss', lr * (4 - i), i)\n"
        "w.close()\n"
        "print('RUN', hpclab.current_run().id)\n"
        "print('to-stderr', file=sys.stderr)\n"
    )
    cfg = tmp_path / "base.json"
    cfg.write_text(json.dumps({"epochs": 7, "lr": 9}))
    proc = hpclab_subprocess(
        store_root,
        "run",
        "--tag",
        "cli",
        "--config",
        str(cfg),
        "--",
        sys.executable,
        "train.py",
        "--lr",
        "0.5",
        "--warm",
        cwd=tmp_path,
        env={"HPCLAB_SNAPSHOT_CODE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    store, rec = _only_run(store_root, "train")
    assert rec["status"] == "completed" and rec["tags"] == ["cli"]
    assert rec["exit_code"] == 0
    assert rec["command"] == [sys.executable, "train.py", "--lr", "0.5", "--warm"]
    run = _run_dir(store_root, "train", rec["id"])
    assert f"RUN {rec['id']}" in proc.stdout  # hpclab.current_run() in the unedited child
    series = read_metrics(run / "metrics.zarr")["train/loss"]
    assert list(series.step) == [0, 1, 2, 3]
    assert list(series.value) == [2.0, 1.5, 1.0, 0.5]
    assert yaml.safe_load((run / "config.yaml").read_text()) == {
        "epochs": 7,
        "lr": 0.5,
        "warm": True,
    }
    assert (run / "snapshot" / "code.json").exists()
    assert (run / "snapshot" / "environment.json").exists()
    assert (run / "logs" / "stdout.log").read_text().count(f"RUN {rec['id']}") == 1
    assert "to-stderr" in (run / "logs" / "stderr.log").read_text()
    assert (tmp_path / "tb").is_dir()  # the event files are still written


def test_exit_code_becomes_failed_status(store_root: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import sys\nprint('partial')\nsys.exit(3)\n")
    proc = hpclab_subprocess(
        store_root, "run", "-p", "exits", "--", sys.executable, "bad.py", cwd=tmp_path
    )
    assert proc.returncode == 3
    _, rec = _only_run(store_root, "exits")
    assert rec["status"] == "failed"
    assert rec["error"]["exit_code"] == 3 and rec["error"]["message"] == "exit code 3"
    assert "partial" in proc.stdout


def test_python_exception_keeps_the_childs_traceback(store_root: Path, tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("raise ValueError('bad batch')\n")
    proc = hpclab_subprocess(store_root, "run", "--", sys.executable, "boom.py", cwd=tmp_path)
    assert proc.returncode == 1
    _, rec = _only_run(store_root, "boom")
    assert rec["status"] == "failed"
    assert rec["error"]["type"] == "ValueError" and rec["error"]["exit_code"] == 1


def test_non_python_command_is_owned_by_the_parent(store_root: Path, tmp_path: Path) -> None:
    proc = hpclab_subprocess(
        store_root,
        "run",
        "-p",
        "shell",
        "--name",
        "echo",
        "--",
        "sh",
        "-c",
        "echo hello-out; echo hello-err >&2; exit 0",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    _, rec = _only_run(store_root, "shell")
    assert rec["status"] == "completed" and rec["name"] == "echo"
    run = _run_dir(store_root, "shell", rec["id"])
    assert (run / "logs" / "stdout.log").read_text().strip() == "hello-out"
    assert "hello-err" in (run / "logs" / "stderr.log").read_text()
    assert (run / "snapshot" / "environment.json").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_is_forwarded_and_cancels(
    signum: signal.Signals, store_root: Path, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    (tmp_path / "wait.py").write_text(
        f"import pathlib, time\npathlib.Path({str(ready)!r}).write_text('1')\ntime.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpclab",
            "--store",
            str(store_root),
            "run",
            "--",
            sys.executable,
            "wait.py",
        ],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        poll(ready.exists, timeout=120, message="the child to start")
        proc.send_signal(signum)
        assert proc.wait(timeout=120) != 0
    finally:
        proc.kill()
    _, rec = _only_run(store_root, "wait")
    assert rec["status"] == "cancelled"


def test_bad_config_file_is_one_line(store_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    result = hpclab_cli(
        store_root, "run", "--config", str(bad), "--", sys.executable, "x.py", cwd=tmp_path
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "Traceback" not in result.stderr
    assert not (store_root / "x").exists()  # nothing created by a typo


def test_missing_command_is_an_error(store_root: Path) -> None:
    result = hpclab_cli(store_root, "run")
    assert result.returncode != 0
    assert "Traceback" not in result.output


def test_inside_sbatch_records_the_slurm_job(
    slurm_cluster: str, store_root: Path, tmp_path: Path
) -> None:
    work = tmp_path / "job"
    work.mkdir()
    (work / "x.py").write_text("import hpclab\nhpclab.current_run().log({'acc': 0.75}, step=0)\n")
    wrap = (
        f"{shlex.quote(HPCLAB)} --store {shlex.quote(str(store_root))} run -- "
        f"{shlex.quote(sys.executable)} x.py --seed 4"
    )
    job = sbatch("-J", job_name(), "--wrap", wrap, cwd=work)
    try:

        def done() -> dict | None:
            runs = store_root / "x" / "runs"
            for d in runs.iterdir() if runs.exists() else []:
                # the run's directory is made before its record is (atomically) written
                record = d / "run.json"
                if not record.exists():
                    continue
                rec = json.loads(record.read_text())
                if RunStatus(rec["status"]).is_final:
                    return rec
            return None

        rec = poll(done, timeout=240, interval=0.5, message="the sbatch job's run to finish")
    finally:
        scancel(job)
    assert rec["status"] == "completed", rec.get("error")
    assert str(rec["scheduler"].get("job_id")) == job
    run = _run_dir(store_root, "x", rec["id"])
    assert list(read_metrics(run / "metrics.zarr")["acc"].value) == [0.75]
    assert yaml.safe_load((run / "config.yaml").read_text()) == {"seed": 4}


def test_an_existing_sitecustomize_still_runs(store_root: Path, tmp_path: Path) -> None:
    site = tmp_path / "site dir"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import builtins\nbuiltins.SITE_MARK = 'theirs'\n")
    (tmp_path / "s.py").write_text(
        "import builtins, hpclab\n"
        "print('MARK', builtins.SITE_MARK, hpclab.current_run() is not None)\n"
    )
    proc = hpclab_subprocess(
        store_root,
        "run",
        "--",
        sys.executable,
        "s.py",
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "MARK theirs True" in proc.stdout
    _, rec = _only_run(store_root, "s")
    assert rec["status"] == "completed"
