"""``hpclab import mlflow PATH``: runs of an MLflow tracking store as hpclab runs.

PATH is an MLflow file store (the ``mlruns`` directory, or a directory holding one) or a
SQLite database (``mlflow.db``), or a ``file:``/``sqlite:`` URI. It is read with MLflow's
own client; a SQLite store is read from a private copy, so the import never migrates or
locks the lab's database. Each active run becomes one hpclab run: its parameters as the
config (typed back from MLflow's text, dotted keys nested), every point of every metric
(``get_metric_history``) at its step and time, its start and end, status, and tags.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hpclab.errors import ImportSourceError
from hpclab.importers.common import ImportedRun, ImportReport, Point, nest, parse_scalar, write_runs
from hpclab.store import Store
from hpclab.store.record import RunStatus

SQLITE_MAGIC = b"SQLite format 3\x00"
STATUS = {
    "FINISHED": RunStatus.COMPLETED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.CANCELLED,
}
PAGE = 1000


@contextmanager
def tracking_uri(path: str) -> Iterator[str]:
    """The MLflow tracking URI of ``path``; a SQLite database is copied first."""
    if path.startswith("file:"):
        path = path.removeprefix("file://").removeprefix("file:")
    elif path.startswith("sqlite:"):
        path = path.removeprefix("sqlite:///")
    where = Path(path).expanduser()
    if where.is_dir():
        root = where / "mlruns" if (where / "mlruns").is_dir() else where
        if not any(root.glob("*/meta.yaml")):
            raise ImportSourceError(f"{where}: not an MLflow file store (no */meta.yaml)")
        yield root.resolve().as_uri()
        return
    if not where.is_file():
        raise ImportSourceError(f"{where}: no MLflow store there (a directory or a .db file)")
    with where.open("rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise ImportSourceError(f"{where}: not an MLflow SQLite database")
    with tempfile.TemporaryDirectory(prefix="hpclab-mlflow-") as tmp:
        copy = Path(tmp) / "mlflow.db"
        shutil.copyfile(where, copy)
        yield f"sqlite:///{copy}"


def _client(uri: str) -> Any:
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 gates file stores
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ImportSourceError(
            "reading an MLflow store needs MLflow (pip install 'hpclab[import]')"
        ) from None
    return MlflowClient(tracking_uri=uri)


def read_runs(path: str, experiments: Iterable[str] = ()) -> Iterator[ImportedRun]:
    """Every active run of the store at ``path`` (of ``experiments`` only, when given)."""
    from mlflow.entities import ViewType

    wanted = set(experiments)
    with tracking_uri(path) as uri:
        client = _client(uri)
        try:
            found = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
        except Exception as e:  # noqa: BLE001  (MLflow's own error: one line naming the store)
            raise ImportSourceError(f"{path}: MLflow cannot read it ({_first_line(e)})") from None
        names = {e.name for e in found}
        if missing := sorted(wanted - names):
            raise ImportSourceError(
                f"{path}: no MLflow experiment {missing[0]!r} (it has: {', '.join(sorted(names))})"
            )
        for exp in found:
            if wanted and exp.name not in wanted:
                continue
            token = None
            while True:
                page = client.search_runs(
                    [exp.experiment_id],
                    run_view_type=ViewType.ACTIVE_ONLY,
                    max_results=PAGE,
                    order_by=["attributes.start_time ASC"],
                    page_token=token,
                )
                for run in page:
                    yield _run(client, path, exp.name, run)
                token = page.token
                if not token:
                    break


def _run(client: Any, path: str, experiment: str, run: Any) -> ImportedRun:
    info, data = run.info, run.data
    points = [
        Point(key, int(m.step), float(m.value), m.timestamp / 1000.0)
        for key in sorted(data.metrics)
        for m in client.get_metric_history(info.run_id, key)
    ]
    points.sort(key=lambda p: (p.step, p.wall_time, p.name))
    user_tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}
    status = STATUS.get(info.status, RunStatus.FAILED)
    error = None
    if status is RunStatus.FAILED and info.status != "FAILED":
        error = {"type": "Imported", "message": f"MLflow status {info.status} at import"}
    return ImportedRun(
        kind="mlflow",
        source=path,
        original_id=info.run_id,
        name=info.run_name or None,
        config=nest({k: parse_scalar(v) for k, v in data.params.items()}),
        tags=[experiment, *(f"{k}={v}" for k, v in sorted(user_tags.items()))],
        status=status,
        started_at=info.start_time / 1000.0 if info.start_time else None,
        ended_at=info.end_time / 1000.0 if info.end_time else None,
        error=error,
        extra={
            "mlflow": {
                "experiment": experiment,
                "experiment_id": info.experiment_id,
                "run_id": info.run_id,
                "tags": dict(data.tags),
                "artifact_uri": info.artifact_uri,
            }
        },
        points=points,
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def import_mlflow(
    store: Store, project: str, path: str, experiments: Iterable[str] = ()
) -> ImportReport:
    """Import every run of the MLflow store at ``path`` not imported before."""
    return write_runs(store, project, read_runs(path, experiments))
