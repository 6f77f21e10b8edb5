"""The example project on the dev Slurm cluster, for the end-to-end statistics cases
(``test_statistics_e2e.py``): a git repository holding a copy of the example (``conf/``
and the training module), sweeps submitted as Slurm array jobs from it with code
snapshots on, and the reads the cases share.

Plain helpers, imported as ``from stats_fixtures import ...``; the module-scoped fixture
that uses them lives in the test module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from helpers import git, poll

from hpclab.store import Store, SweepRecord

REPO = Path(__file__).resolve().parents[1]
PROJECT = "example"
# what every point of every sweep sets: tiny training (val/loss logged 20 times, every
# other step), one torch thread (reproducible, and fair to the shared CPUs)
TINY = ("train.steps=40", "train.eval_every=2", "train.batch_size=32", "train.threads=1")
# the one edit between sweeps (a model change: the code identity changes)
EDIT = ("torch.nn.ReLU()", "torch.nn.Tanh()")


def make_example_repo(root: Path) -> Path:
    """A git repository with a copy of the example project: ``conf/`` (its task is the
    repository's own ``exp.train``) and ``exp.py`` (the example's training module),
    committed, so each sweep's code snapshot is that tree."""
    repo = root / "example project"
    shutil.copytree(REPO / "conf", repo / "conf")
    config = repo / "conf" / "config.yaml"
    text = config.read_text()
    assert "_target_: hpclab.examples.train.train" in text
    config.write_text(text.replace("hpclab.examples.train.train", "exp.train"))
    shutil.copy(REPO / "hpclab" / "examples" / "train.py", repo / "exp.py")
    assert EDIT[0] in (repo / "exp.py").read_text()
    (repo / ".gitignore").write_text("multirun/\noutputs/\n__pycache__/\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the example")
    return repo


def edit_model(repo: Path) -> None:
    """Edit the model code (uncommitted, as researchers do between sweeps)."""
    exp = repo / "exp.py"
    exp.write_text(exp.read_text().replace(*EDIT))


def task_env(store: Path, slurm_conf: str) -> dict[str, str]:
    """The environment of a launch: this store, the dev cluster, code snapshots on, the
    repository's module importable (as it is for a researcher in their tree)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "HPCLAB_"))}
    env.update(HPCLAB_STORE=str(store), HPCLAB_SNAPSHOT_CODE="1", SLURM_CONF=slurm_conf)
    return env


def launch_sweep(repo: Path, store: Path, env: Mapping[str, str], *overrides: str) -> SweepRecord:
    """Submit one sweep of the example as a Slurm array job (detached: it returns once
    the array is queued) and return its sweep record."""
    before = set(Store(store).sweep_ids(PROJECT)) if (store / PROJECT).exists() else set()
    out = subprocess.run(
        [sys.executable, "-m", "hpclab.launch", "-m", "hydra/launcher=slurm", *TINY,
         *overrides],
        cwd=repo, env=dict(env), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    (new,) = set(Store(store).sweep_ids(PROJECT)) - before
    sweep = Store(store).read_sweep(PROJECT, new)
    assert sweep.job_id and len(sweep.run_ids) == sweep.size, sweep
    return sweep


def wait_ended(store: Path, run_ids: Iterable[str], timeout: float = 240.0) -> None:
    """Poll the run records until every run's status is final."""
    s = Store(store)
    ids = list(run_ids)

    def ended() -> bool:
        return all(s.read_record(s.run_paths(PROJECT, r)).status.is_final for r in ids)

    poll(ended, timeout=timeout, interval=0.25, message=f"runs {ids} to end")


def status(store: Path, run_id: str) -> str:
    s = Store(store)
    return s.read_record(s.run_paths(PROJECT, run_id)).status.value


def code_id(store: Path, run_id: str) -> str | None:
    """The run's code identity, as its code.json records it."""
    import json

    paths = Store(store).run_paths(PROJECT, run_id)
    if not paths.code_json.exists():
        return None
    info: dict[str, Any] = json.loads(paths.code_json.read_text())
    return info.get("code_id")
