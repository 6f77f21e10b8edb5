"""Artifacts: files a run produced, stored once per content in the project's object store.

Each file is copied (while hashed, so it is read once) into
``<project>/objects/sha256/<ab>/<rest>``, read-only, and hard-linked into the run at
``artifacts/<name>/<relpath>``. A hundred runs logging the same tokenizer or config
share one object. Objects are never modified or deleted here: re-logging a path points
the run's link at the new object (an atomic rename) and leaves the old object for the
runs that still use it.

The run's ``artifacts.json`` lists ``{path, sha256, size, logged_at}`` per file, with
``path`` relative to ``artifacts/``. One process per run writes it (the run's owner).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path, PurePosixPath

from pathspec import GitIgnoreSpec

from hpclab.errors import ArtifactError
from hpclab.store.atomic import TMP_PREFIX, read_json, write_json_atomic
from hpclab.store.documents import ArtifactEntry, ArtifactReference, ArtifactsManifest
from hpclab.store.layout import RunPaths, Store
from hpclab.store.record import utcnow_iso

BLOCK = 1 << 20
OBJECT_MODE = 0o444  # objects are shared by runs: nobody should edit one in place


def log_artifacts(
    store: Store,
    project: str,
    paths: RunPaths,
    src: Path,
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    name: str | None = None,
) -> list[ArtifactEntry]:
    """Log the file or directory ``src`` as artifacts of the run at ``paths``.

    Files of a directory are selected by ``include``/``exclude`` globs (see
    :func:`globs_match`; exclude wins) and land under ``artifacts/<name>/<relpath>``; a
    file lands at ``artifacts/<name>``. ``name`` defaults to the basename of ``src``.
    Returns the new manifest entries. Raises :class:`ArtifactError` for a missing
    ``src`` or a ``name`` that is absolute or climbs out with ``..``.
    """
    src = Path(os.path.abspath(src))
    if not src.exists():
        raise ArtifactError(f"artifact source {src} does not exist")
    dest_name = check_artifact_name(name if name is not None else src.name)
    selected = _select(store, src, include, exclude)
    entries: list[ArtifactEntry] = []
    try:
        for rel, full in selected:
            sha, size = _store_object(store, project, full)
            path = dest_name if rel is None else f"{dest_name}/{rel}"
            _link_into_run(store.object_path(project, sha), paths.artifacts_dir, path)
            entries.append({"path": path, "sha256": sha, "size": size, "logged_at": utcnow_iso()})
    finally:
        # Also after a failure part-way: the manifest must list every link in the run.
        if entries:
            _update_manifest(paths, entries)
    return entries


def log_artifact_reference(
    paths: RunPaths, src: Path, *, name: str | None = None, hash: bool = True
) -> ArtifactReference:
    """Record the file ``src`` in the run's ``artifacts.json`` where it lies, without a copy.

    For files too large to copy or that the trainer manages itself (checkpoints, rotated
    by top-k): the entry holds ``kind: "reference"``, ``source`` (absolute path), the
    size, and the sha256 unless ``hash`` is False (then None). ``name`` (default: the
    basename) is its path in the manifest; the same name again replaces the entry.
    """
    src = Path(os.path.abspath(src))
    if not src.is_file():
        raise ArtifactError(f"artifact reference {src} is not a file")
    path = check_artifact_name(name if name is not None else src.name)
    sha: str | None = None
    try:
        size = src.stat().st_size
        if hash:
            h = hashlib.sha256()
            with open(src, "rb") as f:
                while block := f.read(BLOCK):
                    h.update(block)
            sha = h.hexdigest()
    except OSError as e:
        raise ArtifactError(f"cannot read artifact reference {src}: {e}") from None
    entry: ArtifactReference = {
        "path": path,
        "sha256": sha,
        "size": size,
        "logged_at": utcnow_iso(),
        "kind": "reference",
        "source": str(src),
    }
    _update_manifest(paths, [entry])
    return entry


def prune_references(paths: RunPaths, prefix: str) -> list[str]:
    """Drop the reference entries under ``prefix`` whose file is gone (a checkpoint that
    the trainer's top-k rotation deleted); returns their names."""
    if not paths.artifacts_manifest.exists():
        return []
    current = read_json(paths.artifacts_manifest)
    if not isinstance(current, list):
        raise ArtifactError(f"{paths.artifacts_manifest}: expected a JSON list of artifacts")
    gone = [
        e["path"]
        for e in current
        if isinstance(e, dict)
        and e.get("kind") == "reference"
        and str(e.get("path", "")).startswith(prefix)
        and not Path(str(e.get("source", ""))).is_file()
    ]
    if gone:
        write_json_atomic(
            paths.artifacts_manifest, [e for e in current if e.get("path") not in gone]
        )
    return gone


def check_artifact_name(name: str) -> str:
    """``name`` as a normalised relative posix path; ArtifactError if it could escape."""
    if not isinstance(name, str) or not name or "\0" in name or "\\" in name:
        raise ArtifactError(f"invalid artifact name {name!r}")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ArtifactError(f"invalid artifact name {name!r}: use a relative path without '..'")
    return pure.as_posix()


def glob_match(pattern: str, rel: str) -> bool:
    """Whether the one pattern ``pattern`` selects the posix path ``rel`` (relative to the
    source): ``.gitignore`` semantics, as in :func:`globs_match`."""
    return globs_match([pattern], rel)


def globs_match(patterns: Sequence[str], rel: str) -> bool:
    """Whether ``patterns`` select the posix path ``rel`` (relative to the source).

    ``.gitignore``'s semantics (pathspec's :class:`~pathspec.GitIgnoreSpec`): ``*``, ``?``
    and ``[...]`` do not cross ``/``; ``**`` does (``a/**/b`` also matches ``a/b``). A
    pattern without ``/`` (other than a trailing one) matches at any depth, so ``*.pt``
    selects ``ckpt/last.pt``; one with a ``/`` is anchored at the source, so
    ``ckpt/*.pt`` does not select ``ckpt/sub/a.pt``. A pattern matching a directory
    selects everything inside it; a trailing ``/`` matches directories only. ``!pattern``
    takes back what an earlier pattern of the list selected: the last match decides.
    Raises :class:`ArtifactError` for a pattern git would not accept.
    """
    return bool(_spec(tuple(patterns)).match_file(rel))


# -- selection ------------------------------------------------------------------------


def _select(
    store: Store, src: Path, include: list[str] | None, exclude: list[str] | None
) -> list[tuple[str | None, Path]]:
    """(relpath or None for a single file, path) of the files to log, sorted."""

    def wanted(rel: str) -> bool:
        if include and not globs_match(include, rel):
            return False
        return not (exclude and globs_match(exclude, rel))

    if not src.is_dir():
        return [(None, src)] if wanted(src.name) else []
    # Logging a directory that holds the store (logging "." from the project root) must
    # not ingest every other run's files, nor the files being written right now.
    store_root = os.path.realpath(store.root) + os.sep
    skip_store = not (os.path.realpath(src) + os.sep).startswith(store_root)
    out: list[tuple[str | None, Path]] = []
    # Symlinked directories are not descended (a link cycle would never end); symlinked
    # files are logged by content.
    for dirpath, dirnames, filenames in os.walk(src):
        if skip_store and (os.path.realpath(dirpath) + os.sep).startswith(store_root):
            dirnames[:] = []
            continue
        dirnames.sort()
        base = Path(dirpath).relative_to(src).as_posix()
        for fname in sorted(filenames):
            full = Path(dirpath, fname)
            rel = fname if base == "." else f"{base}/{fname}"
            if full.is_file() and wanted(rel):
                out.append((rel, full))
    return out


@lru_cache(maxsize=256)
def _spec(patterns: tuple[str, ...]) -> GitIgnoreSpec:
    try:
        return GitIgnoreSpec.from_lines(patterns)
    except ValueError as e:
        raise ArtifactError(f"artifact glob: {e}") from e


# -- storing --------------------------------------------------------------------------


def _store_object(store: Store, project: str, src: Path) -> tuple[str, int]:
    """Copy ``src`` into the object store unless its content is there; (sha256, size)."""
    objects = store.objects_dir(project)
    objects.mkdir(parents=True, exist_ok=True)
    # The temporary copy sits in the object store (same filesystem as every object), so
    # it can be linked into place once its hash, and so its final name, is known.
    tmp = objects / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    h = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            while block := fin.read(BLOCK):
                h.update(block)
                fout.write(block)
                size += len(block)
            fout.flush()
            os.fsync(fout.fileno())
        sha = h.hexdigest()
        obj = store.object_path(project, sha)
        if not obj.exists():
            obj.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, OBJECT_MODE)
            try:
                # link, not replace: if another run stored it meanwhile, keep that inode.
                os.link(tmp, obj)
            except FileExistsError:
                pass
            except OSError:
                os.replace(tmp, obj)  # a filesystem without hard links
    except OSError as e:
        raise ArtifactError(f"cannot store artifact {src}: {e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return sha, size


def _link_into_run(obj: Path, artifacts_dir: Path, rel: str) -> None:
    """Point ``artifacts_dir/rel`` at ``obj``: a hard link, or a copy across filesystems,
    renamed into place so a reader never sees the path missing or half-written."""
    dest = artifacts_dir / rel
    if dest.is_dir() and not dest.is_symlink():
        raise ArtifactError(f"cannot log artifact {rel!r}: {dest} is a directory")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ArtifactError(f"cannot log artifact {rel!r}: a parent of {dest} is a file") from None
    tmp = dest.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    try:
        try:
            os.link(obj, tmp)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
            shutil.copyfile(obj, tmp)
            os.chmod(tmp, OBJECT_MODE)
        os.replace(tmp, dest)
    except OSError as e:
        raise ArtifactError(f"cannot link artifact {rel!r} into {artifacts_dir}: {e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _update_manifest(paths: RunPaths, entries: Sequence[ArtifactEntry | ArtifactReference]) -> None:
    """Replace ``artifacts.json`` with its entries plus ``entries`` (same path: replaced)."""
    current: ArtifactsManifest = []
    if paths.artifacts_manifest.exists():
        data = read_json(paths.artifacts_manifest)
        if not isinstance(data, list):
            raise ArtifactError(f"{paths.artifacts_manifest}: expected a JSON list of artifacts")
        current = data
    new = {e["path"]: e for e in entries}
    kept = [e for e in current if not (isinstance(e, dict) and e.get("path") in new)]
    write_json_atomic(paths.artifacts_manifest, kept + list(new.values()))
