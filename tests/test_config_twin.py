"""config.json, the writer's parse of config.yaml (hpclab.store.config_twin): readers get
exactly what parsing the YAML gives, from the twin only while config.yaml is the file it
was parsed from; the catalog's features are the same either way."""

from __future__ import annotations

import datetime
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from test_yaml_plain import _random_key, _random_value, same

import hpclab.store.config_twin as twin
from hpclab.catalog.extract import extract_run, fingerprint
from hpclab.store import RunRecord, RunStatus, Store
from hpclab.store.atomic import read_yaml, write_yaml_atomic
from hpclab.store.config_twin import read_config, stamp, write_config

CONFIG = {"optim": {"lr": 0.001, "name": "adam"}, "seed": 3, "layers": [64, 64], "x": None}


def _run(tmp_path: Path, config: Any) -> tuple[Store, Any]:
    store = Store(tmp_path / "store")
    paths = store.create_run_dir("p")
    store.write_record(paths, RunRecord(id=paths.id, project="p", status=RunStatus.COMPLETED))
    write_config(paths, config)
    return store, paths


def _no_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(path: Path) -> Any:
        raise AssertionError(f"{path} parsed: the twin was not used")

    monkeypatch.setattr(twin, "read_yaml", refused)


def test_the_twin_is_read_while_config_yaml_is_the_file_it_was_parsed_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, paths = _run(tmp_path, CONFIG)
    doc = json.loads(paths.config_json.read_text())
    assert doc["yaml"] == stamp(os.stat(paths.config_yaml)) and doc["config"] == CONFIG
    _no_yaml(monkeypatch)
    assert read_config(paths) == CONFIG


def test_a_config_yaml_changed_since_is_read_itself(tmp_path: Path) -> None:
    _, paths = _run(tmp_path, CONFIG)
    size = os.stat(paths.config_yaml).st_size
    edited = {**CONFIG, "seed": 4}  # the same size
    write_yaml_atomic(paths.config_yaml, edited)  # not through write_config: a hand edit
    assert os.stat(paths.config_yaml).st_size == size
    assert read_config(paths) == edited
    write_config(paths, {**CONFIG, "seed": 5})  # hpclab's own rewrite renews the twin
    assert json.loads(paths.config_json.read_text())["config"]["seed"] == 5
    # edited in place, same size, inode and mtime (cp -p, rsync -t): the ctime tells
    st = os.stat(paths.config_yaml)
    with open(paths.config_yaml, "r+b") as f:
        text = f.read()
        f.seek(0)
        f.write(text.replace(b"seed: 5", b"seed: 6"))
    os.utime(paths.config_yaml, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(paths.config_yaml)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        st.st_size, st.st_mtime_ns, st.st_ino
    )  # fmt: skip
    assert read_config(paths)["seed"] == 6


def test_a_config_past_the_readers_limits_is_written_without_a_twin(tmp_path: Path) -> None:
    shared = list(range(1000))  # safe_dump writes anchors and aliases: 1,000,000+ nodes
    store = Store(tmp_path / "store")
    paths = store.create_run_dir("p")
    write_config(paths, {f"k{i}": shared for i in range(1001)})
    assert paths.config_yaml.exists() and not paths.config_json.exists()


@pytest.mark.parametrize(
    "bad", [b"", b"{not json", b'{"format": 1, "yaml": "1:2", "config": {"a": 1}}', b"[1]"]
)
def test_a_missing_malformed_or_stale_twin_falls_back_to_the_yaml(
    tmp_path: Path, bad: bytes
) -> None:
    _, paths = _run(tmp_path, CONFIG)
    paths.config_json.write_bytes(bad)
    assert read_config(paths) == CONFIG
    paths.config_json.unlink()
    assert read_config(paths) == CONFIG
    os.mkfifo(paths.config_json)  # never opened for a blocking read
    assert read_config(paths) == CONFIG


def test_no_twin_for_what_json_does_not_carry(tmp_path: Path) -> None:
    for config in ({"when": datetime.date(2026, 12, 7)}, {"a": {1: "x"}}, {"t": True, 1: 2}):
        _, paths = _run(tmp_path / str(len(list(tmp_path.iterdir()))), config)
        assert not paths.config_json.exists()
        assert read_config(paths) == read_yaml(paths.config_yaml)


def test_random_configs_read_through_the_twin_as_the_yaml_parses_them(tmp_path: Path) -> None:
    rng = random.Random(7)
    store = Store(tmp_path / "store")
    twins = 0
    for _ in range(200):
        doc = {_random_key(rng): _random_value(rng, 0) for _ in range(rng.randint(0, 5))}
        paths = store.create_run_dir("p")
        write_config(paths, doc)
        twins += paths.config_json.exists()
        assert same(read_config(paths), read_yaml(paths.config_yaml)), doc
    assert twins > 100  # most random documents have string keys only


def test_the_catalogs_features_are_the_same_from_the_twin_and_from_the_yaml(
    tmp_path: Path,
) -> None:
    store, paths = _run(tmp_path, {**CONFIG, "nan": float("nan"), "big": 10**30, "s": "ü"})
    with_twin = extract_run(store, "p", paths, fingerprint(paths)).features
    paths.config_json.unlink()
    from_yaml = extract_run(store, "p", paths, fingerprint(paths)).features
    assert repr(with_twin) == repr(from_yaml)  # NaN != NaN: compared as text
    assert ("optim.lr", "0.001", 0.001) in with_twin and "('nan', 'NaN', nan)" in repr(with_twin)
