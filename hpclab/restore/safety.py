"""Path safety for restores: nothing in an archive or a patch may write outside the target.

Every path is checked before anything is written, so a malicious snapshot is refused
whole, with an error naming the offending path and its file. Refused: absolute paths,
``..`` components, ``.git`` components (a patch or archive must not plant hooks or
config in the restored repository), device files and FIFOs, hard links to anything but
an earlier regular member, and members beneath a symlink member. Restore's own
directory (``.hpclab-restore``, where it writes the config and ``restore.json``) may hold
only directories and regular files from an archive, and no path of a patch, so a link
there can never redirect those writes (:mod:`hpclab.restore.metadir` refuses one that
comes with the commit, at write time). Symbolic links are
recreated as the run saw them, wherever they point (``data -> /scratch/datasets`` is
common in ML repositories), but extraction never writes *through* a link: every parent
directory of a member is checked with ``lstat`` at write time, which also covers links
that an earlier step (the checkout) created.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from pathlib import Path

from hpclab.errors import UnsafePathError
from hpclab.restore.verify import META_DIR

_SPECIAL_NAMES = (".git",)


def check_relative_path(rel: str, where: str) -> str:
    """``rel`` as a normalised relative posix path, or :class:`UnsafePathError`.

    ``where`` names the file the path comes from (for the message). A leading ``./`` is
    dropped; an empty path, an absolute one, a ``..`` or ``.git`` component, an empty
    component or a NUL are refused.
    """
    original = rel
    while rel.startswith("./"):
        rel = rel[2:]
    rel = rel.rstrip("/")
    if not rel or rel.startswith("/") or "\0" in rel:
        raise UnsafePathError(f"{where}: refusing unsafe path {original!r} (absolute or empty)")
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePathError(f"{where}: refusing unsafe path {original!r} (traversal)")
        if part.lower() in _SPECIAL_NAMES:
            raise UnsafePathError(f"{where}: refusing unsafe path {original!r}")
    return rel


def _in_meta_dir(rel: str) -> bool:
    """Whether normalised ``rel`` is restore's metadata directory or beneath it (any
    letter case: a case-insensitive filesystem has one directory for both)."""
    return rel.split("/", 1)[0].lower() == META_DIR


# -- archives ---------------------------------------------------------------------------


def check_archive(archive: Path) -> list[tarfile.TarInfo]:
    """Validate every member of a tar archive; return them in order, names normalised."""
    where = str(archive)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UnsafePathError(f"{where}: unreadable archive ({e})") from None
    files: set[str] = set()
    links: set[str] = set()
    for m in members:
        m.name = check_relative_path(m.name, where)
        parents = ["/".join(m.name.split("/")[:i]) for i in range(1, m.name.count("/") + 1)]
        if any(p in links or p in files for p in parents):
            raise UnsafePathError(f"{where}: refusing {m.name!r}: it lies beneath a link or file")
        if _in_meta_dir(m.name) and not (m.isdir() or (m.isreg() and "/" in m.name)):
            kind = "a symlink" if m.issym() else "a hard link" if m.islnk() else "a file"
            raise UnsafePathError(
                f"{where}: refusing {m.name!r}: {kind} where restore writes its own files "
                f"({META_DIR}/ may hold only directories and plain files)"
            )
        if m.isreg():
            files.add(m.name)
        elif m.issym():
            if not m.linkname or "\0" in m.linkname:
                raise UnsafePathError(f"{where}: refusing symlink {m.name!r} with no target")
            links.add(m.name)
        elif m.islnk():
            target = check_relative_path(m.linkname, where)
            if target not in files:
                raise UnsafePathError(
                    f"{where}: refusing hard link {m.name!r} -> {m.linkname!r}: "
                    "not an earlier file of the archive"
                )
            m.linkname = target
            files.add(m.name)
        elif not m.isdir():
            raise UnsafePathError(f"{where}: refusing {m.name!r}: not a file, link or directory")
    return members


def extract_archive(archive: Path, target: Path) -> list[str]:
    """Extract a snapshot archive into ``target`` after :func:`check_archive`; return the
    paths written. Existing files are replaced; nothing is ever written through a link."""
    members = check_archive(archive)
    target = Path(target)
    written: list[str] = []
    with tarfile.open(archive, mode="r:*") as tar:
        by_name = {m.name: m for m in members}
        for m, raw in zip(members, tar.getmembers(), strict=True):
            dest = _safe_parent(target, m.name, archive) / m.name.rsplit("/", 1)[-1]
            if m.isdir():
                _make_dir(dest, archive, m.name)
                continue
            _clear(dest, archive, m.name)
            if m.issym():
                os.symlink(m.linkname, dest)
            elif m.islnk():
                source = target / by_name[m.linkname].name
                _write_file(dest, _read_nofollow(source), by_name[m.linkname].mode)
            else:
                f = tar.extractfile(raw)
                data = f.read() if f is not None else b""
                _write_file(dest, data, m.mode)
            written.append(m.name)
    return written


def _safe_parent(target: Path, rel: str, where: Path) -> Path:
    """The parent directory of ``rel`` under ``target``, created as needed; every component
    must be a real directory (never a symlink) inside ``target``."""
    current = target
    for part in rel.split("/")[:-1]:
        current = current / part
        _make_dir(current, where, rel)
    return current


def _make_dir(path: Path, where: Path, rel: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        os.mkdir(path, 0o755)
        return
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a file"
        raise UnsafePathError(f"{where}: refusing {rel!r}: {path.name!r} in the target is {kind}")


def _clear(dest: Path, where: Path, rel: str) -> None:
    """Remove a file or link at ``dest`` (a restored member replaces it); a directory there
    is refused rather than deleted."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{where}: refusing {rel!r}: a directory of that name exists")
    os.unlink(dest)


