"""Output capture: a process's stdout/stderr (its children's too) reach the run's logs/
as they are produced and still reach the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import poll, python_script

from hpclab.errors import ConfigError
from hpclab.store import Store
from hpclab.tracking.output import capture_wanted

CAPTURE_SCRIPT = r"""
import os, subprocess, sys
from hpclab.tracking.output import OutputCapture
out, err, cap = sys.argv[1], sys.argv[2], sys.argv[3]
c = OutputCapture.start(out, err, max_bytes=int(cap) if cap != "none" else None)
print("py-out <b>")
print("py-err", file=sys.stderr)
child = "import sys; print('child-out'); print('child-err', file=sys.stderr)"
subprocess.run([sys.executable, "-c", child])
os.system("echo shell-out")
os.write(1, b"raw-fd-out\n")
print("x" * 500)
c.stop()
print("after-stop")
"""


def _run_capture(
    tmp_path: Path, cap: str = "none"
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    out, err = tmp_path / "logs" / "stdout.log", tmp_path / "logs" / "stderr.log"
    proc = subprocess.run(
        [sys.executable, "-c", CAPTURE_SCRIPT, str(out), str(err), cap],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return proc, out, err


def test_capture_tees_python_children_and_raw_fds(weird_tmp_path: Path) -> None:
    proc, out, err = _run_capture(weird_tmp_path)
    stdout_lines = ["py-out <b>", "child-out", "shell-out", "raw-fd-out", "x" * 500]
    # the terminal still gets everything, in order
    assert proc.stdout.splitlines() == [*stdout_lines, "after-stop"]
    assert proc.stderr.splitlines() == ["py-err", "child-err"]
    # and the logs hold what was printed while captured, nothing after stop
    assert out.read_text().splitlines() == stdout_lines
    assert err.read_text().splitlines() == ["py-err", "child-err"]


def test_capture_appends_on_a_second_start(tmp_path: Path) -> None:
    _run_capture(tmp_path)
    _, out, _ = _run_capture(tmp_path)
    assert out.read_text().count("py-out <b>") == 2


def test_size_cap_writes_a_note_and_keeps_the_terminal(tmp_path: Path) -> None:
    proc, out, _ = _run_capture(tmp_path, cap="100")
    text = out.read_text()
    assert text.startswith("py-out <b>\nchild-out\n")
    assert "size cap of 100 bytes" in text
    assert "x" * 500 not in text
    assert "x" * 500 in proc.stdout  # the terminal is not capped


def test_a_failing_log_never_breaks_the_program(tmp_path: Path) -> None:
    # /dev/full: every write fails with ENOSPC, as on a full disk
    if not Path("/dev/full").exists():  # pragma: no cover
        pytest.skip("no /dev/full")
    code = (
        "import sys\nfrom hpclab.tracking.output import OutputCapture\n"
        "c = OutputCapture.start('/dev/full', '/dev/full')\n"
        "for i in range(1000): print('line', i)\n"
        "c.stop()\nprint('errors', sorted(c.log_errors))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:1000] == [f"line {i}" for i in range(1000)]
    assert lines[-1] == "errors ['/dev/full']"


def test_capture_wanted_auto_follows_the_launcher_environment() -> None:
    assert capture_wanted("auto", {}) is False
    assert capture_wanted("auto", {"HPCLAB_RUN_ID": "r1"}) is True
    assert capture_wanted("auto", {"SLURM_JOB_ID": "12"}) is True
    assert capture_wanted("off", {"SLURM_JOB_ID": "12"}) is False
    assert capture_wanted("on", {}) is True
    with pytest.raises(ConfigError, match="capture_output: invalid value 'sometimes'"):
        capture_wanted("sometimes", {})


RUN_SCRIPT = r"""
import subprocess, sys
import hpclab
run = hpclab.init(project="p", run_id="logrun")
print("epoch 1 done", flush=True)
subprocess.run([sys.executable, "-c", "import sys; print('worker says hi', file=sys.stderr)"])
sys.stdout.write("unflushed line\n")
input()  # the test reads the live log here
if sys.argv[1] == "fail":
    raise RuntimeError("boom <script>")
run.finish()
"""


@pytest.mark.parametrize("outcome", ["ok", "fail"])
def test_run_captures_into_its_logs_while_running(store_root: Path, outcome: str) -> None:
    env = {"HPCLAB_STORE": str(store_root), "HPCLAB_RUN_ID": "logrun"}
    proc = python_script(RUN_SCRIPT, outcome, env=env, stdin=subprocess.PIPE)
    paths = Store(store_root).run_paths("p", "logrun")
    # live: both lines are in the log while the run is still running (line buffering)

    def live() -> bool:
        assert proc.poll() is None, proc.communicate()[1]  # died before reading stdin
        return "unflushed line" in _text(paths.stdout_log)

    poll(
        live,
        message="stdout.log to hold the live lines",
    )
    assert _text(paths.stdout_log).splitlines() == ["epoch 1 done", "unflushed line"]
    assert "worker says hi" in _text(paths.stderr_log)
    assert json.loads(paths.run_json.read_text())["status"] == "running"
    stdout, stderr = proc.communicate("\n", timeout=60)
    assert "epoch 1 done" in stdout and "worker says hi" in stderr  # the terminal too
    err_log = _text(paths.stderr_log)
    if outcome == "fail":
        assert proc.returncode != 0
        assert err_log.count("RuntimeError: boom <script>") == 1  # printed once, not appended
        assert "RuntimeError: boom <script>" in stderr
    else:
        assert proc.returncode == 0, stderr
        assert "Traceback" not in err_log


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_interactive_run_does_not_capture(store_root: Path) -> None:
    code = (
        "import hpclab\nrun = hpclab.init(project='p', run_id='quiet')\nprint('hi')\nrun.finish()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={**os.environ, "HPCLAB_STORE": str(store_root)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not Store(store_root).run_paths("p", "quiet").stdout_log.exists()


def test_a_process_without_stdout_still_runs_and_captures_stderr(tmp_path: Path) -> None:
    code = (
        "import os, sys\nos.close(1)\nfrom hpclab.tracking.output import OutputCapture\n"
        f"c = OutputCapture.start({str(tmp_path / 'o.log')!r}, {str(tmp_path / 'e.log')!r})\n"
        "print('to err', file=sys.stderr)\nc.stop()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "to err" in proc.stderr
    assert (tmp_path / "e.log").read_text() == "to err\n"
