"""Runs' metrics in the catalog: Parquet files under ``.catalog/metrics/<project>/``.

A file holds every committed point of one run (``<run_id>.<gen>.parquet``, what an
incremental pass writes for a run that changed) or of many (a *segment*,
``seg-<gen>-<n>.parquet``, what a cold pass writes: one DuckDB write per few hundred
runs instead of one per run), rows grouped by run. Its Parquet key-value metadata says,
per run, how many rows of each metric it holds plus running aggregates, so the data and
the record of what was indexed change together: an indexer killed at any moment leaves
files that are true to what they say. The manifest names each run's current file; a
segment may still hold older rows of a run that moved to a newer file (the manifest lists
those runs as *stale* in that file and readers leave them out).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpclab.catalog.parquet import KV_KEY, Codes, read_kv, write_table
from hpclab.store.atomic import replacing
from hpclab.tracking.metrics import read_commit

FORMAT = 2  # kv: {"format", "runs": {run_id: {"run_created", "series"}}}
SEGMENT_ROWS = 4_000_000  # a segment is closed past this many rows (memory bound)


@dataclass(slots=True)  # no __dict__: the indexer holds one per series of every run
class Agg:
    """Running aggregates of one metric (finite values only for sum/min/max)."""

    length: int = 0
    n_finite: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    last: float = math.nan
    last_step: int = -1

    def update(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        values = rows[:, 1]
        finite = values[np.isfinite(values)]
        self.length += len(rows)
        self.n_finite += len(finite)
        if len(finite):
            self.sum += float(finite.sum())
            self.min = min(self.min, float(finite.min()))
            self.max = max(self.max, float(finite.max()))
        self.last = float(values[-1])
        self.last_step = int(rows[-1, 0])

    @property
    def mean(self) -> float:
        return self.sum / self.n_finite if self.n_finite else math.nan

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {  # not dataclasses.asdict: it deep-copies (10x slower)
            "length": self.length,
            "n_finite": self.n_finite,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "last": self.last,
            "last_step": self.last_step,
        }
        for k in ("min", "max", "last"):  # JSON has no inf/NaN
            v = out[k]
            out[k] = None if not math.isfinite(v) else v
        out["last_nan"] = math.isnan(self.last)
        out["last_sign"] = (
            0 if math.isfinite(self.last) or math.isnan(self.last) else (1 if self.last > 0 else -1)
        )
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Agg:
        last = data.get("last")
        if last is None:
            sign = data.get("last_sign", 0)
            last = math.nan if data.get("last_nan", True) or not sign else sign * math.inf
        return cls(
            length=int(data["length"]),
            n_finite=int(data["n_finite"]),
            sum=float(data["sum"]),
            min=math.inf if data.get("min") is None else float(data["min"]),
            max=-math.inf if data.get("max") is None else float(data["max"]),
            last=float(last),
            last_step=int(data["last_step"]),
        )


def run_kv(con: Any, path: Path | None, run_id: str) -> dict[str, Any] | None:
    """One run's entry in a metrics file's metadata ({"run_created", "series"}), or None."""
    kv = read_kv(con, path) if path is not None and path.exists() else None
    if not kv or kv.get("format") != FORMAT:
        return None
    entry = (kv.get("runs") or {}).get(run_id)
    return entry if isinstance(entry, dict) else None


def aggs_of(entry: dict[str, Any]) -> dict[str, Agg]:
    return {name: Agg.from_json(a) for name, a in (entry.get("series") or {}).items()}


def _entry(run_created: str, aggs: dict[str, Agg]) -> dict[str, Any]:
    return {"run_created": run_created, "series": {n: a.to_json() for n, a in aggs.items()}}


def index_run_metrics(
    con: Any,
    out: Path,
    previous: Path | None,
    metrics_zarr: Path,
    project: str,
    run_id: str,
    run_created: str,
) -> tuple[dict[str, Agg], bool]:
    """Write ``out`` = the run's rows in ``previous`` + the new tail of its metrics, unless
    nothing is new. Returns the aggregates and whether ``out`` was written.

    A previous file of another incarnation of the run id (``run_created`` differs) or
    holding more rows than the store commits is not trusted: the run is read in full.
    """
    from hpclab.catalog.metrics_reader import read_run_metrics

    entry = run_kv(con, previous, run_id)
    aggs: dict[str, Agg] = {}
    if entry and entry.get("run_created") == run_created:
        aggs = aggs_of(entry)
    # validated by the reader below; here a malformed entry only means "not ahead"
    commit: dict[str, Any] = read_commit(metrics_zarr).get("series", {})
    if any(int(commit.get(n, {}).get("length", 0)) < a.length for n, a in aggs.items()):
        aggs = {}  # the catalog is ahead of the store: not the same run any more
    since = {name: a.length for name, a in aggs.items()}
    tails = {n: rows for n, rows in read_run_metrics(metrics_zarr, since).items() if len(rows)}
    if not tails and (aggs or not commit):
        return aggs, False
    for name, rows in tails.items():
        aggs.setdefault(name, Agg()).update(rows)
    new = _columns(project, [(run_id, tails)])
    kv_out = {"format": FORMAT, "runs": {run_id: _entry(run_created, aggs)}}
    # the run's old rows + tail, appended inside DuckDB
    prepend = (previous, run_id) if since and previous is not None else None
    write_table(con, out, "metrics", new, kv=kv_out, prepend=prepend)
    return aggs, True


@dataclass
class SegmentRun:
    """One run read in full for a segment."""

    run_id: str
    run_created: str
    tails: dict[str, np.ndarray]  # metric -> (n, 3) rows
    aggs: dict[str, Agg] = field(default_factory=dict)


def write_segment(con: Any, out: Path, project: str, runs: Iterable[SegmentRun]) -> list[str]:
    """Write the runs' full metrics as one file; returns the run ids it holds (runs with
    no points are left out: nothing to hold)."""
    held = [r for r in runs if any(len(t) for t in r.tails.values())]
    if not held:
        return []
    series = _Series.of([(r.run_id, r.tails) for r in held])
    for r, aggs in zip(held, series.aggs_by_run(), strict=True):
        r.aggs = aggs
    kv_out = {"format": FORMAT, "runs": {r.run_id: _entry(r.run_created, r.aggs) for r in held}}
    write_table(con, out, "metrics", series.columns(project), kv=kv_out)
    return [r.run_id for r in held]


def _columns(project: str, runs: list[tuple[str, dict[str, np.ndarray]]]) -> dict[str, Any]:
    """The metrics table's columns for runs' rows (names and run ids as codes)."""
    return _Series.of(runs).columns(project)


@dataclass
class _Series:
    """Runs' non-empty series laid end to end: one concatenation of every series, the
    codes repeated by length (no arrays per series)."""

    table: np.ndarray  # (3, rows): step, value, wall_time, each one contiguous row
    lengths: np.ndarray  # rows of each series, in order
    run_codes: list[int]  # each series' run (an index into run_ids)
    name_codes: list[int]  # each series' metric (an index into names)
    run_ids: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def of(cls, runs: list[tuple[str, dict[str, np.ndarray]]]) -> _Series:
        labels: dict[str, int] = {}
        parts, name_codes, run_codes, lengths = [], [], [], []
        for i, (_, tails) in enumerate(runs):
            for name, rows in tails.items():
                if len(rows):
                    parts.append(rows)
                    name_codes.append(labels.setdefault(name, len(labels)))
                    run_codes.append(i)
                    lengths.append(len(rows))
        # column-major: each column one contiguous array, as DuckDB scans it
        table = np.concatenate(parts).T.copy() if parts else np.empty((3, 0))
        return cls(
            table,
            np.array(lengths, dtype=np.int64),
            run_codes,
            name_codes,
            tuple(r for r, _ in runs),
            tuple(labels),
        )

    def columns(self, project: str) -> dict[str, Any]:
        return {
            "project": project,
            "run_id": Codes(
                np.repeat(np.array(self.run_codes, dtype=np.int32), self.lengths), self.run_ids
            ),
            "name": Codes(
                np.repeat(np.array(self.name_codes, dtype=np.int32), self.lengths), self.names
            ),
            "step": self.table[0].astype(np.int64),
            "value": self.table[1],
            "wall_time": self.table[2],
        }

    def aggs(self) -> list[Agg]:
        """Each series' :class:`Agg`, the same numbers as ``Agg().update(rows)``: counts,
        min, max and last for all series at once (min and max do not depend on order);
        each sum over the series' own contiguous values, the same pairwise sum as
        ``update``'s (a sum over every series at once would add in another order)."""
        if not len(self.lengths):
            return []
        values, steps = self.table[1], self.table[0]
        ends = np.cumsum(self.lengths)
        starts = ends - self.lengths
        finite = np.isfinite(values)
        n_finite = np.add.reduceat(finite, starts, dtype=np.int64).tolist()
        lows = np.minimum.reduceat(np.where(finite, values, math.inf), starts).tolist()
        highs = np.maximum.reduceat(np.where(finite, values, -math.inf), starts).tolist()
        lasts = values[ends - 1].tolist()
        last_steps = [int(x) for x in steps[ends - 1].tolist()]  # a NaN step raises, as in update
        out = []
        each = zip(starts.tolist(), self.lengths.tolist(), n_finite, strict=True)
        for i, (lo, length, n) in enumerate(each):
            v = values[lo : lo + length]
            total = float(v.sum()) if n == length else float(v[finite[lo : lo + length]].sum())
            out.append(Agg(length, n, total, lows[i], highs[i], lasts[i], last_steps[i]))
        return out

    def aggs_by_run(self) -> list[dict[str, Agg]]:
        """:meth:`aggs` as each run's metric -> Agg, in the order of ``run_ids``."""
        out: list[dict[str, Agg]] = [{} for _ in self.run_ids]
        for agg, run, name in zip(self.aggs(), self.run_codes, self.name_codes, strict=True):
            out[run][self.names[name]] = agg
        return out


