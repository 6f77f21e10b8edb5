"""``hpclab restore``: a run's source tree back from its snapshot, verified byte for byte.

Inside git: the recorded commit is cloned from a local repository that has it (the
recorded one, or ``repos`` given by the user), else from a recorded remote (short
timeout, no prompts); the uncommitted patch is applied and the untracked files are
unpacked. When no repository has the commit, the restore says precisely where it looked
and restores what the snapshot holds (the untracked files; the patch needs its base).
Outside git: the source archive. Then every file is checked against the manifest.
Secrets the snapshot redacted come back where the commit has them (context lines of the
patch); the others stay markers, and the report lists them per file
(:mod:`hpclab.restore.redactions`).

Every path of the patch and the archives is checked before anything is written; the
target must be empty (``force`` empties only a directory restore made, which holds its
marker, and never one that holds the user's work: the home, current and store
directories, the original tree). Restore's own files are written only inside the target
(:mod:`hpclab.restore.metadir`), never through a link.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hpclab.errors import RestoreError, StoreError
from hpclab.restore import gitsource, redactions
from hpclab.restore.metadir import made_by_restore, mark_restored, write_meta_files
from hpclab.restore.safety import check_archive, check_patch, extract_archive, remove_contents
from hpclab.restore.verify import (
    META_DIR,
    RESTORE_MARKER,
    Verification,
    load_manifest,
    verify_tree,
)
from hpclab.store import RunPaths, Store
from hpclab.store.atomic import read_json, read_yaml
from hpclab.store.documents import CodeInfo
from hpclab.store.record import utcnow_iso


@dataclass
class RestoreReport:
    """What a restore did and how the result compares with the run's tree."""

    run_id: str
    project: str
    target: Path
    kind: str  # "git" or "source"
    relpath: str = "."  # the run's code directory inside the tree
    commit: str | None = None
    commit_source: str | None = None  # where the commit came from; None: not restored
    patch_applied: bool = False
    archive_files: int = 0
    notes: list[str] = field(default_factory=list)
    verification: Verification | None = None
    # lines holding a marker instead of a secret: path -> [(line, rule)]
    redacted: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    command: str | None = None  # a shell line that runs the restored code again
    meta_dir: Path | None = None  # where the config and environment spec were written

    @property
    def code_dir(self) -> Path:
        """Where the run's code directory (its working directory) is in the tree."""
        return self.target if self.relpath in ("", ".") else self.target / self.relpath

    @property
    def ok(self) -> bool:
        return self.verification is not None and self.verification.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "project": self.project,
            "target": str(self.target),
            "code_dir": str(self.code_dir),
            "kind": self.kind,
            "commit": self.commit,
            "commit_source": self.commit_source,
            "patch_applied": self.patch_applied,
            "archive_files": self.archive_files,
            "notes": self.notes,
            "verification": self.verification.to_dict() if self.verification else None,
            "redacted": {
                path: [{"line": n, "rule": rule} for n, rule in lines]
                for path, lines in self.redacted.items()
            },
            "command": self.command,
            "restored_at": utcnow_iso(),
        }

    def redaction_lines(self) -> list[str]:
        """One line per file whose secrets the restore could not bring back."""
        return [redactions.describe(path, lines) for path, lines in self.redacted.items()]


def read_code_info(paths: RunPaths) -> CodeInfo:
    """The run's ``code.json``; a run without a (complete) code snapshot is a RestoreError."""
    if not paths.code_json.exists():
        raise RestoreError(
            f"run {paths.id} has no code snapshot ({paths.code_json} is missing: the run "
            "had snapshot_code off, or never started)"
        )
    check_regular_files(paths)
    info = read_json(paths.code_json)
    if not isinstance(info, dict) or info.get("kind") not in ("git", "source"):
        raise RestoreError(f"{paths.code_json}: malformed code snapshot")
    return cast(CodeInfo, info)


def check_regular_files(paths: RunPaths) -> None:
    """A RestoreError naming the first file restore reads that is there but not a regular
    file (a FIFO or ``/dev/zero`` would hang the restore, a directory crash it)."""
    for path in (
        paths.code_json, paths.code_manifest, paths.code_patch, paths.untracked_archive,
        paths.source_archive, paths.config_yaml, paths.overrides_yaml,
        paths.requirements_txt, paths.environment_json,
    ):  # fmt: skip
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as e:
            raise RestoreError(f"{path}: unreadable ({e.strerror or e})") from None
        if not stat.S_ISREG(mode):
            raise RestoreError(f"{path}: not a regular file: refusing to read it")


