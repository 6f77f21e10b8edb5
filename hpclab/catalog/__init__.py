"""The catalog: DuckDB over the store.

``hpclab index`` / ``hpclab watch`` (the :class:`~hpclab.catalog.indexer.Indexer`, the one
writer) turn the store into Parquet tables under ``<store>/.catalog``; ``connect()`` gives
any number of readers an in-memory DuckDB with those tables as views::

    import hpclab.catalog
    con = hpclab.catalog.connect("/shared/hpclab")
    con.sql("SELECT run_id, last FROM metric_summary WHERE name = 'val/loss' ORDER BY last")
"""

from __future__ import annotations

# Imported with the package, not on the first call: loading the submodule
# ``hpclab.catalog.connect`` sets the package's ``connect`` attribute to the module (once,
# when it is first loaded). Here this import then binds the name to the function, and
# later imports of the loaded submodule leave it alone. DuckDB is imported at the call.
from hpclab.catalog.connect import connect

__all__ = ["connect"]
