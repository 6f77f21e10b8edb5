"""``hpclab import wandb DIR...``: W&B offline runs (``wandb/offline-run-*``) as runs.

A run logged with ``WANDB_MODE=offline`` keeps everything in one transaction log,
``run-<id>.wandb``: W&B's record framing (LevelDB's log format: 32 KiB blocks of records
with a CRC-32 each) around W&B's own protobuf ``Record`` messages. Since wandb 0.19 the
reader lives in its Go core, not in Python, so the framing is read here (a few lines,
every record's checksum checked) and each record is parsed with ``wandb.proto``: the
run record gives the name, config, tags, start; ``history`` records every logged point
at its ``_step`` and ``_timestamp``; ``summary`` and ``exit`` the summary and exit code.
A log cut short (a killed run) is read up to its last whole record.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hpclab.errors import ImportSourceError
from hpclab.importers.common import ImportedRun, ImportReport, Point, write_runs
from hpclab.store import Store
from hpclab.store.record import RunStatus

MAGIC = b":W&B"
HEADER = 7  # magic, 0xBEE1 (little-endian), version 0
HEADER_TAIL = b"\xe1\xbe\x00"
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
RECORD_HEADER = struct.Struct("<IHB")  # crc32(type byte + data), length, type


def log_files(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every ``run-*.wandb`` under ``roots`` (a ``wandb`` directory, a run, or above)."""
    found: dict[Path, Path] = {}
    for given in roots:
        root = Path(given).expanduser()
        if not root.is_dir():
            raise ImportSourceError(f"{root}: not a directory of W&B offline runs")
        files = [
            Path(d) / f
            for d, _, names in os.walk(root)
            for f in names
            if f.startswith("run-") and f.endswith(".wandb")
        ]
        if not files:
            raise ImportSourceError(f"{root}: no W&B run logs (offline-run-*/run-*.wandb)")
        for f in sorted(files):
            found.setdefault(f.resolve(), f)  # latest-run is a symlink to one of them
    return sorted(found.values())


def records(path: Path) -> Iterator[bytes]:
    """The payload of every whole record in the log at ``path``, checksums checked.

    Every byte is accounted for, so one changed byte anywhere is an error: the
    header is checked whole, a block's tail padding must be zeros, a record must
    fit in its block (a larger length is corruption, not a cut), and the CRC
    covers the type and payload. Only a log that simply stops short (a killed
    run) yields what came before without an error.
    """
    data = path.read_bytes()
    if data[: len(MAGIC)] != MAGIC or len(data) < HEADER:
        raise ImportSourceError(f"{path}: not a W&B run log (no :W&B header)")
    if data[len(MAGIC) : HEADER] != HEADER_TAIL:
        raise ImportSourceError(f"{path}: corrupt header (not version 0 of the W&B log)")
    pos, pending = HEADER, b""
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD_HEADER.size:  # the block's tail is zero padding
            if data[pos : pos + left].strip(b"\0"):
                raise ImportSourceError(f"{path}: corrupt record at byte {pos} (padding)")
            pos += left
            continue
        if pos + RECORD_HEADER.size > len(data):
            return  # cut short inside a record header
        crc, n, kind = RECORD_HEADER.unpack_from(data, pos)
        start = pos + RECORD_HEADER.size
        if n > left - RECORD_HEADER.size:
            raise ImportSourceError(f"{path}: corrupt record at byte {pos} (length {n})")
        if kind == 0 and n == 0 and crc == 0:  # padding
            pos = start
            continue
        body = data[start : start + n]
        if len(body) < n:
            return  # cut short by a killed run: keep what came before
        if zlib.crc32(body, zlib.crc32(bytes([kind]))) != crc:
            raise ImportSourceError(f"{path}: corrupt record at byte {pos} (checksum)")
        pos = start + n
        if kind == FULL:
            yield body
        elif kind == FIRST:
            pending = body
        elif kind == MIDDLE:
            pending += body
        elif kind == LAST:
            yield pending + body
            pending = b""
        else:
            raise ImportSourceError(f"{path}: corrupt record at byte {pos} (type {kind})")


