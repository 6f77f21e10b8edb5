"""The sweep record (``<project>/sweeps/<sweep_id>.json``): every point of a sweep.

The launcher writes it before anything queues (status ``planned``) and again after
submission (``queued``, with job ids); the indexer, the DAG, ``hpclab status`` and
``hpclab rerun`` read it. :meth:`SweepRecord.from_dict` is the one parser: a malformed
file is a :class:`~hpclab.errors.StoreError` naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpclab.errors import StoreError
from hpclab.store.record import INT64_MAX, INT64_MIN, is_iso_timestamp, short_repr


@dataclass
class SweepPoint:
    """One point: Hydra's job number, its run, its overrides and (once queued) its job."""

    index: int
    run_id: str | None = None
    overrides: list[str] = field(default_factory=list)
    job_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "run_id": self.run_id,
            "overrides": self.overrides,
            "job_id": self.job_id,
        }


@dataclass
class SweepRecord:
    """Contents of a sweep file. Unknown keys are kept in ``extra`` and written back."""

    id: str
    project: str | None = None
    status: str | None = None
    launcher: str | None = None
    job_id: str | None = None
    """The array job id (Slurm), None for other launchers."""
    points: list[SweepPoint] = field(default_factory=list)
    n_points: int | None = None
    """As written; :attr:`size` falls back to the number of points."""
    created_at: str | None = None
    host: str | None = None
    user: str | None = None
    cwd: str | None = None
    argv: list[str] = field(default_factory=list)
    base: str | None = None
    """The run every point derives from (``hpclab.parent`` of the sweep; experiment DAG)."""
    hydra_sweep_dir: str | None = None
    launcher_params: dict[str, Any] | None = None
    """What ``hpclab rerun`` submits with again."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.n_points if self.n_points else len(self.points)

    @property
    def run_ids(self) -> list[str]:
        """The points' run ids, in point order (points without one left out)."""
        return [p.run_id for p in self.points if p.run_id]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to the sweep file (the launcher's key order)."""
        out: dict[str, Any] = {
            "id": self.id,
            "project": self.project,
            "status": self.status,
            "launcher": self.launcher,
            "job_id": self.job_id,
            "n_points": self.size,
        }
        for name in META_FIELDS:
            value = getattr(self, name)
            if value is not None or name in _ALWAYS:
                out[name] = value
        out.update(self.extra)
        out["points"] = [p.to_dict() for p in self.points]
        return out

    @classmethod
    def from_dict(cls, data: Any, path: Path | str = "sweep record") -> SweepRecord:
        """Parse a sweep file's object; :class:`StoreError` naming ``path`` and the field."""
        if not isinstance(data, dict):
            raise StoreError(f"{path}: not a sweep record (a JSON object)")

        def bad(name: str, what: str) -> StoreError:
            return StoreError(f"{path}: malformed sweep record, field {name!r}: {what}")

        def opt_str(name: str, value: Any) -> str | None:
            if value is None or isinstance(value, str):
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
            raise bad(name, f"expected a string, got {type(value).__name__}")

        def bigint(name: str, value: Any) -> int:
            # the catalog's BIGINT: 2**70 is malformed, not a failed publish
            try:
                number = int(value) if not isinstance(value, (bool, float)) else None
            except (TypeError, ValueError):
                number = None
            if isinstance(value, float) and value.is_integer():
                number = int(value)
            if number is None or not INT64_MIN <= number <= INT64_MAX:
                raise bad(
                    name, f"not an integer from {INT64_MIN} to {INT64_MAX}: {short_repr(value)}"
                )
            return number

        def str_list(name: str, value: Any) -> list[str]:
            if value is None:
                return []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad(name, "expected a list of strings")
            return list(value)

        sweep_id = data.get("id")
        if not isinstance(sweep_id, str) or not sweep_id:
            raise bad("id", "missing or not a string")
        raw_points = data.get("points", [])
        if not isinstance(raw_points, list):
            raise bad("points", "expected a list")
        points = []
        for i, p in enumerate(raw_points):
            where = f"points[{i}]"
            if not isinstance(p, dict):
                raise bad(where, "expected an object")
            if "index" not in p:
                raise bad(f"{where}.index", "missing")
            index = bigint(f"{where}.index", p["index"])
            points.append(
                SweepPoint(
                    index=index,
                    run_id=opt_str(f"{where}.run_id", p.get("run_id")),
                    overrides=str_list(f"{where}.overrides", p.get("overrides")),
                    job_id=opt_str(f"{where}.job_id", p.get("job_id")),
                )
            )
        n_points = data.get("n_points")
        if n_points is not None:
            n_points = bigint("n_points", n_points)
        created_at = opt_str("created_at", data.get("created_at"))
        if created_at is not None and not is_iso_timestamp(created_at):
            raise bad("created_at", f"not an ISO-8601 timestamp: {short_repr(created_at)}")
        params = data.get("launcher_params")
        if params is not None and not isinstance(params, dict):
            raise bad("launcher_params", "expected an object")
        base = data.get("base")
        return cls(
            id=sweep_id,
            project=opt_str("project", data.get("project")),
            status=opt_str("status", data.get("status")),
            launcher=opt_str("launcher", data.get("launcher")),
            job_id=opt_str("job_id", data.get("job_id")),
            points=points,
            n_points=n_points,
            created_at=created_at,
            host=opt_str("host", data.get("host")),
            user=opt_str("user", data.get("user")),
            cwd=opt_str("cwd", data.get("cwd")),
            argv=str_list("argv", data.get("argv")),
            # a base that is not a run id is no parent (as the DAG always read it)
            base=base if isinstance(base, str) else None,
            hydra_sweep_dir=opt_str("hydra_sweep_dir", data.get("hydra_sweep_dir")),
            launcher_params=params,
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )


# Optional keys written after the header, in the launcher's order; _ALWAYS are written even
# when None (the launcher always wrote them).
META_FIELDS = (
    "created_at",
    "host",
    "user",
    "cwd",
    "argv",
    "base",
    "hydra_sweep_dir",
    "launcher_params",
)
_ALWAYS = frozenset({"created_at", "host", "user", "cwd", "argv", "base"})
_KNOWN = frozenset(
    {"id", "project", "status", "launcher", "job_id", "n_points", "points", *META_FIELDS}
)