def restore_run(
    store: Store,
    run_id: str,
    target: str | Path,
    *,
    project: str | None = None,
    force: bool = False,
    repos: Sequence[str | Path] = (),
    remote_timeout: float = gitsource.REMOTE_TIMEOUT_S,
    write_meta: bool = True,
) -> RestoreReport:
    """Restore run ``run_id``'s source tree into ``target`` and verify it.

    ``repos`` are local clones to look for the commit in before the recorded repository.
    With ``write_meta``, the config, environment spec and the command that runs the code
    again are written to ``<target>/.hpclab-restore/`` (:func:`write_restore_files`),
    with the marker that lets ``force`` replace the target next time.
    Raises :class:`RestoreError` (or :class:`~hpclab.errors.UnsafePathError`) when nothing
    can be restored; a tree that differs from the run's is reported in the result.
    """
    proj, paths = store.find_run(run_id, project)
    info = read_code_info(paths)
    target = Path(target).expanduser().absolute()
    report = restore_snapshot(
        paths, target, project=proj, repos=[Path(r).expanduser().absolute() for r in repos],
        remote_timeout=remote_timeout,
        prepare=lambda: prepare_target(target, force, protected=_protected(store, info)),
        mark=write_meta,
    )  # fmt: skip
    if write_meta:
        report.meta_dir = target / META_DIR
        report.command = run_command(store, paths, report, report.meta_dir)
        write_restore_files(store, paths, report)
    return report


def restore_snapshot(
    paths: RunPaths,
    target: Path,
    *,
    project: str,
    repos: Sequence[Path] = (),
    remote_timeout: float = gitsource.REMOTE_TIMEOUT_S,
    prepare: Callable[[], None] | None = None,
    shared: bool = False,
    mark: bool = False,
) -> RestoreReport:
    """The tree of the snapshot in ``paths.snapshot_dir`` (a run's, or a sweep's code
    object) restored into ``target`` and verified against its manifest.

    Every path of the patch and archives is checked first; then ``prepare`` (default:
    ``target`` must be empty) readies the target. ``shared``: the clone borrows the
    source repository's objects (``git clone --shared``) instead of copying them.
    ``mark``: the target gets restore's marker once the checkout is there (also when it
    fails, so that ``--force`` may retry).
    """
    info = read_code_info(paths)
    manifest = load_manifest(paths.code_manifest)
    archive = paths.source_archive if info["kind"] == "source" else paths.untracked_archive
    # every path is checked before anything is written
    if paths.code_patch.exists() and info["kind"] == "git":
        check_patch(paths.code_patch)
    if archive.exists():
        check_archive(archive)
    (prepare or (lambda: prepare_target(target, force=False)))()
    report = RestoreReport(run_id=paths.id, project=project, target=target, kind=info["kind"])
    try:
        if info["kind"] == "git":
            _restore_git(report, paths, info, list(repos), remote_timeout, shared=shared)
    finally:  # after the clone, which needs an empty directory
        if mark:
            mark_restored(target)
    if archive.exists():
        report.archive_files = len(extract_archive(archive, target))
    skipped = {str(s["path"]): str(s["reason"]) for s in info.get("skipped") or []}
    report.redacted = redactions.lost_lines(info, patch_applied=report.patch_applied)
    lost = {path: [n for n, _ in lines] for path, lines in report.redacted.items()}
    report.verification = verify_tree(target, manifest, skipped, redacted=lost)
    return report


def run_command(store: Store, paths: RunPaths, report: RestoreReport, conf_dir: Path) -> str | None:
    """The shell line that runs the restored code with the run's config (None when the run
    was not made by a Hydra app, so no program is known)."""
    from hpclab.restore.program import find_program, hydra_value, shell_command

    config = read_yaml(paths.config_yaml) if paths.config_yaml.exists() else None
    if not isinstance(config, dict):
        return None
    record = store.read_record(paths)
    sweep = None
    if record.sweep_id:
        with contextlib.suppress(StoreError):
            sweep = store.read_sweep(report.project, record.sweep_id)
    program = find_program(config, sweep, read_code_info(paths), report.target)
    if program is None:
        return None
    extra = []
    if program.is_hpclab_app:
        extra = [f"++hpclab.store={hydra_value(str(store.root))}", f"++hpclab.parent={paths.id}"]
    return shell_command(sys.executable, program, report.code_dir, conf_dir, extra)


