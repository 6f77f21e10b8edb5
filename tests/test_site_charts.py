"""Chart controls (issue 17) in real headless Chromium: the y scale of the run and
compare pages' metric charts, linear or log, restored from the URL (``&y=log``) and
written back to it when the control changes; the chart Vega draws has that scale."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ARTIFACTS, screenshot
from site_fixtures import make_site_store

from hpclab.site.build import build
from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.data import load
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium is not installed (scripts/test.sh installs Debian's chromium)",
)

DRAWN = (
    "document.querySelectorAll('{box} > div').length > 0 && Array.from("
    "document.querySelectorAll('{box} > div')).every(e => e.dataset.rendered === '1')"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium() as b:
        yield b


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    store = make_site_store(tmp_path_factory.mktemp("site") / "st ore")
    build(store)
    server = make_server(store.site_dir / "html", port=0)
    serve_in_thread(server)
    try:
        yield store, url_of(server)
    finally:
        server.shutdown()
        server.server_close()


def open_charts(browser: Chromium, url: str, box: str) -> Page:
    page = browser.new_page()
    page.goto(url)
    page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
    page.wait_for(DRAWN.format(box=box))
    return page


def scales(page: Page, box: str) -> list[str]:
    return page.evaluate(
        f"Array.from(document.querySelectorAll('{box} > div')).map(e => e.dataset.yscale)"
    )


def choose(page: Page, value: str) -> None:
    page.evaluate(
        "(() => { const s = document.querySelector('.hl-chart-y');"
        f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
    )


def test_run_page_y_scale_from_url_and_control(browser: Chromium, built: tuple[Store, str]) -> None:
    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    box = ".hl-run-chart"
    page = open_charts(browser, f"{base}runs/run.html?p=lab&id={child['run_id']}&y=log", box)
    assert page.evaluate("document.querySelector('.hl-chart-y').value") == "log"
    drawn = scales(page, box)
    assert drawn and set(drawn) == {"log"}
    choose(page, "linear")
    page.wait_for(
        f"Array.from(document.querySelectorAll('{box} > div'))"
        ".every(e => e.dataset.yscale === 'linear')"
    )
    assert "y=" not in page.evaluate("location.search")
    choose(page, "log")
    page.wait_for("location.search.includes('y=log')")
    page.wait_for(
        f"Array.from(document.querySelectorAll('{box} > div'))"
        ".every(e => e.dataset.yscale === 'log')"
    )
    assert page.errors == [], page.errors
    page.close()


def test_compare_page_y_scale_from_url(browser: Chromium, built: tuple[Store, str]) -> None:
    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    box = ".hl-compare-chart"
    url = f"{base}runs/compare.html?r=lab/{child['run_id']},lab/{child['parent']}&y=log"
    page = open_charts(browser, url, box)
    drawn = scales(page, box)
    assert drawn and set(drawn) == {"log"}
    choose(page, "linear")
    page.wait_for(
        f"Array.from(document.querySelectorAll('{box} > div'))"
        ".every(e => e.dataset.yscale === 'linear')"
    )
    assert page.errors == [], page.errors
    page.close()


LINES = "Array.from(document.querySelectorAll('.hl-run-chart g.mark-line.role-mark{sel} path'))"


def test_run_page_smoothing_redraws_with_faint_raw(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    box = ".hl-run-chart"
    page = open_charts(browser, f"{base}runs/run.html?p=lab&id={child['run_id']}", box)
    page.wait_for(f"{LINES.format(sel='')}.length === 2")
    raw = sorted(page.evaluate(f"{LINES.format(sel='')}.map(p => p.getAttribute('d'))"))
    page.evaluate(
        "(() => { const s = document.querySelector('.hl-chart-smooth');"
        " s.value = '0.9'; s.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for("location.search.includes('smooth=0.9')")
    page.wait_for(f"{LINES.format(sel='')}.length === 4")
    faint = page.evaluate(
        f"{LINES.format(sel='')}.filter(p => p.closest('g.mark-line').classList"
        ".contains('raw_marks')).map(p => [p.getAttribute('d'),"
        " p.getAttribute('opacity') || p.getAttribute('stroke-opacity')])"
    )
    assert sorted(d for d, _ in faint) == raw  # the raw curve stays, faint
    assert {o for _, o in faint} == {"0.25"}
    smooth = sorted(
        page.evaluate(
            f"{LINES.format(sel='')}.filter(p => !p.closest('g.mark-line').classList"
            ".contains('raw_marks')).map(p => p.getAttribute('d'))"
        )
    )
    assert len(smooth) == 2 and smooth != raw  # the drawn path changed
    assert page.evaluate("document.querySelector('.hl-chart-smooth').value") == "0.9"
    if ARTIFACTS:  # the README's picture of the controls
        page.evaluate(
            "document.querySelector('.hl-chart-controls').scrollIntoView(); scrollBy(0, -140)"
        )
        screenshot(page, "site-charts.png", full_page=False)
    assert page.errors == [], page.errors
    page.close()


def test_robust_range_from_url_clips_y_domain(browser: Chromium, built: tuple[Store, str]) -> None:
    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    box = ".hl-run-chart"
    url = f"{base}runs/run.html?p=lab&id={child['run_id']}"
    page = open_charts(browser, url, box)
    full = page.evaluate(f"document.querySelector('{box} > div').dataset.ydomain || ''")
    assert full == ""
    page.close()
    page = open_charts(browser, url + "&robust=1", box)
    assert page.evaluate("document.querySelector('.hl-chart-robust').checked") is True
    lo, hi = json.loads(page.evaluate(f"document.querySelector('{box} > div').dataset.ydomain"))
    assert lo < hi
    # the domain Vega draws is the clipped one
    drawn = page.evaluate(f"document.querySelector('{box} > div').dataset.ydrawn")
    assert json.loads(drawn) == [lo, hi]
    assert page.errors == [], page.errors
    page.close()


def test_compare_legend_names_runs_by_what_differs(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    box = ".hl-compare-chart"
    url = f"{base}runs/compare.html?r=lab/{child['run_id']},lab/{child['parent']}"
    page = open_charts(browser, url, box)
    texts = page.evaluate(
        f"Array.from(document.querySelector('{box}').querySelectorAll("
        "'g.role-legend-label text')).map(t => t.textContent)"
    )
    # the fixture's child lowers optim.lr from the parent's 0.01 to 0.001
    assert sorted(texts) == ["lr=0.001", "lr=0.01"]
    assert page.errors == [], page.errors
    page.close()


def test_compare_groups_runs_by_a_config_path_with_a_band(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    store, base = built
    data = load(store)
    sweep = data.sweeps[0]
    keys = [f"bench/{p['run_id']}" for p in data.sweep_points[("bench", sweep["sweep_id"])]]
    lrs: dict[str, int] = {}
    for k in keys:
        lr = data.features[("bench", k.split("/")[1])]["optim.lr"]
        lrs[f"lr={json.loads(lr)}"] = lrs.get(f"lr={json.loads(lr)}", 0) + 1
    box = ".hl-compare-chart"
    page = open_charts(browser, f"{base}runs/compare.html?r={','.join(keys)}&group=optim.lr", box)
    assert page.evaluate("document.querySelector('.hl-chart-group').value") == "optim.lr"
    groups = page.evaluate(f"JSON.parse(document.querySelector('{box} > div').dataset.groups)")
    assert groups == lrs  # one line per learning rate, each over its runs
    assert page.evaluate(f"document.querySelectorAll('{box} g.mark-area path').length") >= 1
    legend = page.evaluate(
        f"Array.from(document.querySelector('{box}').querySelectorAll("
        "'g.role-legend-label text')).map(t => t.textContent)"
    )
    assert sorted(legend) == sorted(lrs)
    # back to one line per run: no band, the URL forgets the group
    page.evaluate(
        "(() => { const s = document.querySelector('.hl-chart-group');"
        " s.value = ''; s.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for(f"document.querySelector('{box} > div').dataset.groups === ''")
    page.wait_for(DRAWN.format(box=box))
    assert "group=" not in page.evaluate("location.search")
    assert page.evaluate(f"document.querySelectorAll('{box} g.mark-area path').length") == 0
    assert page.errors == [], page.errors
    page.close()


def test_run_page_x_axis_time_or_another_metric(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    from hpclab.site.layout import SiteLayout
    from hpclab.site.series import read_series_file

    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    doc = read_series_file(SiteLayout(store.site_dir).series_parquet("lab", child["run_id"]))
    loss = doc["metrics"]["train/loss"]
    box = ".hl-run-chart"
    url = f"{base}runs/run.html?p=lab&id={child['run_id']}"

    def drawn(page: Page) -> tuple[str, list[float]]:
        sel = f"document.querySelector('{box}:not([data-empty]) > div')"
        return page.evaluate(f"{sel}.dataset.xscale"), page.evaluate(
            f"JSON.parse({sel}.dataset.xdrawn)"
        )

    page = open_charts(browser, url + "&x=rel", box)
    assert page.evaluate("document.querySelector('.hl-chart-x').value") == "rel"
    kind, domain = drawn(page)
    # the loss chart: seconds since the run's first point, up to its last loss point's
    assert kind == "linear" and domain[0] <= min(loss["time"]) + 1e-6
    assert max(loss["time"]) - 1e-3 <= domain[1] <= 2 * max(loss["time"]) + 0.05
    assert max(loss["step"]) > 2 * max(loss["time"]) + 0.05  # not the step axis
    page.close()
    page = open_charts(browser, url + "&x=wall", box)
    kind, domain = drawn(page)
    assert kind == "utc"
    assert domain[0] <= (doc["start_time"] + min(loss["time"])) * 1000 + 1
    assert domain[1] >= (doc["start_time"] + max(loss["time"])) * 1000 - 1
    # back to steps through the control: the URL forgets x
    page.evaluate(
        "(() => { const s = document.querySelector('.hl-chart-x');"
        " s.value = 'step'; s.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for("!location.search.includes('x=')")
    page.wait_for(DRAWN.format(box=box))
    kind, domain = drawn(page)
    assert kind == "linear" and domain[1] >= max(loss["step"])
    assert page.errors == [], page.errors
    page.close()


def test_run_page_x_axis_another_metric(browser: Chromium, built: tuple[Store, str]) -> None:
    from hpclab.site.layout import SiteLayout
    from hpclab.site.series import read_series_file

    store, base = built
    run = next(r for r in load(store).runs if r["project"] == "bench")
    doc = read_series_file(SiteLayout(store.site_dir).series_parquet("bench", run["run_id"]))
    lr = [v for v in doc["metrics"]["lr"]["value"] if v is not None]
    box = ".hl-run-chart"
    page = open_charts(browser, f"{base}runs/run.html?p=bench&id={run['run_id']}&x=m:lr", box)
    assert page.evaluate("document.querySelector('.hl-chart-x').value") == "m:lr"
    domain = page.evaluate(f"JSON.parse(document.querySelector('{box} > div').dataset.xdrawn)")
    # the loss charts' x is the learning rate logged at the same step (at most 0.01 here),
    # not the step (up to 299)
    assert domain[0] <= min(lr) and max(lr) <= domain[1] <= 2 * max(lr)
    assert page.errors == [], page.errors
    page.close()


def test_hovering_a_compare_chart_shows_every_runs_value_at_that_step(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    box = ".hl-compare-chart"
    url = f"{base}runs/compare.html?r=lab/{child['run_id']},lab/{child['parent']}"
    page = open_charts(browser, url, box)
    x, y = page.evaluate(
        f"(() => {{ const el = document.querySelector('{box} svg');"
        " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 3]; })()"
    )
    for dx in (0, 3):  # a pointer that moves over the plot, as a user's does
        page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x + dx, "y": y})
    page.wait_for(
        "(() => { const t = document.getElementById('vg-tooltip-element');"
        " return t && t.classList.contains('visible') && t.textContent.includes('step'); })()",
        timeout=10,
    )
    text = page.evaluate("document.getElementById('vg-tooltip-element').textContent")
    # one entry per run, by the legend's names (what differs: the learning rate)
    assert "lr=0.001" in text and "lr=0.01" in text, text
    assert page.errors == [], page.errors
    page.close()


def test_zooming_a_cut_series_draws_its_full_resolution_points(
    browser: Chromium, tmp_path: Path
) -> None:
    from site_fixtures import served_site

    import hpclab

    store = Store(tmp_path / "store")
    run = hpclab.init("z", {}, store=store.root)
    n = 6000  # six times what a series file keeps: the file is cut, the full file is not
    for step in range(n):
        run.log({"loss": float(step % 97)}, step=step)
    run.finish()
    box = ".hl-run-chart"
    with served_site(store, tmp_path / "site") as base:
        page = open_charts(browser, f"{base}runs/run.html?p=z&id={run.id}", box)
        before = int(page.evaluate(f"document.querySelector('{box} > div').dataset.points"))
        assert before <= 1000
        x, y = page.evaluate(
            f"(() => {{ const el = document.querySelector('{box} svg');"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for _ in range(6):  # the wheel zooms the x axis in around the pointer
            page.send(
                "Input.dispatchMouseEvent",
                {"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": -400},
            )
        page.wait_for(f"document.querySelector('{box} > div').dataset.zoom", timeout=15)
        lo, hi = page.evaluate(f"JSON.parse(document.querySelector('{box} > div').dataset.zoom)")
        assert 0 < lo < hi < n - 1 and hi - lo < n / 2
        logged = sum(1 for s in range(n) if lo <= s <= hi)
        full = int(page.evaluate(f"document.querySelector('{box} > div').dataset.fullPoints"))
        assert full == min(logged, 2000) > 0  # every logged step in the range (up to 2,000)
        drawn = int(page.evaluate(f"document.querySelector('{box} > div').dataset.points"))
        assert drawn > full  # and the overview's points outside it
        assert page.errors == [], page.errors
        page.close()


def test_run_page_one_chart_per_metric_or_the_losses_combined(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    box = ".hl-run-chart"
    titles = f"Array.from(document.querySelectorAll('{box} h3')).map(h => h.textContent)"
    page = open_charts(browser, f"{base}runs/run.html?p=lab&id={child['run_id']}", box)
    # each metric its own chart and y axis: val/loss is not squashed beside train/loss
    assert sorted(page.evaluate(titles)) == ["train/loss", "val/loss"]
    page.evaluate(
        "(() => { const c = document.querySelector('.hl-chart-combine');"
        " c.checked = true; c.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for("location.search.includes('combine=1')")
    page.wait_for(f"{titles}.length === 1")
    page.wait_for(DRAWN.format(box=box))
    assert page.evaluate(titles) == ["train/loss, val/loss"]
    assert page.evaluate(f"{LINES.format(sel='')}.length") == 2  # both lines in one chart
    page.close()
    again = open_charts(browser, f"{base}runs/run.html?p=lab&id={child['run_id']}&combine=1", box)
    assert again.evaluate(titles) == ["train/loss, val/loss"]  # the URL restores it
    assert again.errors == [] and page.errors == [], (page.errors, again.errors)
    again.close()


def test_running_mean_is_a_trailing_mean_per_series(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    page = open_charts(
        browser, f"{base}runs/run.html?p=lab&id={child['run_id']}&mean=3", ".hl-run-chart"
    )
    assert page.evaluate("document.querySelector('.hl-chart-mean').value") == "3"
    page.wait_for(f"{LINES.format(sel='')}.length === 4")  # each raw line and its mean
    rows = [{"key": "a", "step": i, "value": v} for i, v in enumerate([1, 2, None, 6, 10])]
    rows += [{"key": "b", "step": 0, "value": 100}]
    got = page.evaluate(
        "window.HPCLabCharts.values(" + json.dumps(rows) + ","
        " {y: 'linear', smooth: 0, mean: 3, x: 'step', group: ''}).rows.map(r => r.smoothed)"
    )
    # a missing value is skipped, not a zero; series do not mix
    assert got == [1, 1.5, None, 3, 6, 100]
    assert page.errors == [], page.errors
    page.close()


def test_no_page_warns_or_errs_in_the_console(browser: Chromium, built: tuple[Store, str]) -> None:
    """Vega's "Infinite extent" warnings (a chart layer with no rows) and any other console
    warning or error, on every kind of page."""
    store, base = built
    data = load(store)
    child = next(r for r in data.runs if r.get("name") == "lower-lr")
    sweep = data.sweeps[0]
    first = data.sweep_points[("bench", sweep["sweep_id"])][0]["run_id"]
    pages = [
        "index.html", "runs/index.html", f"runs/run.html?p=lab&id={child['run_id']}",
        f"runs/compare.html?r=lab/{child['run_id']},bench/{first}",
        f"reports/bench/{sweep['sweep_id']}.html", "graph.html", "training.html", "board.html",
        "hypotheses.html", "reports/index.html",
    ]  # fmt: skip
    for path in pages:
        page = browser.new_page()
        page.goto(base + path)
        page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
        page.wait_for(
            "Array.from(document.querySelectorAll('.hl-chart, .hl-live-chart > div'))"
            ".every(e => e.dataset.rendered === '1')",
            timeout=20,
        )
        assert page.warnings == [] and page.errors == [], (path, page.warnings, page.errors)
        page.close()
