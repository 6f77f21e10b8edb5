"""Code snapshots against real git repositories in awkward paths."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from hpclab.errors import SnapshotError
from hpclab.store.layout import RunPaths, Store
from hpclab.tracking.ignore import IgnoreRules, file_rules
from hpclab.tracking.snapshot import is_secret_path, take_code_snapshot

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

SECRET = b"SUPERSECRET-do-not-leak"
MAX_FILE = 10_000


def git_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com",
        GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
    )  # fmt: skip
    return env


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> bytes:
    return subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=repo, env=env or git_env(repo), check=True, capture_output=True,
    ).stdout  # fmt: skip


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def new_run(tmp_path: Path) -> RunPaths:
    return Store(tmp_path / "store").create_run_dir("proj")


@pytest.fixture
def root(weird_tmp_path: Path) -> Path:
    return weird_tmp_path


@pytest.fixture
def dirty_repo(root: Path) -> Path:
    """A repository with staged, unstaged, binary, deleted, untracked and secret changes."""
    repo = root / "re po"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "src" / "train.py", "print('v1')\n")
    write(repo / "src" / "util.py", "def f():\n    return 1\n")
    write(repo / "src" / "stat_only.py", "same content\n")
    write(repo / "data.bin", bytes(range(256)) * 4)
    (write(repo / "run.sh", "#!/bin/sh\necho hi\n")).chmod(0o755)
    os.symlink("src/train.py", repo / "link")
    write(repo / "gone.txt", "to be deleted\n")
    write(repo / "config" / ".env.local", "API=committed-placeholder\n")
    write(repo / "big_tracked.dat", "small at commit time\n")
    write(repo / ".gitignore", "*.log\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "initial")
    git(repo, "remote", "add", "origin", "https://alice:hunter2@git.example.com/lab/repo.git")
    # staged and then changed again, so the working tree differs from the index
    write(repo / "src" / "train.py", "print('v2 staged')\n")
    git(repo, "add", "src/train.py")
    write(repo / "src" / "train.py", "print('v3 working tree')\n")
    write(repo / "src" / "util.py", "def f():\n    return 2\n")
    write(repo / "data.bin", bytes(reversed(range(256))) * 4 + b"\0\xff")
    (repo / "gone.txt").unlink()
    write(repo / "staged_new.py", "x = 1\n")
    git(repo, "add", "staged_new.py")
    write(repo / "config" / ".env.local", b"API=" + SECRET)
    write(repo / "big_tracked.dat", b"b" * (MAX_FILE * 2))
    # only the stat changes: porcelain `git diff` would rewrite .git/index for this
    st = os.stat(repo / "src" / "stat_only.py")
    os.utime(repo / "src" / "stat_only.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**10))
    # untracked
    write(repo / "notes" / "new file 'q'.py", "print('untracked')\n")
    write(repo / ".env", b"TOKEN=" + SECRET)
    write(repo / "keys" / "id_rsa", b"-----BEGIN KEY-----" + SECRET)
    write(repo / "server.pem", SECRET)
    write(repo / "huge.bin", os.urandom(MAX_FILE + 1))
    write(repo / "debug.log", "ignored by .gitignore\n")
    os.symlink("src/util.py", repo / "latest")
    return repo


def git_blob(repo: Path, rel: str) -> tuple[str, str]:
    """(blob, mode) of a working-tree file as git would store it."""
    full = repo / rel
    if full.is_symlink():
        target = os.readlink(os.fsencode(full))
        return hashlib.sha1(b"blob %d\0" % len(target) + target).hexdigest(), "120000"
    blob = git(repo, "hash-object", "--", rel).decode().strip()
    return blob, "100755" if os.stat(full).st_mode & 0o100 else "100644"


def worktree_files(root: Path) -> set[str]:
    """Files and symlinks under ``root``, outside ``.git``; symlinks are not followed."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        links = [d for d in dirnames if os.path.islink(Path(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d != ".git" and d not in links]
        for name in filenames + links:
            out.add(Path(dirpath, name).relative_to(root).as_posix())
    return out


