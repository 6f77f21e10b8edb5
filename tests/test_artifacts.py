"""Artifacts: content-addressed storage, selection globs, manifest, refusal of traversal."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from hpclab.errors import ArtifactError
from hpclab.store.atomic import TMP_PREFIX
from hpclab.store.layout import RunPaths, Store
from hpclab.tracking.artifacts import glob_match, globs_match, log_artifacts

PROJECT = "proj"


@pytest.fixture
def root(weird_tmp_path: Path) -> Path:
    return weird_tmp_path


@pytest.fixture
def store(root: Path) -> Store:
    return Store(root / "st ore")


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def objects(store: Store) -> list[Path]:
    return sorted(
        p for p in store.objects_dir(PROJECT).rglob("*")
        if p.is_file() and not p.name.startswith(TMP_PREFIX)
    )  # fmt: skip


def manifest(paths: RunPaths) -> list[dict[str, object]]:
    data = json.loads(paths.artifacts_manifest.read_text())
    assert isinstance(data, list)
    return data


def test_identical_files_in_two_runs_are_stored_once(root: Path, store: Store) -> None:
    content = b"tokenizer vocabulary\n" * 1000
    src = write(root / "tok enizer.json", content)
    run_a = store.create_run_dir(PROJECT)
    run_b = store.create_run_dir(PROJECT)

    [a] = log_artifacts(store, PROJECT, run_a, src)
    [b] = log_artifacts(store, PROJECT, run_b, src)

    sha = hashlib.sha256(content).hexdigest()
    assert a["sha256"] == b["sha256"] == sha and a["size"] == len(content)
    assert a["path"] == b["path"] == "tok enizer.json"
    obj = store.object_path(PROJECT, sha)
    assert objects(store) == [obj]
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444
    link_a = run_a.artifacts_dir / "tok enizer.json"
    link_b = run_b.artifacts_dir / "tok enizer.json"
    assert link_a.stat().st_ino == link_b.stat().st_ino == obj.stat().st_ino
    assert link_a.read_bytes() == content
    assert manifest(run_a) == [a]
    assert not list(store.objects_dir(PROJECT).rglob(f"{TMP_PREFIX}*"))


def make_tree(src: Path) -> None:
    write(src / "cfg.yaml", "lr: 0.1\n")
    write(src / "ckpt" / "a.pt", "A")
    write(src / "ckpt" / "b.pt", "B")
    write(src / "logs" / "x.txt", "log")
    write(src / "logs" / "__pycache__" / "c.pyc", "pyc")
    write(src / "deep" / "a" / "b" / "c.pt", "C")
    write(src / "events.out.tfevents.1", "ev")


def test_directory_selection_with_include_and_exclude(root: Path, store: Store) -> None:
    src = root / "out dir"
    make_tree(src)
    paths = store.create_run_dir(PROJECT)

    entries = log_artifacts(
        store, PROJECT, paths, src, include=["*.pt", "cfg.yaml", "logs"],
        exclude=["ckpt/b.pt", "__pycache__"], name="results",
    )  # fmt: skip

    got = [e["path"] for e in entries]
    assert got == [
        "results/cfg.yaml", "results/ckpt/a.pt", "results/deep/a/b/c.pt", "results/logs/x.txt"
    ]  # fmt: skip
    assert (paths.artifacts_dir / "results" / "deep" / "a" / "b" / "c.pt").read_text() == "C"
    assert not (paths.artifacts_dir / "results" / "ckpt" / "b.pt").exists()
    assert [e["path"] for e in manifest(paths)] == got
    for e in manifest(paths):
        assert set(e) == {"path", "sha256", "size", "logged_at"}
        assert (
            e["sha256"]
            == hashlib.sha256((paths.artifacts_dir / str(e["path"])).read_bytes()).hexdigest()
        )


def test_everything_by_default_and_exclude_wins(root: Path, store: Store) -> None:
    src = root / "out"
    make_tree(src)
    paths = store.create_run_dir(PROJECT)

    every = log_artifacts(store, PROJECT, paths, src)
    none = log_artifacts(store, PROJECT, paths, src, include=["*.pt"], exclude=["**"], name="n")

    assert len(every) == 7 and every[0]["path"] == "out/cfg.yaml"
    assert none == [] and not (paths.artifacts_dir / "n").exists()


@pytest.mark.parametrize(
    ("pattern", "rel", "expected"),
    [
        ("*.pt", "a.pt", True),
        ("*.pt", "x/y/a.pt", True),
        ("ckpt/*.pt", "ckpt/a.pt", True),
        ("ckpt/*.pt", "ckpt/sub/a.pt", False),
        ("ckpt/**/*.pt", "ckpt/a.pt", True),
        ("ckpt/**/*.pt", "ckpt/s/t/a.pt", True),
        ("**/a.pt", "a.pt", True),
        ("ckpt", "ckpt/s/a.pt", True),
        ("ckpt/", "ckpt", False),
        ("ckpt/", "ckpt/a.pt", True),
        ("/ckpt/a.pt", "ckpt/a.pt", True),
        ("x/ckpt", "ckpt/a.pt", False),
        ("step_?.pt", "step_1.pt", True),
        ("step_?.pt", "step_10.pt", False),
        ("step_[0-4].pt", "step_3.pt", True),
        ("step_[!0-4].pt", "step_3.pt", False),
        ("a.pt", "a_pt", False),
        ("a+b(1).txt", "a+b(1).txt", True),
        ("*", "x/y", True),
        # gitignore semantics: "*" stays in one directory, "a/**/b" also matches "a/b"
        ("docs/*.md", "docs/a.md", True),
        ("docs/*.md", "docs/a/b.md", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
    ],
)
def test_glob_match(pattern: str, rel: str, expected: bool) -> None:
    assert glob_match(pattern, rel) is expected


@pytest.mark.parametrize(
    ("patterns", "rel", "expected"),
    [
        (["*.pt", "!tmp_*.pt"], "ckpt/tmp_1.pt", False),
        (["*.pt", "!tmp_*.pt"], "ckpt/last.pt", True),
        (["!tmp_*.pt", "*.pt"], "tmp_1.pt", True),  # the last matching pattern decides
    ],
)
def test_globs_match_negation(patterns: list[str], rel: str, expected: bool) -> None:
    assert globs_match(patterns, rel) is expected


def test_negation_in_include_and_exclude(root: Path, store: Store) -> None:
    src = root / "out"
    for rel in ("ckpt/last.pt", "ckpt/tmp_1.pt", "ckpt/tmp_keep.pt", "docs/a.md", "docs/x/b.md"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    paths = store.create_run_dir(PROJECT)

    pts = log_artifacts(store, PROJECT, paths, src, include=["*.pt", "!tmp_*"], name="p")
    kept = log_artifacts(
        store, PROJECT, paths, src, exclude=["tmp_*", "!tmp_keep.pt", "docs/*.md"], name="k"
    )

    assert [e["path"] for e in pts] == ["p/ckpt/last.pt"]
    assert [e["path"] for e in kept] == ["k/ckpt/last.pt", "k/ckpt/tmp_keep.pt", "k/docs/x/b.md"]


def test_invalid_glob_is_an_artifact_error(root: Path, store: Store) -> None:
    (root / "out").mkdir()
    (root / "out" / "a.txt").write_text("a")
    paths = store.create_run_dir(PROJECT)
    with pytest.raises(ArtifactError, match="artifact glob"):
        log_artifacts(store, PROJECT, paths, root / "out", include=["!"])


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/../../b", "a/..", "", "a\\..\\b"])
def test_traversal_in_name_is_refused(root: Path, store: Store, name: str) -> None:
    src = write(root / "f.txt", "x")
    paths = store.create_run_dir(PROJECT)

    with pytest.raises(ArtifactError, match="artifact name"):
        log_artifacts(store, PROJECT, paths, src, name=name)

    assert not paths.artifacts_dir.exists() and not paths.artifacts_manifest.exists()
    assert not (root / "escape").exists() and not (paths.dir.parent / "escape").exists()


def test_missing_source_is_a_named_error(root: Path, store: Store) -> None:
    paths = store.create_run_dir(PROJECT)
    with pytest.raises(ArtifactError, match="no such model"):
        log_artifacts(store, PROJECT, paths, root / "no such model.pt")


def test_relogging_replaces_the_entry_and_keeps_the_old_object(root: Path, store: Store) -> None:
    src = write(root / "model.pt", b"v1")
    run_a = store.create_run_dir(PROJECT)
    run_b = store.create_run_dir(PROJECT)
    [old] = log_artifacts(store, PROJECT, run_a, src, name="ckpt/final.pt")
    log_artifacts(store, PROJECT, run_b, src, name="ckpt/final.pt")
    write(root / "other.txt", "o")
    log_artifacts(store, PROJECT, run_a, root / "other.txt")

    write(src, b"v2 is longer")
    [new] = log_artifacts(store, PROJECT, run_a, src, name="ckpt/final.pt")

    assert new["sha256"] != old["sha256"] and new["size"] == len(b"v2 is longer")
    assert (run_a.artifacts_dir / "ckpt" / "final.pt").read_bytes() == b"v2 is longer"
    assert (run_b.artifacts_dir / "ckpt" / "final.pt").read_bytes() == b"v1"
    assert store.object_path(PROJECT, str(old["sha256"])).read_bytes() == b"v1"
    assert [(e["path"], e["sha256"]) for e in manifest(run_a)] == [
        ("other.txt", hashlib.sha256(b"o").hexdigest()), ("ckpt/final.pt", new["sha256"])
    ]  # fmt: skip
    assert len(objects(store)) == 3
    leftovers = [p for p in run_a.artifacts_dir.rglob("*") if p.name.startswith(TMP_PREFIX)]
    assert leftovers == []


def test_copy_when_hard_links_fail(
    root: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    src = write(root / "w.bin", b"weights")
    paths = store.create_run_dir(PROJECT)

    [entry] = log_artifacts(store, PROJECT, paths, src)

    dest = paths.artifacts_dir / "w.bin"
    obj = store.object_path(PROJECT, str(entry["sha256"]))
    assert dest.read_bytes() == obj.read_bytes() == b"weights"
    assert dest.stat().st_ino != obj.stat().st_ino
    assert stat.S_IMODE(dest.stat().st_mode) == 0o444


def test_logging_a_directory_holding_the_store_skips_the_store(tmp_path: Path) -> None:
    project_root = tmp_path / "code"
    write(project_root / "train.py", "print()")
    store = Store(project_root / "hpclab-store")
    paths = store.create_run_dir(PROJECT)
    write(paths.dir / "run.json", "{}")

    entries = log_artifacts(store, PROJECT, paths, project_root, name="code")

    assert [e["path"] for e in entries] == ["code/train.py"]


def test_directory_destination_conflict_is_an_artifact_error(root: Path, store: Store) -> None:
    paths = store.create_run_dir(PROJECT)
    write(root / "d" / "x.txt", "x")
    log_artifacts(store, PROJECT, paths, root / "d", name="thing")
    write(root / "f.txt", "f")

    with pytest.raises(ArtifactError, match="directory"):
        log_artifacts(store, PROJECT, paths, root / "f.txt", name="thing")
    assert [e["path"] for e in manifest(paths)] == ["thing/x.txt"]
