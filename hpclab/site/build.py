"""``hpclab site build``: the catalog into a static website.

1. read the catalog once (:func:`hpclab.site.data.load`);
2. write the MkDocs project: the template (``site/`` in the repository: mkdocs.yml,
   theme overrides, hpclab's JS and CSS), the generated pages and their navigation (both
   from one list, :data:`hpclab.site.registry.PAGES`), and the Vega/Vega-Lite/Vega-Embed
   bundle from vl-convert (cached: making it takes 2 s);
3. run MkDocs in-process into a scratch directory and move the result into ``html/``
   page by page, leaving ``html/data/`` (hpclab's, not MkDocs') in place;
4. write the data files: each run's series and details, ``live.json``, ``pages.json``.

Every site also carries the method behind its numbers: ``docs/statistics.md``, reached
through the template as ``statistics.md`` (a link in the source tree, a copy inside the
wheel: one text, never a copy to keep in sync), built by MkDocs as Markdown into
``statistics.html`` and put in the navigation as "Method". Pages link to its sections
with :func:`hpclab.site.html.stats_link`.

Pages are few (one per tab, one per sweep and hypothesis report), so the MkDocs part
takes about the same time for 10 runs or 1,000; the data files grow with the runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpclab.catalog.manifest import read_manifest
from hpclab.errors import SiteError
from hpclab.site.cost import accounting
from hpclab.site.data import Key, SiteData, load
from hpclab.site.details import DetailsCache, run_details
from hpclab.site.html import STATISTICS_PAGE
from hpclab.site.layout import SiteLayout
from hpclab.site.livedoc import RECENT_S, live_doc, run_info
from hpclab.site.pages import write_list_data
from hpclab.site.registry import generate
from hpclab.site.series import (
    MAX_POINTS,
    run_series,
    write_full_series,
    write_json,
    write_run_series,
)
from hpclab.site.series_bulk import write_bulk
from hpclab.site.sql_tables import copy_vendor, write_metrics, write_tables
from hpclab.store import Store
from hpclab.store.record import ACTIVE_STATUSES

log = logging.getLogger(__name__)
HOOKS = Path(__file__).with_name("mkdocs_hooks.py")
BUNDLE_SNIPPET = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
# Vega compiles chart expressions with Function() unless given an interpreter; the site's
# CSP forbids eval, so vega-interpreter (vendored: vl-convert does not ship it) joins the
# bundle, with the three vega-util functions it imports (vl-convert exposes no vega-util).
VENDOR = Path(__file__).with_name("vendor")
INTERPRETER_VERSION = "2.3.2"
METHOD_TITLE = "Method"  # the navigation entry of docs/statistics.md
REPORTS_INDEX = "reports/index.md"  # the last built-in tab: the method's comes after it
_INTERPRETER_IMPORT = "import { ascending, isString, DisallowedObjectProperties } from 'vega-util';"
_INTERPRETER_EXPORT = "export { expression as expressionInterpreter };"


def bundle_snippet() -> str:
    """vl-convert's bundle entry: Vega, Vega-Lite, Vega-Embed and the interpreter as
    globals (``window.vegaExpressionInterpreter``)."""
    src = (VENDOR / "vega-interpreter.js").read_text(encoding="utf-8")
    if _INTERPRETER_IMPORT not in src or _INTERPRETER_EXPORT not in src:
        raise SiteError(f"{VENDOR}/vega-interpreter.js: not the build hpclab expects")
    prelude = (VENDOR / "vega-util-prelude.js").read_text(encoding="utf-8")
    body = src.replace(_INTERPRETER_IMPORT, prelude).replace(
        _INTERPRETER_EXPORT, "return expression;"
    )
    return f"{BUNDLE_SNIPPET}\nwindow.vegaExpressionInterpreter = (function () {{\n{body}\n}})();\n"


@dataclass
class BuildReport:
    runs: int = 0
    pages: int = 0
    seconds: float = 0.0
    mkdocs_seconds: float = 0.0
    data_seconds: float = 0.0
    site_dir: Path | None = None

    @property
    def html(self) -> Path:
        assert self.site_dir is not None
        return SiteLayout(self.site_dir).html


def template_dir() -> Path:
    """The MkDocs template: the repository's top-level ``site/``, reached as
    ``hpclab/site/template`` (a link in the source tree, a copy inside the wheel)."""
    here = Path(__file__).resolve().parent / "template"
    if not (here / "mkdocs.yml").is_file():
        raise SiteError(f"site template not found at {here} (a broken hpclab install?)")
    return here


def statistics_text() -> str:
    """docs/statistics.md, the method behind every number the site shows, as the template
    holds it (``statistics.md``: a link to docs/ in the source tree, a copy in the wheel);
    built as Markdown (it is the project's text, not user data)."""
    path = template_dir() / STATISTICS_PAGE
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise SiteError(
            f"{path}: the method page (docs/statistics.md) cannot be read ({e.strerror}): "
            "a broken hpclab install?"
        ) from None


def with_method(nav: list[Any]) -> list[Any]:
    """The navigation with the method's tab after the built-in ones (after Reports, the
    last of them; pages added with ``register_page`` stay at the end)."""
    entry = {METHOD_TITLE: STATISTICS_PAGE}
    for i, item in enumerate(nav):
        paths = [
            v for value in item.values() for v in (value if isinstance(value, list) else [value])
        ]
        if REPORTS_INDEX in paths:
            return [*nav[: i + 1], entry, *nav[i + 1 :]]
    return [*nav, entry]


def build(
    store: Store,
    out: Path | None = None,
    *,
    max_points: int | None = None,
) -> BuildReport:
    """Build the whole site (pages and every run's data files) under ``out`` (default: the
    store's ``.site``). Problems that leave a part out (a run without chart data) are
    logged as warnings."""
    start = time.perf_counter()
    layout = SiteLayout(Path(out).absolute() if out else store.site_dir)
    data = load(store)
    report = BuildReport(runs=len(data.runs), site_dir=layout.dir)
    t = time.perf_counter()
    report.pages = build_pages(data, layout)
    report.mkdocs_seconds = time.perf_counter() - t
    t = time.perf_counter()
    keys: list[Key] = [(r["project"], r["run_id"]) for r in data.runs]
    if layout.legacy_series.is_dir():  # JSON series of an older build
        shutil.rmtree(layout.legacy_series, ignore_errors=True)
    with ThreadPoolExecutor(max_workers=1) as pool:  # DuckDB's writes beside Python's
        series = pool.submit(write_series, data, layout, keys, max_points=max_points)
        write_details(data, layout, keys)
        write_list_data(data, layout)
        write_tables(data, layout.data)  # the SQL page's Parquet tables
        write_metrics(data.store, layout.data)  # and its metric points, file by file
        infos = series.result()
    write_json(layout.live_json, live_doc(infos))
    report.data_seconds = time.perf_counter() - t
    report.seconds = time.perf_counter() - start
    return report


def write_details(data: SiteData, layout: SiteLayout, keys: list[Key]) -> None:
    from hpclab.site.media import publish_media

    cache = DetailsCache()  # what the runs' documents share, made once
    for key in keys:
        doc = run_details(data, key, cache)
        publish_media(layout, *key, data.store.run_paths(*key), doc.get("media"))
        write_json(layout.details_json(*key), doc)


def write_series(
    data: SiteData,
    layout: SiteLayout,
    keys: list[Key],
    *,
    max_points: int | None = None,
    from_zarr: list[Key] | None = None,
) -> dict[Key, dict[str, Any]]:
    """Every run's series file: in bulk from the catalog (:mod:`hpclab.site.series_bulk`),
    except the runs the catalog may lag or live.json lists (``from_zarr``, default
    :func:`lagging`), each written from its zarr (threads: chunk reads release the GIL);
    returns what live.json needs of those."""
    points = max_points or MAX_POINTS
    zarr_keys = lagging(data, keys) if from_zarr is None else list(from_zarr)
    fresh = set(zarr_keys)
    bulk = [k for k in keys if k not in fresh]
    written = write_bulk(
        data.store,
        bulk,
        layout.series_parquet,
        layout.series_scratch,
        max_points=points,
        full_target=layout.full_series_parquet,
    )
    for key in bulk:
        if key not in written:  # DuckDB split its rows (never seen): from its zarr
            zarr_keys.append(key)

    def one(key: Key) -> tuple[Key, dict[str, Any] | None]:
        try:
            series = run_series(data.store, *key, max_points=points)
            write_run_series(layout.series_parquet(*key), series)
            write_full_series(layout.full_series_parquet(*key), data.store, *key, series)
            return key, run_info(data.store, key, series, data.total_steps(key))
        except Exception as e:  # a half-written run: its page says it has no data
            log.warning("%s/%s: no chart data (%s)", key[0], key[1], e)
            return key, None

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, zarr_keys))
    return {k: info for k, info in results if info is not None}


