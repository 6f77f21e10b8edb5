"""The site as an analysis workspace, continued (issue 17), in real headless Chromium:
compare charts grouped by a tag and coloured by a config path, parallel-coordinate
brushes and the scatter's axes restored from the URL, tick labels that never overlap,
the metric points in the SQL tab, and the hover and zoom screenshots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from helpers import screenshot
from site_fixtures import log_run, make_site_store, served_site

from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import index_store
from hpclab.site import sql_tables
from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.data import load
from hpclab.site.layout import SiteLayout
from hpclab.site.live import LiveSite
from hpclab.store import Store

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")

TAG = "warmup"
BOX = ".hl-compare-chart"
DRAWN = (
    f"document.querySelectorAll('{BOX} > div').length > 0 && Array.from("
    f"document.querySelectorAll('{BOX} > div')).every(e => e.dataset.rendered === '1')"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str, Chromium]]:
    root = tmp_path_factory.mktemp("ws2")
    store = make_site_store(root / "store")
    # every other run of the first sweep tagged: a tag some of the compared runs have
    data = load(store)
    sweep = data.sweeps[0]["sweep_id"]
    for i, p in enumerate(data.sweep_points[("bench", sweep)]):
        if i % 2 == 0:
            store.run_paths("bench", p["run_id"]).notes_yaml.write_text(
                yaml.safe_dump({"tags": [TAG], "text": ""})
            )
    with served_site(store, root / "site") as base, Chromium() as browser:
        yield store, base, browser


def _sweep_keys(store: Store) -> list[str]:
    data = load(store)
    sweep = data.sweeps[0]["sweep_id"]
    return [f"bench/{p['run_id']}" for p in data.sweep_points[("bench", sweep)]]


def _open(browser: Chromium, url: str, ready: str = DRAWN, width: int = 1360) -> Page:
    page = browser.new_page(width=width)
    page.goto(url)
    page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
    page.wait_for(ready, timeout=20)
    return page


def _legend(page: Page) -> list[str]:
    return sorted(
        page.evaluate(
            f"Array.from(document.querySelector('{BOX}').querySelectorAll("
            "'g.role-legend-label text')).map(t => t.textContent)"
        )
    )


def test_compare_groups_runs_by_a_tag(site: tuple[Store, str, Chromium]) -> None:
    store, base, browser = site
    keys = _sweep_keys(store)
    tagged = sum(1 for i in range(len(keys)) if i % 2 == 0)
    page = _open(browser, f"{base}runs/compare.html?r={','.join(keys)}&group=tag:{TAG}")
    options = page.evaluate(
        "Array.from(document.querySelectorAll('.hl-chart-group option')).map(o => o.value)"
    )
    assert f"tag:{TAG}" in options and "tags:" in options
    assert page.evaluate("document.querySelector('.hl-chart-group').value") == f"tag:{TAG}"
    groups = page.evaluate(f"JSON.parse(document.querySelector('{BOX} > div').dataset.groups)")
    assert groups == {TAG: tagged, f"not {TAG}": len(keys) - tagged}
    assert page.evaluate(f"document.querySelectorAll('{BOX} g.mark-area path').length") >= 1
    assert _legend(page) == sorted([TAG, f"not {TAG}"])
    # the whole tag set: the same two groups, named by their tags
    page.evaluate(
        "(() => { const s = document.querySelector('.hl-chart-group');"
        " s.value = 'tags:'; s.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for(
        f"(document.querySelector('{BOX} > div').dataset.groups || '').includes('untagged')"
    )
    page.wait_for(DRAWN)
    groups = page.evaluate(f"JSON.parse(document.querySelector('{BOX} > div').dataset.groups)")
    assert groups == {f"tags={TAG}": tagged, "untagged": len(keys) - tagged}
    assert "group=tags%3A" in page.evaluate("location.search")
    assert page.errors == [], page.errors
    page.close()


def test_compare_colours_runs_by_a_config_path(site: tuple[Store, str, Chromium]) -> None:
    store, base, browser = site
    data = load(store)
    keys = _sweep_keys(store)
    lrs: dict[str, int] = {}
    for k in keys:
        lr = f"lr={json.loads(data.features[('bench', k.split('/')[1])]['optim.lr'])}"
        lrs[lr] = lrs.get(lr, 0) + 1
    assert len(lrs) > 1 and max(lrs.values()) > 1  # runs share a colour
    page = _open(browser, f"{base}runs/compare.html?r={','.join(keys)}&color=optim.lr")
    assert page.evaluate("document.querySelector('.hl-chart-colour').value") == "optim.lr"
    colours = page.evaluate(f"JSON.parse(document.querySelector('{BOX} > div').dataset.colours)")
    assert colours == lrs
    assert _legend(page) == sorted(lrs)  # one legend entry per value, not per run
    # still one line per run, and the runs of one value drawn in one colour
    strokes = page.evaluate(
        f"Array.from(document.querySelector('{BOX}').querySelectorAll("
        "'g.mark-line path')).map(p => p.getAttribute('stroke'))"
    )
    assert len(strokes) == len(keys)
    assert len(set(strokes)) == len(lrs)
    # back to a colour per run: the URL forgets it
    page.evaluate(
        "(() => { const s = document.querySelector('.hl-chart-colour');"
        " s.value = ''; s.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for(f"document.querySelector('{BOX} > div').dataset.colours === ''")
    page.wait_for(DRAWN)
    assert "color=" not in page.evaluate("location.search")
    assert len(_legend(page)) == len(keys)
    assert page.errors == [], page.errors
    page.close()


def _runs_page(browser: Chromium, url: str, width: int = 1360) -> Page:
    return _open(
        browser,
        url,
        "document.querySelector('.hl-runs-scroll') && "
        "document.querySelector('.hl-runs-scroll').dataset.ready === '1'",
        width,
    )


def _count(page: Page) -> int:
    text = page.evaluate("document.querySelector('.hl-filter-count').textContent")
    return int(text.split(" of ")[0].replace(",", ""))


def _values(store: Store, path: str) -> list[float]:
    data = load(store)
    out = []
    for r in data.runs:
        v = data.features.get((r["project"], r["run_id"]), {}).get(path)
        if v is not None:
            out.append(float(json.loads(v)))
    return out


def test_parcoords_brushes_and_scatter_axes_restored_from_the_url(
    site: tuple[Store, str, Chromium],
) -> None:
    store, base, browser = site
    lrs = sorted(set(_values(store, "optim.lr")))
    assert len(lrs) >= 3
    lo, hi = lrs[1] * 0.99, lrs[-1] * 1.01  # every rate but the smallest
    inside = [v for v in _values(store, "optim.lr") if lo <= v <= hi]
    query = f"pcb=c:optim.lr@{lo},{hi}&pcx=c:optim.lr&pcy=m:val/loss&pcc=c:optim.lr"
    page = _runs_page(browser, f"{base}runs/index.html?{query}")
    page.wait_for("document.querySelector('.hl-parcoords').open === true")
    page.wait_for(
        f"document.querySelector('.hl-filter-count').textContent.startsWith('{len(inside)} of')"
    )
    assert 0 < len(inside) < len(_values(store, "optim.lr"))
    axis = "document.querySelector('.hl-pc-axis[data-col=\"c:optim.lr\"]')"
    page.wait_for(f"{axis} && {axis}.dataset.lo !== undefined")
    assert [float(page.evaluate(f"{axis}.dataset.{k}")) for k in ("lo", "hi")] == [lo, hi]
    assert page.evaluate(f"{axis}.querySelectorAll('.hl-pc-brush').length") == 1
    picked = page.evaluate(
        "['.hl-pc-x', '.hl-pc-y', '.hl-pc-colour'].map(c => document.querySelector(c).value)"
    )
    assert picked == ["c:optim.lr", "m:val/loss", "c:optim.lr"]
    # the scatter draws the kept runs in colour, the brushed-out ones faint
    blue = page.evaluate(
        "document.querySelectorAll('.hl-pc-scatter circle[fill=\"#1a73e8\"]').length"
    )
    assert blue == len(inside)
    # a second brush, by a real drag, joins the first in the URL; the URL reopens the view
    x, top, h = page.evaluate(
        "(() => { const r = document.querySelector("
        "'.hl-pc-axis[data-col=\"m:val/loss\"] .hl-pc-hit').getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y, r.height]; })()"
    )
    for kind, y in (
        ("mousePressed", top + 0.4 * h),
        ("mouseMoved", top + h),
        ("mouseReleased", top + h),
    ):
        page.send(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
        )
    page.wait_for("new URLSearchParams(location.search).getAll('pcb').length === 2")
    shared = page.evaluate("location.href")
    kept = _count(page)
    assert kept <= len(inside)
    again = _runs_page(browser, shared)
    again.wait_for(
        f"document.querySelector('.hl-filter-count').textContent.startsWith('{kept} of')"
    )
    brushed = again.evaluate("document.querySelectorAll('.hl-pc-brush').length")
    assert brushed == 2
    # clearing the brushes takes them out of the URL
    again.evaluate("document.querySelector('.hl-pc-clear').click()")
    again.wait_for("!location.search.includes('pcb=')")
    assert page.errors == [] and again.errors == [], (page.errors, again.errors)
    page.close()
    again.close()


# Every axis' tick labels as drawn: [axis, [[text, left, top, right, bottom], ...]] for
# the labels Vega kept (it hides the ones its label overlap check leaves out with an
# opacity of 0), then the hand-drawn parallel coordinates' titles and ticks and the
# scatter's ticks, each set as one "axis".
LABEL_BOXES = """(() => {
  const shown = t => {
    for (let n = t; n && n.tagName !== 'svg'; n = n.parentNode) {
      if (n.getAttribute && n.getAttribute('opacity') === '0') { return false; }
    }
    const r = t.getBoundingClientRect();
    return t.textContent && r.width > 0 && r.height > 0;
  };
  const box = t => { const r = t.getBoundingClientRect();
    return [t.textContent, r.left, r.top, r.right, r.bottom]; };
  const out = [];
  document.querySelectorAll('g.role-axis').forEach((ax, i) => out.push(['vega-' + i,
    Array.from(ax.querySelectorAll('g.role-axis-label text')).filter(shown).map(box)]));
  for (const sel of ['svg.hl-pc .hl-pc-title', 'svg.hl-pc .hl-pc-tick',
      '.hl-pc-xticks text', '.hl-pc-yticks text']) {
    out.push([sel, Array.from(document.querySelectorAll(sel)).filter(shown).map(box)]);
  }
  return out;
})()"""


def _overlaps(axes: list) -> list:
    """The pairs of tick labels of one axis whose boxes intersect (by more than 0.5 px)."""
    out = []
    for name, boxes in axes:
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                if (
                    a[1] < b[3] - 0.5
                    and b[1] < a[3] - 0.5
                    and a[2] < b[4] - 0.5
                    and b[2] < a[4] - 0.5
                ):
                    out.append((name, a[0], b[0]))
    return out


@pytest.mark.parametrize("width", [1360, 620])
def test_no_two_tick_labels_of_an_axis_overlap(
    site: tuple[Store, str, Chromium], width: int
) -> None:
    store, base, browser = site
    data = load(store)
    keys = ",".join(_sweep_keys(store))
    sweep = data.sweeps[0]["sweep_id"]
    charts = (
        "Array.from(document.querySelectorAll('.hl-chart-view, .hl-live-chart > div'))"
        ".every(e => e.dataset.rendered === '1' || e.querySelector('svg'))"
    )
    pages = {
        "hypotheses.html": charts,  # the evidence waterfall
        f"reports/bench/{sweep}.html": charts,  # the sweep's Pareto front, intervals, losses
        f"runs/compare.html?r={keys}": DRAWN,  # the selection's Pareto front and losses
    }
    seen = 0
    for path, ready in pages.items():
        page = browser.new_page(width=width)
        page.goto(base + path)
        page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
        page.wait_for(ready, timeout=20)
        page.wait_for("document.querySelectorAll('g.role-axis-label text').length > 0")
        axes = page.evaluate(LABEL_BOXES)
        assert _overlaps(axes) == [], (path, _overlaps(axes))
        seen += sum(len(b) for _, b in axes)
        if path == "hypotheses.html":  # the waterfall names every unit, E last
            labels = [
                b[0]
                for name, boxes in axes
                for b in boxes
                if name.startswith("vega") and b[0] == "E"
            ]
            assert labels == ["E"]
        assert page.errors == [], (path, page.errors)
        page.close()
    # the parallel coordinates (every numeric column of the table) and the scatter
    page = _runs_page(browser, f"{base}runs/index.html?pcx=c:optim.lr&pcy=m:val/loss", width)
    page.evaluate("document.querySelector('.hl-parcoords').open = true")
    page.wait_for("document.querySelectorAll('.hl-pc-xticks text').length > 1")
    axes = dict(page.evaluate(LABEL_BOXES))
    assert len(axes["svg.hl-pc .hl-pc-title"]) == int(
        page.evaluate("document.querySelector('.hl-parcoords').dataset.axes")
    )
    assert len(axes["svg.hl-pc .hl-pc-tick"]) >= 2 * len(axes["svg.hl-pc .hl-pc-title"]) - 2
    assert len(axes[".hl-pc-yticks text"]) >= 2
    assert _overlaps(list(axes.items())) == [], _overlaps(list(axes.items()))
    # a title cut to its share of the width keeps its whole text as a tooltip
    cut = page.evaluate(
        "Array.from(document.querySelectorAll('.hl-pc-title'))"
        ".filter(t => t.querySelector('title'))"
        ".map(t => [t.firstChild.nodeValue, t.querySelector('title').textContent])"
    )
    assert all(shown.endswith("…") and full.startswith(shown[:-1]) for shown, full in cut)
    if width < 700:
        assert cut  # nine columns in 620 px: some titles are cut
    assert page.errors == [], page.errors
    page.close()
    assert seen > 20


def _sql(browser: Chromium, base: str, q: str) -> tuple[Page, list[str]]:
    """sql.html?q=Q opened; the page and its result's cells (failing on a query error)."""
    page = browser.new_page()
    page.goto(base + "sql.html?q=" + quote(q, safe=""))
    page.wait_for(
        "document.getElementById('hl-sql-status').textContent.match(/\\d+ rows?/)"
        " || !document.getElementById('hl-sql-error').hidden",
        timeout=60,
    )
    error = page.evaluate("document.getElementById('hl-sql-error').textContent")
    assert not error, error
    cells = page.evaluate(
        "Array.from(document.querySelectorAll('#hl-sql-result td'), e => e.textContent)"
    )
    return page, cells


