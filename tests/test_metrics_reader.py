"""The catalog's chunk reader returns exactly what the zarr API reads, and fails cleanly."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from numcodecs.zstd import compress as zstd_compress

from hpclab.catalog import metrics_reader
from hpclab.catalog.metrics_reader import read_run_metrics, read_series
from hpclab.errors import StoreError, UnsupportedCodec
from hpclab.tracking.metrics import (
    MetricSeries,
    MetricWriter,
    encode_metric_name,
    read_commit,
    read_metrics,
)

NAMES = ("train/loss", "lr", "odd values")


def rows(s: MetricSeries) -> np.ndarray:
    return np.column_stack([s.step, s.value, s.wall_time])


def reference(path: Path) -> dict[str, np.ndarray]:
    return {name: rows(s) for name, s in read_metrics(path).items()}


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == np.float64 and got[name].shape == want[name].shape, name
        assert np.array_equal(got[name], want[name], equal_nan=True), name


def value(name: str, i: int) -> float:
    if name == "odd values":  # NaN and infinities are stored as they are
        return (math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324)[i % 6]
    return 1.0 / (i + 1) if name == "train/loss" else i * 1e-3


def write(path: Path, n: int, *, chunk_rows: int, flush_every: int = 0) -> MetricWriter:
    """``n`` steps of every metric, flushed every ``flush_every`` steps (0: at the end)."""
    w = MetricWriter(path, chunk_rows=chunk_rows)
    for i in range(n):
        w.log({name: value(name, i) for name in NAMES}, step=3 * i)
        if flush_every and (i + 1) % flush_every == 0:
            assert w.flush()
    assert w.flush()
    return w


def array_dir(path: Path, name: str) -> Path:
    return path / encode_metric_name(name)


# -- same results as the zarr API ----------------------------------------------------------
@pytest.mark.parametrize(
    ("chunk_rows", "n", "flush_every"),
    [
        (7, 1, 0),  # less than a chunk
        (7, 6, 0),
        (7, 7, 0),  # exactly one chunk
        (7, 14, 0),  # exact multiples
        (7, 15, 4),  # several chunks, tail chunk rewritten by each flush
        (7, 50, 3),
        (1, 9, 2),  # one row per chunk
        (16, 100, 0),
        (4096, 5000, 1000),  # the default layout
        (4096, 8192, 0),
    ],
)
def test_same_as_zarr_api(weird_tmp_path: Path, chunk_rows: int, n: int, flush_every: int) -> None:
    path = weird_tmp_path / "metrics.zarr"
    write(path, n, chunk_rows=chunk_rows, flush_every=flush_every)
    want = reference(path)
    assert all(len(v) == n for v in want.values())
    assert_same(read_run_metrics(path), want)
    # the fast path really ran on the writer's arrays
    layout = metrics_reader._layout(os.fspath(array_dir(path, "lr")))
    assert layout.chunk_rows == chunk_rows
    assert layout.codecs is not None and layout.codecs.plain_zstd


@pytest.mark.parametrize(("chunk_rows", "n"), [(5, 23), (4, 16), (4096, 4100)])
def test_start_anywhere(tmp_path: Path, chunk_rows: int, n: int) -> None:
    path = tmp_path / "metrics.zarr"
    write(path, n, chunk_rows=chunk_rows)
    want = reference(path)
    starts = sorted({0, 1, chunk_rows - 1, chunk_rows, chunk_rows + 1, n - 1, n, n + 3})
    for start in starts:
        for name in NAMES:
            got = read_series(array_dir(path, name), n, start)
            assert np.array_equal(got, want[name][start:], equal_nan=True), (name, start)
            # and any committed prefix of it
            got = read_series(array_dir(path, name), n - 1, start)
            assert np.array_equal(got, want[name][start : n - 1], equal_nan=True)
        since = dict.fromkeys(NAMES, start)
        got_all = read_run_metrics(path, since=since)
        assert_same(got_all, {k: v[start:] for k, v in want.items()})


def test_since_is_per_metric_and_unknown_names_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "metrics.zarr"
    write(path, 30, chunk_rows=8)
    want = reference(path)
    got = read_run_metrics(path, since={"lr": 17, "train/loss": 30, "not a metric": 5})
    assert np.array_equal(got["lr"], want["lr"][17:])
    assert got["train/loss"].shape == (0, 3)
    assert np.array_equal(got["odd values"], want["odd values"], equal_nan=True)
    # past the committed length (the store was replaced): nothing, not an error
    assert read_run_metrics(path, since={"lr": 99})["lr"].shape == (0, 3)


def test_incremental_tail_after_append(tmp_path: Path) -> None:
    path = tmp_path / "metrics.zarr"
    write(path, 20, chunk_rows=8)
    since = {n: int(i["length"]) for n, i in read_commit(path)["series"].items()}
    read_run_metrics(path)  # cache the layout of every array
    w = MetricWriter(path, chunk_rows=8)  # a resumed writer appends after the commit
    for i in range(20, 27):
        w.log({name: value(name, i) for name in NAMES}, step=3 * i)
    assert w.flush()
    got = read_run_metrics(path, since=since)
    want = reference(path)
    assert_same(got, {k: v[20:] for k, v in want.items()})
    assert all(len(v) == 7 for v in got.values())


def test_empty_cases(tmp_path: Path) -> None:
    assert read_run_metrics(tmp_path / "never written.zarr") == {}
    # nothing to read: no file is touched, not even the metadata
    assert read_series(tmp_path / "missing", 0).shape == (0, 3)
    path = tmp_path / "metrics.zarr"
    write(path, 3, chunk_rows=4)
    assert read_series(array_dir(path, "lr"), 3, 3).shape == (0, 3)
    with pytest.raises(ValueError):
        read_series(array_dir(path, "lr"), 3, -1)


def test_small_tail_is_not_a_view_of_whole_chunks(tmp_path: Path) -> None:
    path = tmp_path / "metrics.zarr"
    write(path, 4100, chunk_rows=4096)
    tail = read_series(array_dir(path, "lr"), 4100, 4095)
    assert tail.shape == (5, 3) and tail.base is None and tail.flags.c_contiguous


# -- rows past the committed length ----------------------------------------------------------
@pytest.mark.parametrize(("chunk_rows", "n", "extra"), [(4, 10, 7), (8, 8, 8), (4096, 100, 5000)])
def test_uncommitted_rows_are_never_returned(
    tmp_path: Path, chunk_rows: int, n: int, extra: int
) -> None:
    path = tmp_path / "metrics.zarr"
    write(path, n, chunk_rows=chunk_rows)
    want = reference(path)
    # a writer killed after resizing and writing data, before its commit
    for name in NAMES:
        arr = zarr.open_array(store=str(array_dir(path, name)), mode="r+")
        arr.resize((n + extra, 3))
        arr[n:] = np.full((extra, 3), -7.0)
    assert read_commit(path)["series"]["lr"]["length"] == n
    assert_same(read_run_metrics(path), want)
    for start in (0, n - 1, n):
        got = read_series(array_dir(path, "lr"), n, start)
        assert np.array_equal(got, want["lr"][start:])
    # resized but killed before any data was written: fill values past the commit
    arr = zarr.open_array(store=str(array_dir(path, "lr")), mode="r+")
    arr.resize((n + 2 * extra, 3))
    assert_same(read_run_metrics(path), want)


# -- the general path for other layouts ------------------------------------------------------
def make_foreign_store(path: Path, data: dict[str, np.ndarray], **array_kwargs: Any) -> None:
    """A metrics store written with zarr directly, in a layout our writer does not use."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    series: dict[str, Any] = {}
    for name, block in data.items():
        enc = encode_metric_name(name)
        arr = group.create_array(name=enc, shape=block.shape, dtype="float64", **array_kwargs)
        arr[:] = block
        series[name] = {"array": enc, "length": len(block), "last_step": int(block[-1, 0])}
    group.attrs.put({"hpclab": {"format": 1, "columns": ["step", "value", "wall_time"],
                                "seq": 1, "series": series}})  # fmt: skip