def archive_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def all_snapshot_bytes(paths: RunPaths) -> list[tuple[str, bytes]]:
    """Every file of the snapshot, archives unpacked: what a leak check must search."""
    out = []
    for f in sorted(paths.snapshot_dir.iterdir()):
        out.append((f.name, f.read_bytes()))
        if f.name.endswith(".tar.gz"):
            with tarfile.open(f) as tar:
                for m in tar.getmembers():
                    out.append((f"{f.name}:{m.name}", m.name.encode() + m.linkname.encode()))
                    if m.isfile():
                        fobj = tar.extractfile(m)
                        assert fobj is not None
                        out.append((f"{f.name}:{m.name}", fobj.read()))
    return out


def assert_safe_archive(path: Path) -> None:
    for name in archive_members(path):
        assert not name.startswith("/") and ".." not in name.split("/"), name


# -- git --------------------------------------------------------------------------------


def test_git_snapshot_restores_the_exact_tree(tmp_path: Path, dirty_repo: Path) -> None:
    paths = new_run(tmp_path)
    info = take_code_snapshot(paths, dirty_repo / "src", max_file_bytes=MAX_FILE)

    assert json.loads(paths.code_json.read_text()) == info
    head = git(dirty_repo, "rev-parse", "HEAD").decode().strip()
    g = info["git"]
    assert (g["commit"], g["branch"], g["detached"], g["relpath"]) == (head, "main", False, "src")
    assert g["is_dirty"] is True
    assert Path(g["toplevel"]).resolve() == dirty_repo.resolve()
    assert g["remotes"] == {"origin": "https://alice:<redacted>@git.example.com/lab/repo.git"}
    assert info["patch"] == paths.code_patch.name and paths.code_patch.is_file()
    assert_safe_archive(paths.untracked_archive)
    assert set(archive_members(paths.untracked_archive)) == {"notes/new file 'q'.py", "latest"}
    assert archive_members(paths.untracked_archive)["latest"].issym()

    # Restore the way `hpclab restore` will: checkout, apply the patch, unpack untracked.
    restored = tmp_path / "restored"
    subprocess.run(["git", "clone", "-q", str(dirty_repo), str(restored)], check=True,
                   env=git_env(tmp_path), capture_output=True)  # fmt: skip
    git(restored, "checkout", "-q", head)
    git(restored, "apply", "--binary", str(paths.code_patch))
    with tarfile.open(paths.untracked_archive) as tar:
        tar.extractall(restored, filter="tar")

    manifest = json.loads(paths.code_manifest.read_text())
    assert manifest["algorithm"] == "git-blob-sha1"
    files = manifest["files"]
    for rel, entry in files.items():
        assert git_blob(restored, rel) == (entry["blob"], entry["mode"]), rel
        assert git_blob(dirty_repo, rel) == (entry["blob"], entry["mode"]), rel
    assert files["run.sh"]["mode"] == "100755" and files["link"]["mode"] == "120000"
    assert "gone.txt" not in files and "staged_new.py" in files
    # What restore cannot reproduce is exactly what was skipped (HEAD's versions remain).
    assert worktree_files(restored) - set(files) == {"config/.env.local", "big_tracked.dat"}
    assert set(files) - worktree_files(restored) == set()
    seen = worktree_files(dirty_repo) - {"debug.log", "gone.txt"}
    assert seen - set(files) == set(manifest["skipped"])


