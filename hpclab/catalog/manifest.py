"""The catalog's manifest: which Parquet file holds each table in the published version.

Catalog files are never rewritten in place. A DuckDB query opens a Parquet file more than
once (its schema when the query is bound, its row groups when it runs), so a file renamed
over between the two would be read with the old footer and the new contents. Instead each
version of a table gets a new file, the manifest (replaced atomically) says which files
make the current version, and superseded files are deleted only after a grace period.
A reader reads the manifest once per connection: it sees one consistent version of every
table, even while the indexer publishes the next.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from hpclab.store import Store
from hpclab.store.atomic import write_bytes_atomic

FORMAT = 2  # 2: metrics files may hold many runs (segments), stale runs listed
# Superseded files stay this long, so connections opened before a publish keep working.
GRACE_SECONDS = 300.0


@dataclass
class Manifest:
    generation: int = 0
    tables: dict[str, str] = field(default_factory=dict)  # table -> path under .catalog
    metrics: dict[str, str] = field(default_factory=dict)  # "project/run_id" -> path
    # path -> run ids whose rows in that file are superseded (the run moved to a newer one)
    stale: dict[str, list[str]] = field(default_factory=dict)
    # run-keyed table -> the delta file of the runs changed since its base; and which runs
    deltas: dict[str, str] = field(default_factory=dict)
    delta_keys: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)  # digests of non-run inputs
    published_at: float = 0.0

    def table_path(self, store: Store, table: str) -> Path | None:
        rel = self.tables.get(table)
        return store.catalog_dir / rel if rel else None

    def metric_files(self, store: Store) -> list[tuple[Path, list[str]]]:
        """Each metrics file with the run ids whose rows in it readers must leave out."""
        return [
            (store.catalog_dir / rel, sorted(self.stale.get(rel, ())))
            for rel in sorted(set(self.metrics.values()))
        ]


def read_manifest(store: Store) -> Manifest:
    """The published manifest; an empty one when nothing was published (or it is damaged,
    which a new index repairs)."""
    try:
        data = json.loads(store.catalog_manifest.read_bytes())
    except (OSError, ValueError):
        return Manifest()
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return Manifest()
    return Manifest(
        generation=int(data.get("generation", 0)),
        tables=dict(data.get("tables") or {}),
        metrics=dict(data.get("metrics") or {}),
        stale={k: list(v) for k, v in (data.get("stale") or {}).items()},
        deltas=dict(data.get("deltas") or {}),
        delta_keys=data.get("delta_keys") or None,
        inputs=dict(data.get("inputs") or {}),
        published_at=float(data.get("published_at") or 0.0),
    )


def write_manifest(store: Store, manifest: Manifest) -> None:
    """Publish ``manifest`` (compact JSON: it names every run's metrics file, 10,000 of
    them in a lab's store, and is written at every pass that changed something)."""
    manifest.published_at = time.time()
    doc = json.dumps(
        {
            "format": FORMAT,
            "generation": manifest.generation,
            "published_at": manifest.published_at,
            "tables": manifest.tables,
            "metrics": manifest.metrics,
            "stale": manifest.stale,
            "deltas": manifest.deltas,
            "delta_keys": manifest.delta_keys,
            "inputs": manifest.inputs,
        },
        separators=(",", ":"),
    )
    write_bytes_atomic(store.catalog_manifest, doc.encode() + b"\n")


def relative(store: Store, path: Path) -> str:
    return str(path.relative_to(store.catalog_dir))
