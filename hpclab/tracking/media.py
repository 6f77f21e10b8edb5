"""More than scalars: images, histograms and tables of a run, stored beside it.

Layout (``<run>/media/``, :class:`~hpclab.store.RunPaths`):

* ``index.jsonl``: one JSON object a line per logged item, ``{kind, name, step, file,
  sha256, bytes, ...}``, appended (what the catalog's ``media`` table indexes);
* images: content-addressed PNG files, ``images/<sha256>.png`` (the same picture logged
  twice is stored once); an array (``HxW``, ``HxWx3``, ``HxWx4``, or TensorBoard's
  ``CxHxW``; uint8, or floats in [0, 1]) or a PIL image's pixels encoded here with zlib,
  a path to a PNG/JPEG/WebP file copied as it is;
* histograms: ``histograms.zarr/<name>``, one row a step: ``[step, low, high, count_0 ..
  count_{bins-1}]`` over equal-width bins of the finite values;
* tables: ``tables/<sha256>.parquet`` (columns of numbers as DOUBLE, the rest as text).

Text goes to ``logs/text.jsonl`` (:meth:`hpclab.Run.log_text`). Limits, each a clear
:class:`~hpclab.errors.MediaError` naming the item: an image at most MAX_IMAGE_BYTES
encoded and MAX_IMAGE_PIXELS pixels, a table MAX_TABLE_ROWS rows by MAX_TABLE_COLUMNS,
a histogram MAX_HIST_BINS bins, and a run at most MAX_RUN_ITEMS items and
MAX_RUN_MEDIA_BYTES bytes of media.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpclab.errors import MediaError
from hpclab.store.atomic import write_bytes_atomic
from hpclab.store.record import utcnow_iso
from hpclab.tracking.metrics import check_metric_name, encode_metric_name

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000
MAX_TABLE_ROWS = 100_000
MAX_TABLE_COLUMNS = 200
MAX_HIST_BINS = 1024
MAX_RUN_ITEMS = 100_000
MAX_RUN_MEDIA_BYTES = 2 * 1024**3
_MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg", b"RIFF": "webp"}


class MediaLog:
    """The media of one run (rank 0): thread-safe appends to its ``media/``."""

    def __init__(self, media_dir: Path) -> None:
        self.dir = Path(media_dir)
        self._lock = threading.Lock()
        self._items, self._bytes = self._usage()

    def _usage(self) -> tuple[int, int]:
        index = self.dir / "index.jsonl"
        if not index.exists():
            return 0, 0
        n = total = 0
        for line in index.read_text(encoding="utf-8").splitlines():
            try:
                total += int(json.loads(line).get("bytes") or 0)
                n += 1
            except (ValueError, AttributeError):
                continue
        return n, total

    # -- images ---------------------------------------------------------------------
    def image(self, name: str, value: Any, step: int | None = None) -> dict[str, Any]:
        name = _name(name)
        data, fmt, width, height = _encode_image(name, value)
        if len(data) > MAX_IMAGE_BYTES:
            raise MediaError(
                f"image {name!r}: {len(data):,} bytes encoded, more than {MAX_IMAGE_BYTES:,}"
            )
        sha = hashlib.sha256(data).hexdigest()
        rel = f"images/{sha}.{fmt}"
        return self._add(
            {"kind": "image", "name": name, "step": step, "file": rel, "sha256": sha,
             "bytes": len(data), "width": width, "height": height, "format": fmt},
            rel, data,
        )  # fmt: skip

    # -- histograms -----------------------------------------------------------------
    def histogram(
        self, name: str, values: Any, step: int | None = None, bins: int = 64
    ) -> dict[str, Any]:
        import numpy as np

        name = _name(name)
        if type(bins) is not int or not 1 <= bins <= MAX_HIST_BINS:
            raise MediaError(f"histogram {name!r}: bins must be 1 to {MAX_HIST_BINS}, not {bins!r}")
        try:
            arr = np.asarray(_to_numpy(values), dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise MediaError(f"histogram {name!r}: values are not numbers") from None
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 0.0)
        counts, _ = np.histogram(finite, bins=bins, range=(lo, hi if hi > lo else lo + 1.0))
        row = np.concatenate(([-1 if step is None else step, lo, hi], counts)).astype(np.float64)
        with self._lock:
            self._check_room(name, 8 * len(row))
            at = self._append_hist(name, row)
        return self._add(
            {"kind": "histogram", "name": name, "step": step, "file": f"histograms.zarr/"
             f"{encode_metric_name(name)}", "row": at, "bins": bins, "low": lo, "high": hi,
             "n": int(len(finite)), "nonfinite": int(len(arr) - len(finite)),
             "bytes": 8 * len(row), "sha256": None},
            None, None,
        )  # fmt: skip

    def _append_hist(self, name: str, row: Any) -> int:
        import zarr

        path = self.dir / "histograms.zarr" / encode_metric_name(name)
        width = len(row)
        if (path / "zarr.json").exists():
            arr = zarr.open_array(store=str(path), mode="r+")
            if arr.shape[1] != width:
                raise MediaError(
                    f"histogram {name!r}: {width - 3} bins, but it was logged with "
                    f"{arr.shape[1] - 3}"
                )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            arr = zarr.create_array(
                store=str(path), shape=(0, width), chunks=(256, width), dtype="float64",
                attributes={"histogram": name, "columns": ["step", "low", "high", "counts..."]},
            )  # fmt: skip
        n = arr.shape[0]
        arr.resize((n + 1, width))
        arr[n] = row
        return n

    # -- tables ---------------------------------------------------------------------
    def table(self, name: str, rows: Any, step: int | None = None) -> dict[str, Any]:
        name = _name(name)
        columns, records = _table_rows(name, rows)
        data = _parquet(columns, records)
        sha = hashlib.sha256(data).hexdigest()
        rel = f"tables/{sha}.parquet"
        return self._add(
            {"kind": "table", "name": name, "step": step, "file": rel, "sha256": sha,
             "bytes": len(data), "rows": len(records), "columns": columns},
            rel, data,
        )  # fmt: skip

    # -- the index ------------------------------------------------------------------
    def _check_room(self, name: str, size: int) -> None:
        if self._items + 1 > MAX_RUN_ITEMS:
            raise MediaError(f"{name!r}: the run already holds {MAX_RUN_ITEMS:,} media items")
        if self._bytes + size > MAX_RUN_MEDIA_BYTES:
            raise MediaError(f"{name!r}: the run's media would pass {MAX_RUN_MEDIA_BYTES:,} bytes")

    def _add(self, entry: dict[str, Any], rel: str | None, data: bytes | None) -> dict[str, Any]:
        entry["logged_at"] = utcnow_iso()
        with self._lock:
            if data is not None:
                self._check_room(entry["name"], len(data))
                target = self.dir / rel  # type: ignore[operator]
                if not target.exists():  # content-addressed: the same bytes once
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_bytes_atomic(target, data, fsync=False)
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.dir / "index.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._items += 1
            self._bytes += int(entry.get("bytes") or 0)
        return entry


def read_media_index(media_dir: Path) -> list[dict[str, Any]]:
    """The run's media entries (malformed lines left out)."""
    index = Path(media_dir) / "index.jsonl"
    try:
        text = index.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("kind") in ("image", "histogram", "table"):
            out.append(entry)
    return out


