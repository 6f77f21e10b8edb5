"""Code snapshot: the exact code a run saw, restorable even if it was never committed.

Taken once at run start (so a half-finished run is restorable), into ``snapshot/``:

* inside a git work tree: ``code.json`` (commit, branch, remotes, dirty flag, what was
  skipped), ``uncommitted.patch`` (``git diff HEAD --binary``: staged and unstaged
  changes) and ``untracked.tar.gz`` (untracked, non-ignored files);
* outside git: ``source.tar.gz``, the ``code_dir`` tree minus ignore rules;
* both: ``manifest.json``, a hash and mode of every file of the tree the run saw, so
  ``hpclab restore`` can verify the restored tree byte for byte. Its ``algorithm`` is
  ``git-blob-sha1``/``git-blob-sha256`` (``blob`` is what ``git hash-object`` prints for
  the file; for a symlink, the blob of its target text) or ``sha256`` (of the raw bytes;
  for a symlink, of its target text).

The user's repository is read, never written: no stash, no index writes. Porcelain
``git diff`` rewrites ``.git/index`` when file stats changed, even with
``GIT_OPTIONAL_LOCKS=0``, so the diff comes from the plumbing ``git diff-index``, which
produces the same patch and never writes. Credential files (by name) and files over the
size limits never enter a patch or an archive; each skipped path is listed with its reason.
``.hpclabignore`` globs leave out more (:mod:`hpclab.tracking.ignore`).

Secrets are scanned for before anything is stored (:mod:`hpclab.tracking.secrets`): the
patch goes from git into a private temporary file, then, redacted, to its final name; each
archived file is redacted before it enters the archive. A finding becomes a marker
(``[redacted: github-token]``) and a ``redactions`` entry in ``code.json`` (path, line,
rule, source); one warning line says how many. A binary file or patch section whose text
cannot be read (compressed) or holds a secret is left out, with its reason. The manifest
holds, for a redacted file, the hash of what a restore will write (the redacted content),
never the original's: with the rest of the file published, a hash of the original would
let anyone test guesses of a short password.
``code.json`` is written last: its presence means the snapshot is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hpclab.errors import SnapshotError
from hpclab.store.atomic import TMP_PREFIX, write_json_atomic
from hpclab.store.documents import CodeInfo, CodeSource, GitInfo
from hpclab.store.layout import DEFAULT_STORE, RunPaths
from hpclab.store.record import utcnow_iso
from hpclab.tracking import patchtext
from hpclab.tracking.ignore import (
    DEFAULT_IGNORES,
    IgnoreRules,
    ScopedRules,
    git_ignores,
    load_ignore_rules,
)
from hpclab.tracking.secrets import (
    CREDENTIAL_PATTERNS,
    IGNORE_FILE,
    SecretFinding,
    SecretRules,
    is_credential_file,
    redact_sections,
    redact_text,
    redact_url,
    scan_file,
)

FORMAT = 1
SECRET_PATTERNS = CREDENTIAL_PATTERNS  # the old name
MAX_SKIPPED_RECORDED = 10_000  # a runaway untracked data dir must not bloat code.json
__all__ = ["DEFAULT_IGNORES", "IGNORE_FILE", "IgnoreRules", "is_secret_path", "load_ignore_rules",
           "manifest_id", "take_code_snapshot"]  # fmt: skip


def take_code_snapshot(
    paths: RunPaths,
    code_dir: Path,
    *,
    max_file_bytes: int = 1_000_000,
    max_total_bytes: int = 50_000_000,
    max_files: int = 20_000,
) -> CodeInfo:
    """Snapshot the code in ``code_dir`` into ``paths.snapshot_dir``; return ``code.json``.

    Inside a git work tree the whole repository is captured (commit + uncommitted diff +
    untracked files), otherwise the ``code_dir`` tree. Raises :class:`SnapshotError` if
    ``code_dir`` is not a directory or git fails on a repository it recognised.
    """
    code_dir = Path(code_dir).absolute()
    if not code_dir.is_dir():
        raise SnapshotError(f"code directory {code_dir} does not exist or is not a directory")
    paths.snapshot_dir.mkdir(parents=True, exist_ok=True)
    top = _git_toplevel(code_dir)
    rules = SecretRules.read([d for d in (top, code_dir) if d is not None], paths.project_yaml)
    ctx = _Context(paths, max_file_bytes, max_total_bytes, max_files, rules)
    taken_at = utcnow_iso()
    if top is not None:
        source = _snapshot_git(ctx, top, code_dir)
    else:
        source = _snapshot_plain(ctx, code_dir)
    info: CodeInfo = {
        "format": FORMAT, "taken_at": taken_at, "code_dir": str(code_dir), **source,
        "limits": {
            "max_file_bytes": max_file_bytes, "max_total_bytes": max_total_bytes,
            "max_files": max_files,
        },
        "archived_files": ctx.n_files,
        "stored_bytes": ctx.n_bytes,  # patch + archived files, counted against the limit
        "skipped": ctx.skipped[:MAX_SKIPPED_RECORDED],
        "redactions": [f.to_dict() for f in ctx.findings[:MAX_SKIPPED_RECORDED]],
    }  # fmt: skip
    if len(ctx.skipped) > MAX_SKIPPED_RECORDED:
        info["skipped_not_listed"] = len(ctx.skipped) - MAX_SKIPPED_RECORDED
    if len(ctx.findings) > MAX_SKIPPED_RECORDED:
        info["redactions_not_listed"] = len(ctx.findings) - MAX_SKIPPED_RECORDED
    write_json_atomic(
        paths.code_manifest,
        {"algorithm": ctx.algorithm, "files": dict(sorted(ctx.manifest.items())),
         "skipped": sorted({s["path"] for s in ctx.skipped})},
    )  # fmt: skip
    info["code_id"] = manifest_id(paths.code_manifest)
    write_json_atomic(paths.code_json, info)
    if ctx.skipped:
        counts = Counter(s["reason"] for s in ctx.skipped)
        summary = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        print(
            f"hpclab: code snapshot skipped {len(ctx.skipped)} path(s) ({summary}); "
            f"see {paths.code_json}",
            file=sys.stderr,
        )
    if ctx.findings:
        n_files = len({f.path for f in ctx.findings})
        names = ", ".join(sorted({f.rule for f in ctx.findings}))
        print(
            f"hpclab: code snapshot redacted {len(ctx.findings)} secret(s) in {n_files} "
            f"file(s) ({names}); see {paths.code_json}",
            file=sys.stderr,
        )
    return info


def manifest_id(manifest: Path) -> str:
    """The content address of a snapshot's tree: sha256 of its manifest (algorithm, every
    file's hash and mode, what was left out), canonical JSON. Equal ids, equal trees."""
    import json

    data = json.loads(manifest.read_bytes())
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_secret_path(rel: str) -> bool:
    """Whether the relative posix path ``rel`` is a credential file by its name."""
    return is_credential_file(rel)


