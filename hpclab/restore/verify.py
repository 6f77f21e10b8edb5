"""Verify a restored tree against the snapshot's manifest, byte for byte.

The manifest (``snapshot/manifest.json``) holds, for every file of the tree the run saw,
its hash and mode: ``git-blob-sha1``/``git-blob-sha256`` (what ``git hash-object``
prints: the hash of ``blob <size>\\0`` + content; for a symlink, of its target text) or
``sha256`` (of the raw bytes, or of a symlink's target text) outside git. Hashes are
computed here in Python, from the bytes on disk, with no git filters.

For a file whose secrets the snapshot redacted, the manifest holds the hash of the
redacted content (what a restore writes): such a file is reported as *redacted*, with
its lines, not as changed; one that differs from that is changed like any other.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpclab.errors import RestoreError

# Directories at the top of a restored tree that are not part of the run's tree.
META_DIR = ".hpclab-restore"
# In META_DIR: written by restore alone, so that ``--force`` knows the directory is its own.
RESTORE_MARKER = "created-by-hpclab-restore"
_TOP_EXCLUDES = (".git", META_DIR)


@dataclass
class Verification:
    """How a restored tree compares with the manifest."""

    algorithm: str
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    # Paths the snapshot left out on purpose (secrets, size limits), with the reason:
    # a restore cannot bring them back, and any version of them present is not checked.
    not_snapshotted: dict[str, str] = field(default_factory=dict)
    # Files identical to the snapshot, whose listed lines hold markers, not the secrets.
    redacted: dict[str, list[int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.extra)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "algorithm": self.algorithm,
            "checked": self.checked,
            "missing": self.missing,
            "changed": self.changed,
            "extra": self.extra,
            "not_snapshotted": self.not_snapshotted,
            "redacted": self.redacted,
        }

    def summary(self, limit: int = 10) -> list[str]:
        """Human lines: the verdict, then each kind of difference (at most ``limit`` paths)."""
        n_ok = self.checked - len(self.missing) - len(self.changed)
        if self.ok:
            lines = [f"verified: {self.checked} file(s) identical to the run's tree"]
            if self.redacted:
                lines[0] += f", except the secrets redacted in {len(self.redacted)} of them"
        else:
            lines = [
                f"NOT verified: {n_ok} of {self.checked} file(s) identical; "
                f"{len(self.missing)} missing, {len(self.changed)} changed, "
                f"{len(self.extra)} extra"
            ]
        for label, paths in (("missing", self.missing), ("changed", self.changed),
                             ("extra", self.extra)):  # fmt: skip
            for rel in paths[:limit]:
                lines.append(f"  {label}: {rel}")
            if len(paths) > limit:
                lines.append(f"  ... and {len(paths) - limit} more {label}")
        if self.not_snapshotted:
            shown = ", ".join(f"{p} ({r})" for p, r in list(self.not_snapshotted.items())[:limit])
            more = len(self.not_snapshotted) - limit
            lines.append(
                f"not in the snapshot (left out when the run started): {shown}"
                + (f" and {more} more" if more > 0 else "")
            )
        if self.redacted:
            items = list(self.redacted.items())
            shown = ", ".join(f"{p} ({len(n)} line(s))" for p, n in items[:limit])
            more = len(items) - limit
            lines.append(
                f"redacted (secrets replaced by markers when the run started): {shown}"
                + (f" and {more} more" if more > 0 else "")
            )
        return lines


def load_manifest(path: Path) -> dict[str, Any]:
    """The manifest's data; a missing or malformed one is a :class:`RestoreError`."""
    import json

    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise RestoreError(f"{path}: no manifest: the snapshot is incomplete") from None
    except (OSError, ValueError) as e:
        raise RestoreError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise RestoreError(f"{path}: malformed manifest (no 'files' mapping)")
    return data


def file_entry(path: Path, algorithm: str) -> dict[str, str] | None:
    """``{"blob": hash, "mode": mode}`` of one file or symlink as the manifest records it;
    None if it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        data, mode = os.readlink(os.fsencode(path)), "120000"
    elif stat.S_ISREG(st.st_mode):
        data = path.read_bytes()
        mode = "100755" if st.st_mode & stat.S_IXUSR else "100644"
    else:
        return {"blob": "", "mode": oct(stat.S_IFMT(st.st_mode))}
    return {"blob": content_hash(data, algorithm), "mode": mode}


def content_hash(data: bytes, algorithm: str) -> str:
    if algorithm == "sha256":
        return hashlib.sha256(data).hexdigest()
    if algorithm.startswith("git-blob-"):
        h = hashlib.new(algorithm[len("git-blob-") :])
        h.update(b"blob %d\0" % len(data))
        h.update(data)
        return h.hexdigest()
    raise RestoreError(f"unknown manifest algorithm {algorithm!r}")


def tree_files(root: Path) -> list[str]:
    """Files and symlinks under ``root`` (relative posix paths, sorted), without following
    links and without the top-level ``.git`` and restore metadata directories."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        keep = []
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                out.append(prefix + name)
            elif not (prefix == "" and name in _TOP_EXCLUDES):
                keep.append(name)
        dirnames[:] = keep
        out += [prefix + name for name in filenames]
    return sorted(out)


def verify_tree(
    root: Path,
    manifest: dict[str, Any],
    skipped: dict[str, str] | None = None,
    redacted: dict[str, list[int]] | None = None,
) -> Verification:
    """Compare every file under ``root`` with ``manifest`` (see :func:`load_manifest`).

    ``skipped`` maps paths the snapshot left out to the reason (from ``code.json``); such
    paths are reported, not counted as differences. ``redacted`` maps paths to the lines
    the snapshot redacted; those that match the manifest are reported as redacted.
    """
    algorithm = str(manifest.get("algorithm") or "sha256")
    files: dict[str, dict[str, str]] = manifest["files"]
    left_out = dict(skipped or {})
    for rel in manifest.get("skipped") or []:
        left_out.setdefault(str(rel), "skipped")
    result = Verification(algorithm=algorithm, not_snapshotted=left_out)
    for rel, expected in files.items():
        result.checked += 1
        got = file_entry(root / rel, algorithm)
        if got is None:
            result.missing.append(rel)
        elif (got["blob"], got["mode"]) != (expected.get("blob"), expected.get("mode")):
            result.changed.append(rel)
        elif redacted and rel in redacted:
            result.redacted[rel] = sorted(set(redacted[rel]))
    for rel in tree_files(root):
        if rel not in files and not _under(rel, left_out):
            result.extra.append(rel)
    return result


def _under(rel: str, paths: dict[str, str]) -> bool:
    """Whether ``rel`` is one of ``paths`` or inside one (a skipped secret directory)."""
    parts = rel.split("/")
    return any("/".join(parts[:i]) in paths for i in range(1, len(parts) + 1))
