"""Restore writes nowhere but its target, ``--force`` empties only what restore made, and
text users typed (run names, tags, error messages) reaches the terminal escaped: real
runs, real git repositories and snapshots, the real CLI (issue 20)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from helpers import git, hpclab_cli, hpclab_subprocess, write

import hpclab
from hpclab.errors import RestoreError
from hpclab.restore import restore_run
from hpclab.restore.verify import META_DIR, RESTORE_MARKER
from hpclab.store import Store

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def snapshots_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCLAB_SNAPSHOT_CODE", "1")


def snapshot_run(store: Path, code_dir: Path, **config: object) -> str:
    """A real run that snapshots ``code_dir``."""
    with hpclab.Run(project="p", store=store, code_dir=code_dir, config=dict(config)) as run:
        run.log({"loss": 1.0}, step=0)
    return run.id


def decoy(base: Path) -> Path:
    """A directory outside every target, holding one file: restore must leave it alone."""
    d = base / "decoy"
    write(d / "keep.txt", "mine\n")
    return d


def decoy_intact(d: Path) -> bool:
    return (
        sorted(p.name for p in d.iterdir()) == ["keep.txt"]
        and (d / "keep.txt").read_text() == "mine\n"
    )


def repo_with(base: Path) -> Path:
    repo = base / "my repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "train.py", "print('v1')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    return repo


# -- the metadata directory is never a way out -------------------------------------------


@needs_git
@pytest.mark.parametrize("how", ["untracked", "staged", "committed", "source"])
def test_a_metadata_symlink_from_the_snapshot_redirects_nothing(
    weird_tmp_path: Path, how: str
) -> None:
    """``.hpclab-restore -> elsewhere`` in the untracked files, the patch, the commit or
    the source archive: refused in one line naming it, nothing written through it."""
    outside = decoy(weird_tmp_path)
    if how == "source":
        code = weird_tmp_path / "plain"
        write(code / "main.py", "m\n")
        os.symlink(str(outside), code / META_DIR)
    else:
        code = repo_with(weird_tmp_path)
        os.symlink(str(outside), code / META_DIR)
        if how != "untracked":
            git(code, "add", META_DIR)
        if how == "committed":
            git(code, "commit", "-qm", "link")
            write(code / "train.py", "print('dirty')\n")
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, code, seed=1)
    target = weird_tmp_path / "restored"

    out = hpclab_cli(store, "restore", run_id, "--into", str(target))

    assert out.returncode == 1, out.stdout + out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("hpclab: error: ") and META_DIR in line and "Traceback" not in line
    assert decoy_intact(outside), "nothing written through the link"
    with pytest.raises(RestoreError, match=META_DIR):
        restore_run(Store(store), run_id, weird_tmp_path / "again")
    assert decoy_intact(outside)


def test_a_symlink_inside_the_metadata_directory_is_refused(weird_tmp_path: Path) -> None:
    """A real ``.hpclab-restore/`` whose ``config.yaml`` links to a file elsewhere (a tree
    restored before, then tampered with): the file elsewhere keeps its bytes."""
    outside = decoy(weird_tmp_path)
    code = weird_tmp_path / "plain"
    write(code / "main.py", "m\n")
    (code / META_DIR).mkdir()
    os.symlink(str(outside / "keep.txt"), code / META_DIR / "config.yaml")
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, code, seed=1)

    out = hpclab_cli(store, "restore", run_id, "--into", str(weird_tmp_path / "t"))

    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"{META_DIR}/config.yaml" in out.stderr
    assert decoy_intact(outside)


def tar_with(path: Path, *members: tuple[str, bytes, str]) -> None:
    """Replace a snapshot archive with these (name, type, link target) members."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = kind, link, 0o644
            data = b"evil" if info.isreg() else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


@pytest.mark.parametrize(
    "name",
    [f"{META_DIR}/../../evil.txt", f"/{META_DIR}/evil.txt", f"../{META_DIR}/evil.txt"],
)
def test_archive_paths_out_of_the_target_are_refused(weird_tmp_path: Path, name: str) -> None:
    code = weird_tmp_path / "plain"
    write(code / "main.py", "m\n")
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, code)
    _, paths = Store(store).find_run(run_id)
    tar_with(paths.source_archive, ("main.py", tarfile.REGTYPE, ""), (name, tarfile.REGTYPE, ""))
    target = weird_tmp_path / "deep" / "t"

    out = hpclab_cli(store, "restore", run_id, "--into", str(target))

    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "refusing" in out.stderr and name in out.stderr
    assert not target.exists()
    assert not [p for p in weird_tmp_path.rglob("evil.txt")]


