"""The Runs table's columns, sort, filter, export and shareable view (issue 17): config
values and summary metrics as columns from ``data/runs-config.json`` (columnar, redacted),
chosen by the user (default: the config paths that vary, and the key metrics), sorted,
filtered by expressions over config and metrics, exported as CSV/JSON (a Blob made in
the page, read back here), the view kept in the URL, and user text shown as text. Real
builds, a real server and real headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from helpers import ARTIFACTS, screenshot
from site_fixtures import log_run, make_site_store, served_site

from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.data import SiteData, load
from hpclab.site.layout import SiteLayout
from hpclab.site.redact import MARKER
from hpclab.site.runs_table import MAX_DISTINCT, runs_config_doc
from hpclab.store import Store

HOSTILE = '<img src=x onerror="window.__hlRan=1">'
HOSTILE_KEY = "<i>k</i>"
SECRET = "hunter2-do-not-publish"
FORMULA = '=HYPERLINK("http://x","y")'  # a spreadsheet would run it
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")

HEADERS = "Array.from(document.querySelectorAll('table.hl-runs thead th'), th => th.textContent)"
IDS = "Array.from(document.querySelectorAll('table.hl-runs tbody a.hl-run'), a => a.textContent)"
CELLS = (
    "Array.from(document.querySelectorAll('table.hl-runs tbody tr'),"
    " tr => Array.from(tr.cells).slice(1).map(td => td.textContent))"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path, str]]:
    root = tmp_path_factory.mktemp("runs table") / "store with 'quotes'"
    store = make_site_store(root)
    config = {"optim": {"lr": 0.05}, "model": {"name": HOSTILE}, HOSTILE_KEY: 1}
    config["db"] = {"password": SECRET}
    config["name"] = "cfgname"  # a config path named like a column of the run's
    config["note"] = FORMULA
    log_run(store, "hostile", config, None)
    site_dir = tmp_path_factory.mktemp("site")
    with served_site(store, site_dir) as base:
        yield store, SiteLayout(site_dir).html, base


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs Debian's chromium)")
    with Chromium() as b:
        yield b


def _open(browser: Chromium, url: str) -> Page:
    page = browser.new_page()
    # an export is a download: refused here, the test reads the Blob in the page instead
    browser.send(
        "Browser.setDownloadBehavior", {"behavior": "deny", "browserContextId": page.context}
    )
    page.goto(url)
    page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
    page.wait_for("document.querySelector('.hl-runs-scroll').dataset.ready === '1'")
    return page


def _type(page: Page, text: str) -> None:
    page.evaluate(
        "(() => { const i = document.querySelector('.hl-filter-input');"
        f" i.value = {json.dumps(text)}; i.dispatchEvent(new Event('input')); }})()"
    )


def _click_header(page: Page, label: str) -> None:
    page.evaluate(
        "Array.from(document.querySelectorAll('table.hl-runs thead th'))"
        f".find(th => th.textContent === {json.dumps(label)}).click()"
    )


def _rows(html: Path) -> list[list[Any]]:
    return list(json.loads((html / "data" / "runs-list.json").read_text())["rows"])


def _config(store: Store) -> dict[str, dict[str, Any]]:
    """run id -> config path -> value, from the catalog (the table's source)."""
    data = load(store)
    return {rid: {p: json.loads(v) for p, v in f.items()} for (_, rid), f in data.features.items()}


def _g4(v: Any) -> str:  # the page's number text (hpclab.js numText: "%.4g", integers whole)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return f"{v:.4g}"


def _metric_order(rows: list[list[Any]], col: int, *, asc: bool) -> list[str]:
    """Run ids by a metric, missing values last either way, ties in the list's order."""
    have = [(r[col], i, r[1]) for i, r in enumerate(rows) if r[col] is not None]
    have.sort(key=lambda t: ((t[0] if asc else -t[0]), t[1]))
    return [rid for _, _, rid in have] + [r[1] for r in rows if r[col] is None]


def test_runs_config_doc_is_columnar_redacted_and_bounded(tmp_path: Path) -> None:
    """Few distinct values: a dictionary and codes; many numbers: the values; many texts:
    left out and named; secrets redacted; hpclab.* not a column; one entry per run."""
    n = MAX_DISTINCT + 50
    runs = [{"project": "p", "run_id": f"r{i:04d}", "status": "completed"} for i in range(n)]
    features = {
        ("p", r["run_id"]): {
            "optim.lr": json.dumps(10 ** -(1 + i % 3)),
            "optim.beta": json.dumps(i / 1000),  # one per run: numbers, kept as values
            "out_dir": json.dumps(f"/scratch/run-{i}"),  # one per run: text, left out
            "db.password": json.dumps(SECRET),
            "note": json.dumps(f"token ghp_{'a' * 36}" if i == 0 else "plain"),
            "hpclab.name": json.dumps(f"n{i}"),
            **({"model.name": json.dumps("vit")} if i % 2 else {}),
        }
        for i, r in enumerate(runs)
    }
    data = SiteData(store=Store(tmp_path), runs=runs, features=features)
    doc = runs_config_doc(data)
    assert doc["n"] == n
    cols = {c["key"]: c for c in doc["config"]}
    assert sorted(cols) == ["db.password", "model.name", "note", "optim.beta", "optim.lr"]
    assert doc["omitted"] == ["out_dir"]
    lr = cols["optim.lr"]
    assert sorted(lr["dict"]) == [0.001, 0.01, 0.1]
    assert [lr["dict"][c] for c in lr["codes"][:4]] == [0.1, 0.01, 0.001, 0.1]
    assert cols["optim.beta"]["values"][:3] == [0.0, 0.001, 0.002]
    assert cols["model.name"]["dict"] == ["vit"] and cols["model.name"]["codes"][:3] == [-1, 0, -1]
    assert cols["db.password"]["dict"] == [MARKER]
    assert "ghp_" not in json.dumps(doc) and SECRET not in json.dumps(doc)


@needs_chromium
def test_config_column_shows_each_runs_value_and_the_file_holds_no_secret(
    site: tuple[Store, Path, str], browser: Chromium
) -> None:
    store, html, base = site
    text = (html / "data" / "runs-config.json").read_text()
    assert SECRET not in text and MARKER in text
    config = _config(store)
    page = _open(browser, base + "runs/index.html")
    heads = page.evaluate(HEADERS)
    # the default: the key metrics and the config paths that vary (not those alike in
    # every run, nor hpclab.*), between the run's fields
    assert heads[:7] == ["", "status", "run", "name", "project", "sweep", "val/loss"]
    assert "optim.lr" in heads and "optim.weight_decay" in heads
    assert "data.n_train" not in heads and not any(h.startswith("hpclab.") for h in heads)
    col = heads.index("optim.lr") - 1
    got = dict(zip(page.evaluate(IDS), (r[col] for r in page.evaluate(CELLS)), strict=True))
    assert len(got) == len(_rows(html))
    assert got == {rid: _g4(config[rid]["optim.lr"]) for rid in got}
    assert page.errors == [], page.errors
    page.close()


@needs_chromium
def test_sorting_by_a_metric_column_orders_every_row(
    site: tuple[Store, Path, str], browser: Chromium
) -> None:
    _, html, base = site
    rows = _rows(html)
    vl = 9 + json.loads((html / "data" / "runs-list.json").read_text())["metrics"].index("val/loss")
    page = _open(browser, base + "runs/index.html")
    _click_header(page, "val/loss")
    want = _metric_order(rows, vl, asc=True)
    page.wait_for(f"{IDS}.join() === {json.dumps(','.join(want))}")
    assert page.evaluate(IDS) == want
    _click_header(page, "val/loss")
    want_desc = _metric_order(rows, vl, asc=False)
    page.wait_for(f"{IDS}[0] === {json.dumps(want_desc[0])}")
    assert page.evaluate(IDS) == want_desc
    assert page.errors == [], page.errors
    page.close()


@needs_chromium
def test_a_config_expression_hides_the_right_rows(
    site: tuple[Store, Path, str], browser: Chromium
) -> None:
    store, html, base = site
    config = _config(store)
    rows = _rows(html)
    page = _open(browser, base + "runs/index.html")
    for expr, keep in (
        ("optim.lr < 0.01", lambda c: c.get("optim.lr", 1) < 0.01),
        (
            "optim.lr >= 0.001 and optim.weight_decay == 0",
            lambda c: c.get("optim.lr", 0) >= 0.001 and c.get("optim.weight_decay") == 0,
        ),
    ):
        want = [r[1] for r in rows if keep(config[r[1]])]
        assert 0 < len(want) < len(rows)
        _type(page, expr)
        counted = f"'{len(want)} of {len(rows)} runs'"
        page.wait_for(f"document.querySelector('.hl-filter-count').textContent === {counted}")
        assert page.evaluate(IDS) == want
        assert page.evaluate("document.querySelector('.hl-filter-error').textContent") == ""
    assert page.errors == [], page.errors
    page.close()


def _view_url(base: str, q: str, cols: list[str], sort: str, direction: str) -> str:
    params = [("f", q), *(("c", c) for c in cols), ("sort", sort), ("dir", direction)]
    return f"{base}runs/index.html?{urlencode(params)}"


@needs_chromium
def test_csv_and_json_exports_equal_the_view(
    site: tuple[Store, Path, str], browser: Chromium
) -> None:
    store, html, base = site
    config = _config(store)
    cols = ["status", "run", "name", "m:val/loss", "c:optim.lr", "c:optim.weight_decay"]
    page = _open(browser, _view_url(base, "optim.lr < 0.01", cols, "c:optim.lr", "desc"))
    heads = page.evaluate(HEADERS)[1:]
    ids, cells = page.evaluate(IDS), page.evaluate(CELLS)
    assert ids
    page.evaluate("document.querySelector('button.hl-export[data-format=csv]').click()")
    blob = "document.querySelector('button.hl-export[data-format=FMT]')._hlBlob"
    text = page.evaluate(f"{blob.replace('FMT', 'csv')}.text()")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["project", *heads]
    body = table[1:]
    assert [r[2] for r in body] == ids  # the rows in view, in the view's order
    for row, shown in zip(body, cells, strict=True):
        assert row[1:4] == shown[:3]  # status, run, name
        for raw, seen in zip(row[4:], shown[3:], strict=True):  # numbers in full
            assert _g4(float(raw) if raw else None) == seen
        rid = row[2]
        assert float(row[5]) == config[rid]["optim.lr"]
        wd = config[rid].get("optim.weight_decay")  # the lab project's runs have none
        assert (float(row[6]) if row[6] else None) == wd
    page.evaluate("document.querySelector('button.hl-export[data-format=json]').click()")
    doc = json.loads(page.evaluate(f"{blob.replace('FMT', 'json')}.text()"))
    assert [d["run"] for d in doc] == ids
    assert list(doc[0]) == ["project", *heads]  # the project first, though not shown
    assert all(d["optim.lr"] == config[d["run"]]["optim.lr"] for d in doc)
    assert page.errors == [], page.errors
    page.close()


@needs_chromium
def test_the_url_restores_columns_sort_and_filter_and_follows_changes(
    site: tuple[Store, Path, str], browser: Chromium
) -> None:
    store, html, base = site
    config = _config(store)
    rows = _rows(html)
    cols = ["run", "m:val/loss", "c:optim.lr"]
    page = _open(browser, _view_url(base, "optim.lr < 0.01", cols, "m:val/loss", "desc"))
    assert page.evaluate(HEADERS) == ["", "run", "val/loss", "optim.lr"]
    assert page.evaluate("document.querySelector('.hl-filter-input').value") == "optim.lr < 0.01"
    sorted_th = page.evaluate(
        "(() => { const th = document.querySelector('th[aria-sort]');"
        " return [th.textContent, th.getAttribute('aria-sort')]; })()"
    )
    assert sorted_th == ["val/loss", "descending"]
    vl = 9 + json.loads((html / "data" / "runs-list.json").read_text())["metrics"].index("val/loss")
    kept = [r for r in rows if config[r[1]].get("optim.lr", 1) < 0.01]
    assert page.evaluate(IDS) == _metric_order(kept, vl, asc=False)
    # a column ticked in the chooser, and a new sort: both land in the URL ...
    page.evaluate(
        "(() => { const b = document.querySelector('input.hl-col[value=\"c:optim.weight_decay\"]');"
        " b.click(); })()"
    )
    page.wait_for("document.querySelectorAll('table.hl-runs thead th').length === 5")
    _click_header(page, "optim.weight_decay")
    query = parse_qs(urlsplit(page.evaluate("location.href")).query)
    assert query["c"] == [*cols, "c:optim.weight_decay"]
    assert query["sort"] == ["c:optim.weight_decay"] and query["dir"] == ["asc"]
    view = page.evaluate(CELLS)
    shared = page.evaluate("location.href")
    page.close()
    # ... and a second visit of that URL shows the same view
    again = _open(browser, shared)
    assert again.evaluate(HEADERS) == ["", "run", "val/loss", "optim.lr", "optim.weight_decay"]
    assert again.evaluate(CELLS) == view
    if ARTIFACTS:  # the README's picture of the table: a shared view, the chooser open
        again.evaluate("document.querySelector('details.hl-cols').open = true")
        screenshot(again, "site-runs-table.png", full_page=False)
    assert again.errors == [], again.errors
    again.close()


@needs_chromium
def test_a_hostile_config_value_and_key_are_shown_as_text(
    site: tuple[Store, Path, str], browser: Chromium
) -> None:
    _, _, base = site
    cols = ["run", "name", "c:model.name", f"c:{HOSTILE_KEY}", "c:db.password", "c:name"]
    page = _open(browser, _view_url(base, 'name == "hostile"', cols, "run", "asc"))
    heads = ["", "run", "name", HOSTILE_KEY, "db.password", "model.name", "c:name"]
    assert page.evaluate(HEADERS) == heads  # the config path "name" by its id
    assert page.evaluate(CELLS) == [
        [page.evaluate(IDS)[0], "hostile", "1", MARKER, HOSTILE, "cfgname"]
    ]
    # also filtered by the hostile value itself
    _type(page, f"model.name == {json.dumps(HOSTILE)}")
    page.wait_for("document.querySelector('.hl-filter-count').textContent.startsWith('1 of ')")
    inert = (
        "window.__hlRan === undefined && !document.querySelector('table.hl-runs img')"
        " && !document.querySelector('table.hl-runs thead i')"
    )
    assert page.evaluate(inert) is True
    chooser = page.evaluate(
        "Array.from(document.querySelectorAll('.hl-cols label'), l => l.textContent.trim())"
    )
    assert HOSTILE_KEY in chooser
    # exported with the project column once, the hostile text as it is, a formula inert
    page.evaluate("document.querySelector('input.hl-col[value=\"project\"]').click()")
    page.evaluate("document.querySelector('input.hl-col[value=\"c:note\"]').click()")
    page.evaluate("document.querySelector('button.hl-export[data-format=csv]').click()")
    text = page.evaluate(
        "document.querySelector('button.hl-export[data-format=csv]')._hlBlob.text()"
    )
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["run", "name", "project", HOSTILE_KEY, "db.password"] + [
        "model.name",
        "c:name",
        "note",
    ]
    assert table[1][2:] == ["lab", "1", MARKER, HOSTILE, "cfgname", "'" + FORMULA]
    assert page.errors == [], page.errors
    page.close()


@needs_chromium
def test_a_links_q_filters_the_table_without_opening_the_theme_search(
    site: tuple[Store, Path, str], browser: Chromium
) -> None:
    """runs/index.html?q=TEXT (the Overview's and Board's links) is the theme's search
    query too: the table takes it as its filter, kept as ?f= (the search stays shut)."""
    _, html, base = site
    want = [r[1] for r in _rows(html) if r[3] == "lower-lr"]
    page = _open(browser, base + "runs/index.html?q=lower-lr&sort=run")
    assert page.evaluate("document.querySelector('.hl-filter-input').value") == "lower-lr"
    assert page.evaluate(IDS) == want
    query = parse_qs(urlsplit(page.evaluate("location.href")).query)
    assert query == {"f": ["lower-lr"], "sort": ["run"]}  # moved before the theme read it
    assert page.evaluate("!document.getElementById('__search').checked") is True
    assert page.errors == [], page.errors
    page.close()
