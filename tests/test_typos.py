"""Typos are errors, not empty answers: each mistake exits non-zero with one line naming
the store, project, metric, status or file (and the valid choices), creates nothing, and
prints no traceback. Every case goes through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CliResult, hpclab_cli, hpclab_subprocess

import hpclab
from hpclab.settings import ENV_VARS, unknown_env_vars

NO_SNAPSHOTS = {"snapshot_env": False, "snapshot_code": False}


def _tree(root: Path) -> list[str]:
    """Every path under ``root`` (relative), to prove a command created nothing."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _one_error(out: CliResult | subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one ``hpclab: error:`` line and no traceback."""
    assert out.returncode != 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("hpclab: error:")]
    others = [ln for ln in out.stderr.splitlines() if not ln.startswith("hpclab: warning:")]
    assert len(errors) == 1 and others == errors, out.stderr
    return errors[0]


@pytest.fixture
def store(store_root: Path) -> Path:
    """A store with projects ``train`` (a completed run logging val/loss) and ``demo``
    (a failed run)."""
    with hpclab.Run(project="train", store=store_root, settings=NO_SNAPSHOTS) as run:
        for step in range(3):
            run.log({"val/loss": 1.0 / (step + 1)}, step=step)
    hpclab.init(project="demo", store=store_root, settings=NO_SNAPSHOTS).finish("failed")
    return store_root


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list"),
        ("runs", "show", "20261122-143501-k3x9"),
        ("status",),
        ("sql", "SELECT 1"),
        ("index",),
        ("site", "build"),
        ("hypothesis", "list"),
        ("restore", "20261122-143501-k3x9"),
    ],
    ids=lambda a: " ".join(a),
)
def test_mistyped_store_is_an_error_and_creates_nothing(store: Path, args: tuple[str, ...]) -> None:
    typo = store.with_name("stroe")
    out = hpclab_cli(typo, *args)
    line = _one_error(out)
    assert f"store {typo} does not exist" in line and "--store" in line
    assert "did you mean 'store'?" in line  # the sibling it is a typo of
    assert not typo.exists()


def test_a_directory_that_is_no_store_is_refused(store: Path, tmp_path: Path) -> None:
    code = tmp_path / "my code"
    (code / "src").mkdir(parents=True)
    before = _tree(code)
    line = _one_error(hpclab_cli(code, "index"))
    assert f"store {code} is not an hpclab store" in line
    assert _tree(code) == before  # no .catalog, no VERSION


