"""The SQL page's side of the build (issue 17): the vendored DuckDB-WASM files copied into
the site's assets, and the catalog's small tables written as Parquet under
``html/data/catalog/`` for the page (``sql.js``) to query in the browser.

Only what the site already publishes goes into the tables: the Runs list's columns
(:func:`hpclab.site.pages.runs_list_doc`, the same values the Runs page shows) and its
key metrics as a long table. Nothing the store holds and the site hides (config values
under credential names, home paths, command lines) is read here. The files are written
only when their content changed, so an unchanged catalog leaves them (and their mtimes)
as they were.

The metric points (``metrics``: project, run_id, name, step, value, wall_time, every point
the catalog holds) are published as they are stored: one Parquet file under
``data/catalog/metrics/`` per metrics file of the catalog's manifest (a segment of many
runs, or one run's file from an incremental pass), named by that file and the runs it
must leave out, so a catalog file published once is converted once, and a live update
converts only the files the indexer wrote since (:func:`write_metrics`). Snappy, not the
catalog's zstd: the page decodes them with hyparquet. ``data/catalog/metrics.json`` lists
them with their rows and bytes; the page fetches them only when a query names
``metrics``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from hpclab.site.data import SiteData
from hpclab.site.pages import runs_list_doc
from hpclab.store import Store

DUCKDB_VERSION = "1.32.0"  # scripts/vendor_duckdb.sh pins the same version
VENDOR_FILES = (
    "duckdb-browser.mjs",
    "duckdb-browser-eh.worker.js",
    "duckdb-eh.wasm",
    "Arrow.es2015.min.js",
)
VENDOR_HINT = (
    "run scripts/vendor_duckdb.sh (npm fetches the pinned @duckdb/duckdb-wasm), then rebuild"
)
RUNS_COLUMNS = (
    "project",
    "run_id",
    "status",
    "name",
    "sweep",
    "step",
    "created",
    "duration_s",
    "tags",
)
# duckdb-browser.mjs imports apache-arrow as a bare module name; the site has no bundler,
# so the import becomes the global of Arrow's UMD build (loaded first by sql.js).
_ARROW_IMPORT = 'import*as {v} from"apache-arrow"'


def vendor_cache() -> Path:
    """Where scripts/vendor_duckdb.sh puts the pinned files."""
    env = os.environ.get("HPCLAB_DUCKDB_CACHE")
    if env:
        base = Path(env)
    else:
        base = (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            / "hpclab"
            / "duckdb-wasm"
        )
    return base / DUCKDB_VERSION


def vendored() -> Path | None:
    """The directory holding every vendored file, or None."""
    d = vendor_cache()
    if (d / ".complete").is_file() and all((d / f).is_file() for f in VENDOR_FILES):
        return d
    return None


def copy_vendor(assets: Path) -> bool:
    """Copy the DuckDB-WASM files into ``assets/vendor/duckdb/``; False when absent."""
    src = vendored()
    if src is None:
        return False
    dest = assets / "vendor" / "duckdb"
    dest.mkdir(parents=True, exist_ok=True)
    for name in VENDOR_FILES:
        if name == "duckdb-browser.mjs":
            (dest / name).write_text(patch_arrow_import((src / name).read_text(encoding="utf-8")))
        else:
            shutil.copyfile(src / name, dest / name)
    return True


def patch_arrow_import(text: str) -> str:
    """``import*as u from"apache-arrow"`` -> ``const u=globalThis.Arrow``."""
    import re

    return re.sub(r'import\*as (\w+) from"apache-arrow";?', r"const \1=globalThis.Arrow;", text)


def tables(data: SiteData) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The published tables: name -> (columns, rows)."""
    doc = runs_list_doc(data)
    runs = [list(r[: len(RUNS_COLUMNS)]) for r in doc["rows"]]
    metrics: list[list[Any]] = []
    for r in doc["rows"]:
        for name, value in zip(doc["metrics"], r[len(RUNS_COLUMNS) :], strict=True):
            if value is not None:
                metrics.append([r[0], r[1], name, value])
    return {
        "runs": (list(RUNS_COLUMNS), runs),
        "metric_summary": (["project", "run_id", "metric", "value"], metrics),
    }


