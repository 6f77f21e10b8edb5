"""The catalog: DuckDB over the store.

``hpclab index`` / ``hpclab watch`` (the :class:`~hpclab.catalog.indexer.Indexer`, the one
writer) turn the store into Parquet tables under ``<store>/.catalog``; ``connect()`` gives
any number of readers an in-memory DuckDB with those tables as views::

    import hpclab.catalog
    con = hpclab.catalog.connect("/shared/hpclab")
    con.sql("SELECT run_id, last FROM metric_summary WHERE name = 'val/loss' ORDER BY last")
"""

from __future__ import annotations

from typing import Any


def connect(store: Any = None) -> Any:
    """See :func:`hpclab.catalog.connect.connect`."""
    from hpclab.catalog.connect import connect as _connect

    return _connect(store)


__all__ = ["connect"]
