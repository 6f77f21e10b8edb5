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

from hpclab.errors import CatalogError
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

    def files(self) -> set[str]:
        """Every file this version names (paths under .catalog): none of them is ever
        collected while this version is current, nor for the grace period after."""
        out = {*self.tables.values(), *self.deltas.values(), *self.metrics.values()}
        if self.delta_keys:
            out.add(self.delta_keys)
        return out

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


def taken_generation(store: Store) -> int:
    """The highest generation an indexer has taken (0 when none has, or the counter is
    unreadable: the manifest and the file names bound it from below too)."""
    try:
        return max(0, int(store.catalog_generation.read_text().strip()))
    except (OSError, ValueError):
        return 0


def take_generation(store: Store, generation: int) -> None:
    """Record ``generation`` as taken, durably, before any file of it is written: a killed
    indexer's worker processes may still write files of it, which the next one must not
    name again."""
    path = store.catalog_generation
    try:
        write_bytes_atomic(path, f"{generation}\n".encode())
    except OSError as e:
        raise CatalogError(f"{path}: catalog generation not recorded ({e.strerror or e})") from e


def unnamed_files(store: Store, manifest: Manifest) -> tuple[list[Path], int]:
    """The files under the catalog's folders that ``manifest`` does not name (superseded
    ones, or a killed pass's, never published), and the highest generation any file, the
    manifest or the counter has used: the next indexer starts above it."""
    named = {store.catalog_dir / rel for rel in manifest.files()}
    used = max(manifest.generation, taken_generation(store))
    unnamed = []
    for path in store.catalog_dir.glob("*/**/*"):
        if not path.is_file():
            continue
        used = max(used, store.catalog_file_generation(path) or 0)
        if path not in named:
            unnamed.append(path)
    return sorted(unnamed), used


def published_since(store: Store, manifest: Manifest) -> float:
    """Since when ``manifest`` is the published version: its own time or its file's mtime,
    the later (another host's clock may lag); now when nothing was published. A file it
    does not name was last named by an older version, current at most until then."""
    if not manifest.published_at:
        return time.time()
    try:
        mtime = store.catalog_manifest.stat().st_mtime
    except OSError:
        mtime = 0.0
    return max(manifest.published_at, mtime)


def relative(store: Store, path: Path) -> str:
    return str(path.relative_to(store.catalog_dir))