@pytest.mark.parametrize("which", ["config_yaml", "code_manifest", "environment_json"])
def test_a_store_file_that_is_not_a_regular_file_is_refused_not_read(
    weird_tmp_path: Path, which: str
) -> None:
    """A FIFO where restore reads (config.yaml, the manifest, environment.json) is one
    line naming it, in a fresh process that would otherwise block on it for ever."""
    code = weird_tmp_path / "plain"
    write(code / "main.py", "m\n")
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, code, seed=1)
    _, paths = Store(store).find_run(run_id)
    fifo = getattr(paths, which)
    fifo.unlink()
    os.mkfifo(fifo)
    target = weird_tmp_path / "t"

    out = hpclab_subprocess(store, "restore", run_id, "--into", str(target), timeout=120)

    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.strip() == f"hpclab: error: {fifo}: not a regular file: refusing to read it"
    assert not target.exists()


# -- --force replaces only what restore made ------------------------------------------------


def store_state(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}


@needs_git
def test_force_refuses_the_runs_directory_and_the_repository(weird_tmp_path: Path) -> None:
    repo = repo_with(weird_tmp_path)
    write(repo / "train.py", "print('dirty')\n")
    store = weird_tmp_path / "store"
    run_ids = [snapshot_run(store, repo, seed=s) for s in range(2)]
    runs_dir = store / "p" / "runs"
    before_store = store_state(store)
    before_git = {str(p): p.read_bytes() for p in (repo / ".git").rglob("*") if p.is_file()}
    head = git(repo, "rev-parse", "HEAD")

    for into in (runs_dir, repo / ".git", repo):
        out = hpclab_cli(store, "restore", run_ids[0], "--into", str(into), "--force")
        assert out.returncode == 1, out.stdout
        (line,) = out.stderr.strip().splitlines()
        assert line.startswith(f"hpclab: error: refusing to empty {into}"), line

    assert store_state(store) == before_store, "every run intact"
    assert sorted(p.name for p in runs_dir.iterdir()) == sorted(run_ids)
    after_git = {str(p): p.read_bytes() for p in (repo / ".git").rglob("*") if p.is_file()}
    assert after_git == before_git and git(repo, "rev-parse", "HEAD") == head


@needs_git
def test_force_replaces_a_previous_restore_or_an_empty_directory(weird_tmp_path: Path) -> None:
    repo = repo_with(weird_tmp_path)
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, repo)
    target = weird_tmp_path / "t"
    assert restore_run(Store(store), run_id, target).ok
    assert (target / META_DIR / RESTORE_MARKER).is_file()
    write(target / "stray.txt", "x\n")
    write(target / "train.py", "edited\n")

    forced = hpclab_cli(store, "restore", run_id, "--into", str(target), "--force")

    assert forced.returncode == 0, forced.stderr
    assert not (target / "stray.txt").exists()
    assert (target / "train.py").read_text() == "print('v1')\n"
    empty = weird_tmp_path / "empty"
    empty.mkdir()
    assert hpclab_cli(store, "restore", run_id, "--into", str(empty), "--force").returncode == 0


@needs_git
def test_a_borrowed_marker_does_not_count(weird_tmp_path: Path) -> None:
    """A directory of the user's whose ``.hpclab-restore`` links to a real restore's (or
    holds a marker that is a link) is not restore's to empty."""
    repo = repo_with(weird_tmp_path)
    store = weird_tmp_path / "store"
    run_id = snapshot_run(store, repo)
    real = weird_tmp_path / "real restore"
    restore_run(Store(store), run_id, real)
    work = weird_tmp_path / "work"
    write(work / "thesis.tex", "months of work\n")
    os.symlink(str(real / META_DIR), work / META_DIR)
    other = weird_tmp_path / "other"
    write(other / "data.csv", "1,2\n")
    (other / META_DIR).mkdir()
    os.symlink(str(real / META_DIR / RESTORE_MARKER), other / META_DIR / RESTORE_MARKER)

    for d in (work, other):
        out = hpclab_cli(store, "restore", run_id, "--into", str(d), "--force")
        assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "refusing to empty" in out.stderr
    assert (work / "thesis.tex").read_text() == "months of work\n"
    assert (other / "data.csv").read_text() == "1,2\n"


def test_env_build_force_refuses_a_directory_it_did_not_make(weird_tmp_path: Path) -> None:
    store = weird_tmp_path / "store"
    run = hpclab.init(project="p", store=store, settings={"snapshot_code": False})
    run.finish()
    run.paths.requirements_txt.write_text("pip==1.0\n")
    runs_dir = store / "p" / "runs"
    before = store_state(store)

    out = hpclab_cli(store, "env", "build", run.id, "--into", str(runs_dir), "--force")

    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"refusing to empty {runs_dir}" in out.stderr
    assert store_state(store) == before


# -- terminal escapes -------------------------------------------------------------------

EVIL = "\x1b[2J\x1b]0;pwned\x07evil"
RAW = ("\x1b", "\x07", "\x9b", "\x00", "\x7f", "\r")


