"""The dev Slurm cluster (``slurm/cluster.sh``) for tests that submit real jobs.

Use it as ``from slurm_fixtures import slurm_cluster  # noqa: F401`` and take
``slurm_cluster`` as an argument. The cluster is started once per session (the script is
idempotent); ``SLURM_CONF`` is set again for every test because conftest's autouse fixture
removes every ``SLURM_*`` variable before each test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "slurm" / "cluster.sh"

_conf: str | None = None
_error: str | None = None


def start_cluster() -> str:
    """Start the dev cluster once per session and return its ``slurm.conf`` path.

    Skips (rather than fails) where Slurm is not installed; a cluster that is installed but
    does not start is a failure.
    """
    global _conf, _error
    if _conf is not None:
        return _conf
    if _error is not None:
        pytest.fail(_error)
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        pytest.skip("Slurm is not installed (apt-get install slurm-wlm slurmdbd munge)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run(
        ["bash", str(CLUSTER_SH), "start"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    m = re.search(r"export SLURM_CONF=(\S+)", proc.stdout)
    if proc.returncode != 0 or not m:
        _error = f"slurm/cluster.sh start failed ({proc.returncode}): {proc.stderr[-2000:]}"
        pytest.fail(_error)
    _conf = m.group(1)
    return _conf


@pytest.fixture
def slurm_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The running dev cluster's ``slurm.conf`` path, with ``SLURM_CONF`` set for the test."""
    conf = start_cluster()
    monkeypatch.setenv("SLURM_CONF", conf)
    yield conf


def job_name(prefix: str = "hpclab-test") -> str:
    """A job name no other test (or person) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sbatch(*args: str, cwd: str | os.PathLike[str] = "/tmp") -> str:
    """Submit with ``sbatch --parsable`` (output to /dev/null) and return the job id."""
    proc = subprocess.run(
        ["sbatch", "--parsable", "-o", "/dev/null", "-e", "/dev/null", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(";")[0]


def scancel(*job_ids: str) -> None:
    """Cancel jobs a test started (cleanup; never fails the test)."""
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60, check=False)