_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "runs": (
        ("project", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("status", "VARCHAR"),
        ("name", "VARCHAR"),
        ("sweep", "VARCHAR"),
        ("step", "BIGINT"),
        ("created", "VARCHAR"),
        ("duration_s", "DOUBLE"),
        ("tags", "VARCHAR[]"),
    ),
    "metric_summary": (
        ("project", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("metric", "VARCHAR"),
        ("value", "DOUBLE"),
    ),
}


METRICS_DIR = "metrics"  # under data/catalog/
METRICS_INDEX = "metrics.json"
METRICS_COLUMNS = ("project", "run_id", "name", "step", "value", "wall_time")
# Snappy (hyparquet decodes it natively; zstd needs another package), Parquet 2 encodings
# with no dictionaries: steps delta-packed (0.02 bytes a point), values and wall times
# byte-stream-split, run ids and names delta-length: 10.3 bytes a point against 16.2 with
# version 1's dictionaries (100 runs x 10,000 steps x 4 metrics)
SNAPPY = "FORMAT parquet, COMPRESSION snappy, PARQUET_VERSION V2, DICTIONARY_SIZE_LIMIT 1"


def write_metrics(store: Store, data_dir: Path) -> tuple[int, int]:
    """Publish the catalog's metric points for the SQL page: a Parquet file per metrics
    file of the published manifest (its superseded runs' rows left out), written only
    when not there yet; files of an older manifest removed; the index rewritten when the
    list changed. Returns (files written, files removed)."""
    import json

    from hpclab.catalog.manifest import read_manifest

    out = data_dir / "catalog" / METRICS_DIR
    out.mkdir(parents=True, exist_ok=True)
    index = data_dir / "catalog" / METRICS_INDEX
    try:
        known = {f["path"]: f for f in json.loads(index.read_text()).get("files", [])}
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        known = {}
    files = []
    written = 0
    con = None
    for path, stale in read_manifest(store).metric_files(store):
        rel = os.path.relpath(path, store.catalog_dir)
        digest = hashlib.sha256(repr((rel, stale)).encode()).hexdigest()[:20]
        name = f"{METRICS_DIR}/{digest}.parquet"
        target = data_dir / "catalog" / name
        entry = known.get(name)
        if entry is None or not target.is_file() or target.stat().st_size != entry.get("bytes"):
            if con is None:
                import duckdb

                con = duckdb.connect()
            where = ""
            if stale:
                where = " WHERE run_id NOT IN ({})".format(", ".join(f"'{_q(r)}'" for r in stale))
            tmp = out / f".{digest}.{os.getpid()}.parquet"
            # in the catalog file's order (a run's rows together): no sort, a streamed copy
            select = f"SELECT {', '.join(METRICS_COLUMNS)} FROM read_parquet('{_q(path)}'){where}"
            try:
                con.execute(f"COPY ({select}) TO '{_q(tmp)}' ({SNAPPY})")
                counted = con.execute(f"SELECT count(*) FROM read_parquet('{_q(tmp)}')").fetchone()
                rows = counted[0] if counted else 0
            except Exception:  # the catalog file went (a newer manifest): the next pass
                tmp.unlink(missing_ok=True)
                continue
            tmp.replace(target)
            entry = {"path": name, "rows": int(rows), "bytes": target.stat().st_size}
            written += 1
        files.append(entry)
    if con is not None:
        con.close()
    keep = {Path(f["path"]).name for f in files}
    removed = 0
    for old in out.glob("*.parquet"):
        if old.name not in keep:
            old.unlink(missing_ok=True)
            removed += 1
    doc = {
        "files": files,
        "rows": sum(f["rows"] for f in files),
        "bytes": sum(f["bytes"] for f in files),
    }
    text = json.dumps(doc, separators=(",", ":"))
    if not index.is_file() or index.read_text() != text:
        tmp_index = index.with_name(f".{METRICS_INDEX}.{os.getpid()}")
        tmp_index.write_text(text)
        tmp_index.replace(index)
    return written, removed


def _q(path: Any) -> str:
    return str(path).replace("'", "''")  # a store path may hold a quote


def write_tables(data: SiteData, data_dir: Path) -> list[str]:
    """Write each table as ``data_dir/catalog/<name>.parquet`` when its rows changed;
    returns the names written."""
    import duckdb
    import numpy as np

    from hpclab.catalog.parquet import write_columns

    out = data_dir / "catalog"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    con = None
    for name, (columns, rows) in tables(data).items():
        digest = hashlib.sha256(repr((columns, rows)).encode()).hexdigest()
        target = out / f"{name}.parquet"
        stamp = out / f".{name}.sha256"
        if target.is_file() and stamp.is_file() and stamp.read_text() == digest:
            continue
        con = con or duckdb.connect()
        cols: dict[str, Any] = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
        for c, sql_type in _TYPES[name]:
            if sql_type == "DOUBLE" and None not in cols[c]:
                # float64, not objects: DuckDB reads an object NaN as NULL (a metric's
                # value of NaN stays NaN; a missing one is not in the table)
                cols[c] = np.array(cols[c], dtype=np.float64)
        # snappy, DuckDB's default COPY codec, as these files always were
        write_columns(con, target, _TYPES[name], cols, compression="snappy")
        stamp.write_text(digest)
        written.append(name)
    if con is not None:
        con.close()
    return written


EXAMPLES = (
    ("Runs", "SELECT count(*) AS n FROM runs"),
    ("Runs per status", "SELECT status, count(*) AS n FROM runs GROUP BY status ORDER BY n DESC"),
    (
        "Best run per sweep",
        "SELECT sweep, arg_min(run_id, value) AS run_id, min(value) AS best FROM metric_summary "
        "JOIN runs USING (project, run_id) WHERE metric = 'val/loss' AND sweep <> '' "
        "GROUP BY sweep",
    ),
    (
        "Duration vs step (x, y)",
        "SELECT step AS x, duration_s AS y FROM runs WHERE step IS NOT NULL",
    ),
    ("Tagged runs", "SELECT run_id, name, tags FROM runs WHERE len(tags) > 0"),
    (
        "A run's val/loss curve (x, y)",
        "SELECT step AS x, value AS y FROM metrics WHERE name = 'val/loss' "
        "AND run_id = (SELECT min(run_id) FROM metrics WHERE name = 'val/loss') ORDER BY step",
    ),
    (
        "Points per metric",
        "SELECT name, count(*) AS points, max(step) AS last_step FROM metrics GROUP BY name "
        "ORDER BY name",
    ),
)


def sql_page(data: SiteData) -> Any:
    """The SQL tab: a query box, the example queries and the result, filled in by sql.js;
    one line instead when the DuckDB-WASM files were not vendored."""
    from urllib.parse import quote

    from hpclab.site.html import e, h, join
    from hpclab.site.page import Page

    page = Page("SQL", wide=True).heading(1, "SQL", in_toc=False)
    if vendored() is None:
        return page.add(
            h(
                '<p class="hl-empty" id="hl-sql-missing">DuckDB-WASM is not in this site: {}.</p>',
                VENDOR_HINT,
            )
        )
    examples = join(
        h('<li><a href="sql.html?q={}">{}</a></li>', quote(q, safe=""), label)
        for label, q in EXAMPLES
    )
    tables_doc = join(
        [
            *(
                h("<li><code>{}</code>: {}</li>", name, ", ".join(cols))
                for name, (cols, _) in tables(data).items()
            ),
            h(
                "<li><code>metrics</code>: {} (every point the catalog holds, fetched "
                "when a query names the table)</li>",
                ", ".join(METRICS_COLUMNS),
            ),
        ]
    )
    return page.add(
        h(
            '<div id="hl-sql" class="hl-sql">'
            '<textarea id="hl-sql-q" rows="4" cols="80" spellcheck="false" '
            'aria-label="SQL query"></textarea>'
            '<p><button id="hl-sql-run" type="button" class="md-button">Run</button> '
            '<span id="hl-sql-status" class="hl-empty"></span></p>'
            '<p id="hl-sql-error" class="hl-sql-error" hidden></p>'
            '<div id="hl-sql-chart" class="hl-chart-sql"></div>'  # "hl-chart: the Vega bundle
            '<div id="hl-sql-result"></div>'
            "<h2>Examples</h2><ul>{}</ul><h2>Tables</h2><ul>{}</ul></div>",
            examples,
            tables_doc,
        ),
        e(""),
    )
