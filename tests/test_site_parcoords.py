"""The Runs page's parallel coordinates and scatter (parcoords.js), in headless Chromium:
one axis per numeric column shown, brushing an axis filters the table to the runs in
the range, a click clears it, and the scatter plots any two columns."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from site_fixtures import make_site_store, served_site

from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.data import load
from hpclab.store import Store

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str, Chromium]]:
    root = tmp_path_factory.mktemp("pc")
    store = make_site_store(root / "store")
    with served_site(store, root / "site") as base, Chromium() as browser:
        yield store, base, browser


def _open(browser: Chromium, base: str) -> Page:
    page = browser.new_page()
    page.goto(base + "runs/index.html")
    page.wait_for(
        "document.querySelector('.hl-runs-scroll') && "
        "document.querySelector('.hl-runs-scroll').dataset.ready === '1'",
        timeout=20,
    )
    page.evaluate("(() => { const p = document.querySelector('.hl-parcoords'); p.open = true; })()")
    page.wait_for("document.querySelector('.hl-parcoords').dataset.lines !== undefined", timeout=10)
    return page


def _count(page: Page) -> int:
    text = page.evaluate("document.querySelector('.hl-filter-count').textContent")
    return int(text.split(" of ")[0].replace(",", ""))


def _lrs(store: Store) -> list[float]:
    data = load(store)
    out = []
    for r in data.runs:
        v = data.features.get((r["project"], r["run_id"]), {}).get("optim.lr")
        if v is not None:
            out.append(float(json.loads(v)))
    return out


def _drag(page: Page, col: str, frac0: float, frac1: float) -> None:
    """A user's drag along an axis, from frac0 to frac1 of its height (0: the top)."""
    x, top, h = page.evaluate(
        f"(() => {{ const r = document.querySelector('.hl-pc-axis[data-col=\"{col}\"] .hl-pc-hit')"
        ".getBoundingClientRect(); return [r.x + r.width / 2, r.y, r.height]; })()"
    )
    page.send(
        "Input.dispatchMouseEvent",
        {"type": "mousePressed", "x": x, "y": top + frac0 * h, "button": "left", "clickCount": 1},
    )
    page.send(
        "Input.dispatchMouseEvent",
        {"type": "mouseMoved", "x": x, "y": top + frac1 * h, "button": "left"},
    )
    page.send(
        "Input.dispatchMouseEvent",
        {"type": "mouseReleased", "x": x, "y": top + frac1 * h, "button": "left", "clickCount": 1},
    )


def test_axes_are_the_numeric_columns_and_brushing_filters_the_table(
    site: tuple[Store, str, Chromium],
) -> None:
    store, base, browser = site
    page = _open(browser, base)
    axes = page.evaluate(
        "Array.from(document.querySelectorAll('.hl-pc-axis')).map(g => g.dataset.col)"
    )
    assert "c:optim.lr" in axes and "m:val/loss" in axes
    total = _count(page)
    lines = int(page.evaluate("document.querySelector('.hl-parcoords').dataset.lines"))
    assert 0 < lines <= total
    _drag(page, "c:optim.lr", 0.0, 0.45)  # the upper part of the axis: the larger rates
    page.wait_for("document.querySelector('.hl-pc-axis[data-col=\"c:optim.lr\"]').dataset.lo")
    lo, hi = (
        float(
            page.evaluate(
                f"document.querySelector('.hl-pc-axis[data-col=\"c:optim.lr\"]').dataset.{k}"
            )
        )
        for k in ("lo", "hi")
    )
    inside = [v for v in _lrs(store) if lo <= v <= hi]
    assert 0 < len(inside) < total
    page.wait_for(
        f"document.querySelector('.hl-filter-count').textContent.startsWith('{len(inside)} of')"
    )
    assert _count(page) == len(inside)  # the table keeps exactly the runs in the range
    kept = int(page.evaluate("document.querySelector('.hl-parcoords').dataset.kept"))
    assert kept <= len(inside)  # brushed-out lines drawn faint, the others in colour
    # a click on the axis clears its brush: every run again
    _drag(page, "c:optim.lr", 0.5, 0.5)
    page.wait_for(
        f"document.querySelector('.hl-filter-count').textContent.startsWith('{total} of')"
    )
    assert page.errors == [], page.errors
    page.close()


def test_the_scatter_plots_any_two_columns(site: tuple[Store, str, Chromium]) -> None:
    store, base, browser = site
    page = _open(browser, base)
    page.evaluate(
        "(() => { for (const [c, v] of [['.hl-pc-x', 'c:optim.lr'], ['.hl-pc-y', 'm:val/loss']])"
        " { const s = document.querySelector(c); s.value = v;"
        " s.dispatchEvent(new Event('change')); } })()"
    )
    points = int(page.evaluate("document.querySelector('.hl-pc-scatter').dataset.points"))
    circles = page.evaluate("document.querySelectorAll('.hl-pc-scatter circle').length")
    assert points == circles == len(_lrs(store))  # every run with a learning rate and a loss
    assert page.errors == [], page.errors
    page.close()
