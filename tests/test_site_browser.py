"""The lab website in real headless Chromium (Debian's ``chromium``, driven over the
DevTools protocol on a pipe): every tab loads with no console error and no request
leaving localhost, charts draw one line per series, and the Training chart gains points
while a run is being logged to, without a reload.

Screenshots of every page go to ``$HPCLAB_TEST_ARTIFACTS/site`` (else the test's
tmp_path): CI keeps them, the README shows a few.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import poll, python_script
from site_fixtures import make_site_store

from hpclab.catalog.indexer import index_store
from hpclab.site.build import build
from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.data import load
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


# read at import: the isolated_env fixture clears HPCLAB_* variables for each test
ARTIFACTS = os.environ.get("HPCLAB_TEST_ARTIFACTS")


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


def assert_clean(page: Page, base: str) -> None:
    assert page.errors == [], page.errors
    outside = [u for u in page.requests if not u.startswith((base, "data:", "blob:", "about:"))]
    assert outside == [], f"requests leaving localhost: {outside}"


def test_every_tab_loads_cleanly(
    browser: Chromium, built: tuple[Store, str], tmp_path: Path
) -> None:
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
    shots = artifacts(tmp_path)
    for i, path in enumerate(pages):
        page = open_page(browser, base + path, dark=(path == "training.html"))
        if path.startswith("runs/run.html"):
            page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
            page.wait_for("document.querySelectorAll('.hl-run-chart [data-rendered]').length > 0")
        if path == "training.html":
            page.wait_for("document.getElementById('hl-training').dataset.live === '1'")
        assert page.evaluate("document.querySelector('.md-tabs') !== null")
        name = path.split("?")[0].replace("/", "-").replace(".html", "")
        page.screenshot(shots / f"{i:02d}-{name}.png")
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
    assert counts and all(c == n_runs for c in counts), (counts, n_runs)
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
    text = page.evaluate("document.getElementById('hl-run').innerText")
    for needle in ("optim.lr", "Changed from the parent", "PUBLISH", "hpclab restore"):
        assert needle in text
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
        lines = page.evaluate(f'document.querySelectorAll("{sel} g.mark-line path").length')
        assert lines == 2  # train/loss and val/loss
        page.screenshot(artifacts(tmp_path) / "live-training.png")
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