# -- shared state -------------------------------------------------------------------


@dataclass
class _Context:
    """Limits and what one snapshot has archived, hashed and skipped so far."""

    paths: RunPaths
    max_file_bytes: int
    max_total_bytes: int
    max_files: int
    rules: SecretRules = field(default_factory=SecretRules)
    algorithm: str = "sha256"
    n_files: int = 0
    n_bytes: int = 0
    manifest: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    findings: list[SecretFinding] = field(default_factory=list)
    redacted: dict[str, bytes] = field(default_factory=dict)  # archived file -> what was stored
    ignores: list[ScopedRules] = field(default_factory=list)

    def skip(self, rel: str, reason: str) -> None:
        self.skipped.append({"path": rel, "reason": reason})


# -- git ------------------------------------------------------------------------------


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # Repository discovery must start from code_dir, not from an inherited GIT_DIR.
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX"):
        env.pop(name, None)
    env.update(GIT_OPTIONAL_LOCKS="0", LC_ALL="C", GIT_PAGER="cat", PAGER="cat",
               GIT_TERMINAL_PROMPT="0")  # fmt: skip
    return env


def _git_cmd(args: list[str]) -> list[str]:
    # safe.directory: on clusters the repo is often owned by a group account; the user
    # runs this code anyway. fsmonitor off: it could run a hook or write the index.
    return ["git", "--no-pager", "-c", "safe.directory=*", "-c", "core.fsmonitor=false", *args]


