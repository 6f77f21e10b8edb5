"""hpclab.js puts data on a page only as text: markup is made by one template tag,
``html`...```, which escapes every interpolated value, and reaches the DOM only through
``setHTML``, which takes nothing else; links made from data pass ``safeHref``, which lets
through http(s):, mailto: and relative URLs only. Checked in the file itself (one
``innerHTML`` assignment, no other way to write markup or run strings as code), in real
headless Chromium on the helpers the page exposes (``window.hpclab``), on run and compare
pages of runs whose names, metrics, config, notes and error are hostile (nothing they
carry runs, no element they spell is created), and with the site's Content-Security-Policy
in force (the charts draw without ``'unsafe-eval'``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import hpclab
from hpclab.catalog.indexer import index_store
from hpclab.site.build import build
from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.layout import SiteLayout
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

REPO = Path(__file__).resolve().parents[1]
HPCLAB_JS = REPO / "site" / "assets" / "hpclab" / "hpclab.js"

# Each payload, if it ever ran, would set window.__hlRan.
RAN = "window.__hlRan=1"
NAME_A = f"x`<img src=x onerror={RAN}>\u202eevil"
NAME_B = f'"><svg onload={RAN}> {{: onclick={RAN} }}'
METRIC = f"x<img src=x onerror={RAN}>"
CONFIG_KEY = f"k<img src=x onerror={RAN}>"
CONFIG_VALUE = f"\"><svg onload={RAN}>'`"
TAG = f"<script>{RAN}</script>"
NOTE = f"</pre><img src=x onerror={RAN}>\njavascript:alert(1)"
ERROR = f"<iframe src=javascript:{RAN}>"

# The site's policy (hpclab/site adds it as a meta tag).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'none'"
)


# -- the file ---------------------------------------------------------------------------


def test_hpclab_js_writes_markup_in_one_place() -> None:
    src = HPCLAB_JS.read_text(encoding="utf-8")
    assignments = re.findall(r"\.innerHTML\s*\+?=(?!=)", src)
    assert assignments == [".innerHTML ="], assignments
    start = src.index("function setHTML(")
    assert start < src.index(".innerHTML =") < src.index("\n  }\n", start)  # in setHTML
    for banned in (
        "insertAdjacentHTML",
        "outerHTML",
        "document.write",
        "eval(",
        "new Function",
        "Function(",
        "srcdoc",
        "createContextualFragment",
        "DOMParser",
    ):
        assert banned not in src, banned
    # no string run as code, no inline handler or javascript: URL built, no script made
    assert not re.search(r"set(Timeout|Interval)\(\s*[\"'`]", src)
    assert not re.search(r"[\"'`]\s*javascript:", src, re.I)
    assert not re.search(r"\son[a-z]+\s*=\s*[\"'\\$]", src)
    assert not re.search(r"createElement\(\s*[\"']script", src, re.I)
    # an interpolated attribute value is always quoted (escaping a quote then suffices)
    assert not re.search(r"=\$\{", src)


# -- a small store with hostile text ------------------------------------------------------


def log_run(store: Store, name: str, lr: float, parent: str | None) -> Any:
    run = hpclab.init(
        "lab",
        {"optim": {"lr": lr}, CONFIG_KEY: CONFIG_VALUE if parent else "plain"},
        name=name,
        parent=parent,
        store=store.root,
    )
    for step in range(20):
        run.log({"train/loss": lr * math.exp(-step / 10), METRIC: step / 20}, step=step)
    return run


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A built site of two runs with hostile text (the second a failed child of the first),
    its URL and the two run ids. run-csp.html and compare-csp.html are the run and compare
    pages with the site's Content-Security-Policy as their first head element."""
    store = Store(tmp_path_factory.mktemp("js") / "a \"store\" 'here'")
    a = log_run(store, NAME_A, 0.1, None)
    a.finish()
    b = log_run(store, NAME_B, 0.01, a.id)
    b.finish("failed", error=RuntimeError(ERROR))
    store.run_paths("lab", b.id).notes_yaml.write_text(
        yaml.safe_dump({"tags": [TAG, "javascript:alert(1)"], "text": NOTE})
    )
    index_store(store)
    build(store)
    html = SiteLayout(store.site_dir).html
    meta = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
    for page in ("run", "compare"):
        text = (html / "runs" / f"{page}.html").read_text(encoding="utf-8")
        with_csp = re.sub(r"<head>", "<head>" + meta, text, count=1)
        assert with_csp != text
        (html / "runs" / f"{page}-csp.html").write_text(with_csp, encoding="utf-8")
    server = make_server(html, port=0)
    serve_in_thread(server)
    try:
        yield url_of(server), a.id, b.id
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs Debian's chromium)")
    with Chromium() as b:
        yield b


