"""Logs with the run: a task's output lands in its run's logs/ (and on the terminal),
``runs show`` points to it, ``hpclab logs [-f]`` prints and follows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import hpclab_cli, poll, python_script

from hpclab.store import RunStatus, Store

APP = """
import subprocess, sys
import hydra

@hydra.main(version_base=None, config_path=".", config_name="cfg")
def main(cfg):
    print(f"training with lr={cfg.lr}")
    print(f"warning from lr={cfg.lr}", file=sys.stderr)
    subprocess.run([sys.executable, "-c", f"print('worker of lr={cfg.lr}')"], check=True)
    if cfg.lr > 0.5:
        raise ValueError("lr too high <script>alert(1)</script>")
    return cfg.lr

if __name__ == "__main__":
    main()
"""


def _launch(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The app in ``tmp_path/my app``, launched with ``-m ARGS``; its output and store."""
    app = tmp_path / "my app"
    app.mkdir()
    (app / "train.py").write_text(APP)
    (app / "cfg.yaml").write_text("lr: 0.1\n")
    store = tmp_path / "store"
    env = {**os.environ, "HPCLAB_STORE": str(store), "HPCLAB_PROJECT": "logs"}
    out = subprocess.run(
        [sys.executable, "train.py", "-m", *args],
        cwd=app, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return out, store


def _sweep(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path, list[str]]:
    out, store = _launch(tmp_path, "hydra/launcher=hpclab_local", "lr=0.1,0.9")
    (sweep,) = Store(store).iter_sweeps("logs")
    return out, store, sweep.run_ids


def test_local_sweep_output_is_in_the_run_and_on_the_terminal(tmp_path: Path) -> None:
    out, store, (ok_id, bad_id) = _sweep(tmp_path)
    assert out.returncode != 0  # the failing point fails the multirun
    s = Store(store)
    ok, bad = s.run_paths("logs", ok_id), s.run_paths("logs", bad_id)
    assert s.read_record(ok).status is RunStatus.COMPLETED
    assert s.read_record(bad).status is RunStatus.FAILED
    # the task's prints, its stderr and its subprocess's output are in the run's logs/
    assert ok.stdout_log.read_text().splitlines()[-2:] == [
        "training with lr=0.1",
        "worker of lr=0.1",
    ]
    assert "warning from lr=0.1" in ok.stderr_log.read_text()
    assert bad.stderr_log.read_text().count("ValueError: lr too high") == 1
    assert "training with lr=0.1" not in bad.stdout_log.read_text()
    # and the waiting launcher showed each job's output with its point's index
    assert "[#0] training with lr=0.1" in out.stdout
    assert "[#0] worker of lr=0.1" in out.stdout
    assert "[#1] training with lr=0.9" in out.stdout
    assert "[#0] warning from lr=0.1" in out.stderr
    assert "[#1] warning from lr=0.9" in out.stderr

    # runs show: the paths, and the tail of the failed run
    shown = hpclab_cli(store, "runs", "show", bad_id)
    assert shown.returncode == 0, shown.output
    assert str(bad.stderr_log) in shown.stdout and str(bad.stdout_log) in shown.stdout
    tail = shown.stdout.split("stderr (last ", 1)[1]
    assert "ValueError: lr too high <script>alert(1)</script>" in tail
    assert "  training with lr=0.9" in shown.stdout.split("stdout (last ", 1)[1]
    assert ".submitit" in shown.stdout and "_log.out" in shown.stdout  # submitit's files
    # a completed run: the paths, no tail
    shown_ok = hpclab_cli(store, "runs", "show", ok_id)
    assert str(ok.stdout_log) in shown_ok.stdout and "(last " not in shown_ok.stdout

    # hpclab logs: stdout to stdout, stderr to stderr; one stream; the last lines
    both = hpclab_cli(store, "logs", ok_id)
    assert both.returncode == 0
    assert both.stdout == ok.stdout_log.read_text()
    assert both.stderr == ok.stderr_log.read_text()
    only_err = hpclab_cli(store, "logs", bad_id, "--stderr", "-n", "1")
    assert only_err.stdout == ""
    assert only_err.stderr.splitlines() == bad.stderr_log.read_text().splitlines()[-1:]


def test_logs_of_an_unknown_run_or_a_run_without_logs_is_one_error(store_root: Path) -> None:
    missing = hpclab_cli(store_root, "logs", "20261122-143501-k3x9")
    assert missing.returncode == 1 and missing.stderr.startswith("hpclab: error:")
    code = "import hpclab\nhpclab.init(project='p', run_id='quiet').finish()"
    subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60,
        env={**os.environ, "HPCLAB_STORE": str(store_root)},
    )  # fmt: skip
    quiet = hpclab_cli(store_root, "logs", "quiet")
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == [
        f"hpclab: error: run quiet has no captured output in "
        f"{Store(store_root).run_paths('p', 'quiet').logs_dir} "
        "(capture_output was off, or the run has not started)"
    ]