def _git(args: list[str], cwd: Path, *, check: bool = True, stdin: bytes | None = None) -> bytes:
    """Run one read-only git command; its stdout, or SnapshotError naming it."""
    proc = subprocess.run(
        _git_cmd(args), cwd=cwd, env=_git_env(), input=stdin, capture_output=True, check=False
    )
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise SnapshotError(f"git {' '.join(args[:2])} failed in {cwd}: {err}")
    return proc.stdout if proc.returncode == 0 else b""


def _git_toplevel(code_dir: Path) -> Path | None:
    if shutil.which("git") is None:
        return None
    out = _git(["rev-parse", "--show-toplevel"], code_dir, check=False).strip()
    return Path(os.fsdecode(out)) if out else None


def _z(out: bytes) -> list[str]:
    return [os.fsdecode(p) for p in out.split(b"\0") if p]


def _snapshot_git(ctx: _Context, top: Path, code_dir: Path) -> CodeSource:
    fmt = _git(["rev-parse", "--show-object-format"], top, check=False).decode().strip() or "sha1"
    ctx.algorithm = f"git-blob-{fmt}"
    head = _git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], top, check=False).decode().strip()
    branch = _git(["symbolic-ref", "-q", "--short", "HEAD"], top, check=False).decode().strip()
    remotes: dict[str, str] = {}
    out = _git(["config", "-z", "--get-regexp", r"^remote\..*\.url$"], top, check=False)
    for item in _z(out):
        key, _, url = item.partition("\n")
        remotes[key[len("remote.") : -len(".url")]] = redact_url(url)
    submodules: dict[str, str] = {}
    try:
        rel = code_dir.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        rel = "."
    ctx.ignores = git_ignores(top, rel)
    untracked = _z(_git(["ls-files", "-z", "--others", "--exclude-standard"], top))
    if head:
        dirty = _git_tracked_changes(ctx, top, submodules)
        to_archive = untracked
    else:
        # No commit yet: there is no diff; what is in the index is as uncommitted as
        # what is untracked, so both go into the archive.
        cached = _z(_git(["ls-files", "-z", "--cached"], top))
        to_archive = sorted(set(cached) | set(untracked))
        _remove(ctx.paths.code_patch)
        dirty = bool(to_archive)
    candidates = _git_candidates(ctx, top, to_archive)
    archived = _write_archive(ctx, ctx.paths.untracked_archive, top, candidates)
    ctx.manifest.update(_hash_worktree(ctx, top, archived))
    fmt_name = ctx.algorithm.rsplit("-", 1)[-1]
    for path, data in ctx.redacted.items():  # what restore writes, not the original
        if path in ctx.manifest:
            ctx.manifest[path]["blob"] = _blob_hash(fmt_name, data)
    _remove(ctx.paths.source_archive)  # from an earlier snapshot of this run, if any
    git: GitInfo = {
        "toplevel": str(top), "relpath": rel, "commit": head or None, "branch": branch or None,
        "detached": bool(head) and not branch, "remotes": remotes,
        "is_dirty": dirty or bool(untracked), "object_format": fmt, "submodules": submodules,
    }  # fmt: skip
    return {
        "kind": "git",
        "git": git,
        "patch": ctx.paths.code_patch.name if ctx.paths.code_patch.exists() else None,
        "archive": ctx.paths.untracked_archive.name if archived else None,
        "manifest": ctx.paths.code_manifest.name,
    }