def sample_rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    block = np.column_stack([np.arange(n) * 2.0, rng.normal(size=n), 1.7e9 + np.arange(n)])
    block[::7, 1] = np.nan
    block[3::11, 1] = np.inf
    return block


@pytest.mark.parametrize(
    "array_kwargs",
    [
        {"chunks": (5, 3), "compressors": [zarr.codecs.GzipCodec(level=1)]},
        {"chunks": (5, 3), "compressors": None},
        {"chunks": (6, 3), "serializer": zarr.codecs.BytesCodec(endian="big")},
        {"chunks": (5, 3), "chunk_key_encoding": {"name": "default", "separator": "."}},
        {"chunks": (5, 3), "chunk_key_encoding": {"name": "v2", "separator": "/"}},
        {"chunks": (4, 1)},  # columns in separate chunks
        {"chunks": (4, 2)},  # the last column chunk half outside the array
        {"chunks": (5, 3), "filters": [zarr.codecs.TransposeCodec(order=(1, 0))]},
        {
            "chunks": (7, 3),
            "filters": [zarr.codecs.TransposeCodec(order=(1, 0))],
            "serializer": zarr.codecs.BytesCodec(endian="big"),
            "compressors": [zarr.codecs.BloscCodec(cname="lz4", shuffle="bitshuffle")],
        },
        {
            "chunks": (5, 3),
            "compressors": [zarr.codecs.ZstdCodec(level=3), zarr.codecs.Crc32cCodec()],
        },
        {"chunks": (5, 3), "compressors": [zarr.codecs.BloscCodec(), zarr.codecs.GzipCodec()]},
    ],
    ids=[
        "gzip",
        "uncompressed",
        "big-endian",
        "dot-keys",
        "v2-keys",
        "column-chunks",
        "partial-column-chunk",
        "transpose",
        "transpose-big-endian-blosc",
        "zstd-crc32c",
        "blosc-then-gzip",
    ],
)
def test_other_codec_pipelines_are_read_directly(
    weird_tmp_path: Path, array_kwargs: dict[str, Any]
) -> None:
    """Arrays written by zarr itself with other codecs, endianness, chunk keys and chunk
    shapes: the chunk reader decodes them from their metadata, with zarr's own values."""
    path = weird_tmp_path / "metrics.zarr"
    data = {"a/b": sample_rows(23, 1), "c": sample_rows(16, 2)}
    make_foreign_store(path, data, **array_kwargs)
    layout = metrics_reader._layout(os.fspath(path / "c"))
    assert layout.codecs is not None, layout.unsupported
    want = reference(path)
    assert_same(read_run_metrics(path), want)
    assert_same(read_run_metrics(path, since={"a/b": 7}), {"a/b": want["a/b"][7:], "c": want["c"]})
    got = read_series(path / encode_metric_name("a/b"), 12, 3, fallback=False)
    assert np.array_equal(got, data["a/b"][3:12], equal_nan=True)


