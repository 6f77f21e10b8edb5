"""One run's metrics in the catalog: ``.catalog/metrics/<project>/<run_id>.<gen>.parquet``.

The file holds every committed point of the run, and in its Parquet key-value metadata
how many rows of each metric it holds plus running aggregates. Indexing a changed run
reads only the new tail of each Zarr array and writes old rows + tail to a new file (the
manifest then points at it), so the data and the record of what was indexed change
together: an indexer killed at any moment leaves files that are true to what they say.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpclab.catalog.parquet import Codes, read_kv, write_table
from hpclab.tracking.metrics import read_commit

FORMAT = 1


@dataclass
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
        out = asdict(self)
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


def index_run_metrics(
    con: Any,
    out: Path,
    previous: Path | None,
    metrics_zarr: Path,
    project: str,
    run_id: str,
    run_created: str,
) -> tuple[dict[str, Agg], bool]:
    """Write ``out`` = the run's file ``previous`` + the new tail of its metrics, unless
    nothing is new. Returns the aggregates and whether ``out`` was written.

    A previous file of another incarnation of the run id (``run_created`` differs) or
    holding more rows than the store commits is not trusted: the run is read in full.
    """
    from hpclab.catalog.metrics_reader import read_run_metrics

    kv = read_kv(con, previous) if previous is not None and previous.exists() else None
    aggs: dict[str, Agg] = {}
    if kv and kv.get("format") == FORMAT and kv.get("run_created") == run_created:
        aggs = {name: Agg.from_json(a) for name, a in kv.get("series", {}).items()}
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
    new: dict[str, Any] = {
        "project": project,
        "run_id": run_id,
        "name": np.concatenate(
            [np.full(len(r), i, dtype=np.int32) for i, r in enumerate(tails.values())]
        ),
        "step": np.concatenate([r[:, 0].astype(np.int64) for r in tails.values()]),
        "value": np.concatenate([r[:, 1] for r in tails.values()]),
        "wall_time": np.concatenate([r[:, 2] for r in tails.values()]),
    }
    kv_out = {
        "format": FORMAT,
        "run_created": run_created,
        "series": {name: a.to_json() for name, a in aggs.items()},
    }
    new["name"] = Codes(new["name"], tuple(tails))
    # old rows + tail, appended inside DuckDB
    prepend = previous if since and previous is not None else None
    write_table(con, out, "metrics", new, kv=kv_out, prepend=prepend)
    return aggs, True