FETCHED_METRICS = (
    "performance.getEntriesByType('resource').some(e => e.name.includes('data/catalog/metrics'))"
)


def test_sql_metrics_table_and_its_live_update(
    site: tuple[Store, str, Chromium], tmp_path: Path
) -> None:
    if sql_tables.vendored() is None:
        pytest.skip("DuckDB-WASM not vendored (scripts/vendor_duckdb.sh)")
    _, _, browser = site
    store = Store(tmp_path / "st ore")
    first = log_run(store, "base", {"optim": {"lr": 0.01}}, None)
    with served_site(store, tmp_path / "site") as base:
        layout = SiteLayout(tmp_path / "site")
        # a query of the small tables does not fetch the points
        page, cells = _sql(browser, base, "SELECT count(*) AS n FROM runs")
        assert cells == ["1"]
        assert page.evaluate(FETCHED_METRICS) is False
        page.close()
        q = (
            "SELECT count(*) AS n, count(DISTINCT run_id) AS runs, "
            "sum(value) FILTER (WHERE isfinite(value)) AS total, "
            "count(*) FILTER (WHERE isnan(value)) AS nans FROM metrics"
        )
        want = connect(store).execute(q).fetchone()
        assert want[0] > 40 and want[3] == 1  # the fixture's points, one of them NaN
        page, cells = _sql(browser, base, q)
        assert page.evaluate(FETCHED_METRICS) is True
        assert [int(cells[0]), int(cells[1]), int(cells[3])] == [want[0], want[1], want[3]]
        assert float(cells[2]) == pytest.approx(want[2], rel=1e-12)
        page.close()
        # one value at a step, against the catalog's
        one = "SELECT step, value, wall_time FROM metrics WHERE name = 'train/loss' AND step = 7"
        page, cells = _sql(browser, base, one)
        step, value, wall = connect(store).execute(one).fetchone()
        assert [int(cells[0]), float(cells[1]), float(cells[2])] == [step, value, wall]
        assert page.errors == [], page.errors
        page.close()
        index = layout.data / "catalog" / "metrics.json"
        before = {f["path"] for f in json.loads(index.read_text())["files"]}
        # the catalog changes: a new run indexed; the live site (hpclab watch --site)
        # converts the catalog's new metrics file and rewrites the small tables
        second = log_run(store, "lower-lr", {"optim": {"lr": 0.001}}, first)
        report = index_store(store)
        live = LiveSite(store, tmp_path / "site", min_rebuild=0.0)
        live(report, None)
        doc = json.loads(index.read_text())
        after = {f["path"] for f in doc["files"]}
        assert doc["rows"] == connect(store).execute("SELECT count(*) FROM metrics").fetchone()[0]
        assert after - before  # the new run's file
        for f in doc["files"]:
            assert (layout.data / "catalog" / f["path"]).stat().st_size == f["bytes"]
        assert not any((layout.data / "catalog" / p).exists() for p in before - after)
        page, cells = _sql(
            browser,
            base,
            f"SELECT (SELECT count(*) FROM runs) AS runs, count(*) AS n FROM metrics "
            f"WHERE run_id = '{second}'",
        )
        n = (
            connect(store)
            .execute("SELECT count(*) FROM metrics WHERE run_id = ?", [second])
            .fetchone()[0]
        )
        assert cells == ["2", str(n)] and n > 0
        assert page.errors == [], page.errors
        page.close()
        # nothing changed: nothing converted again
        assert live.refresh_sql() is False


