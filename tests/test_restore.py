"""hpclab restore: real runs snapshot real git repositories (and a plain tree), the
repositories move on, and the restored trees are compared byte for byte."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
from helpers import git, hpclab_cli, write
from secret_fixtures import fake_secrets, find_line, secret_repo

import hpclab
from hpclab.errors import RestoreError, RunNotFound, UnsafePathError
from hpclab.restore import restore_run, verify_tree
from hpclab.restore.safety import check_patch
from hpclab.restore.verify import META_DIR, load_manifest
from hpclab.store import Store

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def snapshots_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCLAB_SNAPSHOT_CODE", "1")


def tree_bytes(root: Path) -> dict[str, tuple[bytes, str]]:
    """Every file (content, or a link's target) and its mode, outside .git and restore
    metadata: what "byte for byte" compares."""
    out: dict[str, tuple[bytes, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        links = [d for d in dirnames if os.path.islink(Path(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d not in (".git", META_DIR) and d not in links]
        for name in filenames + links:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = (os.fsencode(os.readlink(p)), "link")
            else:
                out[rel] = (p.read_bytes(), "x" if os.access(p, os.X_OK) else "-")
    return out


def git_state(repo: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of everything under .git: restore must change none of it."""
    return {
        str(p.relative_to(repo)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in (repo / ".git").rglob("*") if p.is_file()
    }  # fmt: skip


def dirty_repo(base: Path) -> Path:
    """Committed text, binary, executable and symlink files; then staged (and changed
    again), unstaged, binary, deleted, mode-only and untracked changes."""
    repo = base / "my repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "train.py", "print('v1')\n")
    write(repo / "pkg" / "util.py", "def f():\n    return 1\n")
    write(repo / "weights.bin", bytes(range(256)) * 8)
    write(repo / "run.sh", "#!/bin/sh\necho run\n", 0o755)
    write(repo / "tool.sh", "#!/bin/sh\necho tool\n")
    write(repo / "gone.txt", "deleted before the run\n")
    write(repo / ".gitignore", "*.log\n")
    os.symlink("pkg/util.py", repo / "util_link")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    # staged, then changed again: the run sees the working tree
    write(repo / "train.py", "print('v2 staged')\n")
    git(repo, "add", "train.py")
    write(repo / "train.py", "print('v3 in the working tree')\n")
    write(repo / "pkg" / "util.py", "def f():\n    return 2\n")
    write(repo / "weights.bin", bytes(reversed(range(256))) * 8 + b"\0\xff\x00")
    (repo / "gone.txt").unlink()
    (repo / "tool.sh").chmod(0o755)
    write(repo / "staged_new.py", "x = 1\n")
    git(repo, "add", "staged_new.py")
    write(repo / "notes" / "idea 'one' \"q\".py", "print('untracked')\n")
    write(repo / "blob.dat", os.urandom(3000))
    os.symlink("train.py", repo / "latest")
    write(repo / "debug.log", "ignored\n")
    return repo


def snapshot_run(store: Path, code_dir: Path, **config: object) -> str:
    """A real run that snapshots ``code_dir``."""
    with hpclab.Run(project="p", store=store, code_dir=code_dir, config=dict(config)) as run:
        run.log({"loss": 1.0}, step=0)
    return run.id


def test_dirty_repository_is_restored_byte_for_byte(weird_tmp_path: Path) -> None:
    repo = dirty_repo(weird_tmp_path)
    store = weird_tmp_path / "store"
    seen = tree_bytes(repo)
    del seen["debug.log"]  # ignored: not part of the code
    commit = git(repo, "rev-parse", "HEAD")
    run_id = snapshot_run(store, repo, seed=3)

    # the repository moves on: new commits, and dirty again
    write(repo / "train.py", "print('v4 committed later')\n")
    write(repo / "weights.bin", b"other")
    write(repo / "later.py", "y = 2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two")
    write(repo / "pkg" / "util.py", "broken(\n")
    before_git, before_tree = git_state(repo), tree_bytes(repo)

    target = weird_tmp_path / "restored 'here'"
    out = hpclab_cli(store, "restore", run_id, "--into", str(target))

    assert out.returncode == 0, out.stdout + out.stderr
    assert tree_bytes(target) == seen
    assert f"commit {commit[:12]} from local repository {repo}" in out.stdout
    assert "uncommitted changes applied" in out.stdout and "verified: " in out.stdout
    assert git(target, "rev-parse", "HEAD") == commit
    assert git_state(repo) == before_git and tree_bytes(repo) == before_tree, "user repo untouched"
    # the config, the environment spec and the command to run it again
    meta = target / META_DIR
    assert (meta / "config.yaml").read_text() == "seed: 3\n"
    assert (meta / "requirements.txt").read_text().count("==") > 5
    assert (meta / "python-version").read_text().strip() == ".".join(map(str, sys.version_info[:3]))
    doc = json.loads((meta / "restore.json").read_text())
    assert doc["verification"]["ok"] and doc["commit"] == commit and doc["patch_applied"]
    assert f"rerun {run_id}" in out.stdout
    assert META_DIR not in git(target, "status", "--porcelain"), "metadata is excluded locally"

    # a non-empty target is refused in one line, and replaced with --force
    again = hpclab_cli(store, "restore", run_id, "--into", str(target))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"hpclab: error: target {target} is not empty: choose another directory, or pass "
        "--force to replace its contents"
    ]
    write(target / "stray.txt", "x")
    forced = hpclab_cli(store, "restore", run_id, "--into", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert tree_bytes(target) == seen


def test_verification_reports_every_difference(weird_tmp_path: Path) -> None:
    repo = dirty_repo(weird_tmp_path)
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, repo)
    target = weird_tmp_path / "t"
    assert restore_run(Store(store), run_id, target).ok

    write(target / "pkg" / "util.py", "tampered\n")
    (target / "run.sh").chmod(0o644)
    (target / "staged_new.py").unlink()
    write(target / "intruder.py", "x\n")
    _, paths = Store(store).find_run(run_id)
    result = verify_tree(target, load_manifest(paths.code_manifest))
    assert not result.ok
    assert (result.changed, result.missing, result.extra) == (
        ["pkg/util.py", "run.sh"], ["staged_new.py"], ["intruder.py"],
    )  # fmt: skip
    assert result.summary()[0].startswith("NOT verified: ")


def test_commit_unreachable_falls_back_and_says_where_it_looked(weird_tmp_path: Path) -> None:
    repo = dirty_repo(weird_tmp_path)
    git(repo, "remote", "add", "origin", str(weird_tmp_path / "no-such-remote.git"))
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, repo)
    commit = git(repo, "rev-parse", "HEAD")
    moved = weird_tmp_path / "moved away"
    repo.rename(moved)
    target = weird_tmp_path / "t"

    out = hpclab_cli(store, "restore", run_id, "--into", str(target), "--remote-timeout", "5")

    assert out.returncode == 1, "an incomplete tree fails verification"
    (note,) = [ln for ln in out.stderr.splitlines() if ln.startswith("note: commit")]
    assert note.startswith(f"note: commit {commit[:12]} is not reachable ({repo} does not exist")
    assert "remote origin: " in note and note.endswith("restoring the snapshot's files only")
    assert "NOT verified" in out.stdout and "missing: train.py" in out.stdout
    # what the snapshot holds is there: the untracked files, and the patch for later
    assert (target / "notes" / "idea 'one' \"q\".py").read_text() == "print('untracked')\n"
    assert (target / META_DIR / "uncommitted.patch").exists()

    # a clone elsewhere, named with --repo, has the commit
    report = restore_run(Store(store), run_id, weird_tmp_path / "t2", repos=[moved])
    assert report.ok and report.commit_source == f"local repository {moved}"


