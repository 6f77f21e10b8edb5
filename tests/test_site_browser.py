"""The lab website in real headless Chromium (Debian's ``chromium``, driven over the
DevTools protocol on a pipe): every tab loads with no console error and no request
leaving localhost, charts draw one line per series, runs ticked on the Runs list are
compared (the config paths that differ, a line per run in each chart), the Training
chart gains points while a run is being logged to, without a reload, the dark palette
(from the system's colour scheme, or the toggle) makes pages dark and chart text
readable on them, and ``hpclab site report --out X.pdf`` prints a PDF whose text and
vector charts are read back from the file.

Screenshots of every page, light and dark, go to ``$HPCLAB_TEST_ARTIFACTS/site`` when it
is set (none are taken without it): the README shows a few.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from helpers import ARTIFACTS, hpclab_cli, poll, python_script, screenshot
from pdf_text import PDF_LINETO, PdfPages
from site_fixtures import make_site_store

from hpclab.catalog.indexer import index_store
from hpclab.errors import SiteError
from hpclab.site.build import build
from hpclab.site.charts import lone_flags
from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.data import load
from hpclab.site.layout import SiteLayout
from hpclab.site.pages import COMPARE_MAX
from hpclab.site.research import MAX_CURVE_RUNS
from hpclab.site.series import read_series_file
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium is not installed (scripts/test.sh installs Debian's chromium)",
)

TABS = [
    "index.html",
    "runs/index.html",
    "graph.html",
    "hypotheses.html",
    "board.html",
    "training.html",
    "reports/index.html",
]


def artifacts(tmp: Path) -> Path:
    return (Path(ARTIFACTS) if ARTIFACTS else tmp) / "site"


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium() as b:
        yield b


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    """One built site (read-only for the tests that use it) and its server's URL."""
    store = make_site_store(tmp_path_factory.mktemp("site") / "st ore")
    build(store)
    server = make_server(store.site_dir / "html", port=0)
    serve_in_thread(server)
    try:
        yield store, url_of(server)
    finally:
        server.shutdown()
        server.server_close()


def open_page(browser: Chromium, url: str, **kw: Any) -> Page:
    page = browser.new_page(**kw)
    page.goto(url)
    page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
    page.wait_for(
        "Array.from(document.querySelectorAll('.hl-chart')).every(e => e.dataset.rendered)"
    )
    return page


# The Training page adds its charts after data/live.json and the runs' series arrive.
TRAINING_CHARTS_DRAWN = (
    "document.getElementById('hl-training').dataset.live === '1'"
    " && document.querySelectorAll('.hl-live-chart').length > 0"
    " && Array.from(document.querySelectorAll('.hl-live-chart > div'))"
    ".every(e => e.dataset.rendered === '1')"
)


def assert_clean(page: Page, base: str) -> None:
    assert page.errors == [], page.errors
    outside = [u for u in page.requests if not u.startswith((base, "data:", "blob:", "about:"))]
    assert outside == [], f"requests leaving localhost: {outside}"


def test_every_tab_loads_cleanly(browser: Chromium, built: tuple[Store, str]) -> None:
    store, base = built
    data = load(store)
    child = next(r for r in data.runs if r.get("name") == "lower-lr")
    sweep = data.sweeps[0]["sweep_id"]
    pages = [
        *TABS,
        f"reports/bench/{sweep}.html",
        "reports/bench/hypothesis-lr-matters.html",
        f"runs/run.html?p=lab&id={child['run_id']}",
    ]
    for i, path in enumerate(pages):
        page = open_page(browser, base + path)
        if path.startswith("runs/run.html"):
            page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
            page.wait_for("document.querySelectorAll('.hl-run-chart [data-rendered]').length > 0")
        if path == "training.html":
            page.wait_for(TRAINING_CHARTS_DRAWN)
            # every run has ended: charted (recent), but not listed as a job
            jobs = page.evaluate("document.querySelector('.hl-live-jobs').textContent")
            assert jobs == "Nothing is running or queued.", jobs
        assert page.evaluate("document.querySelector('.md-tabs') !== null")
        name = path.split("?")[0].replace("/", "-").replace(".html", "")
        screenshot(page, f"site/{i:02d}-{name}.png")
        assert_clean(page, base)
        page.close()


