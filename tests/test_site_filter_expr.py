"""The Runs table's filter expressions (site/assets/hpclab/filter-expr.js, issue 17): a safe
parser and evaluator (no eval) over config paths and metric names with ``.`` and ``/``,
and/or/not, parentheses, comparisons, string equality, ``in``/``contains`` and ``tag:``;
a malformed expression is a FilterError naming its position. Checked in real headless
Chromium, on a page that loads only the module, against run ids computed in Python."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.serve import make_server, serve_in_thread, url_of

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "site" / "assets" / "hpclab" / "filter-expr.js"

HOSTILE = "<img src=x onerror=window.__hlRan=1>"
RUNS: list[dict[str, Any]] = [
    {
        "id": "a",
        "cfg": {"optim.lr": 0.001, "model.name": "resnet", "val/loss": 0.1, "status": "completed"},
        "tags": ["baseline"],
    },
    {
        "id": "b",
        "cfg": {"optim.lr": 0.05, "model.name": "vit", "val/loss": 0.15, "status": "failed"},
        "tags": [],
    },
    {
        "id": "c",
        "cfg": {"optim.lr": 0.005, "model.name": "vit", "val/loss": 0.3, "status": "completed"},
        "tags": [HOSTILE],
    },
    {
        "id": "d",
        "cfg": {"optim.lr": 0.1, "model.name": HOSTILE, "val/loss": None, "status": "running"},
        "tags": ["baseline"],
    },
]


def _num(v: Any) -> float | None:
    return v if isinstance(v, (int, float)) else None


CASES: list[tuple[str, Any]] = [
    (
        "optim.lr < 0.01 and val/loss < 0.2",
        lambda r: r["cfg"]["optim.lr"] < 0.01 and (_num(r["cfg"]["val/loss"]) or 9) < 0.2,
    ),
    (
        'model.name == "resnet" or tag:baseline',
        lambda r: r["cfg"]["model.name"] == "resnet" or "baseline" in r["tags"],
    ),
    ('status == "failed"', lambda r: r["cfg"]["status"] == "failed"),
    ('not (status == "completed")', lambda r: r["cfg"]["status"] != "completed"),
    ('model.name contains "vi"', lambda r: "vi" in r["cfg"]["model.name"]),
    ('"res" in model.name and optim.lr >= 0.001', lambda r: "res" in r["cfg"]["model.name"]),
    ("val/loss >= 0.15", lambda r: (_num(r["cfg"]["val/loss"]) or -1) >= 0.15),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fx")
    shutil.copy(MODULE, root / "filter-expr.js")
    (root / "index.html").write_text(
        '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">'
        '<meta http-equiv="Content-Security-Policy" content="script-src \'self\'">'
        '<script src="filter-expr.js"></script><body></body>'
    )
    server = make_server(root, port=0)
    serve_in_thread(server)
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def page(site: str) -> Iterator[Page]:
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs Debian's chromium)")
    with Chromium() as b:
        p = b.new_page()
        p.goto(site)
        p.wait_for("!!window.hpclabFilterExpr")
        yield p
        assert p.errors == []


def _run(page: Page, expr: str) -> Any:
    js = (
        "(() => { const F = window.hpclabFilterExpr; const runs = RUNS;"
        " try { const ast = F.parse(EXPR); const row = r => ({get: k => r.cfg[k], tags: r.tags});"
        " return {ids: runs.filter(r => F.evaluate(ast, row(r))).map(r => r.id)}; }"
        " catch (e) { return {error: e.message, pos: e.pos, name: e.name}; } })()"
    )
    js = js.replace("RUNS", json.dumps(RUNS)).replace("EXPR", json.dumps(expr))
    return page.evaluate(js)


@pytest.mark.parametrize(("expr", "pred"), CASES, ids=[c[0] for c in CASES])
def test_expression_keeps_exactly_the_expected_runs(page: Page, expr: str, pred: Any) -> None:
    expected = [r["id"] for r in RUNS if pred(r)]
    assert _run(page, expr) == {"ids": expected}


@pytest.mark.parametrize(
    ("expr", "pos"),
    [("optim.lr < ", 11), ("(status == 'x'", 14), ('model.name == "resnet', 14), ("a # b", 2)],
)
def test_malformed_expression_names_its_position(page: Page, expr: str, pos: int) -> None:
    out = _run(page, expr)
    assert out["name"] == "FilterError"
    assert out["pos"] == pos
    assert f"at position {pos + 1}" in out["error"]


def test_plain_text_is_not_an_expression_and_hostile_text_stays_inert(page: Page) -> None:
    is_expr = "(t) => window.hpclabFilterExpr.isExpression(t)"
    assert page.evaluate(f"({is_expr})('resnet sweep')") is False
    assert page.evaluate(f"({is_expr})('optim.lr < 0.1')") is True
    assert page.evaluate(f"({is_expr})('tag:baseline')") is True
    out = _run(page, f"model.name == {json.dumps(HOSTILE)}")
    assert out == {"ids": ["d"]}
    assert page.evaluate("window.__hlRan === undefined && !document.querySelector('img')") is True


@pytest.fixture(scope="module")
def runs_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    from hpclab.site.build import build
    from tests.site_fixtures import make_site_store

    store = make_site_store(tmp_path_factory.mktemp("site") / "store")
    build(store)
    html = store.site_dir / "html"
    server = make_server(html, port=0)
    serve_in_thread(server)
    try:
        yield html, url_of(server)
    finally:
        server.shutdown()
        server.server_close()


def test_runs_page_filters_by_expression_and_reports_errors(
    runs_site: tuple[Path, str],
) -> None:
    if find_chromium() is None:
        pytest.skip("Chromium is not installed")
    html, base = runs_site
    doc = json.loads((html / "data" / "runs-list.json").read_text())
    rows, names = doc["rows"], doc["metrics"]
    vl = names.index("val/loss")
    vals = sorted(r[9 + vl] for r in rows if r[9 + vl] is not None)
    cut = vals[len(vals) // 2]
    cases = {
        f"val/loss < {cut!r}": [r[1] for r in rows if r[9 + vl] is not None and r[9 + vl] < cut],
        'tag:PUBLISH or name == "base"': [
            r[1] for r in rows if "PUBLISH" in r[8] or r[3] == "base"
        ],
    }
    with Chromium() as b:
        page = b.new_page()
        page.goto(base + "runs/")
        page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
        page.wait_for("document.querySelectorAll('table.hl-runs tbody input.hl-pick').length > 0")
        for expr, want in cases.items():
            assert want and len(want) < len(rows)
            page.evaluate(
                "(() => { const i = document.querySelector('.hl-filter-input');"
                f" i.value = {json.dumps(expr)}; i.dispatchEvent(new Event('input')); }})()"
            )
            page.wait_for(
                "document.querySelector('.hl-filter-count').textContent.startsWith("
                f"'{len(want)} of ')"
            )
            got = page.evaluate(
                "Array.from(document.querySelectorAll('table.hl-runs tbody a.hl-run'))"
                ".map(a => a.textContent)"
            )
            assert sorted(got) == sorted(want)
        page.evaluate(
            "(() => { const i = document.querySelector('.hl-filter-input');"
            " i.value = 'val/loss < '; i.dispatchEvent(new Event('input')); })()"
        )
        err = page.wait_for("document.querySelector('.hl-filter-error').textContent")
        assert "at position 12" in err  # 1-based: the end of the text
        assert page.evaluate("document.querySelectorAll('table.hl-runs tbody tr').length") > 0
        assert page.errors == []