def merge_files(con: Any, out: Path, files: list[tuple[Path, list[str]]]) -> list[str]:
    """Write the rows of the named runs of each file as one file (a segment), their
    metadata entries merged: what compacts the one-run files incremental passes leave.
    Returns the run ids it holds (a run whose entry is missing is left where it is)."""
    runs: dict[str, Any] = {}
    sources = []
    for path, run_ids in files:
        kv = read_kv(con, path) or {}
        entries = kv.get("runs") or {} if kv.get("format") == FORMAT else {}
        held = [r for r in run_ids if isinstance(entries.get(r), dict)]
        if held:
            runs.update({r: entries[r] for r in held})
            sources.append((path, held))
    if not runs:
        return []
    parts = " UNION ALL ".join(
        f"SELECT * FROM read_parquet('{_sql(path)}') WHERE run_id IN "
        f"({', '.join(_sql_literal(r) for r in held)})"
        for path, held in sources
    )
    meta = json.dumps({"format": FORMAT, "runs": runs}).replace("'", "''")
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out, suffix=".tmp") as tmp:
        con.execute(
            f"COPY ({parts}) TO '{_sql(tmp)}' "
            f"(FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{KV_KEY}: '{meta}'}})"
        )
    return list(runs)


def _sql(path: Path | str) -> str:
    return str(path).replace("'", "''")


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