@pytest.mark.parametrize("dtype", ["float32", "int64", "uint16"])
def test_other_number_types_are_read_as_float64(tmp_path: Path, dtype: str) -> None:
    path = tmp_path / "metrics.zarr"
    block = np.column_stack([np.arange(20), np.arange(20) % 7, 1000 + np.arange(20)])
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    arr = group.create_array(name="x", shape=block.shape, dtype=dtype, chunks=(6, 3))
    arr[:] = block.astype(dtype)
    series = {"x": {"array": "x", "length": 20, "last_step": 19}}
    group.attrs.put({"hpclab": {"format": 1, "columns": ["step", "value", "wall_time"],
                                "seq": 1, "series": series}})  # fmt: skip
    got = read_series(path / "x", 20, 0, fallback=False)
    assert got.dtype == np.float64 and np.array_equal(got, block.astype(dtype).astype(np.float64))


def test_a_codec_the_reader_lacks_is_named_and_zarr_reads_it(weird_tmp_path: Path) -> None:
    """Sharding is not implemented by the chunk reader: it says so by name, and the default
    read goes through zarr with the same values."""
    path = weird_tmp_path / "metrics.zarr"
    data = {"a/b": sample_rows(23, 1)}
    make_foreign_store(path, data, chunks=(8, 3), shards=(16, 3))
    array = path / encode_metric_name("a/b")
    with pytest.raises(UnsupportedCodec, match="codec 'sharding_indexed' is not implemented") as e:
        read_series(array, 23, 0, fallback=False)
    assert str(array / "zarr.json") in str(e.value)
    assert isinstance(e.value, StoreError)
    assert_same(read_run_metrics(path), reference(path))
    assert np.array_equal(read_series(array, 12, 3), data["a/b"][3:12], equal_nan=True)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda m: m["codecs"].append({"name": "lzma9"}), "codec 'lzma9'"),
        (lambda m: m["codecs"].insert(0, {"name": "cast_value"}), "codec 'cast_value'"),
        (
            lambda m: m["codecs"][1].setdefault("configuration", {}).update(dict_size=3),
            "codec 'zstd' configuration 'dict_size'",
        ),
        (lambda m: m.update(data_type="complex128"), "data type 'complex128'"),
        (lambda m: m["chunk_grid"].update(name="rectilinear"), "chunk grid 'rectilinear'"),
        (lambda m: m.update(storage_transformers=[{"name": "t"}]), "storage transformer 't'"),
        (lambda m: m.update(future_key={"must_understand": True}), "metadata key 'future_key'"),
    ],
    ids=["unknown-codec", "cast-value", "codec-option", "dtype", "grid", "transformer", "key"],
)
def test_unsupported_metadata_is_an_error_naming_it(tmp_path: Path, edit: Any, named: str) -> None:
    path = tmp_path / "metrics.zarr"
    write(path, 10, chunk_rows=4)
    arr = array_dir(path, "lr")
    meta = json.loads((arr / "zarr.json").read_text())
    edit(meta)
    (arr / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(UnsupportedCodec, match=re.escape(named)) as e:
        read_series(arr, 10, 0, fallback=False)
    assert str(arr / "zarr.json") in str(e.value)
    # zarr cannot read these either: a StoreError naming the array and what is missing
    with pytest.raises(StoreError, match=re.escape(named)):
        read_series(arr, 10, 0)


def test_extensions_that_need_not_be_understood_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "metrics.zarr"
    write(path, 10, chunk_rows=4)
    arr = array_dir(path, "lr")
    meta = json.loads((arr / "zarr.json").read_text())
    meta["some_extension"] = {"must_understand": False, "x": 1}
    (arr / "zarr.json").write_text(json.dumps(meta))
    metrics_reader._layouts.clear()
    assert np.array_equal(read_series(arr, 10, 0, fallback=False)[:, 1], np.arange(10) * 1e-3)


def test_zstd_level_and_checksum_keep_the_fast_path(tmp_path: Path) -> None:
    path = tmp_path / "metrics.zarr"
    data = {"x": sample_rows(30, 3)}
    make_foreign_store(
        path,
        data,
        chunks=(8, 3),
        compressors=[zarr.codecs.ZstdCodec(level=9, checksum=True)],
        fill_value=np.nan,
    )
    assert metrics_reader._layout(os.fspath(path / "x")).chunk_rows == 8
    assert_same(read_run_metrics(path), reference(path))


def test_layout_change_is_noticed(tmp_path: Path) -> None:
    """The metadata cache keys on the file's identity: a rewritten array is re-parsed."""
    path = tmp_path / "metrics.zarr"
    write(path, 40, chunk_rows=4)
    read_run_metrics(path)
    shutil.rmtree(path)
    write(path, 40, chunk_rows=16)
    assert_same(read_run_metrics(path), reference(path))
    assert metrics_reader._layout(os.fspath(array_dir(path, "lr"))).chunk_rows == 16


# -- damaged stores ------------------------------------------------------------------------------
def damaged(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "metrics.zarr"
    write(path, 20, chunk_rows=8)
    return path, array_dir(path, "train/loss")


def test_missing_chunk_names_the_file(weird_tmp_path: Path) -> None:
    path, arr = damaged(weird_tmp_path)
    chunk = arr / "c" / "1" / "0"
    chunk.unlink()
    with pytest.raises(StoreError, match="chunk missing") as e:
        read_run_metrics(path)
    assert str(chunk) in str(e.value)
    # a read that does not need that chunk still works
    assert len(read_series(arr, 20, 16)) == 4


def test_truncated_chunk_names_the_file(tmp_path: Path) -> None:
    path, arr = damaged(tmp_path)
    chunk = arr / "c" / "0" / "0"
    raw = chunk.read_bytes()
    chunk.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StoreError, match="corrupt chunk") as e:
        read_run_metrics(path)
    assert str(chunk) in str(e.value)


@pytest.mark.parametrize("extra", ["a second frame", "trailing bytes"])
def test_a_chunk_with_more_than_its_frame_is_corrupt(tmp_path: Path, extra: str) -> None:
    """A chunk is one frame of exactly its rows: a frame of the right size followed by
    anything (a second frame, stray bytes) is not read as if the rest were not there."""
    path, arr = damaged(tmp_path)
    chunk = arr / "c" / "0" / "0"
    raw = chunk.read_bytes()
    chunk.write_bytes(raw + (raw if extra == "a second frame" else b"\0\0\0\0"))
    with pytest.raises(StoreError, match="corrupt chunk") as e:
        read_run_metrics(path)
    assert str(chunk) in str(e.value)


@pytest.mark.parametrize("rows_in_chunk", [5, 9])
def test_wrong_size_chunk_names_the_file(tmp_path: Path, rows_in_chunk: int) -> None:
    path, arr = damaged(tmp_path)
    chunk = arr / "c" / "2" / "0"
    chunk.write_bytes(zstd_compress(np.zeros((rows_in_chunk, 3)).tobytes(), 1))
    with pytest.raises(StoreError, match="decodes to") as e:
        read_run_metrics(path)
    assert str(chunk) in str(e.value)


def test_garbage_chunk_and_metadata(tmp_path: Path) -> None:
    path, arr = damaged(tmp_path)
    (arr / "c" / "0" / "0").write_bytes(b"not zstd at all")
    with pytest.raises(StoreError, match="corrupt chunk"):
        read_run_metrics(path)
    (arr / "zarr.json").write_text("{ broken")
    with pytest.raises(StoreError, match="not valid JSON") as e:
        read_run_metrics(path)
    assert str(arr / "zarr.json") in str(e.value)
    (arr / "zarr.json").unlink()
    with pytest.raises(StoreError, match="metadata is missing"):
        read_run_metrics(path)


def test_commit_longer_than_array_is_an_error(tmp_path: Path) -> None:
    path, arr = damaged(tmp_path)
    zarr.open_array(store=str(arr), mode="r+").resize((10, 3))
    with pytest.raises(StoreError, match="fewer than the 20 committed"):
        read_run_metrics(path)


@pytest.mark.parametrize("bad", ["../elsewhere", "", "..", "a/b", 7])
def test_commit_cannot_point_outside_the_store(tmp_path: Path, bad: object) -> None:
    import json

    path, _ = damaged(tmp_path)
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["hpclab"]["series"]["lr"]["array"] = bad
    meta.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="invalid array") as e:
        read_run_metrics(path)
    assert str(meta) in str(e.value)


