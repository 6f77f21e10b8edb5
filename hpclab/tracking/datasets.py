"""Data fingerprints: which bytes a run read, and what shape they had.

A fingerprint names a file or directory, lists every file in a stable (sorted) order
with its size and sha256, combines those into one sha256 for the whole dataset, and
describes each file it can read (CSV/TSV, JSON, JSON Lines, Parquet, HDF5, Zarr) in a
``schema``. A Zarr store is one dataset: its chunk files are hashed, but it gets one
schema, attached to the store's root metadata file (and to the fingerprint itself when
the dataset is the store).

The combined ``sha256`` is over the lines ``<relpath>\\0<sha256>\\n`` of all files, so it
changes when any file is renamed, added, removed or edited, and not when only mtimes do.
A file that cannot be parsed gets ``{"format": ..., "error": "..."}``: a fingerprint
records the data, it does not validate it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hpclab.errors import DatasetError
from hpclab.store.atomic import read_json, write_json_atomic
from hpclab.store.documents import DatasetEntry, DatasetFile, DatasetsDocument
from hpclab.store.layout import RunPaths

BLOCK = 1 << 20
SAMPLE_ROWS = 100  # rows (or records, or list items) read to guess types and keys
MAX_JSON_BYTES = 256 << 20  # a whole-document JSON parse beyond this costs too much memory
MAX_KEYS = 1000
ZARR_META = ("zarr.json", ".zgroup", ".zarray")  # v3, then v2 group / array


def fingerprint_dataset(path: Path, *, name: str | None = None, hash: bool = True) -> DatasetEntry:
    """Fingerprint the file or directory ``path``.

    With ``hash=False`` sizes and schemas are recorded but nothing is hashed: every
    ``sha256`` is None (for data too large to hash at every run start).
    Raises :class:`DatasetError` if ``path`` does not exist.
    """
    path = Path(path).absolute()
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist")
    files: list[DatasetFile] = []
    try:
        listing = [(path.name, path)] if path.is_file() else list(_walk(path))
        for rel, full in listing:
            size = full.stat().st_size
            files.append({"path": rel, "size": size, "sha256": _sha256(full) if hash else None})
    except OSError as e:
        raise DatasetError(f"cannot read dataset {path}: {e}") from None
    kind = "file" if path.is_file() else "directory"
    sha256 = _combined(files) if hash else None
    schema: dict[str, Any] | None = None
    if kind == "file" or _is_zarr(path):
        schema = detect_schema(path)
        if kind == "file" and schema is not None:
            files[0]["schema"] = schema
    else:
        _attach_schemas(path, files)
    return {
        "name": name or path.name,
        "path": str(path),
        "kind": kind,
        "size": sum(f["size"] for f in files),
        "n_files": len(files),
        "sha256": sha256,
        "schema": schema,
        "files": files,
    }


def record_dataset(paths: RunPaths, entry: DatasetEntry) -> None:
    """Add ``entry`` to the run's ``datasets.json``, replacing an entry of the same name."""
    if not isinstance(entry, dict) or not entry.get("name"):
        raise DatasetError("a dataset entry needs a 'name'")
    paths.snapshot_dir.mkdir(parents=True, exist_ok=True)
    entries: DatasetsDocument = []
    if paths.datasets_json.exists():
        existing = read_json(paths.datasets_json)
        if not isinstance(existing, list):
            raise DatasetError(f"{paths.datasets_json}: expected a JSON list of datasets")
        entries = existing
    for i, old in enumerate(entries):
        if isinstance(old, dict) and old.get("name") == entry["name"]:
            entries[i] = entry  # keep its position: the order datasets were first recorded
            break
    else:
        entries.append(entry)
    write_json_atomic(paths.datasets_json, entries)


def detect_schema(path: Path) -> dict[str, Any] | None:
    """Schema of one file (or Zarr store) from its extension; None for unknown kinds."""
    suffix = path.suffix.lower()
    if path.is_dir():
        return _guard("zarr", _zarr_schema, path) if _is_zarr(path) else None
    if suffix in (".csv", ".tsv"):
        delimiter = "\t" if suffix == ".tsv" else ","
        return _guard(suffix[1:], lambda p: _csv_schema(p, delimiter), path)
    if suffix == ".json":
        return _guard("json", _json_schema, path)
    if suffix in (".jsonl", ".ndjson"):
        return _guard("jsonl", _jsonl_schema, path)
    if suffix in (".parquet", ".pq"):
        return _guard("parquet", _parquet_schema, path)
    if suffix in (".h5", ".hdf5"):
        return _guard("hdf5", _hdf5_schema, path)
    return None


