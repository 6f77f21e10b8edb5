"""Zarr v3 chunks decoded as the array's ``zarr.json`` says, by the v3 core spec.

The catalog reads metric chunks itself (:mod:`hpclab.catalog.metrics_reader`: the zarr
API costs milliseconds per array). Which codecs an array went through is read from its
metadata, never assumed: the ``codecs`` list is zero or more array-to-array codecs
(``transpose``), one array-to-bytes codec (``bytes``, with its ``endian``) and zero or more
bytes-to-bytes codecs (``zstd``, ``gzip``, ``blosc``, ``crc32c``); decoding runs them
backwards. Anything else (``sharding_indexed``, ``cast_value``, a ``numcodecs.*`` codec,
a rectilinear chunk grid, a storage transformer, a data type that is not a plain number,
an unknown metadata key that must be understood) raises :class:`UnsupportedCodec` naming
it and the file: callers fall back to the zarr API for those.

Spec: https://zarr-specs.readthedocs.io/en/latest/v3/core/index.html and its codecs.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpclab.errors import StoreError, UnsupportedCodec

__all__ = ["ChunkCodecs", "parse_array_metadata"]

# core data types (v3 spec): name -> numpy kind and size (byte order from the bytes codec)
_DATA_TYPES = {
    "bool": "b1",
    **{f"int{b}": f"i{b // 8}" for b in (8, 16, 32, 64)},
    **{f"uint{b}": f"u{b // 8}" for b in (8, 16, 32, 64)},
    **{f"float{b}": f"f{b // 8}" for b in (16, 32, 64)},
}
_KNOWN_KEYS = {
    "zarr_format",
    "node_type",
    "shape",
    "data_type",
    "chunk_grid",
    "chunk_key_encoding",
    "fill_value",
    "codecs",
    "attributes",
    "storage_transformers",
    "dimension_names",
}
# bytes-to-bytes codecs: name -> configuration keys understood
_COMPRESSORS = {
    "zstd": {"level", "checksum"},
    "gzip": {"level"},
    "blosc": {"cname", "clevel", "shuffle", "typesize", "blocksize"},
    "crc32c": set(),
}


@dataclass(frozen=True)
class ChunkCodecs:
    """How one array's chunks are named and encoded."""

    chunk_shape: tuple[int, ...]
    dtype: np.dtype[Any]  # as stored: the bytes codec's byte order
    transposes: tuple[tuple[int, ...], ...]  # array-to-array codecs, in encoding order
    compressors: tuple[tuple[str, Mapping[str, Any]], ...]  # bytes-to-bytes, encoding order
    key_prefix: str  # "c" + separator (default encoding) or "" (v2 encoding)
    separator: str

    def key(self, index: tuple[int, ...]) -> str:
        """The chunk's key: its path under the array's directory, '/'-separated."""
        return self.key_prefix + self.separator.join(map(str, index))

    @property
    def encoded_shape(self) -> tuple[int, ...]:
        """The chunk's shape as the bytes codec serialised it (after the transposes)."""
        shape = self.chunk_shape
        for order in self.transposes:
            shape = tuple(shape[i] for i in order)
        return shape

    @property
    def nbytes(self) -> int:
        return math.prod(self.chunk_shape) * self.dtype.itemsize

    @property
    def plain_zstd(self) -> bool:
        """Native-order float64 bytes, no transpose, zstd alone: the writer's layout, which
        can be decompressed straight into the destination."""
        return (
            self.dtype == np.dtype("=f8")
            and not self.transposes
            and len(self.compressors) == 1
            and self.compressors[0][0] == "zstd"
        )

    def decode(self, raw: bytes, where: str) -> np.ndarray:
        """One chunk's bytes as an array of ``chunk_shape`` (StoreError naming ``where``
        when they are corrupt)."""
        data: Any = raw
        try:
            for name, _ in reversed(self.compressors):
                data = _DECODERS[name](data)
        except (RuntimeError, ValueError, OSError, EOFError, zlib.error) as e:
            raise StoreError(f"{where}: corrupt chunk ({e})") from None
        data = memoryview(data).cast("B")
        if len(data) != self.nbytes:
            raise StoreError(f"{where}: chunk decodes to {len(data)} bytes, expected {self.nbytes}")
        arr = np.frombuffer(data, dtype=self.dtype).reshape(self.encoded_shape)
        for order in reversed(self.transposes):
            arr = arr.transpose(np.argsort(order))
        return arr


def parse_array_metadata(doc: Mapping[str, Any], where: str) -> ChunkCodecs:
    """The chunk codecs of a v3 array's metadata (``where``: its path, for messages).
    Raises UnsupportedCodec for what is not implemented here, StoreError when malformed."""
    try:
        return _parse(doc, where)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise StoreError(f"{where}: malformed array metadata ({e!r})") from None