# -- the writer's layout claim (chunk_rows in the commit record) ---------------------------
def set_claim(path: Path, name: str, chunk_rows: int | None) -> None:
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    entry = doc["attributes"]["hpclab"]["series"][name]
    if chunk_rows is None:
        entry.pop("chunk_rows")
    else:
        entry["chunk_rows"] = chunk_rows
    meta.write_text(json.dumps(doc))


def test_the_writer_claims_its_layout_and_the_reader_needs_no_array_metadata(
    weird_tmp_path: Path,
) -> None:
    """The commit names each array's rows per chunk, so reading opens the chunks alone:
    with every array's zarr.json replaced by garbage the rows are the same; without the
    claim the same read has to parse the metadata and fails naming it."""
    path = weird_tmp_path / "metrics.zarr"
    write(path, 50, chunk_rows=8, flush_every=7)
    series = read_commit(path)["series"]
    assert {n: e.get("chunk_rows") for n, e in series.items()} == dict.fromkeys(NAMES, 8)
    want = reference(path)
    for name in NAMES:
        (array_dir(path, name) / "zarr.json").write_text("{ broken")
    metrics_reader._layouts.clear()
    assert_same(read_run_metrics(path), want)
    tail = read_run_metrics(path, since={"lr": 45})["lr"]
    assert np.array_equal(tail, want["lr"][45:])
    set_claim(path, "lr", None)
    with pytest.raises(StoreError, match="not valid JSON") as e:
        read_run_metrics(path)
    assert str(array_dir(path, "lr") / "zarr.json") in str(e.value)