def lagging(data: SiteData, keys: list[Key]) -> list[Key]:
    """The runs whose series come from their zarr: active in the catalog, or whose
    ``run.json`` or metrics commit changed since the catalog was published or in the last
    RECENT_S seconds (they may have ended lately: live.json lists them). A stat of two
    files per run; the rest of the runs are the catalog's, as it holds them."""
    since = min(read_manifest(data.store).published_at, time.time() - RECENT_S)
    out = []
    for key in keys:
        row = data.by_key.get(key) or {}
        if row.get("status") in ACTIVE_STATUSES:
            out.append(key)
            continue
        paths = data.store.run_paths(*key)
        for p in (paths.run_json, paths.metrics_commit):
            try:
                if os.stat(p).st_mtime >= since:
                    out.append(key)
                    break
            except FileNotFoundError:
                continue
    return out


def build_pages(data: SiteData, layout: SiteLayout) -> int:
    """Regenerate the pages and run MkDocs; ``html/data`` is left as it is. Returns the
    number of pages."""
    docs = generate(data, accounting(data))
    if layout.src.exists():
        shutil.rmtree(layout.src)
    template = template_dir()
    layout.docs.mkdir(parents=True)
    shutil.copytree(template / "overrides", layout.src / "overrides")
    shutil.copytree(template / "assets", layout.docs / "assets")
    (layout.docs / "assets" / "vendor" / "vega-bundle.js").write_text(vega_bundle(layout))
    copy_vendor(layout.docs / "assets")  # DuckDB-WASM for the SQL page, when vendored
    for rel, page in docs.pages.items():
        path = layout.docs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page.source(), encoding="utf-8")
    if STATISTICS_PAGE in docs.pages:
        raise SiteError(f"a generated page is registered at {STATISTICS_PAGE}, the method's page")
    (layout.docs / STATISTICS_PAGE).write_text(statistics_text(), encoding="utf-8")
    config = yaml.safe_load((template / "mkdocs.yml").read_text())
    config["hooks"] = [str(HOOKS)]  # pages are HTML: no Markdown on them
    config["nav"] = with_method(docs.nav)
    config["not_in_nav"] = "\n".join(docs.not_in_nav)  # reached by links
    layout.mkdocs_yml.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    scratch = layout.dir / ".build"
    _mkdocs(layout, scratch)
    _publish(scratch, layout.html)
    write_json(
        layout.pages_json,
        {"signature": data.signature(), "pages": sorted(docs.pages), "built_at": time.time()},
    )
    return len(docs.pages)