def test_commit_from_the_recorded_remote(weird_tmp_path: Path) -> None:
    repo = dirty_repo(weird_tmp_path)
    bare = weird_tmp_path / "origin.git"
    git(weird_tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, repo)
    seen = tree_bytes(repo)
    del seen["debug.log"]
    shutil.rmtree(repo)

    report = restore_run(Store(store), run_id, weird_tmp_path / "t")

    assert report.ok and report.commit_source == f"remote origin ({bare})"
    assert tree_bytes(weird_tmp_path / "t") == seen


def test_run_outside_git_is_restored_from_its_archive(weird_tmp_path: Path) -> None:
    code = weird_tmp_path / "plain code"
    write(code / "main.py", "print('main')\n")
    write(code / "lib" / "helpers.py", "H = 1\n")
    write(code / "go.sh", "#!/bin/sh\n", 0o755)
    write(code / "data.bin", os.urandom(500))
    os.symlink("lib/helpers.py", code / "h.py")
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, code)
    target = weird_tmp_path / "t"

    report = restore_run(Store(store), run_id, target)

    assert report.kind == "source" and report.ok and report.commit is None
    assert tree_bytes(target) == tree_bytes(code)
    assert report.verification is not None and report.verification.algorithm == "sha256"


def test_redacted_lines_are_brought_back_from_the_commit_or_listed(weird_tmp_path: Path) -> None:
    repo = secret_repo(weird_tmp_path)
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, repo)
    _, paths = Store(store).find_run(run_id)
    redactions = json.loads(paths.code_json.read_text())["redactions"]
    target = weird_tmp_path / "restored"

    out = hpclab_cli(store, "restore", run_id, "--into", str(target))

    assert out.returncode == 0, out.stdout + out.stderr
    # committed secrets in the patch's context and removed lines come from the commit
    assert (target / "settings.yaml").read_bytes() == (repo / "settings.yaml").read_bytes()
    # the others stay markers: added lines and archived files, one stderr line per file
    lost: dict[str, set[int]] = {}
    for r in redactions:
        if r["source"] in ("added", "file"):
            lost.setdefault(r["path"], set()).add(r["line"])
    said = [ln for ln in out.stderr.splitlines() if ln.startswith("hpclab: restore: ")]
    assert len(said) == len(lost) == 5  # train.py, config.yaml and three untracked files
    d = fake_secrets("D")
    (train,) = [ln for ln in said if " in train.py " in ln]
    key_lines = sorted(n for n in lost["train.py"] if n > find_line(repo / "train.py", 'KEY = """'))
    assert train.startswith(f"hpclab: restore: {len(lost['train.py'])} line(s) in train.py "
                            "were redacted at snapshot time (")  # fmt: skip
    assert f"github-token at line {find_line(repo / 'train.py', d['github-token'])}," in train
    assert f"private-key at lines {key_lines[0]}-{key_lines[-1]}" in train
    assert train.endswith("): fill them in by hand")
    for rel, numbers in lost.items():
        got = (target / rel).read_text().splitlines()
        want = (repo / rel).read_text().splitlines()
        assert len(got) == len(want), rel
        for n, (a, b) in enumerate(zip(got, want, strict=True), start=1):
            assert (a == b) is (n not in numbers), (rel, n)
    # verified against the snapshot: these files are redacted, not changed
    doc = json.loads((target / META_DIR / "restore.json").read_text())
    assert doc["verification"]["ok"] and doc["verification"]["changed"] == []
    assert doc["verification"]["redacted"] == {p: sorted(n) for p, n in sorted(lost.items())}
    assert "except the secrets redacted in 5 of them" in out.stdout
    assert "redacted (secrets replaced by markers when the run started): " in out.stdout


