"""No name can inject markup: a store whose every user-written field is hostile (run
name, tags, note, metric names, config keys and values, sweep overrides and command,
hypothesis title and description, artifact and dataset names) is built into a site,
and every page is opened in headless Chromium with listeners that fail the test if any
script or handler of the data runs, if the page violates its own Content-Security-Policy,
if any element carries an event-handler attribute or an unsafe link, or if any request
leaves the local server. The hostile text must still be shown, as text.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import hpclab
from hpclab.catalog.indexer import index_store
from hpclab.launch.sweep import PlannedPoint, plan_sweep
from hpclab.site.build import build
from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.report import export
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from test_site_browser import TABS  # noqa: E402

PWN = "window.__hlPwned"  # what a payload that ran would call (alert is rebound to it)
HOSTILE = {
    "backtick": "x`<img src=x onerror=alert(1)>`",
    "svg": '"><svg onload=alert(2)>',
    "js_url": "javascript:alert(3)",
    "attr_list": "{: .x onclick=alert(4) }",
    "title": "lr helps {: onmouseover=alert(5) }",
    "md_link": "[x](javascript:alert(6))",
    "bidi": "run\u202egnp.exe\u202c",
    "script": "</script><script>alert(7)</script>",
    "comment": "<!--<script>alert(8)//",
    "quote": "' onfocus=alert(9) autofocus x='",
}
METRIC = "loss" + HOSTILE["backtick"]  # a key metric: on the Overview, Board, reports
OTHER_METRIC = HOSTILE["svg"] + "/val"

# Installed before any page script: alert & co. count instead of opening dialogs, and
# every CSP violation is recorded (a blocked injected handler is a failed escape too).
PROBE = """
window.__hlRan = [];
window.__hlPwned = function (x) { window.__hlRan.push(String(x)); };
window.alert = window.confirm = window.prompt = window.__hlPwned;
window.__hlCsp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__hlCsp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || ''));
});
"""

# Elements with an on* attribute, unsafe link targets, injected elements.
DOM_CHECK = """
(() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.getAttributeNames()) {
      if (a.toLowerCase().startsWith('on')) bad.push(el.tagName + '[' + a + ']');
    }
    for (const a of ['href', 'src', 'action', 'formaction', 'xlink:href']) {
      const v = (el.getAttribute(a) || '').replace(/[\\x00-\\x20]/g, '').toLowerCase();
      if (/^(javascript|data:text|vbscript)/.test(v)) bad.push(el.tagName + ' ' + a + '=' + v);
    }
  }
  for (const el of document.querySelectorAll('img[src="x"], svg[onload], .x')) {
    bad.push('injected ' + el.outerHTML.slice(0, 80));
  }
  return bad;
})()
"""


def _hostile_store(root: Path, tmp: Path) -> tuple[Store, list[str]]:
    store = Store(root)
    project = "evil"
    h = HOSTILE
    config = {
        h["attr_list"]: h["svg"],  # a hostile config key and value
        "optim": {"lr": 0.1, "label": h["script"]},
        "url": h["js_url"],
        "seed": 0,
    }
    plan = plan_sweep(
        store,
        project,
        [
            PlannedPoint(0, [f"optim.label={h['script']}", "seed=0"], config),
            PlannedPoint(1, [f"{h['attr_list']}={h['quote']}", "seed=1"], {**config, "seed": 1}),
        ],
        launcher="local",
        meta={"argv": ["hpclab.launch", "-m", h["comment"], h["md_link"]]},
        run_fields={"name": h["backtick"], "tags": [h["svg"], h["bidi"]]},
    )
    data = tmp / "data"
    data.mkdir()
    (data / "train.csv").write_text("a,b\n1,2\n")
    art = tmp / "art"
    art.mkdir()
    (art / "x.txt").write_text("artifact")
    ids = []
    for i, point in enumerate(plan.points):
        run = hpclab.init(
            project, point.config, store=store.root, run_id=point.run_id, sweep_id=plan.id
        )
        for step in range(30):
            run.log({METRIC: math.exp(-step / (10 + i)), OTHER_METRIC: 1.0 / (step + 1)}, step=step)
        run.log_artifacts(art / "x.txt", name=f"{h['svg']}.txt")
        run.track_dataset(data, name=h["backtick"])
        run.finish()
        ids.append(run.id)
    child = hpclab.init(
        project, {**config, "optim": {"lr": 0.01, "label": h["title"]}}, name=h["bidi"],
        parent=ids[0], tags=[h["js_url"]], store=store.root,
    )  # fmt: skip
    for step in range(30):
        child.log({METRIC: 0.5 * math.exp(-step / 10)}, step=step)
    child.finish()
    ids.append(child.id)
    store.run_paths(project, ids[0]).notes_yaml.write_text(
        yaml.safe_dump({"tags": [h["attr_list"], h["quote"]], "text": h["md_link"] + h["svg"]})
    )
    store.project_yaml(project).write_text(
        yaml.safe_dump({"key_metrics": [{"name": METRIC, "direction": "minimize"}]})
    )
    store.hypotheses_dir(project).mkdir(parents=True, exist_ok=True)
    store.hypothesis_yaml(project, "xss").write_text(
        yaml.safe_dump(
            {
                "title": h["title"],
                "description": f"{h['md_link']} {h['backtick']} {h['script']} "
                "see https://example.org/a?b=1&c=2",
                "metrics": [{"name": METRIC, "direction": "minimize"}],
                "baseline": "parent",
                "runs": [ids[2]],
            }
        )
    )
    index_store(store)
    return store, ids


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[str], str]]:
    tmp = tmp_path_factory.mktemp("hostile")
    store, ids = _hostile_store(tmp / "st ore", tmp)
    build(store)
    server = make_server(store.site_dir / "html", port=0)
    serve_in_thread(server)
    try:
        yield store, ids, url_of(server)
    finally:
        server.shutdown()
        server.server_close()


def _open(browser: Chromium, url: str) -> Page:
    page = browser.new_page()
    page.send("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
    page.goto(url)
    page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
    page.wait_for(
        "Array.from(document.querySelectorAll('.hl-chart')).every(e => e.dataset.rendered)"
    )
    return page


def _assert_inert(page: Page, base: str, where: str) -> None:
    assert page.evaluate("window.__hlRan") == [], f"{where}: a payload ran"
    assert page.evaluate("window.__hlCsp") == [], f"{where}: CSP violations"
    assert page.evaluate(DOM_CHECK) == [], f"{where}: markup from the data"
    assert page.errors == [], f"{where}: {page.errors}"
    outside = [u for u in page.requests if not u.startswith((base, "data:", "blob:", "about:"))]
    assert outside == [], f"{where}: requests leaving localhost: {outside}"


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_hostile_names_are_shown_as_text_and_run_nothing(
    hostile: tuple[Store, list[str], str],
) -> None:
    store, ids, base = hostile
    sweep = next(store.sweeps_dir("evil").glob("*.json")).stem
    pages = [
        *TABS,
        f"reports/evil/{sweep}.html",
        "reports/evil/hypothesis-xss.html",
        *[f"runs/run.html?p=evil&id={rid}" for rid in ids],
        "runs/compare.html?r=" + ",".join(f"evil/{rid}" for rid in ids),
    ]
    with Chromium() as browser:
        seen = ""
        for path in pages:
            page = _open(browser, base + path)
            if path.startswith("runs/run.html"):
                page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
            if path.startswith("runs/compare.html"):
                page.wait_for("document.getElementById('hl-compare').dataset.rendered === '1'")
            text = page.evaluate("document.body.innerText")
            seen += text
            _assert_inert(page, base, path)
            page.close()
        # search: the hostile title typed into the theme's search box
        page = _open(browser, base + "index.html")
        page.evaluate(
            "(() => { const i = document.querySelector('.md-search__input');"
            f" i.focus(); i.value = {json.dumps('lr helps')};"
            " i.dispatchEvent(new Event('input', {bubbles: true})); })()"
        )
        page.wait_for("document.querySelectorAll('.md-search-result__item').length > 0")
        _assert_inert(page, base, "search results")
        page.close()
    # the text arrived, as text (bidi controls made visible)
    for key in ("backtick", "svg", "title", "md_link", "attr_list", "quote", "script"):
        assert HOSTILE[key] in seen, key
    assert "gnp.exe" in seen and "⟨U+202E⟩" in seen and "\u202e" not in seen


class _Markup(HTMLParser):
    """Every element and attribute of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(k, v or "") for k, v in attrs]