def test_report_chart_draws_one_line_per_run(browser: Chromium, built: tuple[Store, str]) -> None:
    store, base = built
    data = load(store)
    sweep = data.sweeps[0]
    n_runs = len(data.sweep_points[(sweep["project"], sweep["sweep_id"])])
    page = open_page(browser, f"{base}reports/bench/{sweep['sweep_id']}.html")
    counts = page.evaluate(
        "Array.from(document.querySelectorAll('.hl-chart[data-runs]'))"
        ".map(c => c.querySelectorAll('g.mark-line path').length)"
    )
    drawn = min(n_runs, MAX_CURVE_RUNS)  # a report overlays its best runs only
    assert counts and all(c == drawn for c in counts), (counts, drawn)
    # the runs list sorts and filters in the page
    page.goto(base + "runs/index.html")
    page.wait_for("document.body.dataset.hlReady === '1'")
    total = page.evaluate("document.querySelectorAll('table.hl-runs tbody tr').length")
    assert total == len(data.runs)
    page.evaluate(
        "(() => { const i = document.querySelector('.hl-filter-input'); i.value = 'lower-lr';"
        " i.dispatchEvent(new Event('input')); })()"
    )
    shown = page.evaluate(
        "Array.from(document.querySelectorAll('table.hl-runs tbody tr'))"
        ".filter(r => r.style.display !== 'none').length"
    )
    assert shown == 1
    assert_clean(page, base)
    page.close()


def test_run_page_shows_train_and_val(browser: Chromium, built: tuple[Store, str]) -> None:
    store, base = built
    child = next(r for r in load(store).runs if r.get("name") == "lower-lr")
    page = open_page(browser, f"{base}runs/run.html?p=lab&id={child['run_id']}")
    page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
    page.wait_for("document.querySelectorAll('.hl-run-chart g.mark-line path').length === 2")
    # val/loss is logged at steps 9, 19 (NaN), 29, 39: step 9 joins no line, so it is a dot
    dots = page.evaluate(
        "document.querySelectorAll('.hl-run-chart g.mark-symbol.role-mark path').length"
    )
    assert dots == 1
    text = page.evaluate("document.getElementById('hl-run').innerText")
    for needle in ("optim.lr", "Changed from the parent", "PUBLISH", "hpclab restore"):
        assert needle in text
    assert_clean(page, base)
    page.close()


# -- comparing runs --------------------------------------------------------------------


