"""The Runs and Graph pages stay light at a lab's scale (issue 16): the Runs page is a
header whose rows are a data file, drawn a screenful at a time by hpclab.js, filtered
and sorted over every run; the Graph page is one collapsible group per sweep whose
nodes are a data file, drawn when the group is opened, a parent in another group named
as a link. Real builds (MkDocs), a real server and real headless Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

import hpclab
import hpclab.site.graph as graph
import hpclab.site.pages as pages
from hpclab.catalog.indexer import index_store
from hpclab.launch.sweep import PlannedPoint, plan_sweep
from hpclab.site.build import build
from hpclab.site.chromium import Chromium, Page, find_chromium
from hpclab.site.layout import SiteLayout
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

PROJECT = "lab"
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")


def _run(store: Store, value: float, **kw: Any) -> str:
    run = hpclab.init(PROJECT, {"v": value}, store=store.root, **kw)
    for step in range(3):
        run.log({"val/loss": value + 0.1 * (2 - step)}, step=step)
    run.finish()
    return run.id


def _sweep(store: Store, values: list[float]) -> tuple[str, list[PlannedPoint]]:
    plan = plan_sweep(
        store,
        PROJECT,
        [PlannedPoint(i, [f"v={v}"], {"v": v}) for i, v in enumerate(values)],
        launcher="local",
        meta={"argv": ["hpclab.launch", "-m"]},
    )
    return plan.id, list(plan.points)


@pytest.fixture(scope="module")
def dag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, str], dict[str, str]]:
    """Two sweeps and a run outside any: a1 is a0's child (same sweep), b0 is a0's child
    (another sweep), solo (no sweep) is b1's child. Returns the store, run ids by name
    and sweep ids (a, b)."""
    store = Store(tmp_path_factory.mktemp("dag") / "st ore")
    store.project_yaml(PROJECT).parent.mkdir(parents=True)
    store.project_yaml(PROJECT).write_text(
        yaml.safe_dump({"key_metrics": [{"name": "val/loss", "direction": "minimize"}]})
    )
    ids: dict[str, str] = {}
    sa, pa = _sweep(store, [0.5, 0.3])
    ids["a0"] = _run(store, 0.5, run_id=pa[0].run_id, sweep_id=sa, name="a0")
    ids["a1"] = _run(store, 0.3, run_id=pa[1].run_id, sweep_id=sa, name="a1", parent=ids["a0"])
    sb, pb = _sweep(store, [0.7, 0.2])
    ids["b0"] = _run(store, 0.7, run_id=pb[0].run_id, sweep_id=sb, name="b0", parent=ids["a0"])
    ids["b1"] = _run(store, 0.2, run_id=pb[1].run_id, sweep_id=sb, name="b1")
    ids["solo"] = _run(store, 0.1, name="solo", parent=ids["b1"], tags=["keep"])
    index_store(store)
    return store, ids, {"a": sa, "b": sb}


def test_runs_page_is_a_header_and_its_rows_a_data_file(
    dag: tuple[Store, dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    store, ids, sweeps = dag
    layout = SiteLayout(tmp_path / "site")
    build(store, layout.dir)
    page = (layout.html / "runs" / "index.html").read_text()
    assert not [rid for rid in ids.values() if rid in page]  # no row in the page itself
    assert 'data-src="data/runs-list.json"' in page and "Loading 5 runs" in page
    doc = json.loads(layout.runs_list_json.read_text())
    assert doc["metrics"] == ["val/loss"]
    rows = {r[1]: r for r in doc["rows"]}
    assert set(rows) == set(ids.values())
    # [project, run_id, status, name, sweep, step, created, duration_s, tags, val/loss]
    solo = rows[ids["solo"]]
    assert solo[0] == PROJECT and solo[2] == "completed" and solo[3] == "solo"
    assert solo[4] == "" and solo[5] == 2 and solo[8] == ["keep"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", solo[6]), solo[6]
    assert solo[9] == pytest.approx(0.1)  # the key value: last of 0.3, 0.2, 0.1
    assert rows[ids["b1"]][4] == sweeps["b"].removeprefix("sweep-")


def _groups(page: str) -> list[str]:
    return re.findall(r'<details class="hl-graph-group"[^>]*>', page)


def test_graph_groups_runs_by_sweep_and_names_parents_in_other_groups(
    dag: tuple[Store, dict[str, str], dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, ids, sweeps = dag
    monkeypatch.setattr(graph, "OPEN_NODES", 4)  # 5 runs: past it, every group closed
    layout = SiteLayout(tmp_path / "site")
    build(store, layout.dir)
    page = (layout.html / "graph.html").read_text()
    groups = _groups(page)
    assert len(groups) == 3 and not [g for g in groups if " open" in g], groups
    assert "hl-node" not in page and "<circle cx" not in page.split("hl-legend-item hl-up")[1]
    # the newest sweep first, the runs outside any sweep last
    order = [re.search(r'data-group="([^"]*)"', g).group(1) for g in groups]  # type: ignore[union-attr]
    assert order == [sweeps["b"], sweeps["a"], graph.LOOSE]
    # a parent in another group: a link to its run page, named by its group
    b = page.split(f'data-group="{sweeps["b"]}"')[1].split("</details>")[0]
    assert f"id={ids['a0']}" in b and f"{sweeps['a']} / {ids['a0']}" in b
    assert "1 with a parent in another group" in b
    a = page.split(f'data-group="{sweeps["a"]}"')[1].split("</summary>")[0]
    assert "2 runs · 2 completed · best val/loss 0.3 (<a href=" in a and ids["a1"] in a
    loose = page.split(f'data-group="{graph.LOOSE}"')[1].split("</details>")[0]
    assert f"id={ids['b1']}" in loose
    # each group's drawing: its runs, once, and the edges inside it only
    docs = {g: json.loads(layout.graph_json(PROJECT, g).read_text()) for g in order}
    drawn = {g: sorted(n[0] for n in d["nodes"]) for g, d in docs.items()}
    assert drawn == {
        sweeps["a"]: sorted([ids["a0"], ids["a1"]]),
        sweeps["b"]: sorted([ids["b0"], ids["b1"]]),
        graph.LOOSE: [ids["solo"]],
    }
    assert len(docs[sweeps["a"]]["edges"]) == 1
    assert docs[sweeps["b"]]["edges"] == [] and docs[graph.LOOSE]["edges"] == []
    rings = {n[0]: n[4] for d in docs.values() for n in d["nodes"]}
    # a1 (0.3) improves on a0 (0.5); b0 (0.7) regresses on a0 and solo (0.1) improves on
    # b1 (0.2), across groups; b1 has no parent
    assert rings[ids["a1"]] == 1 and rings[ids["b0"]] == -1 and rings[ids["solo"]] == 1
    assert rings[ids["b1"]] == 0

    monkeypatch.setattr(graph, "OPEN_NODES", 200)
    build(store, layout.dir)
    groups = _groups((layout.html / "graph.html").read_text())
    assert len(groups) == 3 and all(" open" in g for g in groups)


# -- in Chromium ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium() as b:
        yield b


def _serve(html: Path) -> tuple[ThreadingHTTPServer, str]:
    server = make_server(html, port=0)
    serve_in_thread(server)
    return server, url_of(server)


def _open(browser: Chromium, url: str) -> Page:
    page = browser.new_page()
    page.goto(url)
    page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
    return page


@needs_chromium
def test_graph_draws_a_group_when_it_is_opened(
    dag: tuple[Store, dict[str, str], dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    browser: Chromium,
) -> None:
    store, ids, sweeps = dag
    monkeypatch.setattr(graph, "OPEN_NODES", 4)
    layout = SiteLayout(tmp_path / "site")
    build(store, layout.dir)
    server, base = _serve(layout.html)
    try:
        page = _open(browser, base + "graph.html")
        assert page.evaluate("document.querySelectorAll('svg.hl-graph').length") == 0
        sel = f'details[data-group="{sweeps["a"]}"]'
        page.evaluate(f"document.querySelector('{sel} > summary').click()")
        page.wait_for(f"document.querySelector('{sel}').dataset.drawn === '1'")
        nodes = page.evaluate(
            f"Array.from(document.querySelectorAll('{sel} svg.hl-graph g.hl-node'),"
            " g => [g.dataset.run, g.closest('a').getAttribute('href'), g.getAttribute('class')])"
        )
        assert sorted(n[0] for n in nodes) == sorted([ids["a0"], ids["a1"]])
        assert all(f"id={n[0]}" in n[1] for n in nodes)
        assert [n[2] for n in nodes if n[0] == ids["a1"]] == ["hl-node hl-node-up"]
        assert page.evaluate(f"document.querySelectorAll('{sel} path.hl-edge').length") == 1
        # the other groups are still not drawn
        assert page.evaluate("document.querySelectorAll('svg.hl-graph').length") == 1
        assert page.errors == [], page.errors
        page.close()
    finally:
        server.shutdown()
        server.server_close()


N_ROWS = 3000
ROWS_IN_DOM = "document.querySelectorAll('table.hl-runs tbody tr').length"
FIRST_RUNS = (
    "Array.from(document.querySelectorAll('table.hl-runs tbody tr'),"
    " r => r.querySelector('a.hl-run').textContent)"
)


def _type(page: Page, text: str) -> None:
    page.evaluate(
        "(() => { const i = document.querySelector('.hl-filter-input');"
        f" i.value = {json.dumps(text)}; i.dispatchEvent(new Event('input')); }})()"
    )


@needs_chromium
def test_runs_list_draws_the_rows_in_view_of_thousands(
    dag: tuple[Store, dict[str, str], dict[str, str]], tmp_path: Path, browser: Chromium
) -> None:
    """3,000 rows (the built list's, repeated under new ids): a screenful is in the DOM;
    scrolling draws the others, the filter and the sort cover them all, ticks stay."""
    store, _, _ = dag
    layout = SiteLayout(tmp_path / "site")
    build(store, layout.dir)
    doc = json.loads(layout.runs_list_json.read_text())
    template = doc["rows"][0]
    rows = []
    for i in range(N_ROWS):
        row = list(template)
        row[1] = f"run-{i:05d}"
        row[9] = round(((i * 7919) % N_ROWS) / N_ROWS, 6)  # a permutation of 0 .. 0.9997
        rows.append(row)
    doc["rows"] = rows
    layout.runs_list_json.write_text(json.dumps(doc))
    server, base = _serve(layout.html)
    try:
        page = _open(browser, base + "runs/index.html")
        assert page.evaluate("document.querySelector('.hl-filter-count').textContent") == (
            "3,000 of 3,000 runs"
        )
        assert page.evaluate("document.querySelector('.hl-runs-loading').hidden") is True
        drawn = page.evaluate(ROWS_IN_DOM)
        assert 0 < drawn < 200, drawn
        assert page.evaluate(FIRST_RUNS)[0] == "run-00000"
        # scrolled to the end: the last rows are drawn, still only a screenful
        page.evaluate(
            "(() => { const b = document.querySelector('.hl-runs-scroll');"
            " b.scrollTop = b.scrollHeight; })()"
        )
        page.wait_for(f"{FIRST_RUNS}.includes('run-02999')")
        assert page.evaluate(ROWS_IN_DOM) < 200
        # the filter runs over every row, drawn or not; a tick survives it
        _type(page, "run-01234")
        page.wait_for(f"{ROWS_IN_DOM} === 1")
        page.evaluate("document.querySelector('input.hl-pick').click()")
        page.wait_for("document.querySelector('a.hl-compare').textContent === 'Compare (1)'")
        _type(page, "run-00007")
        page.wait_for(f"{FIRST_RUNS}.join() === 'run-00007'")
        page.evaluate("document.querySelector('input.hl-pick').click()")
        hint = page.evaluate("document.querySelector('.hl-compare-hint').textContent")
        assert "1 ticked hidden by the filter" in hint
        _type(page, "")
        # sorted by val/loss over all 3,000: the smallest first (run-00000 is 0.0)
        page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-runs th'))"
            ".find(th => th.textContent.startsWith('val/loss')).click()"
        )
        page.wait_for(f"{FIRST_RUNS}[0] === 'run-00000'")
        values = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-runs tbody tr'),"
            " r => parseFloat(r.cells[6].textContent))"
        )
        assert values == sorted(values) and values[1] == pytest.approx(1 / N_ROWS, abs=1e-4)
        link = page.evaluate("document.querySelector('a.hl-compare').getAttribute('href')")
        assert link.endswith("r=lab/run-01234,lab/run-00007"), link  # in the order ticked
        # a focused tick box keeps the focus when scrolling redraws the rows around it
        focused = page.evaluate(
            "(() => { const b = document.querySelectorAll('input.hl-pick')[30];"
            " b.focus(); return b.value; })()"
        )
        page.evaluate(
            "(() => { const b = document.querySelector('.hl-runs-scroll');"
            " b.scrollTop = 25 * document.querySelector('table.hl-runs tbody tr')"
            ".getBoundingClientRect().height; })()"
        )
        page.wait_for("document.querySelector('.hl-runs-top').style.height !== '0px'")
        active = "document.activeElement"
        assert page.evaluate(f"{active}.classList.contains('hl-pick') && {active}.value") == focused
        assert page.errors == [], page.errors
        page.close()
    finally:
        server.shutdown()
        server.server_close()


def test_overview_and_board_cut_their_lists_and_link_to_the_runs_list(
    dag: tuple[Store, dict[str, str], dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, ids, _ = dag
    monkeypatch.setattr(pages, "OVERVIEW_ROWS", 2)
    monkeypatch.setattr(pages, "BOARD_CARDS", 3)
    layout = SiteLayout(tmp_path / "site")
    build(store, layout.dir)
    overview = (layout.html / "index.html").read_text()
    table = overview.split('class="hl-table hl-overview"')[1].split("</table>")[0]
    assert sum(rid in table for rid in ids.values()) == 2
    assert 'The 2 most recent of 5: all are in <a href="runs/index.html?q=lab">Runs</a>' in overview
    board = (layout.html / "board.html").read_text()
    done = board.split("hl-kcol-completed")[1].split("</section>")[0]
    assert sum(rid in done for rid in ids.values()) == 3
    assert 'and 2 more in <a href="runs/index.html?q=completed">Runs</a>' in done


@needs_chromium
def test_runs_list_is_filtered_by_its_link_and_used_from_the_keyboard(
    dag: tuple[Store, dict[str, str], dict[str, str]], tmp_path: Path, browser: Chromium
) -> None:
    store, ids, _ = dag
    layout = SiteLayout(tmp_path / "site")
    build(store, layout.dir)
    server, base = _serve(layout.html)
    try:
        page = _open(browser, base + "runs/index.html?q=solo")
        assert page.evaluate("document.querySelector('.hl-filter-input').value") == "solo"
        assert page.evaluate(FIRST_RUNS) == [ids["solo"]]
        assert page.evaluate("document.querySelector('.hl-filter-count').textContent") == (
            "1 of 5 runs"
        )
        page.close()
        page = _open(browser, base + "runs/index.html")

        def key(name: str, code: str, vk: int) -> None:
            for kind in ("keyDown", "keyUp"):
                page.send(
                    "Input.dispatchKeyEvent",
                    {"type": kind, "key": name, "code": code, "windowsVirtualKeyCode": vk},
                )

        # a sortable header takes the focus and sorts on Enter (the best val/loss first)
        page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-runs th'))"
            ".find(th => th.textContent.startsWith('val/loss')).focus()"
        )
        key("Enter", "Enter", 13)
        page.wait_for(f"{FIRST_RUNS}[0] === {json.dumps(ids['solo'])}")
        sort = page.evaluate("document.activeElement.getAttribute('aria-sort')")
        assert sort == "ascending"
        order = page.evaluate(FIRST_RUNS)
        assert order == [ids[n] for n in ("solo", "b1", "a1", "a0", "b0")]
        # Space ticks the focused box
        page.evaluate("document.querySelector('input.hl-pick').focus()")
        key(" ", "Space", 32)
        page.wait_for("document.querySelector('a.hl-compare').textContent === 'Compare (1)'")
        assert page.evaluate("document.querySelector('input.hl-pick').checked") is True
        assert page.errors == [], page.errors
        page.close()
    finally:
        server.shutdown()
        server.server_close()


@needs_chromium
def test_runs_list_opened_as_a_file_says_it_needs_a_server(
    dag: tuple[Store, dict[str, str], dict[str, str]], tmp_path: Path, browser: Chromium
) -> None:
    store, _, _ = dag
    layout = SiteLayout(tmp_path / "site")
    build(store, layout.dir)
    page = browser.new_page()
    page.goto((layout.html / "runs" / "index.html").as_uri())
    text = page.wait_for(
        "(document.querySelector('.hl-runs-loading') || {}).textContent"
        " .startsWith('Cannot load the runs') && document.querySelector('.hl-runs-loading')"
        ".textContent"
    )
    assert "hpclab site serve" in text
    assert page.evaluate(ROWS_IN_DOM) == 0
    page.close()
