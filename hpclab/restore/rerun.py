"""``hpclab rerun``: restore a run's code and submit its exact config again, as its child.

The original's tree is restored (and verified) into a rerun directory on the store's
filesystem, ``<store>/<project>/reruns/<id>/`` (compute nodes read it); its resolved
``config.yaml`` becomes the primary config of a one-point sweep, with the original's
launcher settings (recorded in its sweep) and ``hpclab.parent`` set to the original, and
goes through the same launcher, Slurm or local (``launcher`` overrides), by running the
original program (``python -m hpclab.launch``, or the Hydra app's script) from the
restored tree with that tree first on ``PYTHONPATH``: the restored code is what runs.
Overrides use Hydra's syntax and apply to the resolved config (values, not config-group
choices); the seed is the original's unless overridden.
"""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpclab.errors import RestoreError, StoreError
from hpclab.restore.gitsource import REMOTE_TIMEOUT_S
from hpclab.restore.program import find_program
from hpclab.restore.tree import RestoreReport, read_code_info, restore_run
from hpclab.store import RunPaths, RunRecord, Store, SweepRecord
from hpclab.store.atomic import read_yaml, write_json_atomic, write_yaml_atomic
from hpclab.store.ids import new_run_id
from hpclab.store.layout import RerunPaths
from hpclab.store.record import utcnow_iso

LAUNCHERS = ("local", "slurm")
FINAL_WAIT_S = 120.0  # after the launcher returned, for the run record to say how it ended


@dataclass
class RerunResult:
    """A submitted rerun: the new run, where it runs from, and (waited) how it ended."""

    original: str
    project: str
    run_id: str
    sweep_id: str
    job_id: str | None
    launcher: str
    work: RerunPaths
    command: list[str]
    returncode: int
    restore: RestoreReport
    status: str | None = None  # the run's status when the launcher returned

    def to_dict(self) -> dict[str, Any]:
        return {
            "of": self.original,
            "run_id": self.run_id,
            "project": self.project,
            "sweep_id": self.sweep_id,
            "job_id": self.job_id,
            "launcher": self.launcher,
            "dir": str(self.work.dir),
            "code_dir": str(self.restore.code_dir),
            "command": self.command,
            "returncode": self.returncode,
            "status": self.status,
            "verified": self.restore.ok,
        }


def rerun(
    store: Store,
    run_id: str,
    overrides: Sequence[str] = (),
    *,
    project: str | None = None,
    launcher: str | None = None,
    wait: bool = False,
    allow_unverified: bool = False,
    repos: Sequence[str | Path] = (),
    remote_timeout: float = REMOTE_TIMEOUT_S,
    capture_output: bool = False,
) -> RerunResult:
    """Restore run ``run_id`` and submit it again as a child of itself; see the module doc.

    ``wait`` blocks until the job ends (the local launcher always does). With
    ``capture_output`` the launcher's output is kept out of this process's streams (and
    its tail is put in the error if it fails before submitting). Raises
    :class:`RestoreError` when the tree cannot be restored faithfully (unless
    ``allow_unverified``), the run has no recorded program, or nothing was submitted.
    """
    proj, paths = store.find_run(run_id, project)
    record = store.read_record(paths)
    config = _stored_config(paths)
    sweep = _sweep_of(store, proj, record)
    kind = launcher or _launcher_of(record, sweep)
    if kind not in LAUNCHERS:
        raise RestoreError(f"unknown launcher {kind!r}: use one of {', '.join(LAUNCHERS)}")
    work = _new_work_dir(store, proj)
    report = restore_run(
        store, paths.id, work.code_dir, project=proj, repos=repos,
        remote_timeout=remote_timeout, write_meta=False,
    )  # fmt: skip
    if not report.ok and not allow_unverified:
        assert report.verification is not None
        raise RestoreError(
            f"the restored tree of run {paths.id} differs from the run's "
            f"({report.verification.summary()[0]}; see {work.code_dir}): not rerunning it; "
            "pass --allow-unverified to rerun it anyway"
        )
    program = find_program(config, sweep, read_code_info(paths), work.code_dir)
    if program is None:
        raise RestoreError(
            f"run {paths.id} was not made by a Hydra app (no task._target_ in its config, no "
            f"script in its sweep record): run the restored code in {report.code_dir} yourself"
        )
    write_yaml_atomic(work.config_yaml, rerun_config(config, paths.id, store, proj, kind, sweep,
                                                     work))  # fmt: skip
    command = [
        sys.executable, *program.argv, "-m", "--config-path", str(work.conf_dir),
        "--config-name", "config", f"hydra/launcher=hpclab_{kind}",
        *(["hydra.launcher.wait=true"] if wait else []), *overrides,
    ]  # fmt: skip
    proc = subprocess.run(
        command,
        cwd=report.code_dir,
        env=_environment(store, report.code_dir, work),
        # the launcher's output goes to stderr: this command's stdout stays its own
        stdout=subprocess.PIPE if capture_output else 2,
        stderr=subprocess.PIPE if capture_output else None,
        text=True,
        check=False,
    )
    new_sweep = _find_sweep(store, proj, work.sweep_dir)
    if new_sweep is None or not new_sweep.points:
        tail = ""
        if capture_output:
            lines = (proc.stderr or "").strip().splitlines()
            tail = ": " + " | ".join(lines[-3:]) if lines else ""
        raise RestoreError(
            f"rerun of {paths.id}: the launcher exited with {proc.returncode} before "
            f"submitting anything{tail}"
        )
    point = new_sweep.points[0]
    result = RerunResult(
        original=paths.id, project=proj, run_id=str(point.run_id),
        sweep_id=new_sweep.id, job_id=point.job_id, launcher=kind, work=work,
        command=command, returncode=proc.returncode, restore=report,
    )  # fmt: skip
    new_paths = store.run_paths(proj, result.run_id)
    if wait or kind == "local":
        result.status = wait_final(store, new_paths, FINAL_WAIT_S).status.value
    else:
        result.status = store.read_record(new_paths).status.value
    write_json_atomic(work.rerun_json, {**result.to_dict(), "created_at": utcnow_iso()})
    return result