def _git_tracked_changes(ctx: _Context, top: Path, submodules: dict[str, str]) -> bool:
    """Manifest from HEAD + working-tree changes; write the patch. Whether tracked files
    differ from HEAD."""
    head: dict[str, dict[str, str]] = {}
    for item in _z(_git(["ls-tree", "-r", "-z", "--full-tree", "HEAD"], top)):
        meta, _, rel = item.partition("\t")
        mode, kind, obj = meta.split()
        if kind == "commit":
            submodules[rel] = obj
        elif kind == "blob":
            head[rel] = {"blob": obj, "mode": mode}
    ctx.manifest.update(head)
    # -z --raw gives ":oldmode newmode oldhash newhash status\0path\0". A zero new hash
    # means git does not know the working-tree content (changed, or only its stat).
    fields = _z(_git(["diff-index", "-z", "--raw", "--no-renames", "HEAD"], top))
    n_skipped = len(ctx.skipped)
    excludes: list[str] = []
    to_hash: list[str] = []
    changed: list[str] = []
    for meta, rel in zip(fields[0::2], fields[1::2], strict=False):
        _, new_mode, _, new_hash, status = meta.split()
        st = _lstat(top / rel)
        deleted = status.startswith("D") or st is None
        ctx.manifest.pop(rel, None)
        if new_mode == "160000" or rel in submodules:
            if deleted:
                submodules.pop(rel, None)
            else:
                sub = _git(["rev-parse", "HEAD"], top / rel, check=False).decode().strip()
                submodules[rel] = new_hash if new_hash.strip("0") else sub or new_hash
        elif is_credential_file(rel, rules=ctx.rules):
            ctx.skip(rel, "secret")  # excluded from the diff by the patterns below
        elif any(s.ignores(rel) for s in ctx.ignores):
            ctx.skip(rel, "ignored")
            excludes.append(f":(exclude,literal){rel}")
        elif deleted:
            continue
        elif st is not None and stat.S_ISREG(st.st_mode) and st.st_size > ctx.max_file_bytes:
            ctx.skip(rel, "too large")
            excludes.append(f":(exclude,literal){rel}")
        elif rel.lower().endswith(".json") and is_credential_file(
            rel, _read_regular(top / rel, ctx.max_file_bytes), ctx.rules
        ):
            ctx.skip(rel, "secret")  # a service-account key, by its content
            excludes.append(f":(exclude,literal){rel}")
        else:
            changed.append(rel)
            if new_hash.strip("0"):  # the index entry matches the working tree
                ctx.manifest[rel] = {"blob": new_hash, "mode": new_mode}
            else:
                to_hash.append(rel)
    ctx.manifest.update(_hash_worktree(ctx, top, to_hash))
    # "**/" also matches at the top level; "/**" excludes a secret directory's contents.
    excludes += [f":(exclude,glob,icase)**/{pat.strip('/')}{post}"
                 for pat in CREDENTIAL_PATTERNS + ctx.rules.files
                 for post in ("", "/**")]  # fmt: skip
    args = ["diff-index", "-p", "--binary", "--no-ext-diff", "--no-textconv", "--no-color",
            "--src-prefix=a/", "--dst-prefix=b/", "HEAD", "--", *excludes]  # fmt: skip
    size = _write_patch(ctx, args, top)
    if size is None:
        for rel in changed:
            if ctx.manifest.get(rel) != head.get(rel):
                ctx.manifest.pop(rel, None)
                ctx.skip(rel, "diff too large")
    else:
        ctx.n_bytes += size
    return len(ctx.skipped) > n_skipped or ctx.manifest != head