@pytest.mark.parametrize("claim", [4, 16, 3])
def test_a_claim_that_does_not_hold_falls_back_to_the_metadata(tmp_path: Path, claim: int) -> None:
    """A commit whose chunk_rows is not the array's (chunk files of another size, or
    missing where the claim puts them) is read by the array's zarr.json, correctly."""
    path = tmp_path / "metrics.zarr"
    write(path, 30, chunk_rows=8)
    want = reference(path)
    set_claim(path, "train/loss", claim)
    assert_same(read_run_metrics(path), want)


def test_arrays_in_another_layout_are_never_claimed(tmp_path: Path) -> None:
    """A writer appending to a store zarr made (gzip chunks of 5 rows) commits those
    arrays without chunk_rows; an array it creates beside them has the claim."""
    path = tmp_path / "metrics.zarr"
    make_foreign_store(
        path, {"old": sample_rows(12, 1)}, chunks=(5, 3), compressors=[zarr.codecs.GzipCodec()]
    )
    w = MetricWriter(path, chunk_rows=8)
    w.log({"old": 1.0, "new": 2.0}, step=100)
    assert w.flush()
    series = read_commit(path)["series"]
    assert "chunk_rows" not in series["old"] and series["new"]["chunk_rows"] == 8
    got = read_run_metrics(path)
    assert got["old"].shape == (13, 3) and got["old"][-1, 0] == 100
    assert_same(got, reference(path))


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ([1, 2], "malformed metrics metadata"),
        ({"attributes": []}, None),  # no attributes object: nothing committed
        ({"attributes": {"hpclab": []}}, "malformed metrics metadata"),
        ({"attributes": {"hpclab": {"format": "1", "series": {}}}}, "malformed metrics format"),
        ({"attributes": {"hpclab": {"format": 99, "series": {}}}}, "newer than this hpclab"),
    ],
    ids=["list", "attributes-list", "commit-list", "format-text", "format-newer"],
)
def test_a_malformed_commit_record_is_an_error_naming_it(
    tmp_path: Path, doc: Any, words: str | None
) -> None:
    path = tmp_path / "metrics.zarr"
    write(path, 3, chunk_rows=4)
    (path / "zarr.json").write_text(json.dumps(doc))
    if words is None:
        assert read_commit(path) == {} and read_run_metrics(path) == {}
        return
    with pytest.raises(StoreError, match=re.escape(str(path / "zarr.json")) + ".*" + words):
        read_run_metrics(path)