def click(page: Page, selector: str) -> None:
    """A user's click: the mouse pressed and released at the element's centre."""
    x, y = page.evaluate(
        f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
        " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    for kind in ("mousePressed", "mouseReleased"):
        page.send(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
        )


def type_filter(page: Page, text: str) -> None:
    """Replace the Runs list's filter text as a user types it (selected, then typed over)."""
    click(page, ".hl-filter-input")
    page.evaluate("document.querySelector('.hl-filter-input').select()")
    if text:
        page.send("Input.insertText", {"text": text})
    else:
        for kind in ("keyDown", "keyUp"):
            page.send(
                "Input.dispatchKeyEvent",
                {"type": kind, "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8},
            )
    page.wait_for(f"document.querySelector('.hl-filter-input').value === {json.dumps(text)}")


def pick(key: str) -> str:
    return f'input.hl-pick[value="{key}"]'


COMPARE_RENDERED = "document.getElementById('hl-compare')?.dataset.rendered === '1'"
COMPARE_LINK = """(() => {
  const a = document.querySelector('a.hl-compare');
  return {text: a.textContent, href: a.getAttribute('href'),
          disabled: a.getAttribute('aria-disabled')};
})()"""


def wait_for_page(page: Page, path: str, marker: str) -> None:
    """After a click that navigates: wait until the new document at ``path`` is ready (the
    old one set window[marker]; an evaluation may meet the document in between)."""

    def ready() -> bool:
        try:
            return bool(
                page.evaluate(
                    f"!window.{marker} && location.pathname.endsWith({json.dumps(path)})"
                    " && !!document.body && document.body.dataset.hlReady === '1'"
                )
            )
        except SiteError:
            return False

    poll(ready, timeout=20, message=f"{path} to load")


def site_json(store: Store, kind: str, key: str) -> Any:
    project, run_id = key.split("/")
    layout = SiteLayout(store.site_dir)
    if kind == "series":  # a Parquet file (DuckDB reads it back)
        return read_series_file(layout.series_parquet(project, run_id))
    return json.loads(layout.details_json(project, run_id).read_text())


def assert_compares(page: Page, store: Store, keys: list[str]) -> None:
    """The compare page of ``keys`` (rendered): each run linked, exactly the config paths
    that differ, one chart per metric (losses first) with one line per run that logged
    it, in that run's swatch colour, and a dot for each value with no neighbour."""
    links = page.evaluate(
        "Array.from(document.querySelectorAll('table.hl-compare-runs tbody tr a.hl-run'),"
        " a => a.getAttribute('href'))"
    )
    assert [h.split("?")[1] for h in links] == [
        f"p={k.split('/')[0]}&id={k.split('/')[1]}" for k in keys
    ]
    html = SiteLayout(store.site_dir).html
    sweeps = page.evaluate(
        "Array.from(document.querySelectorAll('table.hl-compare-runs a[href*=\"/reports/\"]'),"
        " a => new URL(a.href).pathname)"
    )
    details = [site_json(store, "details", k) for k in keys]
    assert len(sweeps) == len([d for d in details if d["run"]["sweep_id"]])
    for path in sweeps:  # a sweep links to its report
        assert (html / unquote(path).lstrip("/")).is_file(), path
    configs = [dict(d["config"]) for d in details]
    paths = set().union(*configs)
    differ = {p for p in paths if len({c.get(p) for c in configs}) > 1}
    shown = page.evaluate(
        "Array.from(document.querySelectorAll('table.hl-config-diff tbody tr'),"
        " r => Array.from(r.cells, c => c.textContent.trim()))"
    )
    assert {row[0] for row in shown} == differ and len(shown) == len(differ)
    for row in shown:  # a column per run, "–" where the run has no such path
        assert row[1:] == [c.get(row[0], "–") for c in configs], row
    summary = page.evaluate("document.querySelector('#hl-compare details summary').textContent")
    assert summary.startswith(f"{len(paths) - len(differ)} of {len(paths)} ")

    series = [site_json(store, "series", k)["metrics"] for k in keys]
    metrics = set().union(*series)
    charts = page.evaluate(
        "Array.from(document.querySelectorAll('.hl-compare-chart'), c => c.dataset.metric)"
    )
    assert set(charts) == metrics and len(charts) == len(metrics)
    losses = [m for m in charts if "loss" in m]
    assert losses and charts[: len(losses)] == losses
    page.wait_for(
        "Array.from(document.querySelectorAll('.hl-compare-chart > div'))"
        ".every(e => e.dataset.rendered === '1')"
    )
    swatches = page.evaluate(
        "Array.from(document.querySelectorAll('table.hl-compare-runs .hl-swatch'),"
        " s => getComputedStyle(s).backgroundColor)"
    )
    assert len(set(swatches)) == len(keys)
    for metric in charts:
        sel = f".hl-compare-chart[data-metric={json.dumps(metric)}]"
        having = [i for i, s in enumerate(series) if metric in s]
        paths_sel = json.dumps(f"{sel} g.mark-line.role-mark path")
        lines = page.evaluate(
            f"Array.from(document.querySelectorAll({paths_sel}), p => getComputedStyle(p).stroke)"
        )
        assert len(lines) == len(having), (metric, lines)
        assert sorted(lines) == sorted(swatches[i] for i in having), metric
        dots = page.evaluate(
            f"document.querySelectorAll({json.dumps(sel + ' g.mark-symbol.role-mark path')}).length"
        )
        lone = sum(sum(lone_flags(series[i][metric]["value"])) for i in having)
        assert dots == lone, (metric, dots, lone)


def test_runs_ticked_on_the_runs_list_are_compared(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    """Tick runs (through the filter), Compare: the page compares them; so does one of
    runs from two projects, whose configs and metrics only partly overlap."""
    store, base = built
    data = load(store)
    first, second = (data.sweep_points[(s["project"], s["sweep_id"])] for s in data.sweeps[:2])
    keys = [
        f"bench/{first[0]['run_id']}",
        f"bench/{first[-1]['run_id']}",
        f"bench/{second[0]['run_id']}",
    ]
    page = open_page(browser, base + "runs/index.html")
    assert page.evaluate(COMPARE_LINK) == {"text": "Compare (0)", "href": None, "disabled": "true"}
    # each run found through the filter, ticked, and the filter changed again
    for i, key in enumerate(keys):
        type_filter(page, key.split("/")[1])
        page.wait_for(
            "Array.from(document.querySelectorAll('table.hl-runs tbody tr'))"
            ".filter(r => r.style.display !== 'none').length === 1"
        )
        click(page, pick(key))
        page.wait_for(f"document.querySelector('a.hl-compare').textContent === 'Compare ({i + 1})'")
        link = page.evaluate(COMPARE_LINK)
        assert (link["disabled"] == "true") is (i == 0), link
    # the ticks survive the filter: two are on hidden rows
    hint = page.evaluate("document.querySelector('.hl-compare-hint').textContent")
    assert "2 ticked hidden by the filter" in hint
    type_filter(page, "")
    ticked = page.evaluate(
        "Array.from(document.querySelectorAll('input.hl-pick:checked'), b => b.value)"
    )
    assert sorted(ticked) == sorted(keys)
    page.evaluate("window.__runsList = 1")
    click(page, "a.hl-compare")
    wait_for_page(page, "/runs/compare.html", "__runsList")
    page.wait_for(COMPARE_RENDERED, timeout=20)
    query = page.evaluate("new URLSearchParams(location.search).get('r')")
    assert query == ",".join(keys)  # in the order they were ticked
    assert_compares(page, store, keys)
    assert page.evaluate("document.querySelectorAll('table.hl-config-diff tbody tr').length") > 0
    screenshot(page, "site/compare.png")
    assert_clean(page, base)
    page.close()

    # a run of another project: paths it lacks are "–", charts of metrics it did not log
    # have a line less (the others keep their colours), and its val/loss (a NaN at step
    # 19) has a dot at step 9
    child = next(r for r in data.runs if r.get("name") == "lower-lr")
    mixed = [keys[0], f"lab/{child['run_id']}", keys[1]]
    page = open_page(browser, f"{base}runs/compare.html?r={','.join(mixed)}")
    page.wait_for(COMPARE_RENDERED, timeout=20)
    assert_compares(page, store, mixed)
    assert page.evaluate("document.querySelectorAll('.hl-compare-chart g.mark-symbol path').length")
    assert_clean(page, base)
    page.close()


def test_runs_list_ticks_at_most_the_cap(browser: Chromium, built: tuple[Store, str]) -> None:
    store, base = built
    keys = [f"{r['project']}/{r['run_id']}" for r in load(store).runs]
    assert len(keys) > COMPARE_MAX
    page = open_page(browser, base + "runs/index.html")
    for key in keys[:COMPARE_MAX]:
        click(page, pick(key))
    page.wait_for(
        f"document.querySelector('a.hl-compare').textContent === 'Compare ({COMPARE_MAX})'"
    )
    state = page.evaluate(
        "Array.from(document.querySelectorAll('input.hl-pick'),"
        " b => [b.value, b.checked, b.disabled])"
    )
    assert {k for k, on, _ in state if on} == set(keys[:COMPARE_MAX])
    assert all(off for k, on, off in state if not on)  # the rest cannot be ticked
    assert f"at most {COMPARE_MAX}" in page.evaluate(
        "document.querySelector('.hl-compare-hint').textContent"
    )
    click(page, ".hl-compare-clear")
    assert page.evaluate(COMPARE_LINK) == {"text": "Compare (0)", "href": None, "disabled": "true"}
    assert (
        page.evaluate(
            "document.querySelectorAll('input.hl-pick:checked, input.hl-pick:disabled').length"
        )
        == 0
    )
    assert_clean(page, base)
    page.close()


def test_compare_page_explains_a_bad_run_list(browser: Chromium, built: tuple[Store, str]) -> None:
    """No runs, an unreadable list or an unknown run: a message in the page, no failed
    request and no console error; known runs in the list are still compared."""
    store, base = built
    data = load(store)
    child = next(r for r in data.runs if r.get("name") == "lower-lr")
    all_keys = ",".join(f"{r['project']}/{r['run_id']}" for r in data.runs)
    cases = [
        ("", "No runs to compare", 0),
        ("?r=", "No runs to compare", 0),
        ("?r=nonsense", 'Cannot read "nonsense" as PROJECT/RUN', 0),
        ("?r=lab/a/b,%E0%A4%A", "as PROJECT/RUN", 0),
        ("?r=lab/no-such-run", "Not in this site, left out: lab/no-such-run", 0),
        (f"?r=lab/{child['run_id']},lab/no-such-run", "left out: lab/no-such-run", 1),
        (f"?r={all_keys}", f"first {COMPARE_MAX} of {len(data.runs)} runs", COMPARE_MAX),
    ]
    for query, message, n_runs in cases:
        page = open_page(browser, f"{base}runs/compare.html{query}")
        page.wait_for(COMPARE_RENDERED, timeout=20)
        text = page.wait_for("document.querySelector('.hl-compare-msg')?.textContent")
        assert message in text, (query, text)
        rows = page.evaluate("document.querySelectorAll('table.hl-compare-runs tbody tr').length")
        assert rows == n_runs, query
        assert_clean(page, base)
        page.close()


WRITER = """
import math, sys, time
from pathlib import Path
import hpclab
store, stop = sys.argv[1], Path(sys.argv[2])
run = hpclab.init("live", {"train": {"steps": 100000}}, name="live", store=store,
                  flush_interval=0.2)
deadline = time.monotonic() + 120  # bounded, whatever happens to the test
step = 0
while not stop.exists() and time.monotonic() < deadline:
    run.log({"train/loss": math.exp(-step / 300)}, step=step)
    if step % 10 == 0:
        run.log({"val/loss": math.exp(-step / 320)}, step=step)
    step += 1
    time.sleep(0.02)  # a training step's worth of work
run.finish()
"""


def test_training_chart_moves_without_reload(browser: Chromium, tmp_path: Path) -> None:
    from hpclab.catalog.watch import Watcher
    from hpclab.site.live import LiveSite

    store = Store(tmp_path / "live store")
    stop_file = tmp_path / "stop"
    writer = python_script(WRITER, str(store.root), str(stop_file))
    stop = threading.Event()
    thread = None
    server = None
    try:
        poll(lambda: list(store.iter_runs("live")), message="the run to start")
        run_id = next(store.iter_runs("live"))[1].id
        poll(
            lambda: (store.run_paths("live", run_id).metrics_zarr / "zarr.json").exists(),
            message="a first flush",
        )
        index_store(store)
        build(store)
        watcher = Watcher(store, polling=False, site_hook=LiveSite(store, min_rebuild=1.0))
        thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
        thread.start()
        server = make_server(store.site_dir / "html", port=0)
        serve_in_thread(server)
        base = url_of(server)
        page = open_page(browser, base + "training.html")
        page.evaluate("window.__noReload = 1")
        sel = f".hl-live-run[data-run='live/{run_id}'] [data-points]"
        first = int(page.wait_for(f'document.querySelector("{sel}")?.dataset.points'))
        grown = page.wait_for(
            f'(+document.querySelector("{sel}").dataset.points > {first + 20})'
            f' && document.querySelector("{sel}").dataset.points',
            timeout=15,
        )
        assert int(grown) > first
        assert page.evaluate("window.__noReload") == 1  # the same document: no reload
        jobs = page.evaluate(
            "Array.from(document.querySelectorAll('.hl-jobs tbody tr'), r => r.textContent)"
        )
        assert len(jobs) == 1 and "running" in jobs[0], jobs  # the one run, as it runs
        lines = page.evaluate(f'document.querySelectorAll("{sel} g.mark-line path").length')
        assert lines == 2  # train/loss and val/loss
        screenshot(page, "site/live-training.png")
        assert_clean(page, base)
        page.close()
    finally:
        stop_file.touch()
        writer.wait(60)
        stop.set()
        if thread is not None:
            thread.join(30)
        if server is not None:
            server.shutdown()
            server.server_close()


# -- dark palette ----------------------------------------------------------------------

COLOURS = """(() => {
  const body = getComputedStyle(document.body);
  const texts = document.querySelectorAll('.vega-embed svg text, svg.hl-graph text');
  return {
    scheme: document.body.dataset.mdColorScheme,
    bg: body.backgroundColor,
    fg: body.color,
    chart_text: Array.from(new Set(Array.from(texts, t => getComputedStyle(t).fill))),
  };
})()"""


def rgba(css: str) -> tuple[float, float, float, float]:
    nums = [float(x) for x in re.findall(r"[\d.]+", css)]
    assert css.startswith("rgb") and len(nums) in (3, 4), f"not an rgb() colour: {css}"
    return nums[0], nums[1], nums[2], nums[3] if len(nums) == 4 else 1.0


def luminance(css: str, over: str | None = None) -> float:
    """WCAG relative luminance of a colour (alpha blended over the colour ``over``)."""
    r, g, b, a = rgba(css)
    if a < 1:
        assert over is not None, f"translucent colour {css} with nothing under it"
        r0, g0, b0, _ = rgba(over)
        r, g, b = (a * x + (1 - a) * y for x, y in ((r, r0), (g, g0), (b, b0)))

    def lin(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of text ``fg`` on an opaque background ``bg`` (1 to 21)."""
    lf, lb = luminance(fg, over=bg), luminance(bg)
    return (max(lf, lb) + 0.05) / (min(lf, lb) + 0.05)


def assert_readable(colours: dict[str, Any], where: str) -> None:
    """Body text and every chart label have at least WCAG AA contrast (4.5) on the page."""
    bg = colours["bg"]
    assert rgba(bg)[3] == 1, f"{where}: the body has no opaque background ({bg})"
    assert contrast(colours["fg"], bg) >= 4.5, (where, colours)
    for fill in colours["chart_text"]:
        assert contrast(fill, bg) >= 4.5, f"{where}: chart text {fill} unreadable on {bg}"


def test_dark_palette_darkens_pages_and_keeps_charts_readable(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    """With the system in dark mode, mkdocs-material picks its slate palette: every page
    is dark, and chart labels (Vega axes, legends, the DAG) are light on it."""
    store, base = built
    data = load(store)
    child = next(r for r in data.runs if r.get("name") == "lower-lr")
    report = f"reports/bench/{data.sweeps[0]['sweep_id']}.html"
    run = f"runs/run.html?p=lab&id={child['run_id']}"
    compare = f"runs/compare.html?r=lab/{child['run_id']},lab/{child['parent']}"
    charted = {"training.html", "graph.html", "hypotheses.html", report, run, compare}
    for i, path in enumerate([*TABS, report, run, compare]):
        page = open_page(browser, base + path, dark=True)
        if path == run:
            page.wait_for("document.querySelectorAll('.hl-run-chart [data-rendered]').length > 0")
        if path == compare:
            page.wait_for(COMPARE_RENDERED, timeout=20)
        if path == "training.html":
            page.wait_for(TRAINING_CHARTS_DRAWN)
        page.wait_for("document.body.dataset.mdColorScheme === 'slate'")
        colours = page.evaluate(COLOURS)
        assert luminance(colours["bg"]) < 0.05, (path, colours["bg"])  # dark, not just grey
        if path in charted:
            assert colours["chart_text"], f"{path}: no chart text to check"
        assert_readable(colours, path)
        name = path.split("?")[0].replace("/", "-").replace(".html", "")
        screenshot(page, f"site/dark-{i:02d}-{name}.png")
        assert_clean(page, base)
        page.close()


def test_palette_toggle_recolours_charts_without_redrawing(
    browser: Chromium, built: tuple[Store, str]
) -> None:
    """The header's toggle switches palettes in place: the same chart SVGs (no redraw)
    get dark labels on the light page, and light ones again back in the dark."""
    store, base = built
    sweep = load(store).sweeps[0]["sweep_id"]
    page = open_page(browser, f"{base}reports/bench/{sweep}.html", dark=True)
    page.wait_for("document.body.dataset.mdColorScheme === 'slate'")
    page.evaluate("document.querySelectorAll('.vega-embed svg').forEach(s => s.dataset.hlSame = 1)")
    n_charts = page.evaluate("document.querySelectorAll('.vega-embed svg').length")
    assert n_charts >= 2
    before = page.evaluate(COLOURS)["bg"]
    # option 1 (slate) is showing; its toggle is the label for option 0 (default)
    for target, scheme in (("__palette_0", "default"), ("__palette_1", "slate")):
        page.evaluate(f"document.querySelector('label[for={target}]').click()")
        page.wait_for(
            f"document.body.dataset.mdColorScheme === '{scheme}'"
            f" && getComputedStyle(document.body).backgroundColor !== '{before}'"
        )
        colours = page.evaluate(COLOURS)
        bright = luminance(colours["bg"])
        assert bright > 0.9 if scheme == "default" else bright < 0.05, (scheme, colours)
        assert_readable(colours, f"after the toggle to {scheme}")
        same = page.evaluate("document.querySelectorAll('.vega-embed svg[data-hl-same]').length")
        assert same == n_charts  # recoloured by CSS, not re-rendered
        before = colours["bg"]
    assert_clean(page, base)
    page.close()


# -- PDF export ------------------------------------------------------------------------


def test_report_exports_a_pdf_with_its_text_and_vector_charts(
    built: tuple[Store, str], tmp_path: Path
) -> None:
    store, _ = built
    data = load(store)
    project, sweep = data.sweeps[0]["project"], data.sweeps[0]["sweep_id"]
    runs = [p["run_id"] for p in data.sweep_points[(project, sweep)]]
    out = tmp_path / "a report's pages" / "sweep report.pdf"
    out.parent.mkdir()
    env = {"HPCLAB_STORE": str(store.root)}
    r = hpclab_cli(None, "site", "report", sweep, "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote {out}"
    pdf = out.read_bytes()
    artifacts(tmp_path).mkdir(parents=True, exist_ok=True)
    (artifacts(tmp_path) / "report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    doc = PdfPages(pdf)
    assert len(doc.pages) == doc.count >= 2  # 12 runs' tables and charts do not fit one page
    text = "".join(doc.text(p) for p in doc.pages)
    # the report's sections, in the report's order
    headings = [f"Sweep {sweep}", "Configuration", "Loss curves", "Leaderboard", "Seed groups"]
    at = [text.find(h) for h in headings]
    assert -1 not in at and at == sorted(at), dict(zip(headings, at, strict=True))
    for run_id in runs:  # configuration, legends and leaderboard name every run
        assert text.count(run_id) >= 3, run_id
    assert "train/loss" in text and "step" in text  # chart titles and axes are text too
    # Charts are vectors, not pictures: each of the runs' loss curves (300 steps) is
    # drawn as line segments, and nothing in the file is a raster image.
    segments = sum(len(PDF_LINETO.findall(s)) for p in doc.pages for s in doc.streams(p))
    assert segments >= len(runs) * 299, segments
    assert not any(re.search(rb"/Subtype\s*/Image", h) for h, _ in doc.objs.values())
    # A4 pages by default (595 x 842 pt), Letter (612 x 792 pt) when asked
    assert _media_boxes(doc) == {(595, 842)}
    letter = tmp_path / "letter.pdf"
    r = hpclab_cli(None, "site", "report", sweep, "-o", str(letter), "--paper", "letter", env=env)
    assert r.returncode == 0, r.stderr
    assert _media_boxes(PdfPages(letter.read_bytes())) == {(612, 792)}


def _media_boxes(doc: PdfPages) -> set[tuple[int, int]]:
    """Each page's size in whole points, from its /MediaBox."""
    sizes = set()
    for num in doc.pages:
        m = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", doc.objs[num][0])
        assert m, doc.objs[num][0][:200]
        sizes.add((round(float(m.group(1))), round(float(m.group(2)))))
    return sizes
