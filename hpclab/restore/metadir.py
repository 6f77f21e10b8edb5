"""Restore's own files in a target, ``<target>/.hpclab-restore/``, written only inside it.

The directory can come from somewhere restore does not control (a commit that tracks a
``.hpclab-restore`` symlink, a tree restored before), so nothing is written through a
link: the directory is opened with ``O_NOFOLLOW`` and every file is created beside its
name, by that directory's descriptor, and renamed over it. A link, or anything but a
directory or regular file, where restore writes is refused with a :class:`RestoreError`
naming it.

The marker (:data:`~hpclab.restore.verify.RESTORE_MARKER`) says that restore made the
directory it is in, so that ``--force`` may empty it (:func:`made_by_restore`).
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from hpclab.errors import RestoreError
from hpclab.restore.verify import META_DIR, RESTORE_MARKER

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_MARKER_TEXT = (
    b"This directory was made by hpclab restore (or hpclab env build): --force may replace it.\n"
)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a file" if stat.S_ISREG(mode) else "not a regular file"


@contextlib.contextmanager
def _open_dir(target: Path) -> Iterator[int]:
    """A descriptor of ``target/META_DIR`` (created if missing), never through a link."""
    path = target / META_DIR
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o755)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise RestoreError(
            f"{path}: refusing to write restore's files there: it is {_kind(st.st_mode)}, "
            "not a directory (the restored tree has one of that name)"
        )
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW)
    try:
        yield fd
    finally:
        os.close(fd)


def write_meta_files(target: Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` (name -> bytes) into ``target/META_DIR``, each replaced atomically;
    return the directory."""
    path = target / META_DIR
    with _open_dir(target) as dir_fd:
        for name, data in files.items():
            try:
                st: os.stat_result | None = os.lstat(name, dir_fd=dir_fd)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISREG(st.st_mode):
                raise RestoreError(
                    f"{path / name}: refusing to replace it: it is {_kind(st.st_mode)} "
                    "(restore writes a file of that name)"
                )
            tmp = f".{name}.tmp-{uuid.uuid4().hex[:12]}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644,
                         dir_fd=dir_fd)  # fmt: skip
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dir_fd)
                raise
    return path


def mark_restored(target: Path) -> None:
    """Write the marker: ``target`` is restore's, ``--force`` may empty it again."""
    write_meta_files(target, {RESTORE_MARKER: _MARKER_TEXT})


def made_by_restore(target: Path) -> bool:
    """Whether ``target`` holds restore's marker as a regular file in a real directory
    (a link to another restore's marker does not count)."""
    meta = target / META_DIR
    try:
        return stat.S_ISDIR(os.lstat(meta).st_mode) and stat.S_ISREG(
            os.lstat(meta / RESTORE_MARKER).st_mode
        )
    except OSError:
        return False


__all__ = ["made_by_restore", "mark_restored", "write_meta_files"]
