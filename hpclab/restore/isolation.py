"""A sweep's code, isolated at submission: snapshotted once on the login node, stored
content-addressed, restored into a copy every task of the sweep runs from.

Without it the code a run records is whatever the working tree holds when its task
starts, while submitit pickled the ``__main__`` script's function at submission: edit
``train.py`` or an imported ``model.py`` while the array waits in the queue and the
snapshot holds an edit that never ran, and two tasks of one sweep run different trees.

Layout (:class:`hpclab.store.layout.CodePaths`), per project::

    code/<code_id>/snapshot/   the snapshot files (as a run's snapshot/)
    code/<code_id>/tree/       that snapshot restored (hpclab restore's own code path)
    code/<code_id>/ready.json  written last: the tree matches the manifest

``code_id`` is the hash of the snapshot's manifest, so sweeps of the same tree share one
copy. Each run of the sweep gets the sweep's snapshot files (hard links where the
filesystem allows) and a ``code.json`` whose ``isolation`` block names the copy: so
``hpclab restore`` of any run gives the tree that ran, by construction. The copy is a
restore, so what the snapshot left out (files over the size limits, secrets: markers
instead) is left out of what runs too; ``isolate_code: false`` runs in place instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hpclab.errors import SnapshotError
from hpclab.restore.tree import restore_snapshot
from hpclab.settings import TrackingSettings
from hpclab.store import RunPaths, Store
from hpclab.store.atomic import read_json, write_json_atomic
from hpclab.store.documents import CodeInfo, CodeIsolation
from hpclab.store.layout import CodePaths
from hpclab.store.record import utcnow_iso
from hpclab.tracking.snapshot import manifest_id, take_code_snapshot

SNAPSHOT_FILES = ("manifest.json", "uncommitted.patch", "untracked.tar.gz", "source.tar.gz")


@dataclass
class SweepCode:
    """The code of one sweep as snapshotted at submission."""

    code_id: str
    paths: CodePaths  # the content-addressed object
    info: CodeInfo  # this sweep's code.json (commit, code_dir, ...)
    root: Path  # the working tree it was taken from
    staging: CodePaths  # this sweep's own snapshot files, until linked into the runs
    isolated: bool  # whether the tree was restored for the tasks to run from
    submitted_at: str

    def isolation(self) -> CodeIsolation:
        if self.isolated:
            return {
                "mode": "sweep", "code_id": self.code_id, "submitted_code_id": self.code_id,
                "submitted_at": self.submitted_at, "tree": str(self.paths.tree),
                "code_changed_since_submit": False,
            }  # fmt: skip
        return {"mode": "in-place", "submitted_code_id": self.code_id,
                "submitted_at": self.submitted_at}  # fmt: skip

    def link_into(self, paths: RunPaths) -> None:
        """Give run ``paths`` this sweep's snapshot (isolated sweeps only: an in-place task
        snapshots its own tree when it starts)."""
        if not self.isolated:
            return
        paths.snapshot_dir.mkdir(parents=True, exist_ok=True)
        for name in SNAPSHOT_FILES:
            src = self.staging.snapshot_dir / name
            if src.exists():
                _link_or_copy(src, paths.snapshot_dir / name)
        info = cast(dict[str, Any], dict(self.info))
        info["isolation"] = self.isolation()
        write_json_atomic(paths.code_json, info, fsync=False)  # last: the snapshot is complete

    def discard_staging(self) -> None:
        if self.staging.dir != self.paths.dir:
            shutil.rmtree(self.staging.dir, ignore_errors=True)


def snapshot_sweep_code(
    store: Store,
    project: str,
    code_dir: Path,
    *,
    settings: TrackingSettings,
    isolate: bool = True,
) -> SweepCode:
    """Snapshot ``code_dir``'s working tree once for a sweep and, with ``isolate``, make
    sure its restored copy exists (built and verified here, on the login node, so a task
    never builds one). Raises :class:`SnapshotError` when the copy does not match."""
    objects = store.code_objects_dir(project)
    objects.mkdir(parents=True, exist_ok=True)
    staging = store.code_paths(project, f".tmp-{uuid.uuid4().hex}")
    staging.dir.mkdir()
    try:
        info = take_code_snapshot(
            staging, code_dir, max_file_bytes=settings.max_file_bytes,
            max_total_bytes=settings.max_snapshot_bytes,
        )  # fmt: skip
        code_id = info.get("code_id") or manifest_id(staging.code_manifest)
        git: Mapping[str, Any] = info.get("git") or {}
        root = Path(str(git.get("toplevel") or info["code_dir"]))
        target = store.code_paths(project, code_id)
        code = SweepCode(code_id, target, info, root, staging, isolate, utcnow_iso())
        if isolate and not target.ready_json.exists():
            _build(code, project)
    except BaseException:
        shutil.rmtree(staging.dir, ignore_errors=True)
        raise
    return code


def _build(code: SweepCode, project: str) -> None:
    """The object's snapshot files and restored tree, then ``ready.json``."""
    target = code.paths
    target.snapshot_dir.mkdir(parents=True, exist_ok=True)
    for name in (*SNAPSHOT_FILES, "code.json"):
        src = code.staging.snapshot_dir / name
        if src.exists() and not (target.snapshot_dir / name).exists():
            _link_or_copy(src, target.snapshot_dir / name)
    building = target.dir / f"tree.tmp-{uuid.uuid4().hex[:12]}"
    try:
        report = restore_snapshot(
            code.staging, building, project=project, repos=[code.root], remote_timeout=5.0,
            shared=True,
        )  # fmt: skip
        verification = report.verification
        assert verification is not None
        if report.kind == "git" and report.commit and report.commit_source is None:
            raise SnapshotError(
                f"code isolation: commit {report.commit[:12]} is not in {code.root}; "
                "submit again, or run in place with hydra.launcher.isolate_code=false"
            )
        if not verification.ok:
            detail = "; ".join(verification.summary(limit=3))
            raise SnapshotError(
                f"code isolation: the copy of {code.root} does not match its snapshot "
                f"({detail}); was the tree edited during submission? Submit again."
            )
        try:
            os.rename(building, target.tree)
        except OSError:
            if not target.tree.is_dir():  # not another submission that won the race
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    write_json_atomic(
        target.ready_json,
        {"code_id": code.code_id, "root": str(code.root), "created_at": utcnow_iso(),
         "verification": verification.to_dict()},
    )  # fmt: skip


def read_isolation(paths: RunPaths) -> CodeIsolation | None:
    """The ``isolation`` block of a run's ``code.json`` (None: none recorded)."""
    with contextlib.suppress(Exception):
        info = read_json(paths.code_json)
        iso = info.get("isolation") if isinstance(info, dict) else None
        if isinstance(iso, dict):
            return cast(CodeIsolation, iso)
    return None


def _link_or_copy(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dest)