def _write_patch(ctx: _Context, args: list[str], top: Path) -> int | None:
    """Run the diff into a private temporary file, then store it scanned and redacted as
    ``uncommitted.patch`` (removed when empty); the bytes stored, or None, and no file,
    if the diff exceeds the total limit. The unredacted diff never gets a name in the
    store, and only one file section at a time is in memory."""
    dest = ctx.paths.code_patch
    fmt = ctx.algorithm.rsplit("-", 1)[-1]
    stored = 0
    with tempfile.TemporaryFile() as raw:
        if _git_to_file(args, top, raw, ctx.max_total_bytes) is None:
            _remove(dest)
            return None
        raw.seek(0)
        with _atomic_output(dest) as out:
            lines = (patchtext.decode(line) for line in raw)
            content = lambda rel: _read_regular(top / rel, ctx.max_file_bytes)  # noqa: E731
            for scan in redact_sections(lines, ctx.rules, binary_content=content):
                if scan.dropped is not None:
                    ctx.manifest.pop(scan.path, None)
                    ctx.skip(scan.path, scan.dropped)
                ctx.findings += scan.findings
                if scan.added and scan.path in ctx.manifest:
                    _expect_redacted(ctx, top / scan.path, scan.path, scan.added, fmt)
                data = patchtext.encode(scan.text)
                out.file.write(data)
                stored += len(data)
            out.discard = stored == 0
    if stored == 0:
        _remove(dest)  # a stale patch from an earlier snapshot of this run
    return stored


def _expect_redacted(ctx: _Context, full: Path, rel: str, added: dict[int, str], fmt: str) -> None:
    """Record in the manifest the file a restore will write: the working-tree file with
    its redacted added lines (redacted context lines come back from the commit)."""
    data = _read_regular(full, ctx.max_file_bytes)
    if data is None:
        return
    lines = patchtext.split_lines(patchtext.decode(data))
    for number, content in added.items():
        if 0 < number <= len(lines):
            old = lines[number - 1]
            lines[number - 1] = content + old[len(old.rstrip("\n")) :]
    blob = _blob_hash(fmt, patchtext.encode("".join(lines)))
    ctx.manifest[rel] = {"blob": blob, "mode": ctx.manifest[rel]["mode"]}


def _git_to_file(args: list[str], cwd: Path, out: IO[bytes], limit: int) -> int | None:
    """Stream git's stdout into ``out``; the bytes written, or None if they would exceed
    ``limit``. Streaming keeps a huge diff out of memory."""
    total = 0
    with tempfile.TemporaryFile() as err:
        with subprocess.Popen(_git_cmd(args), cwd=cwd, env=_git_env(), stdout=subprocess.PIPE,
                              stderr=err) as proc:  # fmt: skip
            assert proc.stdout is not None
            while chunk := proc.stdout.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    proc.kill()
                    return None
                out.write(chunk)
        if proc.returncode != 0:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip()
            raise SnapshotError(f"git {args[0]} failed in {cwd}: {msg}")
    return total