# -- encoding --------------------------------------------------------------------------
def _name(name: Any) -> str:
    try:
        return check_metric_name(name)
    except Exception as e:
        raise MediaError(str(e)) from None


def _to_numpy(value: Any) -> Any:
    """Tensors (torch, on any device) as NumPy, other values as they are."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return value


def _encode_image(name: str, value: Any) -> tuple[bytes, str, int | None, int | None]:
    if isinstance(value, (str, os.PathLike, bytes)):
        where = "the bytes" if isinstance(value, bytes) else str(value)
        if isinstance(value, bytes):
            data = value
        else:
            try:
                data = Path(value).read_bytes()
            except OSError as e:
                raise MediaError(f"image {name!r}: cannot read {value} ({e.strerror})") from None
        for magic, fmt in _MAGIC.items():
            if data.startswith(magic) and (fmt != "webp" or data[8:12] == b"WEBP"):
                return data, fmt, None, None
        raise MediaError(f"image {name!r}: {where} is not a PNG, JPEG or WebP file")
    import numpy as np

    if type(value).__module__.startswith("PIL."):  # its pixels, encoded as arrays are:
        # the same picture has one hash whichever way it came
        value = np.asarray(value if value.mode in ("L", "RGB", "RGBA") else value.convert("RGBA"))

    try:
        arr = np.asarray(_to_numpy(value))
    except (TypeError, ValueError):
        raise MediaError(f"image {name!r}: not an array, a PIL image or a path") from None
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # CHW (TensorBoard's default) -> HWC
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise MediaError(f"image {name!r}: shape {arr.shape} is not HxW, HxWx3, HxWx4 or CxHxW")
    height, width = int(arr.shape[0]), int(arr.shape[1])
    if height * width > MAX_IMAGE_PIXELS or not height or not width:
        raise MediaError(f"image {name!r}: {width}x{height} pixels (1 to {MAX_IMAGE_PIXELS:,})")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "fiub":
            raise MediaError(f"image {name!r}: values of type {arr.dtype} are not pixels")
        f = arr.astype(np.float64)
        if arr.dtype.kind == "f":
            f = np.nan_to_num(f, nan=0.0) * 255.0  # floats are [0, 1]
        arr = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    return png(arr), "png", width, height


def png(arr: Any) -> bytes:
    """A PNG of a uint8 ``HxW`` (grey), ``HxWx3`` (RGB) or ``HxWx4`` (RGBA) array."""
    import numpy as np

    height, width = arr.shape[:2]
    colour = {2: 0, 3: {3: 2, 4: 6}.get(arr.shape[-1], -1)}[arr.ndim]
    raw = np.ascontiguousarray(arr).reshape(height, -1)
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), raw], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def _table_rows(name: str, rows: Any) -> tuple[list[str], list[list[Any]]]:
    """(column names, rows) of a list of dicts, a list of lists with ``columns``, a dict
    of columns, or anything with ``to_dict("records")`` (a pandas DataFrame)."""
    if hasattr(rows, "to_dict") and not isinstance(rows, Mapping):
        rows = rows.to_dict("records")
    if isinstance(rows, Mapping):  # columns
        cols = [str(c) for c in rows]
        lengths = {len(v) for v in rows.values()}
        if len(lengths) > 1:
            raise MediaError(f"table {name!r}: columns of different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        records = [[rows[c][i] for c in rows] for i in range(n)]
    elif isinstance(rows, Iterable) and not isinstance(rows, (str, bytes)):
        items = list(rows)
        if items and all(isinstance(r, Mapping) for r in items):
            cols = list(dict.fromkeys(str(k) for r in items for k in r))
            records = [[r.get(c) for c in cols] for r in items]
        elif items and all(isinstance(r, Sequence) and not isinstance(r, str) for r in items):
            width = max(len(r) for r in items)
            cols = [f"c{i}" for i in range(width)]
            records = [list(r) + [None] * (width - len(r)) for r in items]
        elif not items:
            cols, records = [], []
        else:
            raise MediaError(f"table {name!r}: rows must be all mappings or all sequences")
    else:
        raise MediaError(f"table {name!r}: not rows, columns or a DataFrame")
    if len(records) > MAX_TABLE_ROWS or len(cols) > MAX_TABLE_COLUMNS:
        raise MediaError(
            f"table {name!r}: {len(records):,} rows x {len(cols)} columns (at most "
            f"{MAX_TABLE_ROWS:,} x {MAX_TABLE_COLUMNS})"
        )
    return cols, records


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _parquet(columns: list[str], records: list[list[Any]]) -> bytes:
    """The table as Parquet bytes: a column of numbers (and nulls) as DOUBLE, any other
    as text (JSON for lists and mappings)."""
    import tempfile

    import duckdb

    numeric = [
        all(r[i] is None or _is_number(r[i]) for r in records) and records != []
        for i in range(len(columns))
    ]

    def cell(v: Any, is_num: bool) -> Any:
        if v is None:
            return None
        if is_num:
            return float(v)
        return v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)

    con = duckdb.connect()
    tmp = tempfile.mkdtemp(prefix="hpclab-table-")
    try:
        cols = [f'"{c.replace(chr(34), chr(34) * 2)}" {"DOUBLE" if n else "VARCHAR"}'
                for c, n in zip(columns, numeric, strict=True)] or ['"_empty" VARCHAR']  # fmt: skip
        con.execute(f"CREATE TABLE t ({', '.join(cols)})")
        if records and columns:
            marks = ", ".join("?" * len(columns))
            con.executemany(
                f"INSERT INTO t VALUES ({marks})",
                [[cell(v, n) for v, n in zip(r, numeric, strict=True)] for r in records],
            )
        out = os.path.join(tmp, "t.parquet")
        quoted = out.replace("'", "''")  # a temp dir may hold a quote
        con.execute(f"COPY t TO '{quoted}' (FORMAT parquet)")
        return Path(out).read_bytes()
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["MediaLog", "png", "read_media_index"]