def _key(item: Any) -> str:
    return ".".join(item.nested_key) if item.nested_key else str(item.key)


def _value(item: Any) -> Any:
    oneofs = item.DESCRIPTOR.oneofs_by_name  # HistoryItem is typed since wandb 0.19
    which = item.WhichOneof("value") if "value" in oneofs else None
    if which in ("boolean", "integer", "number", "text"):
        return getattr(item, which)
    if which == "none":
        return None
    text = item.json if which == "json" else item.value_json
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def read_run(path: Path) -> ImportedRun:
    """One offline run's log as an :class:`ImportedRun`."""
    try:
        from wandb.proto import wandb_internal_pb2 as pb
    except ImportError:
        raise ImportSourceError(
            f"{path}: reading W&B logs needs wandb (pip install 'hpclab[import]')"
        ) from None
    run_id = path.stem.removeprefix("run-")
    out = ImportedRun(kind="wandb", source=str(path.parent), original_id=run_id)
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    points: list[Point] = []
    exit_code: int | None = None
    wandb_project = ""
    for payload in records(path):
        rec = pb.Record()  # type: ignore[attr-defined]  # generated code
        try:
            rec.ParseFromString(payload)
        except Exception:  # noqa: BLE001  (protobuf's DecodeError)
            raise ImportSourceError(f"{path}: a record W&B cannot parse") from None
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run_id, wandb_project = r.run_id or run_id, r.project
            out.name = r.display_name or None
            out.tags = list(r.tags)
            if r.HasField("start_time"):
                out.started_at = r.start_time.seconds + r.start_time.nanos / 1e9
            _config(config, r.config)
            out.extra["wandb"] = {
                "run_id": run_id,
                "project": r.project,
                "entity": r.entity,
                "group": r.run_group,
                "job_type": r.job_type,
                "notes": r.notes,
                "host": r.host,
            }
        elif kind == "config":
            _config(config, rec.config)
        elif kind == "history":
            row = {_key(i): _value(i) for i in rec.history.item}
            step, wall = _number(row.get("_step")), _number(row.get("_timestamp"))
            if step is None:
                continue
            for name, value in row.items():
                number = _number(value)
                if name.startswith("_") or number is None:
                    continue
                points.append(Point(name, int(step), number, wall or 0.0))
        elif kind == "summary":
            for item in rec.summary.update:
                summary[_key(item)] = _value(item)
            for item in rec.summary.remove:
                summary.pop(_key(item), None)
        elif kind == "exit":
            exit_code = int(rec.exit.exit_code)
    out.original_id = f"{wandb_project}/{run_id}"
    out.config = config
    out.points = points
    logged = {p.name for p in points}  # their summary is the last value, as hpclab's
    out.summary = {
        k: v
        for k, v in summary.items()
        if not k.startswith("_") and k not in logged and _number(v) is not None and math.isfinite(v)
    }
    if points:
        out.ended_at = max(p.wall_time for p in points)
    if exit_code == 0:
        out.status = RunStatus.COMPLETED
    else:
        out.status = RunStatus.FAILED
        out.error = (
            {"type": "ExitCode", "message": f"exit code {exit_code}", "exit_code": exit_code}
            if exit_code is not None
            else {"type": "Imported", "message": "no exit record: the run was killed or unfinished"}
        )
    return out


def _config(config: dict[str, Any], record: Any) -> None:
    for item in record.update:
        key = _key(item)
        if key == "_wandb":
            continue
        try:
            config[key] = json.loads(item.value_json)
        except ValueError:
            config[key] = item.value_json
    for item in record.remove:
        config.pop(_key(item), None)


def import_wandb(
    store: Store, project: str, roots: Iterable[str | os.PathLike[str]]
) -> ImportReport:
    """Import every W&B offline run under ``roots`` not imported before."""
    return write_runs(store, project, (read_run(f) for f in log_files(roots)))