def _read_regular(path: Path, limit: int) -> bytes | None:
    """The content of a regular file (never through a symlink), or None when it is not
    one, is unreadable or is over ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read(limit + 1)
    return data if len(data) <= limit else None


def _git_candidates(ctx: _Context, top: Path, rels: Iterable[str]) -> Iterator[str]:
    run_rel = _relative_to(ctx.paths.dir, top)
    version_rel = _relative_to(ctx.paths.store_version, top)
    # the whole store, when it lies inside the tree (other runs, the sweeps' code copies)
    store_rel = _relative_to(ctx.paths.store_version.parent, top)
    if store_rel in (".", ""):
        store_rel = run_rel
    for rel in sorted(rels):
        if rel.endswith("/"):  # git lists an untracked nested repository as "dir/"
            ctx.skip(rel.rstrip("/"), "nested git repository")
        elif any(s.ignores(rel) for s in ctx.ignores):
            continue  # like a .gitignore'd file: not part of the code
        elif is_credential_file(rel, rules=ctx.rules):
            ctx.skip(rel, "secret")
        elif store_rel is not None and (rel == store_rel or rel.startswith(store_rel + "/")):
            continue  # the run's own outputs, being written right now, and its store
        elif rel == version_rel:
            continue  # the run's store's own file, as the run directory
        elif DEFAULT_STORE in rel.split("/")[:-1]:
            ctx.skip(rel, "hpclab store")
        else:
            yield rel


def _hash_worktree(ctx: _Context, top: Path, rels: list[str]) -> dict[str, dict[str, str]]:
    """Git blob hash and mode of working-tree files, without writing any object."""
    fmt = ctx.algorithm.rsplit("-", 1)[-1]
    result: dict[str, dict[str, str]] = {}
    regular: list[str] = []
    for rel in rels:
        st = _lstat(top / rel)
        if st is None:
            continue
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(os.fsencode(top / rel))
            result[rel] = {"blob": _blob_hash(fmt, target), "mode": "120000"}
        else:
            result[rel] = {"blob": "", "mode": _mode(st)}
            regular.append(rel)
    # hash-object applies clean filters as git would when committing, so unchanged
    # content hashes equal to HEAD's blobs; it cannot take a path with a newline.
    batch = [r for r in regular if "\n" not in r]
    hashes: list[bytes] = []
    if batch:
        paths_in = b"".join(os.fsencode(r) + b"\n" for r in batch)
        hashes = _git(["hash-object", "--stdin-paths"], top, check=False, stdin=paths_in).split()
    if len(hashes) != len(batch):  # a file vanished meanwhile: hash the survivors one by one
        hashes = [b""] * len(batch)
    for rel, h in zip(batch, hashes, strict=True):
        result[rel]["blob"] = h.decode()
    for rel in regular:
        if not result[rel]["blob"]:
            try:
                result[rel]["blob"] = _blob_hash(fmt, (top / rel).read_bytes())
            except OSError:
                del result[rel]
    return result


def _blob_hash(fmt: str, data: bytes) -> str:
    return hashlib.new(fmt, b"blob %d\0" % len(data) + data).hexdigest()


# -- outside git ----------------------------------------------------------------------


def _snapshot_plain(ctx: _Context, code_dir: Path) -> CodeSource:
    rules = load_ignore_rules(code_dir)
    ctx.algorithm = "sha256"
    for stale in (ctx.paths.code_patch, ctx.paths.untracked_archive):
        _remove(stale)
    archived = _write_archive(
        ctx, ctx.paths.source_archive, code_dir, _walk_source(ctx, code_dir, rules), hash_into=True
    )
    return {
        "kind": "source",
        "git": None,
        "archive": ctx.paths.source_archive.name if archived else None,
        "manifest": ctx.paths.code_manifest.name,
    }


def _walk_source(ctx: _Context, root: Path, rules: IgnoreRules) -> Iterator[str]:
    """Relative paths to archive, in a stable order; never descends into a symlink."""
    run_dir = os.path.realpath(ctx.paths.dir)
    store_dir = os.path.realpath(ctx.paths.store_version.parent)
    if store_dir == os.path.realpath(root):
        store_dir = run_dir
    version_rel = _relative_to(ctx.paths.store_version, root)  # the store's, as the run dir
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        subdirs: list[str] = []
        for name in sorted(dirnames):
            rel = prefix + name
            if os.path.islink(os.path.join(dirpath, name)):
                filenames.append(name)  # archived as a link, never followed
            elif os.path.realpath(os.path.join(dirpath, name)) in (run_dir, store_dir):
                continue
            elif is_credential_file(rel, rules=ctx.rules):
                ctx.skip(rel, "secret")
            elif not rules.matches(rel, True):
                subdirs.append(name)
        dirnames[:] = subdirs
        for name in sorted(filenames):
            rel = prefix + name
            if rel == version_rel or rules.matches(rel, False):
                continue
            if is_credential_file(rel, rules=ctx.rules):
                ctx.skip(rel, "secret")
            else:
                yield rel


# -- archives -------------------------------------------------------------------------


def _write_archive(
    ctx: _Context, dest: Path, root: Path, rels: Iterable[str], *, hash_into: bool = False
) -> list[str]:
    """Write the files ``rels`` (relative to ``root``) into a tar.gz at ``dest``, within the
    limits; return the paths archived. With ``hash_into``, add sha256s to the manifest."""
    archived: list[str] = []
    with _atomic_output(dest) as out:
        with tarfile.open(fileobj=out.file, mode="w:gz", format=tarfile.PAX_FORMAT,
                          compresslevel=6) as tar:  # fmt: skip
            for rel in rels:
                if _add_member(ctx, tar, root, rel, hash_into):
                    archived.append(rel)
        out.discard = not archived
    if not archived:
        _remove(dest)
    return archived


def _add_member(ctx: _Context, tar: tarfile.TarFile, root: Path, rel: str, hash_into: bool) -> bool:
    if rel.startswith("/") or ".." in rel.split("/"):
        raise SnapshotError(f"refusing to archive unsafe path {rel!r}")
    full = root / rel
    st = _lstat(full)
    if st is None:
        return False  # deleted since it was listed
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        ctx.skip(rel, "not a regular file")
        return False
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    if size > ctx.max_file_bytes:
        ctx.skip(rel, "too large")
        return False
    if ctx.n_files >= ctx.max_files:
        ctx.skip(rel, "file count limit")
        return False
    if ctx.n_bytes + size > ctx.max_total_bytes:
        ctx.skip(rel, "total size limit")
        return False
    try:
        info = tar.gettarinfo(str(full), arcname=rel)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        if stat.S_ISLNK(st.st_mode):
            data = os.readlink(os.fsencode(full))
            if redact_text(patchtext.decode(data), path=rel, rules=ctx.rules)[1]:
                ctx.skip(rel, "secret")  # a link whose target text holds one
                return False
            tar.addfile(info)
        else:
            # Read once, bounded by max_file_bytes: the archive and the hash see the same
            # bytes even if the file changes meanwhile, and a shrinking file cannot
            # leave a truncated member behind.
            fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                data = f.read(ctx.max_file_bytes + 1)
            if len(data) > ctx.max_file_bytes:
                ctx.skip(rel, "too large")
                return False
            verdict = scan_file(rel, data, ctx.rules)
            if verdict.data is None:
                ctx.skip(rel, verdict.reason or "secret")
                return False
            if verdict.findings:
                data = verdict.data
                ctx.findings += verdict.findings
                ctx.redacted[rel] = data
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    except OSError as e:
        ctx.skip(rel, f"unreadable ({e.strerror or e})")
        return False
    ctx.n_files += 1
    ctx.n_bytes += len(data) if stat.S_ISREG(st.st_mode) else 0
    if hash_into:
        ctx.manifest[rel] = {"blob": hashlib.sha256(data).hexdigest(), "mode": _mode(st)}
    return True


@dataclass
class _Sink:
    """An open temporary file; ``discard`` drops it instead of renaming it into place."""

    file: IO[bytes]
    discard: bool = False


@contextlib.contextmanager
def _atomic_output(dest: Path) -> Iterator[_Sink]:
    """A temporary file beside ``dest``, renamed over it on success (readers never see
    half an archive), removed on error."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            sink = _Sink(f)
            yield sink
            f.flush()
            os.fsync(f.fileno())
        if sink.discard:
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# -- small helpers --------------------------------------------------------------------


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _mode(st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        return "120000"
    return "100755" if st.st_mode & stat.S_IXUSR else "100644"


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _relative_to(path: Path, top: Path) -> str | None:
    try:
        return Path(os.path.realpath(path)).relative_to(os.path.realpath(top)).as_posix()
    except ValueError:
        return None