def test_hover_and_zoom_views_for_the_readme(site: tuple[Store, str, Chromium]) -> None:
    """The compare page of a sweep hovered (a rule at the step, every run's value in the
    tooltip) and zoomed by the wheel; the screenshots are docs/img/site-hover.png and
    site-zoom.png (written under $HPCLAB_TEST_ARTIFACTS)."""
    store, base, browser = site
    keys = _sweep_keys(store)
    page = browser.new_page(width=1200, height=760)
    page.goto(f"{base}runs/compare.html?r={','.join(keys)}&color=optim.lr&smooth=0.6")
    page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
    page.wait_for(DRAWN, timeout=20)
    x, y = page.evaluate(
        f"(() => {{ const el = document.querySelector('{BOX} svg');"
        " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
        " return [r.x + r.width * 0.45, r.y + r.height / 3]; })()"
    )
    for dx in (0, 3):  # a pointer moving over the plot
        page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x + dx, "y": y})
    page.wait_for(
        "(() => { const t = document.getElementById('vg-tooltip-element');"
        " return t && t.classList.contains('visible') && t.textContent.includes('step'); })()",
        timeout=10,
    )
    text = page.evaluate("document.getElementById('vg-tooltip-element').textContent")
    labels = page.evaluate(
        f"Array.from(document.querySelector('{BOX}').querySelectorAll('g.mark-line path')).length"
    )
    assert labels >= len(keys)
    assert text.count("lr=") == len(keys), text  # every run's value at that step
    screenshot(page, "site-hover.png", full_page=False)
    # the wheel zooms the x axis in around the pointer
    page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y + 60})
    for _ in range(4):
        page.send(
            "Input.dispatchMouseEvent",
            {"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": -300},
        )
    # each wheel event narrows the zoom: wait for them to land, not for the first one
    page.wait_for(
        f"(() => {{ const d = document.querySelector('{BOX} > div').dataset;"
        " if (!d.zoom) return false; const [lo, hi] = JSON.parse(d.zoom);"
        " return hi - lo < Number(d.lastStep) / 2; })()",
        timeout=15,
    )
    lo, hi = page.evaluate(f"JSON.parse(document.querySelector('{BOX} > div').dataset.zoom)")
    last = int(page.evaluate(f"document.querySelector('{BOX} > div').dataset.lastStep"))
    assert 0 < lo < hi < last and hi - lo < last / 2
    page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 5, "y": 5})
    screenshot(page, "site-zoom.png", full_page=False)
    assert page.errors == [], page.errors
    page.close()