def rerun_config(
    config: Mapping[str, Any], original: str, store: Store, project: str, kind: str,
    sweep: SweepRecord | None, work: RerunPaths,
) -> dict[str, Any]:  # fmt: skip
    """The primary config a rerun submits: the original's resolved config with
    ``hpclab.parent`` set, plus a ``hydra:`` block with the original's launcher settings
    (when it ran on the same launcher), this store and project, and the sweep directory."""
    cfg = copy.deepcopy(dict(config))
    app = cfg.setdefault("hpclab", {})
    if not isinstance(app, dict):
        raise RestoreError(f"run {original}: its config's 'hpclab' is not a mapping")
    app["parent"] = original
    params: dict[str, Any] = {}
    if sweep is not None and sweep.launcher == kind:
        params = dict(sweep.launcher_params or {})
    params.update(project=project, store=str(store.root))
    cfg["hydra"] = {"launcher": params, "sweep": {"dir": str(work.sweep_dir)}}
    return cfg


def wait_final(store: Store, paths: RunPaths, timeout: float) -> RunRecord:
    """The run's record once its status is final, or as it is after ``timeout`` seconds
    (a job that died before opening its run never records an end)."""
    deadline = time.monotonic() + timeout
    while True:
        record = store.read_record(paths)
        if record.status.is_final or time.monotonic() > deadline:
            return record
        time.sleep(0.5)  # polling the store, which another process writes


def _stored_config(paths: RunPaths) -> dict[str, Any]:
    if not paths.config_yaml.exists():
        raise RestoreError(f"run {paths.id} has no config ({paths.config_yaml} is missing)")
    config = read_yaml(paths.config_yaml)
    if not isinstance(config, dict):
        raise RestoreError(f"{paths.config_yaml}: not a mapping")
    return config


def _sweep_of(store: Store, project: str, record: RunRecord) -> SweepRecord | None:
    if not record.sweep_id:
        return None
    with contextlib.suppress(StoreError):
        return store.read_sweep(project, record.sweep_id)
    return None


def _launcher_of(record: RunRecord, sweep: SweepRecord | None) -> str:
    """The launcher kind the original went through (local when it had none)."""
    submission = record.submission or {}
    kind = submission.get("scheduler") or (sweep.launcher if sweep is not None else None)
    return str(kind) if kind in LAUNCHERS else "local"


def _new_work_dir(store: Store, project: str) -> RerunPaths:
    store.reruns_dir(project).mkdir(parents=True, exist_ok=True)
    while True:
        work = store.rerun_paths(project, new_run_id())
        try:
            os.mkdir(work.dir)
        except FileExistsError:
            continue
        work.conf_dir.mkdir()
        return work


def _environment(store: Store, code_dir: Path, work: RerunPaths) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HPCLAB_RUN_ID", None)  # the launcher gives the new run its own id
    env["PYTHONPATH"] = os.pathsep.join(
        [str(code_dir), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    )
    # the restored tree is its own repository (or none): the rerun's snapshot must not
    # find a repository around the store
    env["GIT_CEILING_DIRECTORIES"] = str(work.dir)
    env["HPCLAB_STORE"] = str(store.root)
    return env


def _find_sweep(store: Store, project: str, sweep_dir: Path) -> SweepRecord | None:
    """The sweep the rerun's launcher recorded (it names our sweep directory)."""
    for sweep_id in store.sweep_ids(project)[::-1][:200]:
        try:
            sweep = store.read_sweep(project, sweep_id)
        except StoreError:
            continue  # being written
        if sweep.hydra_sweep_dir == str(sweep_dir):
            return sweep
    return None