WATCH = """
window.__hlCsp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__hlCsp.push([e.violatedDirective, e.blockedURI, e.sourceFile]));
"""


def open_page(browser: Chromium, url: str) -> Page:
    page = browser.new_page()
    page.send("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    page.goto(url)
    page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
    return page


def assert_clean(page: Page, base: str) -> None:
    assert page.errors == [], page.errors
    outside = [u for u in page.requests if not u.startswith((base, "data:", "blob:", "about:"))]
    assert outside == [], outside


# -- the helpers ----------------------------------------------------------------------------


def test_html_escapes_every_interpolation(browser: Chromium, site: tuple[str, str, str]) -> None:
    base, _, _ = site
    page = open_page(browser, base + "index.html")
    h = "window.hpclab.html"
    cases = {
        # text: & < > " ' and backtick escaped; markup of the template kept
        f'{h}`<b>${{"<img onerror=x>"}}</b>`.markup': "<b>&lt;img onerror=x&gt;</b>",
        f'{h}`<i title="${{\'"><svg onload=x>\'}}">${{"a&b \'c\' `d`"}}</i>`.markup': (
            '<i title="&quot;&gt;&lt;svg onload=x&gt;">a&amp;b &#39;c&#39; &#96;d&#96;</i>'
        ),
        # SafeHtml kept, arrays joined (each item escaped unless SafeHtml), null is ""
        f"{h}`<p>${{{h}`<b>x</b>`}}${{['<', {h}`<i>y</i>`, 3]}}${{null}}${{undefined}}</p>`"
        ".markup": "<p><b>x</b>&lt;<i>y</i>3</p>",
        f"window.hpclab.joinHtml(['<a>', {h}`<b>b</b>`], {h}`<br>`).markup": (
            "&lt;a&gt;<br><b>b</b>"
        ),
        # bidi controls and zero-width characters are shown, not obeyed
        f'{h}`${{"ab\\u202ecd\\u2066\\u200b\\u061c"}}`.markup': (
            "ab⟨U+202E⟩cd⟨U+2066⟩⟨U+200B⟩⟨U+061C⟩"
        ),
        f"{h}`${{0}}${{false}}`.markup": "0false",
    }
    for expr, want in cases.items():
        assert page.evaluate(expr) == want, expr
    # the DOM gets the text back, and nothing else
    made = page.evaluate(
        "(() => { const d = document.createElement('div');"
        f" window.hpclab.setHTML(d, {h}`<p>${{'<img src=x onerror=window.__hlRan=1>'}}</p>`);"
        " return [d.children.length, d.firstChild.tagName, d.textContent,"
        " d.querySelectorAll('img').length]; })()"
    )
    assert made == [1, "P", "<img src=x onerror=window.__hlRan=1>", 0]
    assert_clean(page, base)
    page.close()


def test_set_html_takes_only_safe_html(browser: Chromium, site: tuple[str, str, str]) -> None:
    base, _, _ = site
    page = open_page(browser, base + "index.html")
    for attempt in (
        "window.hpclab.setHTML(document.createElement('div'), '<b>x</b>')",
        "window.hpclab.setHTML(document.createElement('div'), {markup: '<b>x</b>'})",
        "window.hpclab.setHTML(document.createElement('div'), null)",
        "new window.hpclab.SafeHtml('<b>x</b>')",  # no SafeHtml by hand
        "window.hpclab.html('<b>' + 'x' + '</b>')",  # a tag, not a function of a string
    ):
        thrown = page.evaluate(
            f"(() => {{ try {{ {attempt}; return null; }}"
            " catch (e) { return e instanceof TypeError ? 'TypeError' : String(e); } })()"
        )
        assert thrown == "TypeError", attempt
    assert page.evaluate("Object.isFrozen(window.hpclab)")
    frozen = "(() => { const s = window.hpclab.html`<b></b>`; s.markup = 1; return s.markup; })()"
    assert page.evaluate(frozen) == "<b></b>"
    assert_clean(page, base)
    page.close()


REJECTED = [
    "javascript:alert(1)",
    " JaVaScRiPt:alert(1)",
    "java\tscript:x",
    "java\nscript:x",
    "\u0001javascript:x",
    "javascript\u0000:x",
    "data:text/html,<script>alert(1)</script>",
    "DATA:image/svg+xml,<svg onload=alert(1)>",
    "vbscript:x",
    "file:///etc/passwd",
    "blob:http://x/y",
    "\u2028javascript:x",
]
ACCEPTED = {
    "https://x": "https://x",
    "HTTP://x.org/a?b=c": "HTTP://x.org/a?b=c",
    "mailto:a@b": "mailto:a@b",
    "runs/run.html?p=a&id=b": "runs/run.html?p=a&id=b",
    "../x": "../x",
    "/abs/path": "/abs/path",
    "#frag": "#frag",
    "  https://x/\n": "https://x/",
    "compare.html?r=lab/a:b": "compare.html?r=lab/a:b",
}


def test_safe_href_allows_web_links_only(browser: Chromium, site: tuple[str, str, str]) -> None:
    base, _, _ = site
    page = open_page(browser, base + "index.html")
    got = page.evaluate(f"{json.dumps(REJECTED)}.map(u => window.hpclab.safeHref(u))")
    assert dict(zip(REJECTED, got, strict=True)) == {u: "#" for u in REJECTED}
    got = page.evaluate(f"{json.dumps(list(ACCEPTED))}.map(u => window.hpclab.safeHref(u))")
    assert dict(zip(ACCEPTED, got, strict=True)) == ACCEPTED
    assert page.evaluate("[null, undefined].map(u => window.hpclab.safeHref(u))") == ["#", "#"]
    # a link into the site itself (the page's own root) passes whatever its scheme
    assert page.evaluate(f"window.hpclab.safeHref({json.dumps(base + 'runs/index.html')})") == (
        base + "runs/index.html"
    )
    assert_clean(page, base)
    page.close()


# -- hostile runs on the run and compare pages ----------------------------------------------

NOTHING_RAN = """(() => {
  const root = document.getElementById('hl-run') || document.getElementById('hl-compare');
  return {
    ran: window.__hlRan === undefined ? null : window.__hlRan,
    made: Array.from(root.querySelectorAll(
      'img, iframe, frame, object, embed, script, style, svg, form, base, meta, link'))
      .filter(el => !el.closest('.vega-embed')).map(el => el.tagName),
    handlers: Array.from(document.querySelectorAll('*')).flatMap(el => Array.from(el.attributes)
      .filter(a => /^on/i.test(a.name)).map(a => el.tagName + ' ' + a.name)),
    scripted: Array.from(document.querySelectorAll('[href], [src], [action], [formaction]'),
      el => el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('action')
        || el.getAttribute('formaction'))
      .filter(u => /^[\\s\\u0000-\\u001f]*(javascript|vbscript|data):/i.test(u)),
  };
})()"""


def assert_nothing_ran(page: Page) -> None:
    assert page.evaluate(NOTHING_RAN) == {"ran": None, "made": [], "handlers": [], "scripted": []}


def test_run_page_shows_hostile_text_as_text(browser: Chromium, site: tuple[str, str, str]) -> None:
    base, a, b = site
    for run_id, name in ((a, NAME_A), (b, NAME_B)):
        page = open_page(browser, f"{base}runs/run.html?p=lab&id={run_id}")
        page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
        page.wait_for(
            "document.querySelectorAll('.hl-run-chart').length >= 2 && Array.from("
            "document.querySelectorAll('.hl-run-chart > div')).every(e => e.dataset.rendered)"
        )
        assert_nothing_ran(page)
        shown = name.replace("\u202e", "⟨U+202E⟩")
        assert page.evaluate("document.querySelector('article h1, h1').textContent") == (
            f"{shown} ({run_id})"
        )
        assert page.evaluate("document.title").startswith(shown)
        metrics = page.evaluate(
            "Array.from(document.querySelectorAll('#hl-run table tbody tr td:first-child code'),"
            " c => c.textContent)"
        )
        assert METRIC in metrics
        charts = page.evaluate(
            "Array.from(document.querySelectorAll('.hl-run-chart h3'), h => h.textContent)"
        )
        assert METRIC in charts
        text = page.evaluate("document.getElementById('hl-run').textContent")
        assert CONFIG_KEY in text
        if run_id == b:
            for needle in (CONFIG_VALUE, TAG, NOTE, ERROR, "javascript:alert(1)", "Changed from"):
                assert needle in text, needle
            notes = page.evaluate("document.querySelector('#hl-run pre.hl-notes').textContent")
            assert notes == NOTE
        assert_clean(page, base)
        page.close()


def test_compare_page_shows_hostile_text_as_text(
    browser: Chromium, site: tuple[str, str, str]
) -> None:
    base, a, b = site
    page = open_page(browser, f"{base}runs/compare.html?r=lab/{a},lab/{b}")
    page.wait_for("document.getElementById('hl-compare').dataset.rendered === '1'", timeout=20)
    assert_nothing_ran(page)
    names = page.evaluate(
        "Array.from(document.querySelectorAll('table.hl-compare-runs tbody tr td:nth-child(3)'),"
        " c => c.textContent)"
    )
    assert names == [NAME_A.replace("\u202e", "⟨U+202E⟩"), NAME_B]
    heads = page.evaluate(
        "Array.from(document.querySelectorAll('table.hl-compare-runs thead th'),"
        " c => c.textContent)"
    )
    assert f"{METRIC} (last)" in heads
    diff = page.evaluate(
        "Array.from(document.querySelectorAll('table.hl-config-diff tbody tr'),"
        " r => Array.from(r.cells, c => c.textContent))"
    )
    assert [CONFIG_KEY, '"plain"', json.dumps(CONFIG_VALUE)] in diff  # values are JSON
    charts = page.evaluate(
        "Array.from(document.querySelectorAll('.hl-compare-chart'), c => c.dataset.metric)"
    )
    assert METRIC in charts
    # the chart legends name the runs in SVG text
    page.wait_for(
        "Array.from(document.querySelectorAll('.hl-compare-chart > div'))"
        ".every(e => e.dataset.rendered === '1')"
    )
    legend = page.evaluate(
        "Array.from(document.querySelectorAll('.hl-compare-chart .role-legend text'),"
        " t => t.textContent)"
    )
    # by the config values that differ (charts.js), the hostile key and value as text
    # (cut to fit, with "…"), bidi controls never raw
    assert legend and all("=" in t for t in legend), legend
    assert any("><svg onload=window.__hlRan" in t for t in legend), legend
    assert page.evaluate("window.__hlRan") is None
    assert "\u202e" not in "".join(legend)
    assert_nothing_ran(page)
    assert_clean(page, base)
    page.close()


# -- the Content-Security-Policy -----------------------------------------------------------


def test_charts_draw_under_the_sites_csp(browser: Chromium, site: tuple[str, str, str]) -> None:
    """With script-src 'self' (no 'unsafe-eval'), the run and compare pages still fill in
    and draw their charts: nothing of hpclab.js or Vega is refused. (The theme's own inline
    scripts are the page template's business, not hpclab.js's: they are not counted.)"""
    base, a, b = site
    for path, root, box in (
        (f"runs/run-csp.html?p=lab&id={b}", "hl-run", ".hl-run-chart"),
        (f"runs/compare-csp.html?r=lab/{a},lab/{b}", "hl-compare", ".hl-compare-chart"),
    ):
        page = open_page(browser, base + path)
        page.wait_for(f"document.getElementById('{root}').dataset.rendered === '1'", timeout=20)
        page.wait_for(
            f"document.querySelectorAll('{box}').length >= 2 && Array.from("
            f"document.querySelectorAll('{box} > div')).every(e => e.dataset.rendered === '1')",
            timeout=20,
        )
        assert page.evaluate(f"document.querySelectorAll('{box} g.mark-line path').length") >= 2
        refused = page.evaluate("window.__hlCsp")
        ours = [
            v
            for v in refused
            if v[1] == "eval" or (v[2] or "").endswith(("hpclab.js", "vega-bundle.js"))
        ]
        assert ours == [], ours
        assert page.evaluate("document.querySelector('meta[http-equiv]').content") == CSP
        assert_nothing_ran(page)
        page.close()
