"""Which filesystem a path lives on, and whether other nodes are likely to see it.

Two callers: preflight warns when the interpreter jobs will run sits on a node-local
disk, and the catalog indexer picks polling over inotify on network filesystems (inotify
never hears about writes made by other nodes).

Linux only: the answer comes from ``/proc/mounts``; elsewhere the type is ``"unknown"``.
"""

from __future__ import annotations

import os
import re

# Filesystems that live on (or in the memory of) one machine.
LOCAL_FILESYSTEMS: frozenset[str] = frozenset(
    {
        "ext2",
        "ext3",
        "ext4",
        "xfs",
        "btrfs",
        "bcachefs",
        "zfs",
        "f2fs",
        "jfs",
        "reiserfs",
        "nilfs2",
        "vfat",
        "exfat",
        "ntfs",
        "ntfs3",
        "hfs",
        "hfsplus",
        "apfs",
        "iso9660",
        "squashfs",
        "tmpfs",
        "ramfs",
        "devtmpfs",
        "overlay",
        "fuse.overlayfs",
        "proc",
        "sysfs",
    }
)

# Network and parallel filesystems: a path on one of these is (usually) the same file on
# every node that mounts it.
SHARED_FILESYSTEMS: frozenset[str] = frozenset(
    {
        "nfs",
        "nfs4",
        "lustre",
        "gpfs",
        "beegfs",
        "cephfs",
        "ceph",
        "fuse.ceph-fuse",
        "fuse.cephfs",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "sshfs",
        "cifs",
        "smb3",
        "smbfs",
        "panfs",
        "wekafs",
        "afs",
        "dvs",
        "pvfs2",
        "orangefs",
        "fuse.juicefs",
        "fuse.gcsfuse",
        "fuse.s3fs",
    }
)

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def read_mounts(mounts: str = "/proc/mounts") -> list[tuple[str, str]]:
    """(mount point, filesystem type) for every line of ``mounts``, in file order; empty
    when the file cannot be read (not Linux, or no /proc)."""
    try:
        with open(mounts, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3:
            out.append((_unescape(fields[1]), fields[2]))
    return out


def filesystem_type(path: str | os.PathLike[str], *, mounts: str = "/proc/mounts") -> str:
    """The type of the filesystem holding ``path`` (``"ext4"``, ``"nfs4"``, ``"lustre"``…),
    after following symlinks; ``"unknown"`` when the mount table cannot be read.

    The path need not exist: its nearest mount point decides. Of mounts at the same point
    the last one listed wins, because a later mount hides an earlier one.
    """
    target = os.path.realpath(os.fspath(path))
    best_len, best_type = -1, "unknown"
    for point, fstype in read_mounts(mounts):
        inside = point == "/" or target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best_len:
            best_len, best_type = len(point), fstype
    return best_type


def is_shared_filesystem(fstype: str) -> bool:
    """True for network and parallel filesystems (NFS, Lustre, GPFS, BeeGFS, CephFS,
    sshfs…). Unknown types count as not shared: callers warn rather than assume."""
    name = fstype.lower()
    return name in SHARED_FILESYSTEMS or name.startswith("nfs")
