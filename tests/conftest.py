"""Shared fixtures: an isolated environment and a store under an awkward path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

_SCHEDULER_VARS = (
    "SLURM_",
    "HPCLAB_",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "TORCHELASTIC_",
    "OMPI_COMM_WORLD_",
    "PMI_",
    "PMIX_",
)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No scheduler or hpclab variables leak in from the machine running the tests; code
    snapshots are off unless a test turns them on (the repo itself is not the subject)."""
    for name in list(os.environ):
        if name.startswith(_SCHEDULER_VARS):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HPCLAB_SNAPSHOT_CODE", "0")
    monkeypatch.setenv("HPCLAB_STORE", str(tmp_path / "default-store"))


@pytest.fixture
def weird_tmp_path(tmp_path: Path) -> Path:
    """A directory whose name has spaces and quotes, as users' paths do."""
    p = tmp_path / "we ird 'dir' \"q\""
    p.mkdir()
    return p


@pytest.fixture
def store_root(weird_tmp_path: Path) -> Path:
    return weird_tmp_path / "store"


def poll(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Return predicate()'s first truthy value, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def python_script(
    code: str, *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.Popen[str]:
    """Start ``python -c code`` with the test environment (plus ``env``)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=full_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def hpclab_cli(
    store: Path, *args: str, cwd: Path | None = None, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    """``python -m hpclab --store STORE ARGS...`` in a subprocess, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "hpclab", "--store", str(store), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


# the dev Slurm cluster fixture, for every test module
from slurm_fixtures import slurm_cluster  # noqa: E402, F401
