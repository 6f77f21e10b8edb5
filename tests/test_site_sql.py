"""The SQL page (issue 17) in real headless Chromium: DuckDB-WASM, vendored at build time
(scripts/vendor_duckdb.sh), runs ``sql.html?q=...`` over the catalog's tables published
as Parquet, offline; results are escaped, errors are one line; without the vendored
files the build succeeds and the page says how to get them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest
from helpers import screenshot
from site_fixtures import make_site_store

from hpclab.site import sql_tables
from hpclab.site.build import build
from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.data import load
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

REPO = Path(__file__).resolve().parents[1]
CACHE = os.environ.get("HPCLAB_DUCKDB_CACHE")  # read at import: isolated_env clears HPCLAB_*
QUERY = "SELECT count(*) AS n FROM runs"
HOME_CACHE = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")


def _vendor() -> str | None:
    """None when the files are there (fetched now if npm can), else why not."""
    if sql_tables.vendored() is not None:
        return None
    r = subprocess.run(
        ["bash", str(REPO / "scripts" / "vendor_duckdb.sh")], capture_output=True, text=True
    )
    if r.returncode != 0 or sql_tables.vendored() is None:
        return "DuckDB-WASM not vendored and npm could not fetch it: " + r.stderr.strip()[-300:]
    return None


@pytest.fixture(autouse=True)
def cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    if CACHE:
        monkeypatch.setenv("HPCLAB_DUCKDB_CACHE", CACHE)
    monkeypatch.setenv("XDG_CACHE_HOME", HOME_CACHE)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs Debian's chromium)")
    with Chromium() as b:
        yield b


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    mp = pytest.MonkeyPatch()
    if CACHE:
        mp.setenv("HPCLAB_DUCKDB_CACHE", CACHE)
    mp.setenv("XDG_CACHE_HOME", HOME_CACHE)
    why = _vendor()
    if why:
        mp.undo()
        pytest.skip(why)
    store = make_site_store(tmp_path_factory.mktemp("sql") / "store")
    build(store)
    server = make_server(store.site_dir / "html", port=0)
    serve_in_thread(server)
    try:
        yield store, url_of(server)
    finally:
        server.shutdown()
        server.server_close()
        mp.undo()


def open_sql(browser: Chromium, base: str, q: str) -> Page:
    page = browser.new_page()
    page.goto(base + "sql.html?q=" + quote(q, safe=""))
    page.wait_for(
        "document.getElementById('hl-sql-status').textContent.match(/rows?/)"
        " || !document.getElementById('hl-sql-error').hidden",
        timeout=40,
    )
    return page


def assert_offline(page: Page, base: str) -> None:
    assert page.errors == [], page.errors
    outside = [u for u in page.requests if not u.startswith((base, "data:", "blob:", "about:"))]
    assert outside == [], f"requests leaving the origin: {outside}"


def test_count_runs(browser: Chromium, built: tuple[Store, str]) -> None:
    store, base = built
    n = len(load(store).runs)
    page = open_sql(browser, base, QUERY)
    cells = page.evaluate(
        "Array.from(document.querySelectorAll('#hl-sql-result td'), e => e.textContent)"
    )
    assert cells == [str(n)]
    # ?q= moves to #q= (the theme reads ?q= as its search query)
    assert page.evaluate("decodeURIComponent(location.hash.slice(3))") == QUERY
    assert page.evaluate("!document.getElementById('__search').checked")
    screenshot(page, "site-sql.png")
    assert_offline(page, base)
    page.close()


def test_syntax_error_is_one_line(browser: Chromium, built: tuple[Store, str]) -> None:
    _, base = built
    page = open_sql(browser, base, "SELEC nonsense FROM")
    text = page.evaluate("document.getElementById('hl-sql-error').textContent")
    assert "\n" not in text and "syntax error" in text.lower(), text
    assert page.evaluate("document.querySelectorAll('#hl-sql-result td').length") == 0
    assert_offline(page, base)
    page.close()


def test_hostile_value_stays_inert(browser: Chromium, built: tuple[Store, str]) -> None:
    _, base = built
    q = "SELECT '<img src=x onerror=\"window.__pwned=1\">' AS v, name FROM runs"
    page = open_sql(browser, base, q)
    assert page.evaluate("document.querySelectorAll('#hl-sql-result img').length") == 0
    first = page.evaluate("document.querySelector('#hl-sql-result td').textContent")
    assert first == '<img src=x onerror="window.__pwned=1">'
    assert page.evaluate("window.__pwned === undefined")
    assert_offline(page, base)
    page.close()


def test_tables_match_catalog(built: tuple[Store, str]) -> None:
    store, _ = built
    data = load(store)
    path = store.site_dir / "html" / "data" / "catalog" / "runs.parquet"
    got = duckdb.sql(f"SELECT run_id FROM '{path}' ORDER BY run_id").fetchall()
    assert [r[0] for r in got] == sorted(r["run_id"] for r in data.runs)
    cols = [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()]
    assert cols == list(sql_tables.RUNS_COLUMNS)  # nothing beyond what the Runs page shows


def test_unchanged_tables_not_rewritten(built: tuple[Store, str], tmp_path: Path) -> None:
    store, _ = built
    data = load(store)
    assert sql_tables.write_tables(data, tmp_path) == ["runs", "metric_summary"]
    assert sql_tables.write_tables(data, tmp_path) == []


def test_tables_hold_exactly_their_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables go to Parquet as columns, one COPY: every value comes back as it was,
    NULL as NULL, a NaN metric value as NaN, tags as lists (none, one, several), text
    that looks like SQL or markup as text; a table with no rows is an empty file."""
    import math

    runs = [
        ["p", "r1", "completed", "it's <b>x</b>", "s1", 10, "2026-01-01 00:00:00", 1.5, []],
        ["p", "r2", "failed", "", "", None, None, None, ["a"]],
        ["p", "r3", "running", "x'); DROP TABLE t; --", "s1", 2**40, "2026", 0.0, ["b", "c"]],
    ]
    metrics = [["p", "r1", "val/loss", 0.25], ["p", "r2", "val/loss", math.nan]]
    given = {
        "runs": (list(sql_tables.RUNS_COLUMNS), runs),
        "metric_summary": (["project", "run_id", "metric", "value"], metrics),
    }
    monkeypatch.setattr(sql_tables, "tables", lambda data: given)
    assert sql_tables.write_tables(None, tmp_path) == ["runs", "metric_summary"]  # type: ignore[arg-type]
    out = tmp_path / "catalog"
    got = duckdb.sql(f"SELECT * FROM '{out / 'runs.parquet'}' ORDER BY run_id").fetchall()
    assert [list(r) for r in got] == runs
    types = duckdb.sql(f"DESCRIBE SELECT * FROM '{out / 'runs.parquet'}'").fetchall()
    assert [t[1] for t in types] == [t for _, t in sql_tables._TYPES["runs"]]
    got = duckdb.sql(f"SELECT * FROM '{out / 'metric_summary.parquet'}' ORDER BY run_id")
    (a, b) = got.fetchall()
    assert list(a) == metrics[0] and list(b[:3]) == metrics[1][:3] and math.isnan(b[3])
    codecs = duckdb.sql(
        f"SELECT DISTINCT compression FROM parquet_metadata('{out / 'runs.parquet'}')"
    ).fetchall()
    assert codecs == [("SNAPPY",)]  # what the page's DuckDB-WASM has always been given
    given["metric_summary"] = (given["metric_summary"][0], [])
    assert sql_tables.write_tables(None, tmp_path) == ["metric_summary"]  # type: ignore[arg-type]
    empty = duckdb.sql(f"SELECT count(*) FROM '{out / 'metric_summary.parquet'}'")
    assert empty.fetchall() == [(0,)]


def test_build_without_vendored_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCLAB_DUCKDB_CACHE", str(tmp_path / "none"))
    store = make_site_store(tmp_path / "store")
    build(store)
    html = (store.site_dir / "html" / "sql.html").read_text()
    assert "scripts/vendor_duckdb.sh" in html and 'id="hl-sql-missing"' in html
    assert not (store.site_dir / "html" / "assets" / "vendor" / "duckdb").exists()
    assert (store.site_dir / "html" / "runs" / "index.html").is_file()


def test_chart_for_x_y(browser: Chromium, built: tuple[Store, str]) -> None:
    _, base = built
    q = "SELECT i AS x, i * i AS y FROM range(5) t(i)"
    page = open_sql(browser, base, q)
    page.wait_for("document.getElementById('hl-sql-chart').dataset.rendered === '1'")
    points = page.evaluate("document.querySelectorAll('#hl-sql-chart g.mark-symbol path').length")
    assert points == 5
    assert_offline(page, base)
    page.close()
