"""Atomic file replacement: readers see the old file or the new one, never half of one.

Write to a temporary file in the same directory, fsync it, then ``os.replace`` it over
the target (atomic on POSIX filesystems, NFS included, for a rename within one
directory). The directory is fsynced too, so the rename survives a node crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hpclab.store import reading

TMP_PREFIX = ".hpclab-tmp-"


@contextlib.contextmanager
def replacing(path: Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (mode 644),
    on failure it is removed. For writers that need a file name (DuckDB's COPY)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    if fsync:
        _fsync_dir(Path(path).parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj: Any, *, fsync: bool = True) -> None:
    """Serialise ``obj`` as indented JSON and replace ``path`` atomically."""
    data = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=True)
    write_bytes_atomic(path, (data + "\n").encode(), fsync=fsync)


def write_yaml_atomic(path: Path, obj: Any, *, fsync: bool = True) -> None:
    """Serialise ``obj`` as block-style YAML and replace ``path`` atomically."""
    data = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)
    write_bytes_atomic(path, data.encode(), fsync=fsync)


def read_json(path: Path) -> Any:
    """Read a JSON file; a malformed file is a :class:`StoreError` naming it (and so is a
    FIFO, a device or a file past the size limit: :mod:`hpclab.store.reading`)."""
    return reading.read_json(path)


def read_yaml(path: Path) -> Any:
    """Read a YAML file; a malformed file is a :class:`StoreError` naming it (and so is a
    FIFO, a device, a file past the size limit or an alias bomb: :mod:`hpclab.store.reading`)."""
    return reading.read_yaml(path)


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths show up in configs and records; store them as plain values.
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")
