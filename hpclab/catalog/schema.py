"""The catalog's tables: names, columns, types and what each column means.

This module is the one source of truth for the schema: the indexer writes exactly these
columns, ``connect()`` exposes them (empty when nothing is indexed yet), and the README's
schema reference is checked against it by a test. Names are a public contract.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


def _cols(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in specs)


RUN_KEY = (("project", "VARCHAR", "project name"), ("run_id", "VARCHAR", "run id"))

TABLES: dict[str, tuple[Column, ...]] = {
    "runs": _cols(
        *RUN_KEY,
        ("name", "VARCHAR", "human name given at init"),
        (
            "status",
            "VARCHAR",
            "effective status: the stored one, except a running run with a "
            "stale heartbeat shows how the scheduler says it ended, or 'lost'",
        ),
        ("stored_status", "VARCHAR", "status in run.json"),
        ("stale", "BOOLEAN", "running, but the heartbeat is older than 3 intervals"),
        ("sweep_id", "VARCHAR", "sweep the run is a point of"),
        ("sweep_index", "BIGINT", "its point number in the sweep"),
        ("parent", "VARCHAR", "parent run id (experiment DAG)"),
        ("tags", "VARCHAR[]", "tags given at init and in notes.yaml"),
        ("created_at", "TIMESTAMP", "run directory created (UTC)"),
        ("started_at", "TIMESTAMP", "first attempt started (UTC)"),
        ("ended_at", "TIMESTAMP", "ended, last attempt (UTC)"),
        ("heartbeat_at", "TIMESTAMP", "last heartbeat (UTC)"),
        ("heartbeat_interval", "DOUBLE", "seconds between heartbeats"),
        ("duration_s", "DOUBLE", "ended_at (or last heartbeat) minus started_at"),
        ("attempt", "BIGINT", "0 for the first attempt, +1 per resume"),
        ("step", "BIGINT", "highest step logged"),
        ("host", "VARCHAR", "host of the last attempt"),
        ("user", "VARCHAR", "user who ran it"),
        ("scheduler", "VARCHAR", "slurm or local"),
        ("job_id", "VARCHAR", "scheduler job id (array task: 123_4)"),
        ("array_job_id", "VARCHAR", "Slurm array job id"),
        ("array_task_id", "VARCHAR", "Slurm array task id"),
        ("scheduler_state", "VARCHAR", "last scheduler state recorded by hpclab status"),
        ("error_type", "VARCHAR", "exception type of a failed run"),
        ("error_message", "VARCHAR", "exception message of a failed run"),
        ("git_commit", "VARCHAR", "commit of the code snapshot (null outside git)"),
        ("git_dirty", "BOOLEAN", "uncommitted or untracked changes were snapshotted"),
        ("n_metrics", "BIGINT", "number of metrics"),
        ("dir", "VARCHAR", "run directory"),
        ("fingerprint", "VARCHAR", "sizes and mtimes of the run's files when indexed"),
    ),
    "metrics": _cols(
        *RUN_KEY,
        ("name", "VARCHAR", "metric name (train/loss)"),
        ("step", "BIGINT", "step"),
        ("value", "DOUBLE", "value (NaN and inf kept)"),
        ("wall_time", "DOUBLE", "epoch seconds when logged"),
    ),
    "metric_summary": _cols(
        *RUN_KEY,
        ("name", "VARCHAR", "metric name"),
        ("last", "DOUBLE", "value at the last step"),
        ("best", "DOUBLE", "min or max by the project's direction for the metric"),
        ("mean", "DOUBLE", "mean of finite values"),
        ("min", "DOUBLE", "minimum of finite values"),
        ("max", "DOUBLE", "maximum of finite values"),
        ("n", "BIGINT", "number of points"),
        ("last_step", "BIGINT", "last step"),
        ("direction", "VARCHAR", "minimize or maximize (project.yaml, else by name)"),
        ("key_value", "DOUBLE", "the project's aggregation (last|best|mean) for key metrics"),
        ("is_key", "BOOLEAN", "a key metric of the project"),
    ),
    "features": _cols(
        *RUN_KEY,
        ("path", "VARCHAR", "dotted path in the resolved config (optim.lr, layers[1])"),
        ("value", "VARCHAR", "the value as JSON text"),
        ("value_num", "DOUBLE", "the value when it is a number (else null)"),
    ),
    "sweeps": _cols(
        ("project", "VARCHAR", "project name"),
        ("sweep_id", "VARCHAR", "sweep id"),
        ("status", "VARCHAR", "planned or queued (as recorded at submission)"),
        ("launcher", "VARCHAR", "slurm or local"),
        ("job_id", "VARCHAR", "Slurm array job id"),
        ("n_points", "BIGINT", "number of points"),
        ("created_at", "TIMESTAMP", "when it was submitted (UTC)"),
        ("command", "VARCHAR", "the command line"),
    ),
    "sweep_points": _cols(
        ("project", "VARCHAR", "project name"),
        ("sweep_id", "VARCHAR", "sweep id"),
        ("point", "BIGINT", "point number"),
        ("run_id", "VARCHAR", "the point's run"),
        ("overrides", "VARCHAR", "the point's overrides, space-separated"),
        ("job_id", "VARCHAR", "scheduler job id of the point"),
    ),
    "artifacts": _cols(
        *RUN_KEY,
        ("path", "VARCHAR", "path under the run's artifacts/"),
        ("sha256", "VARCHAR", "content hash"),
        ("size", "BIGINT", "bytes"),
    ),
    "datasets": _cols(
        *RUN_KEY,
        ("name", "VARCHAR", "dataset name"),
        ("path", "VARCHAR", "absolute path when tracked"),
        ("sha256", "VARCHAR", "combined sha256 of its files"),
        ("size", "BIGINT", "total bytes"),
        ("n_files", "BIGINT", "number of files"),
        ("schema", "VARCHAR", "detected schema (JSON)"),
    ),
    "notes": _cols(
        *RUN_KEY,
        ("tags", "VARCHAR[]", "tags set with hpclab note (PUBLISH, BAD, ...)"),
        ("text", "VARCHAR", "free text"),
        ("updated_at", "TIMESTAMP", "last edit (UTC)"),
    ),
}

SMALL_TABLES = tuple(t for t in TABLES if t != "metrics")


def empty_select(table: str) -> str:
    """A SELECT with the table's columns and no rows (before anything is indexed)."""
    cols = ", ".join(f"CAST(NULL AS {c.type}) AS {quote(c.name)}" for c in TABLES[table])
    return f"SELECT {cols} WHERE false"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
