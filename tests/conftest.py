"""Shared fixtures: an isolated environment and a store under an awkward path.

Only fixtures: the plain functions tests share are in ``helpers.py``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(autouse=True)
def no_run_outlives_its_test() -> Iterator[None]:
    """A run a test left open (a job still running, on purpose) is finished when the test
    ends: otherwise it stays this process's current run and the next test's integrations
    (Lightning, Trainer, TensorBoard) record into it."""
    from hpclab.tracking import context

    before = {id(r) for r in context.active_runs()}
    yield
    for run in list(context.active_runs()):
        if id(run) not in before and not run.finished:
            with contextlib.suppress(Exception):  # its store may be gone with tmp_path
                run.finish()


@pytest.fixture
def weird_tmp_path(tmp_path: Path) -> Path:
    """A directory whose name has spaces and quotes, as users' paths do."""
    p = tmp_path / "we ird 'dir' \"q\""
    p.mkdir()
    return p


@pytest.fixture
def store_root(weird_tmp_path: Path) -> Path:
    return weird_tmp_path / "store"


# the dev Slurm cluster fixture, for every test module
from slurm_fixtures import slurm_cluster  # noqa: E402, F401