FOLLOWED = r"""
import sys
import hpclab
run = hpclab.init(project="p", run_id="followed")
print("first line", flush=True)
input()
print("second line")
print("on stderr", file=sys.stderr)
run.finish()
"""


def test_logs_follow_prints_until_the_run_ends(store_root: Path) -> None:
    env = {"HPCLAB_STORE": str(store_root), "HPCLAB_RUN_ID": "followed"}
    run = python_script(FOLLOWED, env=env, stdin=subprocess.PIPE)
    paths = Store(store_root).run_paths("p", "followed")
    poll(lambda: "first line" in _text(paths.stdout_log), message="the run's first line")
    follower = subprocess.Popen(
        [sys.executable, "-m", "hpclab", "--store", str(store_root), "logs", "followed", "-f"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "first line\n"  # printed while the run runs
        assert follower.poll() is None  # and still following
        run.communicate("\n", timeout=60)
        assert run.returncode == 0
        stdout, stderr = follower.communicate(timeout=60)  # ends by itself with the run
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, stderr
    assert stdout == "second line\n"
    assert "on stderr\n" in stderr


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_tail_lines_reads_only_the_end_and_never_fails_on_bytes(tmp_path: Path) -> None:
    from hpclab.tracking.logs import tail_lines

    log = tmp_path / "stdout.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(1000)) + b"bad \xff byte\n")
    assert tail_lines(log, 2) == ["line 999", "bad \ufffd byte"]
    # a cap on what is read (the last 30 bytes start with the newline before "line 998")
    assert tail_lines(log, 100, max_bytes=30) == ["line 998", "line 999", "bad \ufffd byte"]
    # a cut inside a line: the partial line is left out
    assert tail_lines(log, 100, max_bytes=28) == ["line 999", "bad \ufffd byte"]
    assert tail_lines(log, 1, end=len(b"line 0\nline 1\n")) == ["line 1"]
    assert tail_lines(tmp_path / "absent.log", 5) == []


def test_slurm_task_output_is_in_the_run_and_in_the_slurm_files(
    tmp_path: Path, slurm_cluster: str
) -> None:
    out, store = _launch(tmp_path, "hydra/launcher=hpclab_slurm", "lr=0.2")
    assert out.returncode == 0, out.stderr
    s = Store(store)
    (sweep,) = s.iter_sweeps("logs")
    paths = s.run_paths("logs", sweep.run_ids[0])
    poll(lambda: s.read_record(paths).status.is_final, timeout=240, interval=0.5, message="the job")
    assert s.read_record(paths).status is RunStatus.COMPLETED
    assert "training with lr=0.2" in paths.stdout_log.read_text()
    assert "worker of lr=0.2" in paths.stdout_log.read_text()
    assert "warning from lr=0.2" in paths.stderr_log.read_text()
    # still in submitit's files, and runs show points to them
    shown = hpclab_cli(store, "runs", "show", paths.id)
    job_logs = [Path(line[10:]) for line in shown.stdout.splitlines() if "_log." in line]
    assert [p.suffix for p in job_logs] == [".out", ".err"]
    assert "training with lr=0.2" in job_logs[0].read_text()
    assert "warning from lr=0.2" in job_logs[1].read_text()