# -- walking and hashing --------------------------------------------------------------


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(posix relpath, path) of every file under ``root``, sorted per directory.

    Symlinks are followed (datasets often link into shared storage), each real
    directory once, so a link cycle cannot loop forever.
    """
    seen: set[tuple[int, int]] = set()

    def visit(directory: Path, prefix: str) -> Iterator[tuple[str, Path]]:
        st = directory.stat()
        if (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            full = Path(e.path)
            if e.is_dir():
                yield from visit(full, f"{prefix}{e.name}/")
            elif e.is_file():
                yield f"{prefix}{e.name}", full

    yield from visit(root, "")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def _combined(files: list[DatasetFile]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(os.fsencode(f["path"]) + b"\0" + str(f["sha256"]).encode() + b"\n")
    return h.hexdigest()


def _is_zarr(path: Path) -> bool:
    return path.is_dir() and path.name.lower().endswith(".zarr")


def _attach_schemas(root: Path, files: list[DatasetFile]) -> None:
    """Give each file of a plain directory its schema. A Zarr store inside it gets one
    schema, on its root metadata file; its other files (chunks) get none."""
    for f in files:
        parts = f["path"].split("/")
        store = next((i for i, p in enumerate(parts[:-1]) if p.lower().endswith(".zarr")), None)
        if store is None:
            found = detect_schema(root / f["path"])
        elif store == len(parts) - 2 and parts[-1] in ZARR_META:
            found = detect_schema(root.joinpath(*parts[:-1]))
        else:
            found = None
        if found is not None:
            f["schema"] = found


def _guard(fmt: str, fn: Callable[[Path], dict[str, Any]], path: Path) -> dict[str, Any]:
    """Run one schema reader; any failure becomes an ``error`` in the schema."""
    try:
        return {"format": fmt, **fn(path)}
    except Exception as e:  # corrupt or unreadable data is recorded, not fatal
        return {"format": fmt, "error": f"{type(e).__name__}: {e}"}


# -- schema readers -------------------------------------------------------------------


def _csv_schema(path: Path, delimiter: str) -> dict[str, Any]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return {"columns": [], "rows": 0}
        samples: list[list[str]] = []
        rows = 0
        for row in reader:
            if rows < SAMPLE_ROWS:
                samples.append(row)
            rows += 1
    columns = [
        {"name": col, "type": _guess_type([r[i] for r in samples if i < len(r)])}
        for i, col in enumerate(header)
    ]
    return {"columns": columns, "rows": rows}


def _guess_type(values: list[str]) -> str:
    values = [v.strip() for v in values if v.strip()]
    if not values:
        return "string"
    for kind, check in (("bool", _is_bool), ("int", _is_int), ("float", _is_float)):
        if all(check(v) for v in values):
            return kind
    return "string"


def _is_bool(v: str) -> bool:
    return v.lower() in ("true", "false")


def _is_int(v: str) -> bool:
    try:
        int(v)
        return True
    except ValueError:
        return False


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
               int: "number", float: "number"}  # fmt: skip


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "unknown")


def _item_keys(items: list[Any]) -> list[str]:
    keys: dict[str, None] = {}
    for item in items[:SAMPLE_ROWS]:
        if isinstance(item, dict):
            keys.update(dict.fromkeys(item))
    return sorted(keys)[:MAX_KEYS]


def _json_schema(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"{size} bytes is too large to parse (limit {MAX_JSON_BYTES})")
    with open(path, "rb") as f:
        doc = json.load(f)
    out: dict[str, Any] = {"type": _json_type(doc)}
    if isinstance(doc, dict):
        out["keys"] = list(doc)[:MAX_KEYS]
    elif isinstance(doc, list):
        out["length"] = len(doc)
        out["item_types"] = sorted({_json_type(x) for x in doc[:SAMPLE_ROWS]})
        out["item_keys"] = _item_keys(doc)
    return out


def _jsonl_schema(path: Path) -> dict[str, Any]:
    records = 0
    sample: list[Any] = []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if records < SAMPLE_ROWS:
                try:
                    sample.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"line {lineno}: {e.msg}") from None
            records += 1
    return {
        "records": records,
        "item_types": sorted({_json_type(x) for x in sample}),
        "item_keys": _item_keys(sample),
    }


def _parquet_schema(path: Path) -> dict[str, Any]:
    import duckdb  # heavy; only when a Parquet file is fingerprinted

    con = duckdb.connect(":memory:")
    try:
        # A literal (quotes doubled), since table functions do not bind parameters in
        # every duckdb release; glob characters in the name would still be expanded.
        src = "read_parquet('" + str(path).replace("'", "''") + "')"
        described = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
        row = con.execute(f"SELECT count(*) FROM {src}").fetchone()
    finally:
        con.close()
    return {
        "columns": [{"name": r[0], "type": r[1]} for r in described],
        "rows": int(row[0]) if row else 0,
    }


def _hdf5_schema(path: Path) -> dict[str, Any]:
    import h5py

    datasets: list[dict[str, Any]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            datasets.append({"name": "/" + name, "shape": list(obj.shape), "dtype": str(obj.dtype)})

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return {"datasets": datasets}


def _zarr_schema(path: Path) -> dict[str, Any]:
    import zarr

    node = zarr.open(store=str(path), mode="r")
    arrays: list[dict[str, Any]] = []
    if isinstance(node, zarr.Array):
        arrays.append(_zarr_array("/", node))
    else:
        for member_path, member in sorted(node.members(max_depth=None), key=lambda m: m[0]):
            if isinstance(member, zarr.Array):
                arrays.append(_zarr_array(member_path, member))
    return {"zarr_format": node.metadata.zarr_format, "arrays": arrays}


def _zarr_array(name: str, arr: Any) -> dict[str, Any]:
    return {"path": name, "shape": list(arr.shape), "dtype": str(arr.dtype)}
