"""Dataset fingerprints over real CSV, JSON, Parquet, HDF5 and Zarr files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import h5py
import numpy as np
import pytest
import zarr

from hpclab.errors import DatasetError
from hpclab.store.layout import RunPaths, Store
from hpclab.tracking.datasets import detect_schema, fingerprint_dataset, record_dataset


@pytest.fixture
def root(tmp_path: Path) -> Path:
    d = tmp_path / "we ird 'dir'"
    d.mkdir()
    return d


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_parquet(path: Path) -> None:
    con = duckdb.connect()
    try:
        escaped = str(path).replace("'", "''")
        con.execute(
            "COPY (SELECT range AS id, (range * 0.5)::DOUBLE AS score, 'x' || range AS label "
            f"FROM range(7)) TO '{escaped}' (FORMAT parquet)"
        )
    finally:
        con.close()


def make_h5(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros((4, 3), dtype="float32")
        f.create_group("labels")["y"] = np.arange(4, dtype="int64")


def make_zarr(path: Path) -> None:
    group = zarr.open_group(str(path), mode="w")
    arr = group.create_array("images", shape=(10, 8, 8), chunks=(5, 8, 8), dtype="uint8")
    arr[:] = 7
    group.create_group("meta").create_array("ids", shape=(10,), dtype="int32")[:] = np.arange(10)


def test_single_csv_file(root: Path) -> None:
    path = root / "train set.csv"
    text = "id,score,ok,label\n1,0.5,true,a\n2,1,false,b\n3,,true,\n"
    path.write_text(text)

    fp = fingerprint_dataset(path)

    assert fp["name"] == "train set.csv" and fp["path"] == str(path) and fp["kind"] == "file"
    assert fp["size"] == len(text) and fp["n_files"] == 1
    [entry] = fp["files"]
    assert entry["path"] == "train set.csv" and entry["sha256"] == sha(text.encode())
    assert (
        fp["schema"]
        == entry["schema"]
        == {
            "format": "csv",
            "columns": [
                {"name": "id", "type": "int"},
                {"name": "score", "type": "float"},
                {"name": "ok", "type": "bool"},
                {"name": "label", "type": "string"},
            ],
            "rows": 3,
        }
    )


def test_tsv_types_come_from_the_first_rows_only(root: Path) -> None:
    rows = ["n\tv"] + [f"{i}\t{i}" for i in range(150)] + ["x\t1.5"]
    path = root / "t.tsv"
    path.write_text("\n".join(rows) + "\n")

    schema = detect_schema(path)

    assert schema is not None and schema["rows"] == 151
    # the row that would make "n" a string lies past the ~100 sampled rows
    assert schema["columns"] == [{"name": "n", "type": "int"}, {"name": "v", "type": "int"}]


def test_directory_of_every_format(root: Path) -> None:
    data = root / "data set"
    data.mkdir()
    (data / "b.json").write_text(json.dumps({"lr": 0.1, "layers": [1, 2]}))
    (data / "a.json").write_text(json.dumps([{"x": 1, "y": 2}, {"x": 3, "z": 4}]))
    (data / "c.jsonl").write_text('{"text": "hi", "id": 1}\n\n{"text": "yo", "id": 2}\n')
    (data / "sub").mkdir()
    make_parquet(data / "sub" / "t.parquet")
    make_h5(data / "sub" / "d.h5")
    make_zarr(data / "sub" / "store.zarr")
    (data / "readme.txt").write_text("no schema for this one")

    fp = fingerprint_dataset(data, name="mixed")

    assert fp["name"] == "mixed" and fp["kind"] == "directory" and fp["schema"] is None
    rels = [f["path"] for f in fp["files"]]
    assert rels == sorted(rels) and rels[:4] == ["a.json", "b.json", "c.jsonl", "readme.txt"]
    assert fp["n_files"] == len(rels) and fp["size"] == sum(f["size"] for f in fp["files"])
    for f in fp["files"]:
        assert f["sha256"] == sha((data / f["path"]).read_bytes())
    by = {f["path"]: f for f in fp["files"]}
    assert by["a.json"]["schema"] == {
        "format": "json", "type": "array", "length": 2, "item_types": ["object"],
        "item_keys": ["x", "y", "z"],
    }  # fmt: skip
    assert by["b.json"]["schema"] == {"format": "json", "type": "object", "keys": ["lr", "layers"]}
    assert by["c.jsonl"]["schema"] == {
        "format": "jsonl", "records": 2, "item_types": ["object"], "item_keys": ["id", "text"]
    }  # fmt: skip
    assert "schema" not in by["readme.txt"]
    pq = by["sub/t.parquet"]["schema"]
    assert pq["format"] == "parquet" and pq["rows"] == 7
    assert [(c["name"], c["type"]) for c in pq["columns"]] == [
        ("id", "BIGINT"), ("score", "DOUBLE"), ("label", "VARCHAR")
    ]  # fmt: skip
    assert by["sub/d.h5"]["schema"] == {
        "format": "hdf5",
        "datasets": [
            {"name": "/labels/y", "shape": [4], "dtype": "int64"},
            {"name": "/x", "shape": [4, 3], "dtype": "float32"},
        ],
    }
    # the Zarr store inside: every chunk hashed, one schema on its root metadata file
    zarr_files = [r for r in rels if r.startswith("sub/store.zarr/")]
    assert len(zarr_files) > 3
    with_schema = [r for r in zarr_files if "schema" in by[r]]
    assert with_schema == ["sub/store.zarr/zarr.json"]
    assert [a["path"] for a in by[with_schema[0]]["schema"]["arrays"]] == ["images", "meta/ids"]


def test_zarr_store_is_one_dataset(root: Path) -> None:
    store = root / "imgs.zarr"
    make_zarr(store)

    fp = fingerprint_dataset(store)

    assert fp["name"] == "imgs.zarr" and fp["kind"] == "directory"
    assert fp["schema"] == {
        "format": "zarr",
        "zarr_format": 3,
        "arrays": [
            {"path": "images", "shape": [10, 8, 8], "dtype": "uint8"},
            {"path": "meta/ids", "shape": [10], "dtype": "int32"},
        ],
    }
    assert all("schema" not in f for f in fp["files"])
    assert "zarr.json" in [f["path"] for f in fp["files"]]


def test_combined_hash_tracks_content_and_names_not_mtimes(root: Path) -> None:
    data = root / "d"
    data.mkdir()
    (data / "a.bin").write_bytes(b"\x00" * 3_000_000)  # more than one 1 MiB block
    (data / "b.bin").write_bytes(b"b")
    first = fingerprint_dataset(data)
    expected = hashlib.sha256(
        b"a.bin\0" + sha(b"\x00" * 3_000_000).encode() + b"\n" + b"b.bin\0" + sha(b"b").encode()
        + b"\n"
    ).hexdigest()  # fmt: skip
    assert first["sha256"] == expected

    (data / "b.bin").touch()
    assert fingerprint_dataset(data)["sha256"] == first["sha256"]
    (data / "b.bin").write_bytes(b"c")
    changed = fingerprint_dataset(data)["sha256"]
    (data / "b.bin").write_bytes(b"b")
    (data / "b.bin").rename(data / "c.bin")
    renamed = fingerprint_dataset(data)["sha256"]
    assert len({first["sha256"], changed, renamed}) == 3


def test_hash_false_skips_hashing_but_keeps_sizes_and_schema(root: Path) -> None:
    path = root / "x.csv"
    path.write_text("a\n1\n")

    fp = fingerprint_dataset(path, hash=False)

    assert fp["sha256"] is None and fp["files"][0]["sha256"] is None
    assert fp["size"] == 4 and fp["schema"]["rows"] == 1


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [("bad.h5", b"not an hdf5 file", "hdf5"), ("bad.parquet", b"PAR1garbage", "parquet"),
     ("bad.json", b"{oops", "json"), ("bad.jsonl", b'{"a": 1}\n{broken\n', "jsonl")],
)  # fmt: skip
def test_corrupt_files_get_an_error_schema(root: Path, name: str, content: bytes, fmt: str) -> None:
    path = root / name
    path.write_bytes(content)

    fp = fingerprint_dataset(path)

    assert fp["sha256"] is not None and fp["files"][0]["sha256"] == sha(content)
    assert fp["schema"]["format"] == fmt and fp["schema"]["error"]
    assert set(fp["schema"]) == {"format", "error"}


def test_corrupt_zarr_gets_an_error_schema(root: Path) -> None:
    store = root / "broken.zarr"
    store.mkdir()
    (store / "zarr.json").write_text("{not json")

    fp = fingerprint_dataset(store)

    assert fp["schema"]["format"] == "zarr" and "error" in fp["schema"] and fp["n_files"] == 1


def test_missing_path_is_a_named_error(root: Path) -> None:
    with pytest.raises(DatasetError, match="nope"):
        fingerprint_dataset(root / "nope")


def test_symlink_cycle_terminates(root: Path) -> None:
    data = root / "d"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "f.txt").write_text("f")
    (data / "sub" / "loop").symlink_to(data, target_is_directory=True)

    fp = fingerprint_dataset(data)

    assert [f["path"] for f in fp["files"]] == ["sub/f.txt"]


def run_paths(tmp_path: Path) -> RunPaths:
    return Store(tmp_path / "store").create_run_dir("proj")


def test_record_dataset_appends_and_replaces_by_name(tmp_path: Path, root: Path) -> None:
    paths = run_paths(tmp_path)
    (root / "a.csv").write_text("a\n1\n")
    (root / "b.csv").write_text("b\n2\n")

    record_dataset(paths, fingerprint_dataset(root / "a.csv", name="train"))
    record_dataset(paths, fingerprint_dataset(root / "b.csv", name="val"))
    (root / "a.csv").write_text("a\n1\n2\n")
    record_dataset(paths, fingerprint_dataset(root / "a.csv", name="train"))

    stored = json.loads(paths.datasets_json.read_text())
    assert [d["name"] for d in stored] == ["train", "val"]
    assert stored[0]["schema"]["rows"] == 2
    assert [p.name for p in paths.snapshot_dir.iterdir()] == ["datasets.json"]  # no temp left


def test_record_dataset_refuses_bad_input(tmp_path: Path) -> None:
    paths = run_paths(tmp_path)
    with pytest.raises(DatasetError, match="name"):
        record_dataset(paths, {"path": "/x"})
    paths.snapshot_dir.mkdir(parents=True)
    paths.datasets_json.write_text('{"not": "a list"}')
    with pytest.raises(DatasetError, match="datasets.json"):
        record_dataset(paths, {"name": "x"})
    assert json.loads(paths.datasets_json.read_text()) == {"not": "a list"}  # left intact