def test_missing_run_or_snapshot_is_one_clean_line(weird_tmp_path: Path) -> None:
    store = weird_tmp_path / "store"
    store.mkdir()  # an empty store: the run is missing, not the store (test_typos.py)
    out = hpclab_cli(store, "restore", "20260101-000000-abcd")
    assert out.returncode == 1 and out.stderr.startswith("hpclab: error: run '20260101")
    with pytest.raises(RunNotFound):
        restore_run(Store(store), "nope", weird_tmp_path / "t")
    run = hpclab.init(project="p", store=store, settings={"snapshot_code": False})
    run.finish()
    out = hpclab_cli(store, "restore", run.id, "--into", str(weird_tmp_path / "t"))
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert "has no code snapshot" in out.stderr and "Traceback" not in out.stderr


# -- safety -------------------------------------------------------------------------------


def tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


def outside_paths(base: Path) -> list[Path]:
    return [base / "evil.txt", base / "outside" / "evil.txt"]


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ([("../evil.txt", tarfile.REGTYPE, "")], "../evil.txt"),
        ([("{outside}/evil.txt", tarfile.REGTYPE, "")], "/evil.txt"),
        ([("ok/../../evil.txt", tarfile.REGTYPE, "")], "ok/../../evil.txt"),
        ([("link", tarfile.SYMTYPE, "{outside}"), ("link/evil.txt", tarfile.REGTYPE, "")],
         "link/evil.txt"),
        ([("hard", tarfile.LNKTYPE, "/etc/passwd")], "/etc/passwd"),
        ([("hard", tarfile.LNKTYPE, "../evil.txt")], "../evil.txt"),
        ([("dev", tarfile.CHRTYPE, "")], "dev"),
        ([("pipe", tarfile.FIFOTYPE, "")], "pipe"),
        ([(".git/hooks/post-checkout", tarfile.REGTYPE, "")], ".git/hooks/post-checkout"),
    ],
)  # fmt: skip
def test_malicious_archive_is_refused_before_anything_is_written(
    weird_tmp_path: Path, members: list[tuple[str, bytes, str]], named: str
) -> None:
    code = weird_tmp_path / "code"
    write(code / "main.py", "m\n")
    (weird_tmp_path / "outside").mkdir()
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, code)
    _, paths = Store(store).find_run(run_id)
    outside = str(weird_tmp_path / "outside")
    tar_with(
        paths.source_archive,
        (member("main.py"), b"m\n"),
        *[(member(n.format(outside=outside), k, ln.format(outside=outside)), b"evil")
          for n, k, ln in members],
    )  # fmt: skip
    target = weird_tmp_path / "t"

    with pytest.raises(UnsafePathError) as err:
        restore_run(Store(store), run_id, target)

    assert named in str(err.value) and str(paths.source_archive) in str(err.value)
    assert not target.exists(), "refused before the target was created"
    assert not any(p.exists() for p in outside_paths(weird_tmp_path))
    out = hpclab_cli(store, "restore", run_id, "--into", str(target))
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert "refusing" in out.stderr and "Traceback" not in out.stderr