def _write_file(dest: Path, data: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    perm = 0o755 if mode & stat.S_IXUSR else 0o644
    fd = os.open(dest, flags, perm)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(dest, perm)  # the umask must not change what verification compares


def _read_nofollow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        return f.read()


# -- patches ----------------------------------------------------------------------------

_HEADER_END = (b"@@", b"GIT binary patch", b"Binary files ")
_NAME_LINES = (b"rename from ", b"rename to ", b"copy from ", b"copy to ")
_ESCAPES = {ord("a"): 7, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("v"): 11, ord("f"): 12,
            ord("r"): 13, ord('"'): 34, ord("\\"): 92}  # fmt: skip


def check_patch(patch: Path) -> list[str]:
    """Every path a git patch touches (validated, prefixes stripped), or
    :class:`UnsafePathError` naming the first unsafe one. Only file headers are read
    (``diff --git``, ``---``/``+++``, rename/copy lines), never hunk contents."""
    where = str(patch)
    try:
        data = patch.read_bytes()
    except OSError as e:
        raise UnsafePathError(f"{where}: unreadable patch ({e.strerror or e})") from None
    found: list[str] = []
    in_header = False
    for line in data.split(b"\n"):
        if line.startswith(b"diff --git "):
            in_header = True
            found += _header_names(line[len(b"diff --git ") :], where)
        elif not in_header:
            continue
        elif line.startswith(_HEADER_END):
            in_header = False
        elif line.startswith((b"--- ", b"+++ ")):
            name = _unquote(line[4:].rstrip(b"\t"), where)
            if name != "/dev/null":
                prefix = "a/" if line.startswith(b"---") else "b/"
                found.append(_strip_prefix(name, prefix, where))
        elif line.startswith(_NAME_LINES):
            rest = line.split(b" ", 2)[2]
            found.append(check_relative_path(_unquote(rest, where), where))
    for rel in found:
        if _in_meta_dir(rel):
            raise UnsafePathError(
                f"{where}: refusing patch path {rel!r}: {META_DIR} is where restore writes "
                "its own files"
            )
    return list(dict.fromkeys(found))


def _strip_prefix(name: str, prefix: str, where: str) -> str:
    if not name.startswith(prefix):
        raise UnsafePathError(f"{where}: refusing patch path {name!r} (expected {prefix}...)")
    return check_relative_path(name[len(prefix) :], where)


def _header_names(rest: bytes, where: str) -> list[str]:
    """Names in ``diff --git A B``. Quoted names are unambiguous; two unquoted names are
    split in the middle when equal, and otherwise every component is checked."""
    if rest.startswith(b'"'):
        first, tail = _take_quoted(rest, where)
        second = _unquote(tail.lstrip(b" "), where)
        return [_strip_prefix(first, "a/", where), _strip_prefix(second, "b/", where)]
    text = os.fsdecode(rest)
    if ' "b/' in text:
        first, _, second = text.partition(' "')
        return [
            _strip_prefix(first, "a/", where),
            _strip_prefix(_unquote(b'"' + os.fsencode(second), where), "b/", where),
        ]
    half = (len(text) - 1) // 2
    a, b = text[:half], text[half + 1 :]
    if len(text) % 2 == 1 and text[half] == " " and a[2:] == b[2:]:
        return [_strip_prefix(a, "a/", where), _strip_prefix(b, "b/", where)]
    # Different names (a rename; its own lines name both): check every component.
    if not text.startswith("a/"):
        raise UnsafePathError(f"{where}: refusing patch header {text!r}")
    for part in text[2:].replace(" b/", "/").split("/"):
        if part in ("", "..") or part.lower() in _SPECIAL_NAMES:
            raise UnsafePathError(f"{where}: refusing unsafe patch path in {text!r}")
    if _in_meta_dir(text[2:]) or f" b/{META_DIR}".lower() in text.lower():
        raise UnsafePathError(f"{where}: refusing patch path in {text!r}: {META_DIR} is "
                              "where restore writes its own files")  # fmt: skip
    return []


def _take_quoted(data: bytes, where: str) -> tuple[str, bytes]:
    """Parse one C-quoted string at the start of ``data``; (text, the rest)."""
    out = bytearray()
    i = 1
    while i < len(data):
        c = data[i]
        if c == ord('"'):
            return os.fsdecode(bytes(out)), data[i + 1 :]
        if c == ord("\\") and i + 1 < len(data):
            nxt = data[i + 1]
            if ord("0") <= nxt <= ord("7"):
                out.append(int(data[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    raise UnsafePathError(f"{where}: unterminated quoted path {os.fsdecode(data)!r}")


def _unquote(data: bytes, where: str) -> str:
    if data.startswith(b'"'):
        text, rest = _take_quoted(data, where)
        if rest.strip():
            raise UnsafePathError(f"{where}: malformed quoted path {os.fsdecode(data)!r}")
        return text
    return os.fsdecode(data)


def remove_contents(directory: Path) -> None:
    """Remove everything inside ``directory`` (not following links), keeping it."""
    import shutil

    for entry in os.scandir(directory):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
