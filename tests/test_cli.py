"""The hpclab command: version, one clean error line, runs list/show; every command has help.

Commands run in this process through Click's CliRunner (``helpers.hpclab_cli``); each
entry point (``python -m hpclab``, the ``hpclab`` console script, ``python -m
hpclab.launch``) is started once as a real process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from helpers import hpclab_cli, hpclab_subprocess

import hpclab
from hpclab.cli import cli


def test_python_m_hpclab_help() -> None:
    out = hpclab_subprocess(None, "--help", timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: hpclab ") and "runs" in out.stdout


def test_console_script_error_is_one_clean_line(store_root: Path) -> None:
    store_root.mkdir()  # an empty store: the run is what is missing (tests/test_typos.py)
    script = Path(sys.executable).with_name("hpclab")  # installed beside this interpreter
    assert script.exists(), f"{script}: the package is not installed with its scripts"
    out = subprocess.run(
        [str(script), "--store", str(store_root), "runs", "show", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == [f"hpclab: error: run 'nope' not found in store {store_root}"]


def test_python_m_hpclab_launch_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hpclab.launch", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Powered by Hydra" in out.stdout


def test_version() -> None:
    out = hpclab_cli(None, "--version")
    assert out.returncode == 0 and hpclab.__version__ in out.stdout


def test_missing_run_is_one_clean_line(store_root: Path) -> None:
    store_root.mkdir()
    out = hpclab_cli(store_root, "runs", "show", "nope")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"hpclab: error: run 'nope' not found in store {store_root}"
    ]
    assert "Traceback" not in out.stderr


def test_corrupt_run_record_is_one_clean_line(store_root: Path) -> None:
    run = hpclab.init(project="p", store=store_root, settings={"snapshot_env": False})
    run.finish()
    run.paths.run_json.write_text("{ truncated")
    out = hpclab_cli(store_root, "runs", "show", run.id)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "run.json" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    listing = hpclab_cli(store_root, "runs", "list")
    assert listing.returncode == 0 and "skipped" in listing.stderr and "run.json" in listing.stderr


def test_runs_list_and_show(store_root: Path) -> None:
    with hpclab.Run(
        project="demo",
        config={"lr": 0.1},
        name="first",
        store=store_root,
        settings={"snapshot_env": False},
    ) as run:
        for s in range(3):
            run.log({"train/loss": 3.0 - s}, step=s)
    out = hpclab_cli(store_root, "runs", "list", "--json")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["id"], r["status"], r["name"], r["step"]) for r in rows] == [
        (run.id, "completed", "first", 2)
    ]
    show = hpclab_cli(store_root, "runs", "show", run.id)
    assert show.returncode == 0, show.stderr
    assert "completed" in show.stdout and "lr: 0.1" in show.stdout
    line = next(ln for ln in show.stdout.splitlines() if ln.strip().startswith("train/loss"))
    assert line.split()[1:4] == ["3", "2", "1"]  # n, last_step, last


def test_store_from_environment(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCLAB_STORE", str(store_root))
    hpclab.init(project="envp", settings={"snapshot_env": False}).finish()
    out = hpclab_cli(None, "runs", "list")
    assert "envp" in out.stdout


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + (name,), cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix + (name,))
    return out


@pytest.mark.parametrize(
    "path,cmd", _commands(cli), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_has_help_with_an_example(path: tuple[str, ...], cmd: click.Command) -> None:
    assert cmd.help and "Example:" in cmd.help, (
        f"hpclab {' '.join(path)} needs help with an example"
    )


def test_readme_documents_every_command() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for path, _cmd in _commands(cli):
        assert f"hpclab {' '.join(path)}" in readme, (
            f"README does not document hpclab {' '.join(path)}"
        )
    assert "scripts/quickstart.sh" in readme and "scripts/test.sh" in readme


def test_cluster_status_reports_the_dev_cluster(slurm_cluster: str) -> None:
    # fresh processes: the command's output is cluster.sh's, written by a child process
    out = hpclab_subprocess(None, "cluster", "status")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "slurmctld: running" in out.stdout
    # the node is up; whether it is busy depends on who else uses the dev cluster right now
    assert re.search(r"^node \S+: (idle|mixed|allocated)", out.stdout, re.M), out.stdout
    env = hpclab_subprocess(None, "cluster", "env")
    assert env.stdout.strip() == f"export SLURM_CONF={slurm_cluster}"


def test_readme_documents_the_catalog_schema() -> None:
    from hpclab.catalog.schema import TABLES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Schema reference", 1)[1]
    for table, columns in TABLES.items():
        line = next((ln for ln in section.splitlines() if ln.startswith(f"**`{table}`**")), None)
        assert line is not None, f"README schema reference lacks table {table}"
        for c in columns:
            assert f"`{c.name}` ({c.type.lower()}" in line, f"README lacks {table}.{c.name}"