def git_run(weird_tmp_path: Path) -> tuple[Path, str, Path]:
    repo = weird_tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "a.py", "a\n")
    os.symlink(str(weird_tmp_path / "outside"), repo / "lnk")
    (weird_tmp_path / "outside").mkdir()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    write(repo / "a.py", "b\n")
    store = weird_tmp_path / "store"
    return store, snapshot_run(store, repo), repo


EVIL_PATCHES = {
    "../evil.txt": "diff --git a/../evil.txt b/../evil.txt\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/../evil.txt\n@@ -0,0 +1 @@\n+evil\n",
    "../../evil.txt": "diff --git a/x b/x\n--- a/x\n+++ b/../../evil.txt\n@@ -1 +1 @@\n-a\n+b\n",
    "/evil.txt": "diff --git a//tmp/evil.txt b//tmp/evil.txt\nnew file mode 100644\n",
    "../y": "diff --git a/a.py b/y\nsimilarity index 100%\nrename from a.py\nrename to ../y\n",
    '"b/\\056\\056/evil.txt"': 'diff --git "a/\\056\\056/evil.txt" "b/\\056\\056/evil.txt"\n'
    "new file mode 100644\n",
    ".git/hooks/pre-commit": "diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit\n"
    "new file mode 100755\n--- /dev/null\n+++ b/.git/hooks/pre-commit\n@@ -0,0 +1 @@\n+x\n",
}


@pytest.mark.parametrize("named", list(EVIL_PATCHES))
def test_malicious_patch_is_refused_naming_the_path(weird_tmp_path: Path, named: str) -> None:
    store, run_id, _ = git_run(weird_tmp_path)
    _, paths = Store(store).find_run(run_id)
    paths.code_patch.write_text(EVIL_PATCHES[named])
    target = weird_tmp_path / "t"

    with pytest.raises(UnsafePathError) as err:
        restore_run(Store(store), run_id, target)

    shown = named.strip('"').replace("\\056", ".").removeprefix("b/")
    assert shown in str(err.value) and str(paths.code_patch) in str(err.value)
    assert not target.exists()
    assert not (weird_tmp_path / "evil.txt").exists() and not (weird_tmp_path / "y").exists()


def test_nothing_is_written_through_a_committed_symlink(weird_tmp_path: Path) -> None:
    store, run_id, _ = git_run(weird_tmp_path)
    _, paths = Store(store).find_run(run_id)
    # a patch and an archive that are fine on paper but go through the link `lnk`
    patch = (
        "diff --git a/lnk/evil.txt b/lnk/evil.txt\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/lnk/evil.txt\n@@ -0,0 +1 @@\n+evil\n"
    )
    assert check_patch(write(weird_tmp_path / "p.patch", patch)) == ["lnk/evil.txt"]
    saved = paths.code_patch.read_bytes()
    paths.code_patch.write_text(patch)
    with pytest.raises(RestoreError, match="git apply failed"):
        restore_run(Store(store), run_id, weird_tmp_path / "t1")
    paths.code_patch.write_bytes(saved)
    tar_with(paths.untracked_archive, (member("lnk/evil.txt"), b"evil"))
    with pytest.raises(UnsafePathError, match="'lnk' in the target is a symlink"):
        restore_run(Store(store), run_id, weird_tmp_path / "t2")
    assert list((weird_tmp_path / "outside").iterdir()) == []


def test_force_never_empties_the_users_own_directories(weird_tmp_path: Path) -> None:
    store, run_id, repo = git_run(weird_tmp_path)
    with pytest.raises(RestoreError, match="refusing to empty"):
        restore_run(Store(store), run_id, repo, force=True)
    with pytest.raises(RestoreError, match="refusing to empty"):
        restore_run(Store(store), run_id, weird_tmp_path, force=True)
    assert (repo / "a.py").read_text() == "b\n"