def test_git_snapshot_leaks_no_secret_and_records_skips(
    tmp_path: Path, dirty_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = new_run(tmp_path)
    info = take_code_snapshot(paths, dirty_repo, max_file_bytes=MAX_FILE)

    for where, data in all_snapshot_bytes(paths):
        assert SECRET not in data, f"secret leaked into {where}"
    names = set(archive_members(paths.untracked_archive))
    assert not names & {".env", "keys/id_rsa", "server.pem", "huge.bin", "debug.log"}
    patch = paths.code_patch.read_bytes()
    assert b".env" not in patch and b"big_tracked.dat" not in patch
    assert b"src/train.py" in patch and b"data.bin" in patch and b"gone.txt" in patch
    reasons = {s["path"]: s["reason"] for s in info["skipped"]}
    assert reasons == {
        ".env": "secret", "keys/id_rsa": "secret", "server.pem": "secret",
        "config/.env.local": "secret", "huge.bin": "too large", "big_tracked.dat": "too large",
    }  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "skipped 6 path(s)" in err and "4 secret" in err


def tree_state(repo: Path) -> dict[str, tuple[int, int]]:
    git_dir = repo / ".git"
    return {
        str(p.relative_to(git_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in git_dir.rglob("*") if p.is_file()
    }  # fmt: skip


def test_git_snapshot_never_writes_to_the_repository(tmp_path: Path, dirty_repo: Path) -> None:
    git(dirty_repo, "stash", "list")
    index = dirty_repo / ".git" / "index"
    before_bytes, before_mtime = index.read_bytes(), index.stat().st_mtime_ns
    before_state = tree_state(dirty_repo)
    env = git_env(tmp_path) | {"GIT_OPTIONAL_LOCKS": "0"}
    status_before = git(dirty_repo, "status", "--porcelain", env=env)

    take_code_snapshot(new_run(tmp_path), dirty_repo, max_file_bytes=MAX_FILE)

    assert index.read_bytes() == before_bytes and index.stat().st_mtime_ns == before_mtime
    assert tree_state(dirty_repo) == before_state  # no objects, refs, locks or stash
    assert git(dirty_repo, "stash", "list") == b""
    assert git(dirty_repo, "status", "--porcelain", env=env) == status_before
    # The test can fail: porcelain `git diff` does rewrite this index.
    git(dirty_repo, "diff", "HEAD", "--binary", env=env)
    assert index.read_bytes() != before_bytes


def test_repository_without_commits_archives_index_and_untracked(
    tmp_path: Path, root: Path
) -> None:
    repo = root / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "staged.py", "a = 1\n")
    git(repo, "add", "staged.py")
    write(repo / "staged.py", "a = 2  # changed after staging\n")
    write(repo / "untracked.py", "b = 1\n")
    write(repo / ".env.prod", SECRET)
    paths = new_run(tmp_path)

    info = take_code_snapshot(paths, repo)

    assert info["git"]["commit"] is None and info["git"]["branch"] == "main"
    assert info["git"]["is_dirty"] is True
    assert not paths.code_patch.exists() and info["patch"] is None
    assert set(archive_members(paths.untracked_archive)) == {"staged.py", "untracked.py"}
    files = json.loads(paths.code_manifest.read_text())["files"]
    assert {rel: e["blob"] for rel, e in files.items()} == {
        rel: git_blob(repo, rel)[0] for rel in ("staged.py", "untracked.py")
    }
    assert info["skipped"] == [{"path": ".env.prod", "reason": "secret"}]


def test_clean_repository_and_stale_outputs(tmp_path: Path, root: Path) -> None:
    repo = root / "clean"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "a.py", "a\n")
    git(repo, "add", "a.py")
    git(repo, "commit", "-qm", "one")
    paths = new_run(tmp_path)
    write(repo / "a.py", "changed\n")
    write(repo / "u.py", "u\n")
    take_code_snapshot(paths, repo)
    assert paths.code_patch.exists() and paths.untracked_archive.exists()

    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two")
    git(repo, "checkout", "-q", "--detach")
    info = take_code_snapshot(paths, repo)  # a requeued run snapshots again

    assert info["git"]["is_dirty"] is False and info["git"]["detached"] is True
    assert info["git"]["branch"] is None and info["git"]["remotes"] == {}
    assert not paths.code_patch.exists() and not paths.untracked_archive.exists()
    assert info["patch"] is None and info["archive"] is None and info["skipped"] == []


def test_diff_over_the_total_limit_is_not_stored(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = root / "bigdiff"
    repo.mkdir()
    git(repo, "init", "-q")
    for i in range(5):
        write(repo / f"f{i}.txt", "line\n" * 100)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    for i in range(5):
        write(repo / f"f{i}.txt", "other\n" * 200)
    paths = new_run(tmp_path)

    info = take_code_snapshot(paths, repo, max_total_bytes=2_000)

    assert not paths.code_patch.exists() and info["patch"] is None
    assert [s["reason"] for s in info["skipped"]] == ["diff too large"] * 5
    assert json.loads(paths.code_manifest.read_text())["files"] == {}
    assert info["git"]["is_dirty"] is True
    assert "5 diff too large" in capsys.readouterr().err


def test_untracked_file_count_and_total_limits(tmp_path: Path, root: Path) -> None:
    repo = root / "many"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "keep.txt", "k")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    for i in range(6):
        write(repo / "u" / f"{i}.txt", str(i) * 100)
    paths = new_run(tmp_path)

    info = take_code_snapshot(paths, repo, max_files=3, max_total_bytes=250)

    assert set(archive_members(paths.untracked_archive)) == {"u/0.txt", "u/1.txt"}
    assert [(s["path"], s["reason"]) for s in info["skipped"]] == [
        ("u/2.txt", "total size limit"), ("u/3.txt", "total size limit"),
        ("u/4.txt", "total size limit"), ("u/5.txt", "total size limit"),
    ]  # fmt: skip
    info = take_code_snapshot(new_run(tmp_path), repo, max_files=3)
    assert {s["reason"] for s in info["skipped"]} == {"file count limit"}
    assert info["archived_files"] == 3


def test_sha256_repository_uses_sha256_blobs(tmp_path: Path, root: Path) -> None:
    repo = root / "sha256"
    repo.mkdir()
    try:
        git(repo, "init", "-q", "--object-format=sha256")
    except subprocess.CalledProcessError:
        pytest.skip("this git cannot create sha256 repositories")
    write(repo / "a.py", "a\n")
    git(repo, "add", "a.py")
    git(repo, "commit", "-qm", "one")
    write(repo / "b.py", "b\n")
    paths = new_run(tmp_path)

    take_code_snapshot(paths, repo)

    manifest = json.loads(paths.code_manifest.read_text())
    assert manifest["algorithm"] == "git-blob-sha256"
    for rel in ("a.py", "b.py"):
        expected = git(repo, "hash-object", rel).decode().strip()
        assert len(expected) == 64 and manifest["files"][rel]["blob"] == expected


# -- outside git ------------------------------------------------------------------------


def test_plain_directory_archive_honours_ignores_secrets_and_symlinks(
    tmp_path: Path, root: Path
) -> None:
    code = root / "code"
    write(code / "train.py", "print('train')\n")
    write(code / "pkg" / "mod.py", "x = 1\n")
    (write(code / "run.sh", "#!/bin/sh\n")).chmod(0o755)
    write(code / "pkg" / "__pycache__" / "mod.cpython-311.pyc", "bytecode")
    write(code / "stray.pyc", "bytecode")
    write(code / ".venv" / "lib" / "site.py", "venv")
    write(code / "node_modules" / "x.js", "js")
    write(code / "hpclab-store" / "p" / "runs" / "r" / "run.json", "{}")
    write(code / "outputs" / "o.txt", "o")
    write(code / "mypkg.egg-info" / "PKG-INFO", "p")
    write(code / "env", "a script named env is code")
    write(code / "data" / "big.csv", "a,b\n")
    write(code / "sub" / "data" / "other.csv", "a,b\n")
    write(code / "model.ckpt", "weights")
    write(code / "only" / "this.txt", "anchored")
    write(code / "elsewhere" / "only" / "this.txt", "not anchored")
    write(code / ".hpclabignore", "# comment\n\ndata/\n*.ckpt\n/only/this.txt\n")
    write(code / ".env", SECRET)
    write(code / "deploy" / "credentials.json", SECRET)
    write(code / "certs" / "tls.KEY", SECRET)
    write(code / "credentials" / "aws.txt", SECRET)
    write(code / "big.bin", os.urandom(MAX_FILE + 1))
    outside = write(root / "outside.txt", SECRET)
    os.symlink(outside, code / "escape")
    os.symlink(root, code / "escape_dir")
    paths = new_run(tmp_path)

    info = take_code_snapshot(paths, code, max_file_bytes=MAX_FILE)

    assert info["kind"] == "source" and info["git"] is None
    assert_safe_archive(paths.source_archive)
    members = archive_members(paths.source_archive)
    assert set(members) == {
        "train.py", "pkg/mod.py", "run.sh", "env", "elsewhere/only/this.txt", ".hpclabignore",
        "escape", "escape_dir",
    }  # fmt: skip
    assert members["escape"].issym() and members["escape"].linkname == str(outside)
    assert members["escape_dir"].issym()
    for where, data in all_snapshot_bytes(paths):
        assert SECRET not in data, f"secret leaked into {where}"
    reasons = {s["path"]: s["reason"] for s in info["skipped"]}
    assert reasons == {
        ".env": "secret", "deploy/credentials.json": "secret", "certs/tls.KEY": "secret",
        "credentials": "secret", "big.bin": "too large",
    }  # fmt: skip
    manifest = json.loads(paths.code_manifest.read_text())
    assert manifest["algorithm"] == "sha256"
    assert set(manifest["files"]) == set(members)
    assert manifest["files"]["train.py"] == {
        "blob": hashlib.sha256(b"print('train')\n").hexdigest(), "mode": "100644"
    }  # fmt: skip
    assert manifest["files"]["run.sh"]["mode"] == "100755"
    assert manifest["files"]["escape"] == {
        "blob": hashlib.sha256(os.fsencode(outside)).hexdigest(), "mode": "120000"
    }  # fmt: skip


def test_plain_directory_is_redacted_and_its_manifest_holds_what_restore_writes(
    tmp_path: Path, root: Path
) -> None:
    code = root / "code"
    token = "ghp_" + "FakeTokenForTests" + "0123456789abcdefABC"
    write(code / "train.py", f'print(1)\ntoken = "{token}"\n')
    write(code / "notes.txt", "see corp-123456 and corp-abc\n")
    write(code / ".hpclabignore", "data/\nsecret: corp-[0-9]{6}\n")
    write(code / "data" / "x.csv", "a\n")
    write(code / "sa.json", '{"type": "service_account", "private_key": "k"}')
    paths = new_run(tmp_path)

    info = take_code_snapshot(paths, code)

    members = archive_members(paths.source_archive)
    assert set(members) == {"train.py", "notes.txt", ".hpclabignore"}
    with tarfile.open(paths.source_archive) as tar:
        data = {m: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    assert data["train.py"] == b'print(1)\ntoken = "[redacted: github-token]"\n'
    assert data["notes.txt"] == b"see [redacted: custom] and corp-abc\n"
    assert {(r["path"], r["line"], r["rule"]) for r in info["redactions"]} == {
        ("train.py", 2, "github-token"), ("notes.txt", 1, "custom")
    }  # fmt: skip
    assert info["skipped"] == [{"path": "sa.json", "reason": "secret"}]
    files = json.loads(paths.code_manifest.read_text())["files"]
    for rel in members:  # the hash of what was stored (and a restore writes)
        assert files[rel]["blob"] == hashlib.sha256(data[rel]).hexdigest(), rel


def test_plain_directory_skips_the_run_directory_inside_it(tmp_path: Path) -> None:
    code = tmp_path / "proj"
    write(code / "main.py", "m")
    paths = Store(code / "my-store").create_run_dir("proj")
    write(paths.dir / "run.json", "{}")

    take_code_snapshot(paths, code)

    names = set(archive_members(paths.source_archive))
    assert names == {"main.py"}


def test_missing_code_dir_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no-such-dir"):
        take_code_snapshot(new_run(tmp_path), tmp_path / "no-such-dir")


@pytest.mark.parametrize(
    ("rel", "secret"),
    [(".env", True), ("a/.env.prod", True), ("k/ID_RSA.pub", True), ("x/id_ed25519", True),
     ("cert.pem", True), ("a.key", True), ("b.p12", True), ("c.pfx", True), (".netrc", True),
     (".pgpass", True), ("credentials.json", True), ("credentials/x.txt", True),
     ("db.kdbx", True), ("environment.py", False), ("keyboard.py", False), ("env/x", False),
     ("src/.envrc", False), ("monkey.py", False)],
)  # fmt: skip
def test_is_secret_path(rel: str, secret: bool) -> None:
    assert is_secret_path(rel) is secret


def test_ignore_rule_parsing() -> None:
    assert not IgnoreRules(["# comment", "   ", ""])
    assert not IgnoreRules(["secret: corp-[0-9]+"])  # a redaction pattern, not a glob
    rules = IgnoreRules(["build/"])
    assert rules.matches("a/build", True) and not rules.matches("build", False)
    rules = IgnoreRules(["/top/x.txt"])
    assert rules.matches("top/x.txt", False) and not rules.matches("a/top/x.txt", False)
    rules = IgnoreRules(["**/cache"])
    assert rules.matches("cache", True) and rules.matches("a/b/cache", False)


@pytest.mark.parametrize(
    ("lines", "rel", "ignored"),
    [
        # gitignore semantics: "*" stays within one directory ...
        (["docs/*.md"], "docs/a.md", True),
        (["docs/*.md"], "docs/a/b.md", False),
        # ... "a/**/b" also matches no directory in between ...
        (["a/**/b"], "a/b", True),
        (["a/**/b"], "a/x/y/b", True),
        # ... and "!" re-includes, the last matching line deciding ...
        (["*.log", "!keep.log"], "x/keep.log", False),
        (["*.log", "!keep.log"], "x/other.log", True),
        (["!keep.log", "*.log"], "keep.log", True),
        (["data/*", "!data/keep.txt"], "data/keep.txt", False),
        # ... except under a directory that is itself left out, as in git
        (["data/", "!data/keep.txt"], "data/keep.txt", True),
    ],
)
def test_ignore_rules_follow_gitignore(lines: list[str], rel: str, ignored: bool) -> None:
    assert IgnoreRules(lines).ignores(rel) is ignored


def test_invalid_ignore_line_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / ".hpclabignore", "# a lone '!' is not a pattern\n!\n*.tmp\n")
    rules = file_rules(tmp_path)
    assert rules.ignores("a.tmp") and not rules.ignores("!")
    assert "line 2: '!' is not a valid pattern" in caplog.text
    assert str(tmp_path / ".hpclabignore") in caplog.text


def test_hpclabignore_negation_and_depth_in_a_snapshot(tmp_path: Path, root: Path) -> None:
    code = root / "code"
    write(code / "train.py", "print(1)\n")
    write(code / "docs" / "top.md", "ignored")
    write(code / "docs" / "deep" / "kept.md", "kept: * does not cross /")
    write(code / "logs" / "run.log", "ignored")
    write(code / "logs" / "keep.log", "re-included")
    write(code / "a" / "b", "ignored: a/**/b matches a/b")
    write(code / "venv" / "lib.py", "re-included default")
    write(code / ".hpclabignore", "docs/*.md\nlogs/*\n!logs/keep.log\na/**/b\n!venv/\n")
    paths = new_run(tmp_path)

    take_code_snapshot(paths, code)

    assert set(archive_members(paths.source_archive)) == {
        "train.py", "docs/deep/kept.md", "logs/keep.log", "venv/lib.py", ".hpclabignore",
    }  # fmt: skip