def test_built_pages_hold_no_markup_from_the_data(hostile: tuple[Store, list[str], str]) -> None:
    """Static check of every built HTML file: the only scripts are the site's own files
    (and JSON data blocks), no element has an on* attribute, links are safe."""
    store, _, _ = hostile
    html_dir = store.site_dir / "html"
    files = list(html_dir.rglob("*.html"))
    assert len(files) >= 10
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert 'http-equiv="Content-Security-Policy"' in text, f
        assert text.index("Content-Security-Policy") < text.index("<script"), f
        p = _Markup()
        p.feed(text)
        handlers = [k for k, _ in p.attrs if k.startswith("on")]
        assert handlers == [], (f, handlers)
        links = [v for k, v in p.attrs if k in ("href", "src")]
        assert not [v for v in links if v.replace(" ", "").lower().startswith("javascript")], f
        assert "img" not in p.tags, f  # no page of this site has an <img>: one is injected


def test_a_standalone_report_of_hostile_names_is_inert(
    hostile: tuple[Store, list[str], str], tmp_path: Path
) -> None:
    store, _, _ = hostile
    out = export(store, "xss", tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    p = _Markup()
    p.feed(text)
    assert "script" not in p.tags and "img" not in p.tags
    assert [k for k, _ in p.attrs if k.startswith("on")] == []
    csp = dict(p.attrs).get("content", "")
    assert csp.startswith("default-src 'none'") and "script-src" not in csp
    assert "lr helps {: onmouseover=alert(5) }" in _text_of(text)


def _text_of(html: str) -> str:
    out: list[str] = []

    class T(HTMLParser):
        def handle_data(self, data: str) -> None:
            out.append(data)

    T().feed(html)
    return "".join(out)