def raw_name_run(store: Path) -> tuple[str, str]:
    """A completed run named EVIL (its job id too) and a failed one with control bytes in
    its error message, both tagged with some. run.json is rewritten so that the raw bytes
    are what the store holds, whatever the tracker keeps: the terminal is the last line
    of defence."""
    off = {"snapshot_code": False}
    with hpclab.Run(project="p", store=store, name="good", settings=off) as ok:
        ok.log({"loss": 0.5}, step=0)
    try:
        with hpclab.Run(project="p", store=store, name="bad", settings=off) as bad:
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    for run, error in ((ok, None), (bad, "boom \x9b2J\x1b[5m\rover\x00\x7f")):
        doc = json.loads(run.paths.run_json.read_text())
        doc["name"] = EVIL
        doc["tags"] = ["t\x1b[31mred"]
        if error:
            doc["error"]["message"] = error
        else:  # the job id `hpclab status` shows
            doc["scheduler"] = {"kind": "local", "job_id": "7\x1b]0;job\x07"}
        run.paths.run_json.write_text(json.dumps(doc))
    return ok.id, bad.id


@pytest.mark.parametrize(
    "args",
    [("runs", "list"), ("runs", "show", "{ok}"), ("runs", "show", "{bad}"),
     ("status", "{ok}"), ("status", "{bad}"), ("runs", "show", EVIL)],
)  # fmt: skip
def test_control_characters_never_reach_the_terminal_raw(
    weird_tmp_path: Path, args: tuple[str, ...]
) -> None:
    store = weird_tmp_path / "store"
    ok, bad = raw_name_run(store)
    argv = [a.format(ok=ok, bad=bad) if "{" in a else a for a in args]

    out = hpclab_cli(store, *argv)

    text = out.stdout + out.stderr
    assert not [c for c in RAW if c in text], repr(text)
    if argv[0] == "runs" and argv[-1] != EVIL:
        assert out.returncode == 0, text
        assert "\\x1b[2J\\x1b]0;pwned\\x07evil" in text, "the name, recognisable"
    if argv[-1] == bad and argv[0] == "runs":
        assert "boom \\x9b2J\\x1b[5m\\x0dover\\x00\\x7f" in text
        assert "t\\x1b[31mred" in text
    if argv == ["status", ok]:
        assert out.returncode == 0 and "7\\x1b]0;job\\x07" in text, text
    if argv[-1] == EVIL:
        assert out.returncode == 1 and "\\x07evil" in out.stderr


def test_dag_and_restore_output_escape_names_and_paths(weird_tmp_path: Path) -> None:
    """A run named EVIL in ``dag show``; a file of the run's tree named with control
    characters (left out of the snapshot: too big) in the lines ``restore`` prints."""
    code = weird_tmp_path / "plain"
    write(code / "main.py", "m\n")
    write(code / "big\x1b]0;t\x07.bin", b"x" * 200)
    store = weird_tmp_path / "store"
    with hpclab.Run(project="p", store=store, name=EVIL, code_dir=code,
                    settings={"max_file_bytes": 100}) as run:  # fmt: skip
        run.log({"loss": 1.0}, step=0)
    doc = json.loads(run.paths.run_json.read_text())
    doc["name"] = EVIL
    run.paths.run_json.write_text(json.dumps(doc))

    dag = hpclab_cli(store, "dag", "show", "--project", "p")
    restored = hpclab_cli(store, "restore", run.id, "--into", str(weird_tmp_path / "t"))

    assert dag.returncode == 0, dag.stderr
    assert f"{run.id} \\x1b[2J\\x1b]0;pwned\\x07evil [completed]" in dag.stdout
    assert restored.returncode == 0, restored.stderr
    assert "big\\x1b]0;t\\x07.bin" in restored.stdout
    for text in (dag.stdout + dag.stderr, restored.stdout + restored.stderr):
        assert not [c for c in RAW if c in text], repr(text)


def test_runs_diff_escapes_the_paths_of_the_trees(weird_tmp_path: Path) -> None:
    code = weird_tmp_path / "plain"
    write(code / "main.py", "m\n")
    store = weird_tmp_path / "store"
    first = snapshot_run(store, code)
    write(code / "new\x1b]0;t\x07.py", "n\n")
    second = snapshot_run(store, code)

    out = hpclab_cli(store, "runs", "diff", first, second)

    assert out.returncode == 0, out.stderr
    assert "new\\x1b]0;t\\x07.py" in out.stdout
    assert not [c for c in RAW if c in out.stdout + out.stderr], repr(out.stdout)


def test_printable_escapes_exactly_the_control_characters() -> None:
    from hpclab.cli.terminal import printable

    kept = "tab\there\nnew line é ü 漢字 \u00a0 \\x1b ~"
    assert printable(kept) == kept
    controls = [chr(c) for c in [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)]]
    shown = printable("".join(controls))
    assert shown == "".join(f"\\x{ord(c):02x}" for c in controls)
    assert all(c.isprintable() for c in shown)
