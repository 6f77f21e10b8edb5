"""Reading the catalog: an in-memory DuckDB whose tables are views over the Parquet files
of the published catalog version.

DuckDB allows one read-write process or many read-only ones on a database file, never
both, and file locks are unreliable on shared filesystems. So the catalog is not a
database file: the indexer (the only writer) writes new Parquet files and publishes them
by replacing ``manifest.json``; every reader opens its own in-memory DuckDB over the files
the manifest named when it connected. Readers take no lock, never block the indexer, and
see one consistent version of every table. Superseded files are kept for a grace period
(5 minutes): connect again to see newer data (each ``hpclab sql`` call does).
"""

from __future__ import annotations

import os
from typing import Any

from hpclab.catalog.manifest import Manifest, read_manifest
from hpclab.catalog.schema import RUN_KEYED, SMALL_TABLES, empty_select
from hpclab.store import Store


def connect(store: Store | str | os.PathLike[str] | None = None) -> Any:
    """A DuckDB connection with the catalog's tables (``runs``, ``metrics``,
    ``metric_summary``, ``features``, ...) as views. Empty tables before the first index."""
    import duckdb

    store = store if isinstance(store, Store) else Store.resolve(store)
    manifest = read_manifest(store)
    con = duckdb.connect()
    for table in SMALL_TABLES:
        con.execute(f"CREATE VIEW {table} AS {table_select(store, manifest, table)}")
    files = manifest.metric_files(store)
    if files:
        con.execute(f"CREATE VIEW metrics AS {metrics_select(files)}")
    else:
        con.execute(f"CREATE VIEW metrics AS {empty_select('metrics')}")
    return con


def table_select(store: Store, manifest: Manifest, table: str) -> str:
    """A small table as the manifest publishes it: its file, or its base file's rows of
    the runs the delta does not replace plus the delta's rows."""
    path = manifest.table_path(store, table)
    if path is None:
        return empty_select(table)
    base = f"SELECT * FROM read_parquet('{_q(path)}')"
    if not manifest.delta_keys or table not in RUN_KEYED:
        return base
    keys = store.catalog_dir / manifest.delta_keys
    out = (
        f"SELECT b.* FROM read_parquet('{_q(path)}') b "
        f"ANTI JOIN read_parquet('{_q(keys)}') k USING (project, run_id)"
    )
    delta = manifest.deltas.get(table)
    if delta:
        out += f" UNION ALL SELECT * FROM read_parquet('{_q(store.catalog_dir / delta)}')"
    return out


def metrics_select(files: list[tuple[Any, list[str]]]) -> str:
    """The ``metrics`` view over the published files: one scan of the files that hold only
    current rows, and each file with superseded runs' rows filtered."""
    clean = [f"'{_q(p)}'" for p, stale in files if not stale]
    parts = [f"SELECT * FROM read_parquet([{', '.join(clean)}])"] if clean else []
    for path, stale in files:
        if stale:
            ids = ", ".join(f"'{_q(r)}'" for r in stale)
            parts.append(f"SELECT * FROM read_parquet('{_q(path)}') WHERE run_id NOT IN ({ids})")
    return " UNION ALL ".join(parts)


def _q(path: Any) -> str:
    return str(path).replace("'", "''")