def test_help_works_with_a_missing_store(tmp_path: Path) -> None:
    out = hpclab_cli(tmp_path / "nowhere", "runs", "list", "--help")
    assert out.returncode == 0 and "--where" in out.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list", "-p", "trian"),
        ("runs", "top", "-m", "val/loss", "-p", "trian"),
        ("status", "-p", "trian"),
        ("hypothesis", "list", "-p", "trian"),
        ("hypothesis", "add", "h1", "-p", "trian", "--title", "t", "--metric", "val/loss"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_mistyped_project_is_an_error_and_creates_nothing(
    store: Path, args: tuple[str, ...]
) -> None:
    before = _tree(store)
    line = _one_error(hpclab_cli(store, *args))
    assert line == (
        f"hpclab: error: no project 'trian' in store {store} (projects: demo, train); "
        "did you mean 'train'?"
    )
    assert _tree(store) == before and not (store / "trian").exists()


def test_hypothesis_add_in_an_existing_project_still_works(store: Path) -> None:
    out = hpclab_cli(
        store, "hypothesis", "add", "h1", "-p", "train", "--title", "t", "--metric", "val/loss"
    )
    assert out.returncode == 0, out.output
    assert (store / "train" / "hypotheses" / "h1.yaml").is_file()


def test_unknown_status_lists_the_statuses(store: Path) -> None:
    line = _one_error(hpclab_cli(store, "runs", "list", "--status", "complete"))
    assert "unknown status 'complete' (one of: planned, queued, running, completed," in line
    assert line.endswith("did you mean 'completed'?")
    ok = hpclab_cli(store, "runs", "list", "--status", "completed")
    assert ok.returncode == 0 and "train" in ok.stdout and "demo" not in ok.stdout


def test_where_on_a_metric_nobody_logged(store: Path) -> None:
    line = _one_error(hpclab_cli(store, "runs", "list", "--where", "val/los<0.02"))
    assert "no run has logged metric 'val/los'" in line and "did you mean 'val/loss'" in line
    ok = hpclab_cli(store, "runs", "list", "--where", "val/loss<0.5", "--json")
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 1  # last value 1/3


def test_where_on_a_store_without_metrics(tmp_path: Path) -> None:
    empty = tmp_path / "empty store"
    empty.mkdir()  # an empty directory is a store with nothing written yet
    line = _one_error(hpclab_cli(empty, "runs", "list", "--where", "val/loss<1"))
    assert "no run has logged metric 'val/loss' (no run has logged any metric yet)" in line


def test_missing_run_and_table_are_one_line(store: Path) -> None:
    line = _one_error(hpclab_cli(store, "runs", "show", "20261122-143501-k3x9"))
    assert "run '20261122-143501-k3x9' not found" in line
    line = _one_error(hpclab_cli(store, "sql", "SELECT * FROM runz"))
    assert "runz" in line
    line = _one_error(hpclab_cli(store, "restore", "20261122-143501-k3x9"))
    assert "not found" in line


def test_site_build_on_a_store_never_indexed_indexes_it_first(store: Path) -> None:
    assert not (store / ".catalog").exists()
    out = hpclab_cli(store, "site", "build")
    assert out.returncode == 0, out.output
    assert f"store {store} has no catalog yet: indexing it first" in out.stderr
    assert "and 2 runs' data" in out.stdout  # not an empty site


def test_unknown_hpclab_variable_warns_with_close_match(store: Path) -> None:
    out = hpclab_cli(store, "runs", "list", env={"HPCLAB_STOER": "/x"})
    assert out.returncode == 0
    assert (
        "hpclab: warning: unknown environment variable HPCLAB_STOER (ignored); "
        "did you mean 'HPCLAB_STORE'?"
    ) in out.stderr.splitlines()


def test_every_hpclab_variable_read_is_known() -> None:
    """ENV_VARS lists every ``HPCLAB_*`` variable the package reads (no false warnings)."""
    import re

    root = Path(hpclab.__file__).parent
    read = set()
    for path in root.rglob("*.py"):
        read |= set(
            re.findall(r"environ(?:\.get|\.pop)?\(?\[?\"(HPCLAB_[A-Z_]+)", path.read_text())
        )
    assert read and read <= set(ENV_VARS), sorted(read - set(ENV_VARS))
    assert unknown_env_vars({"HPCLAB_FLUSH_INTERVAL": "1", "HOME": "/"}) == []


def _launch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpclab.launch", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "HPCLAB_STOER": "x"},
    )


def test_broken_conf_yaml_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "my conf"
    conf.mkdir()
    (conf / "config.yaml").write_text("lr: 0.1\nmodel: [1, 2\nseed: 0\n")
    default_store = Path(os.environ["HPCLAB_STORE"])
    for out in (
        _launch("lr=0.2", "--config-path", str(conf), cwd=tmp_path),
        hpclab_subprocess(None, "preflight", "lr=0.2", "--config-path", "my conf", cwd=tmp_path),
    ):
        line = _one_error(out)
        assert line.startswith(f"hpclab: error: {conf / 'config.yaml'}:3:")
        assert "invalid YAML" in line
    assert not default_store.exists() and not (tmp_path / "multirun").exists()


def test_preflight_with_an_own_config_tree(tmp_path: Path) -> None:
    """``preflight OVERRIDE --config-path X``: options after overrides, a relative path,
    and a tree without hpclab's launcher presets."""
    conf = tmp_path / "conf2"
    conf.mkdir()
    (conf / "config.yaml").write_text("lr: 0.01\nseed: 0\n")
    out = hpclab_subprocess(
        None, "preflight", "lr=0.1,0.2", "--config-path", "conf2", "seed=1", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "preflight ok: 2 point(s)" in out.stderr + out.stdout
    bad = hpclab_subprocess(None, "preflight", "lrr=0.1", "--config-path", "conf2", cwd=tmp_path)
    assert "lrr" in _one_error(bad)
    assert not Path(os.environ["HPCLAB_STORE"]).exists()
    assert _tree(tmp_path) == ["conf2", "conf2/config.yaml"]  # no multirun/ either