def _mkdocs(layout: SiteLayout, scratch: Path) -> None:
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    if scratch.exists():
        shutil.rmtree(scratch)
    mkdocs_log = logging.getLogger("mkdocs")
    level = mkdocs_log.level
    mkdocs_log.setLevel(logging.ERROR)  # MkDocs' INFO lines ("Building documentation...") are noise
    try:
        cfg = load_config(config_file=str(layout.mkdocs_yml), site_dir=str(scratch))
        mkdocs_build(cfg)
    except MkDocsException as e:
        raise SiteError(f"MkDocs could not build {layout.mkdocs_yml}: {e}") from None
    finally:
        mkdocs_log.setLevel(level)


def _publish(scratch: Path, html: Path) -> None:
    """Move the new build into ``html`` entry by entry (each a rename: a browser reading
    the site sees the old page or the new one), keeping ``html/data``."""
    html.mkdir(parents=True, exist_ok=True)
    new = {p.name for p in scratch.iterdir()}
    for entry in scratch.iterdir():
        target = html / entry.name
        if entry.name == "data":
            continue
        if target.exists():
            old = html / f".old-{entry.name}"
            if old.exists():
                _remove(old)
            target.rename(old)
            entry.rename(target)
            _remove(old)
        else:
            entry.rename(target)
    for stale in html.iterdir():
        if stale.name not in new and stale.name != "data" and not stale.name.startswith("."):
            _remove(stale)
    shutil.rmtree(scratch, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def vega_bundle(layout: SiteLayout) -> str:
    """Vega, Vega-Lite and Vega-Embed as one script (vl-convert's bundle: 2 s to make),
    cached per version in the user's cache (``$XDG_CACHE_HOME/hpclab``), else the site's."""
    import os

    import vl_convert

    versions = (
        f"{vl_convert.get_vega_embed_version()}-{vl_convert.get_vega_version()}"
        f"-interpreter{INTERPRETER_VERSION}"
    )
    name = f"vega-bundle-{versions}.js"
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hpclab"
    for cache in (home, layout.cache):
        if (cache / name).is_file():
            return (cache / name).read_text(encoding="utf-8")
    text = vl_convert.javascript_bundle(bundle_snippet())
    for cache in (home, layout.cache):
        try:
            cache.mkdir(parents=True, exist_ok=True)
            tmp = cache / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(cache / name)
            break
        except OSError:
            continue
    return text
