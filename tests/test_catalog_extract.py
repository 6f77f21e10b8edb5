"""What one run contributes is read from the files its fingerprint saw: a run with none of
the optional files (notes, artifacts, evaluation, ...) costs no failed opens, and a file
written after the fingerprint is read by the next pass, whose fingerprint has it."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.extract import FINGERPRINT_FILES, absent_files, extract_run, fingerprint
from hpclab.catalog.indexer import Indexer
from hpclab.store import Store
from hpclab.store.atomic import write_yaml_atomic


def make_run(store: Path, run_id: str) -> None:
    run = hpclab.Run(
        project="p",
        store=store,
        run_id=run_id,
        settings={"snapshot_env": False},
        config={"optim": {"lr": 0.1}, "seed": 0},
    )
    for s in range(5):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    run.finish()


def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path ``os.open``, ``open`` and ``io.open`` are asked for (found or not)."""
    seen: list[str] = []
    real_os_open, real_open = os.open, open

    def os_open(path: Any, *a: Any, **k: Any) -> int:
        seen.append(os.fspath(path))
        return real_os_open(path, *a, **k)

    def py_open(path: Any, *a: Any, **k: Any) -> Any:
        if not isinstance(path, int):
            seen.append(os.fspath(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr("builtins.open", py_open)
    monkeypatch.setattr(io, "open", py_open)  # pathlib's read_text and read_bytes
    return seen


def test_files_the_fingerprint_found_missing_are_not_opened(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_run(store_root, "a")
    store = Store(store_root)
    paths = store.run_paths("p", "a")
    fp = fingerprint(paths)
    absent = absent_files(fp)
    assert "notes.yaml" in absent and "run.json" not in absent and "config.yaml" not in absent
    assert len(fp.split("|")) == len(FINGERPRINT_FILES)
    seen = opened(monkeypatch)
    with_fp = extract_run(store, "p", paths, fp)
    tried = {os.path.relpath(p, paths.dir) for p in seen}
    assert not tried & absent, tried & absent
    assert "run.json" in tried and tried & {"config.yaml", "config.json"}  # or its twin
    seen.clear()
    without = extract_run(store, "p", paths)  # no fingerprint: every file is tried
    assert tried < {os.path.relpath(p, paths.dir) for p in seen}
    assert with_fp.runs == without.runs and with_fp.features == without.features


def test_a_file_written_after_the_fingerprint_is_read_by_the_next_pass(store_root: Path) -> None:
    make_run(store_root, "a")
    store = Store(store_root)
    paths = store.run_paths("p", "a")
    fp = fingerprint(paths)
    write_yaml_atomic(paths.notes_yaml, {"tags": ["late"], "text": "written after"})
    assert extract_run(store, "p", paths, fp).notes is None  # what that fingerprint saw
    assert fingerprint(paths) != fp
    with Indexer(store) as ix:
        ix.index()
        ix.index()
    con = connect(store)
    assert con.execute("SELECT tags, text FROM notes").fetchall() == [(["late"], "written after")]


def _stat_each(paths: Any) -> str:
    """The fingerprint by its definition: size:mtime_ns of each file, '-' if absent."""
    parts = []
    for rel in FINGERPRINT_FILES:
        try:
            st = os.stat(paths.dir / rel)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def test_the_fingerprint_is_each_files_size_and_mtime_after_one_listing(
    store_root: Path,
) -> None:
    """A listing of the run directory says which names to stat: the result is the same as
    a stat of every file, whether a file, its directory or neither is there."""
    make_run(store_root, "a")
    store = Store(store_root)
    paths = store.run_paths("p", "a")
    assert fingerprint(paths) == _stat_each(paths)
    assert not absent_files(fingerprint(paths)) & {"run.json", "config.yaml"}
    paths.eval_dir.mkdir()  # the directory without its files
    assert fingerprint(paths) == _stat_each(paths)
    paths.eval_metrics_json.write_text("{}")
    write_yaml_atomic(paths.notes_yaml, {"text": "n"})
    paths.media_dir.mkdir()
    (paths.media_dir / "index.jsonl").write_text("")
    fp = fingerprint(paths)
    assert fp == _stat_each(paths)
    rel = {str(p.relative_to(paths.dir)) for p in (paths.eval_metrics_json, paths.notes_yaml)}
    assert rel <= set(FINGERPRINT_FILES) and not rel & absent_files(fp)
    assert fingerprint(store.run_paths("p", "gone")) == "|".join("-" * len(FINGERPRINT_FILES))
    os.replace(paths.run_json, paths.dir / "record.bak")
    (paths.dir / "run.json").mkdir()  # not a regular file: no record
    assert fingerprint(paths).startswith("-|")


def test_a_run_directory_that_cannot_be_listed_is_fingerprinted_file_by_file(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's run directory of mode 711 can be entered but not listed: its files
    are stat'ed one by one (the same fingerprint), not taken for absent (which would drop
    the run from the catalog). Simulated: the tests run as root, who may list anything."""
    import hpclab.catalog.extract as extract

    make_run(store_root, "a")
    paths = Store(store_root).run_paths("p", "a")
    expected = _stat_each(paths)

    def refused(path: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(extract.os, "scandir", refused)
    assert fingerprint(paths) == expected
    assert not fingerprint(paths).startswith("-|")


def test_a_config_key_that_names_no_path_is_no_feature() -> None:
    """A top-level "" key holding a plain value names no path: no feature (as before the
    leaves were encoded in the loop); under a parent it is the path "parent."."""
    from hpclab.catalog.extract import flatten_features

    config = {"": 1, "a": {"": 2}, "b": ["", {"": None}], "c": True}
    assert list(flatten_features(config)) == [
        ("a.", "2", 2.0),
        ("b[0]", '""', None),
        ("b[1].", "null", None),
        ("c", "true", None),
    ]