def _restore_git(
    report: RestoreReport, paths: RunPaths, info: CodeInfo, repos: list[Path],
    remote_timeout: float, *, shared: bool = False,
) -> None:  # fmt: skip
    git: Mapping[str, Any] = info.get("git") or {}
    report.relpath = str(git.get("relpath") or ".")
    commit = git.get("commit")
    report.commit = commit
    if commit:
        top = Path(str(git.get("toplevel") or ""))
        candidates = list(dict.fromkeys([*repos, top]))
        source, reasons = gitsource.find_local(commit, candidates)
        if source is not None:
            gitsource.clone_local(Path(source.location), report.target, commit, shared=shared)
        else:
            remotes = git.get("remotes") or {}
            if not remotes:
                reasons.append("no remote recorded")
            for name, url in sorted(remotes.items()):
                why = gitsource.clone_remote(name, url, report.target, commit, remote_timeout)
                if why is None:
                    source = gitsource.CommitSource("remote", url, name)
                    break
                reasons.append(f"remote {why}")
        if source is not None:
            report.commit_source = source.describe()
            gitsource.exclude_locally(report.target, f"/{META_DIR}/")
        else:
            where = "; ".join(reasons) if reasons else "no repository or remote recorded"
            report.notes.append(
                f"commit {commit[:12]} is not reachable ({where}): restoring the snapshot's "
                "files only"
            )
    if paths.code_patch.exists():
        if report.commit_source is not None:
            with redactions.applicable_patch(paths.code_patch, report.target) as patch:
                gitsource.apply_patch(report.target, patch)
            report.patch_applied = True
        else:
            report.notes.append(
                f"the uncommitted changes ({paths.code_patch.name}) were not applied: they need "
                f"commit {str(commit)[:12]}; the patch is kept in {META_DIR}/"
            )
    subs = git.get("submodules") or {}
    if subs:
        shown = ", ".join(f"{p}@{sha[:12]}" for p, sha in sorted(subs.items()))
        report.notes.append(f"submodules are not restored (check them out yourself): {shown}")


def _protected(store: Store, info: CodeInfo) -> list[Path]:
    """Directories ``--force`` must never empty: where the user's work is."""
    out = [Path.home(), Path.cwd(), store.root]
    git: Mapping[str, Any] = info.get("git") or {}
    for p in (git.get("toplevel"), info.get("code_dir")):
        if p:
            out.append(Path(str(p)))
    return [p.absolute() for p in out]


def prepare_target(target: Path, force: bool, protected: Sequence[Path] = ()) -> None:
    """Make sure ``target`` is an empty directory: create it, or with ``force`` empty it
    when restore made it (:func:`~hpclab.restore.metadir.made_by_restore`), never one of
    ``protected`` or a directory holding one of them."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise RestoreError(f"target {target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise RestoreError(
                f"target {target} is not empty: choose another directory, or pass --force "
                "to replace its contents"
            )
        real = target.resolve()
        for p in protected:
            if p.resolve() == real or real in p.resolve().parents:
                raise RestoreError(f"refusing to empty {target}: it holds {p}")
        if not made_by_restore(target):
            raise RestoreError(
                f"refusing to empty {target}: hpclab restore did not make it (no "
                f"{META_DIR}/{RESTORE_MARKER}): choose another directory, or empty it yourself"
            )
        remove_contents(target)
    target.mkdir(parents=True, exist_ok=True)


def write_restore_files(store: Store, paths: RunPaths, report: RestoreReport) -> Path:
    """Beside the tree, in ``<target>/.hpclab-restore/``: the resolved config and
    overrides, the environment spec (``requirements.txt``, ``python-version``), the patch
    when it could not be applied, and ``restore.json`` (this report and the command)."""
    files: dict[str, bytes] = {}
    for src in (paths.config_yaml, paths.overrides_yaml, paths.requirements_txt):
        if src.exists():
            files[src.name] = src.read_bytes()
    if paths.code_patch.exists() and not report.patch_applied:
        files[paths.code_patch.name] = paths.code_patch.read_bytes()
    version = python_version(paths)
    if version:
        files["python-version"] = (version + "\n").encode()
    doc = report.to_dict()
    doc["store"] = str(store.root)
    doc["python"] = version
    files["restore.json"] = (json.dumps(doc, indent=2, default=str) + "\n").encode()
    return write_meta_files(report.target, files)


def python_version(paths: RunPaths) -> str | None:
    """``3.11.7``: the interpreter version the run recorded, if it did."""
    if not paths.environment_json.exists():
        return None
    try:
        env = json.loads(paths.environment_json.read_bytes())
        return ".".join(str(v) for v in env["python"]["version_info"][:3])
    except (OSError, ValueError, KeyError, TypeError):
        print(f"hpclab: warning: {paths.environment_json} is unreadable", file=sys.stderr)
        return None
