"""A run's media on its page: the images of each name by step (copied into the site's
data, ``data/media/<project>/<run>/images/<sha256>.png``), its histograms' bins by step
(for ridgelines), and its tables' rows by step, each bounded: the first MAX_NAMES names
of a kind, the last MAX_STEPS steps of each, MAX_TABLE_ROWS rows of a table. Table cells
and names are user text: the page escapes them (``html`` in hpclab.js) and tables pass
the secret scanner like text logs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from hpclab.site.layout import SiteLayout
from hpclab.site.redact import redact_text
from hpclab.store import RunPaths
from hpclab.tracking.media import read_media_index

MAX_NAMES = 8
MAX_STEPS = 50
MAX_TABLE_ROWS = 50


def media_doc(paths: RunPaths) -> dict[str, Any] | None:
    """``{"images": {name: [{step, file, width, height}]}, "histograms": {name: [{step,
    low, high, counts}]}, "tables": {name: [{step, columns, rows}]}}``, or None when the
    run logged none."""
    entries = read_media_index(paths.media_dir)
    if not entries:
        return None
    by_kind: dict[str, dict[str, list[dict[str, Any]]]] = {
        "image": {},
        "histogram": {},
        "table": {},
    }
    for e in entries:
        names = by_kind[e["kind"]]
        if e["name"] not in names and len(names) >= MAX_NAMES:
            continue
        names.setdefault(str(e["name"]), []).append(e)
    out: dict[str, Any] = {"images": {}, "histograms": {}, "tables": {}}
    for name, items in by_kind["image"].items():
        out["images"][name] = [
            {"step": e.get("step"), "file": e["file"], "width": e.get("width"),
             "height": e.get("height")}
            for e in items[-MAX_STEPS:]
            if _safe(e.get("file"))
        ]  # fmt: skip
    for name, items in by_kind["histogram"].items():
        out["histograms"][name] = _histograms(paths, items[-MAX_STEPS:])
    for name, items in by_kind["table"].items():
        out["tables"][name] = [_table(paths, e) for e in items[-MAX_STEPS:] if _safe(e.get("file"))]
    return out


def publish_media(layout: SiteLayout, project: str, run_id: str, paths: RunPaths, doc: Any) -> None:
    """Copy the images the page shows into the site's data (once per content)."""
    if not doc:
        return
    target = layout.data / "media" / project / run_id
    for items in doc["images"].values():
        for item in items:
            src, dst = paths.media_dir / item["file"], target / item["file"]
            if dst.exists():
                continue
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
            except OSError:  # an image gone: the page shows its step without it
                continue


def _safe(rel: Any) -> bool:
    """A media file path that stays inside the run's media/ (never ``..`` or absolute)."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel:
        return False
    return ".." not in rel.split("/") and not os.path.isabs(rel)


def _histograms(paths: RunPaths, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    arrays: dict[str, Any] = {}
    for e in items:
        rel, row = e.get("file"), e.get("row")
        if not isinstance(rel, str) or not _safe(rel) or not isinstance(row, int):
            continue
        try:
            if rel not in arrays:
                import zarr

                arrays[rel] = zarr.open_array(store=str(paths.media_dir / rel), mode="r")
            values = arrays[rel][row]
        except Exception:  # a torn array: that step is left out
            continue
        out.append(
            {"step": e.get("step"), "low": float(values[1]), "high": float(values[2]),
             "counts": [int(c) for c in values[3:]]}
        )  # fmt: skip
    return out


def _table(paths: RunPaths, e: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    file = Path(paths.media_dir / e["file"])
    try:
        con = duckdb.connect()
        cur = con.execute("SELECT * FROM read_parquet(?) LIMIT ?", [str(file), MAX_TABLE_ROWS])
        columns = [d[0] for d in cur.description]
        rows = [[_cell(v) for v in r] for r in cur.fetchall()]
        con.close()
    except Exception:
        return {"step": e.get("step"), "columns": [], "rows": [], "n_rows": 0}
    return {"step": e.get("step"), "columns": columns, "rows": rows, "n_rows": e.get("rows")}


def _cell(v: Any) -> Any:
    if isinstance(v, str):
        return redact_text(v)[0]
    return v


__all__ = ["media_doc", "publish_media"]