def _parse(doc: Mapping[str, Any], where: str) -> ChunkCodecs:
    if doc["zarr_format"] != 3 or doc["node_type"] != "array":
        raise UnsupportedCodec(f"{where}: not a Zarr v3 array")
    for key, value in doc.items():
        if key not in _KNOWN_KEYS and not (
            isinstance(value, Mapping) and value.get("must_understand") is False
        ):
            raise UnsupportedCodec(f"{where}: metadata key {key!r} is not implemented")
    if doc.get("storage_transformers"):
        names = [_named(t, where)[0] for t in doc["storage_transformers"]]
        raise UnsupportedCodec(f"{where}: storage transformer {names[0]!r} is not implemented")
    ndim = len(doc["shape"])
    data_type = doc["data_type"]
    if not isinstance(data_type, str) or data_type not in _DATA_TYPES:
        raise UnsupportedCodec(f"{where}: data type {data_type!r} is not implemented")
    grid, grid_conf = _named(doc["chunk_grid"], where)
    if grid != "regular":
        raise UnsupportedCodec(f"{where}: chunk grid {grid!r} is not implemented")
    chunk_shape = tuple(grid_conf["chunk_shape"])
    if len(chunk_shape) != ndim or not all(type(n) is int and n > 0 for n in chunk_shape):
        raise StoreError(f"{where}: chunk shape {list(chunk_shape)} does not fit the array")
    encoding, enc_conf = _named(doc["chunk_key_encoding"], where)
    if encoding == "default":
        separator = enc_conf.get("separator", "/")
        prefix = "c" + str(separator)
    elif encoding == "v2":
        prefix, separator = "", enc_conf.get("separator", ".")
    else:
        raise UnsupportedCodec(f"{where}: chunk key encoding {encoding!r} is not implemented")
    if separator not in ("/", "."):
        raise StoreError(f"{where}: chunk key separator {separator!r} is not '/' or '.'")

    transposes: list[tuple[int, ...]] = []
    compressors: list[tuple[str, Mapping[str, Any]]] = []
    dtype: np.dtype[Any] | None = None
    for codec in doc["codecs"]:
        name, conf = _named(codec, where)
        if dtype is None and name == "transpose":
            _only(conf, {"order"}, name, where)
            order = tuple(conf["order"])
            if sorted(order) != list(range(ndim)):
                raise StoreError(f"{where}: transpose order {list(order)} is not a permutation")
            transposes.append(order)
        elif dtype is None and name == "bytes":
            _only(conf, {"endian"}, name, where)
            dtype = _dtype(data_type, conf.get("endian"), where)
        elif dtype is not None and name in _COMPRESSORS:
            _only(conf, _COMPRESSORS[name], name, where)
            if name == "crc32c":
                _crc32c()  # importable, or the codec is not implemented here
            compressors.append((name, dict(conf)))
        else:
            raise UnsupportedCodec(f"{where}: codec {name!r} is not implemented (in {_names(doc)})")
    if dtype is None:
        raise StoreError(f"{where}: codecs {_names(doc)} have no array-to-bytes codec")
    return ChunkCodecs(chunk_shape, dtype, tuple(transposes), tuple(compressors), prefix, separator)


def _named(value: Any, where: str) -> tuple[str, Mapping[str, Any]]:
    """(name, configuration) of an extension point: an object, or a bare name string."""
    if isinstance(value, str):
        return value, {}
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise StoreError(f"{where}: malformed metadata entry {value!r}")
    conf = value.get("configuration") or {}
    if not isinstance(conf, Mapping):
        raise StoreError(f"{where}: malformed configuration of {value['name']!r}")
    return value["name"], conf


def _only(conf: Mapping[str, Any], known: set[str], name: str, where: str) -> None:
    unknown = sorted(set(conf) - known)
    if unknown:
        raise UnsupportedCodec(
            f"{where}: codec {name!r} configuration {unknown[0]!r} is not implemented"
        )


def _names(doc: Mapping[str, Any]) -> list[str]:
    return [c if isinstance(c, str) else str(c.get("name")) for c in doc.get("codecs", [])]


def _dtype(data_type: str, endian: Any, where: str) -> np.dtype[Any]:
    code = _DATA_TYPES[data_type]
    if code[1:] == "1":
        return np.dtype(code)  # one byte: no byte order
    if endian not in ("little", "big"):
        raise StoreError(f"{where}: bytes codec endian {endian!r} is not 'little' or 'big'")
    return np.dtype(("<" if endian == "little" else ">") + code)


def _zstd(data: Any) -> Any:
    from numcodecs.zstd import decompress

    return decompress(data)


def _blosc(data: Any) -> Any:
    from numcodecs.blosc import decompress

    return decompress(data)


def _crc32c() -> Callable[[Any], Any]:
    try:
        from numcodecs.checksum32 import CRC32C
    except ImportError:  # numcodecs without its crc32c backend
        raise UnsupportedCodec("codec 'crc32c' needs numcodecs with crc32c support") from None
    return CRC32C().decode


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "zstd": _zstd,
    "gzip": gzip.decompress,
    "blosc": _blosc,
    "crc32c": lambda data: _crc32c()(data),  # checks and strips the 4-byte checksum
}
