"""The Graph page names and colours its runs (issue 17): each node is labelled by the
config values that set it apart in its group (``lr=0.01 seed=1``, not a bare dot), the
runs with neither parent nor child are laid out in labelled columns in the order of
those values, and "colour by" paints nodes by a key metric (best dark, worst light),
kept in the URL. Real builds, a real server and real headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from helpers import screenshot

import hpclab
from hpclab.catalog.indexer import index_store
from hpclab.launch.sweep import PlannedPoint, plan_sweep
from hpclab.site.build import build
from hpclab.site.chromium import Chromium, find_chromium
from hpclab.site.graph import distinguishing_labels
from hpclab.site.layout import SiteLayout
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

PROJECT = "lab"
HOSTILE = '<img src=x onerror="window.pwned=1">'
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")


def test_labels_name_what_differs_and_nothing_else() -> None:
    configs = {
        "r1": {"optim.lr": "0.01", "seed": "0", "model.name": '"mlp"', "hpclab.name": '"a"'},
        "r2": {"optim.lr": "0.001", "seed": "1", "model.name": '"mlp"', "hpclab.name": '"b"'},
        "r3": {"optim.lr": "0.01", "seed": "1", "model.name": '"mlp"'},
    }
    # hpclab.* is ignored; model.name is the same everywhere; paths by their last part
    assert distinguishing_labels(configs) == {
        "r1": "lr=0.01 seed=0",
        "r2": "lr=0.001 seed=1",
        "r3": "lr=0.01 seed=1",
    }
    # two varying paths with one last part keep their full paths; a missing value is -
    clash = {
        "a": {"enc.dropout": "0.1", "dec.dropout": "0.2"},
        "b": {"enc.dropout": "0.3", "dec.dropout": "0.5", "extra": "true"},
    }
    assert distinguishing_labels(clash) == {  # cut at 26 characters
        "a": "dec.dropout=0.2 enc.dropo…",
        "b": "dec.dropout=0.5 enc.dropo…",
    }
    assert distinguishing_labels(
        {"a": {"enc.p": "0.1", "dec.p": "0.2"}, "b": {"enc.p": "0.3", "dec.p": "0.5", "x": "1"}}
    ) == {"a": "dec.p=0.2 enc.p=0.1 x=-", "b": "dec.p=0.5 enc.p=0.3 x=1"}
    # nothing varies: no labels (the page falls back to the run's name)
    assert distinguishing_labels({"a": {"x": "1"}, "b": {"x": "1"}}) == {}
    # long values are cut, strings lose their quotes, floats go to 4 digits
    long = distinguishing_labels(
        {"a": {"name": json.dumps("x" * 60), "lr": "0.000123456"}, "b": {"name": '"y"', "lr": "1"}}
    )
    assert long["a"] == "lr=0.0001235 name=" + "x" * 7 + "…" and len(long["a"]) == 26
    assert long["b"] == "lr=1 name=y"


def _run(store: Store, sweep: str, point: PlannedPoint, loss: float) -> str:
    run = hpclab.init(PROJECT, point.config, store=store.root, run_id=point.run_id, sweep_id=sweep)
    run.log({"val/loss": loss}, step=0)
    run.finish()
    return run.id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[SiteLayout, str, dict[float, str]]:
    """One sweep of four lr values (a hostile model name, the same in every run), its
    val/loss lowest at lr=0.01. Returns the built site, the sweep id and run id by lr."""
    store = Store(tmp_path_factory.mktemp("graph") / "store")
    store.project_yaml(PROJECT).parent.mkdir(parents=True)
    store.project_yaml(PROJECT).write_text(
        yaml.safe_dump({"key_metrics": [{"name": "val/loss", "direction": "minimize"}]})
    )
    lrs = [0.1, 0.001, 0.01, 0.03]
    losses = {0.1: 0.9, 0.001: 0.5, 0.01: 0.2, 0.03: 0.4}
    points = [
        PlannedPoint(i, [f"optim.lr={lr}"], {"optim": {"lr": lr}, "model": {"name": HOSTILE}})
        for i, lr in enumerate(lrs)
    ]
    plan = plan_sweep(store, PROJECT, points, launcher="local", meta={"argv": ["x"]})
    ids = {lr: _run(store, plan.id, p, losses[lr]) for lr, p in zip(lrs, plan.points, strict=True)}
    index_store(store)
    layout = SiteLayout(tmp_path_factory.mktemp("graph-site") / "site")
    build(store, layout.dir)
    return layout, plan.id, ids


def test_a_sweeps_nodes_are_labelled_by_their_lr_in_its_order(
    site: tuple[SiteLayout, str, dict[float, str]],
) -> None:
    layout, sweep, ids = site
    doc = json.loads(layout.graph_json(PROJECT, sweep).read_text())
    nodes = sorted(doc["nodes"], key=lambda n: (n[2], n[1]))  # by row, then column
    assert [n[5] for n in nodes] == ["lr=0.001", "lr=0.01", "lr=0.03", "lr=0.1"]
    assert [n[0] for n in nodes] == [ids[0.001], ids[0.01], ids[0.03], ids[0.1]]
    assert doc["metrics"] == [{"name": "val/loss", "direction": "minimize"}]
    assert {n[0]: n[7] for n in nodes} == {
        ids[0.001]: [pytest.approx(0.5)],
        ids[0.01]: [pytest.approx(0.2)],
        ids[0.03]: [pytest.approx(0.4)],
        ids[0.1]: [pytest.approx(0.9)],
    }
    page = (layout.html / "graph.html").read_text()
    assert '<option value="val/loss">val/loss</option>' in page


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium() as b:
        yield b


def _colours(page: Any, sel: str) -> dict[str, str]:
    return page.evaluate(
        f"Object.fromEntries(Array.from(document.querySelectorAll('{sel} g.hl-node'),"
        " g => [g.dataset.run, getComputedStyle(g.querySelector('circle')).fill]))"
    )


@needs_chromium
def test_colour_by_a_metric_paints_the_best_run_darkest_and_the_url_keeps_it(
    site: tuple[SiteLayout, str, dict[float, str]], browser: Chromium
) -> None:
    layout, sweep, ids = site
    server = make_server(layout.html, port=0)
    serve_in_thread(server)
    base = url_of(server)
    sel = f'details[data-group="{sweep}"]'
    try:
        page = browser.new_page()
        page.goto(base + "graph.html")
        page.wait_for(f"document.querySelector('{sel}').dataset.drawn === '1'", timeout=20)
        labels = page.evaluate(
            f"Array.from(document.querySelectorAll('{sel} g.hl-node text'), t => t.textContent)"
        )
        assert sorted(labels) == ["lr=0.001", "lr=0.01", "lr=0.03", "lr=0.1"]
        by_status = _colours(page, sel)
        assert len(set(by_status.values())) == 1  # all completed: one status colour
        page.evaluate(
            "(() => { const s = document.querySelector('select.hl-graph-colour');"
            " s.value = 'val/loss'; s.dispatchEvent(new Event('change')); })()"
        )
        page.wait_for(f"document.querySelector('{sel} .hl-graph-scale').textContent !== ''")
        painted = _colours(page, sel)
        assert painted[ids[0.01]] == "rgb(68, 1, 84)"  # the best val/loss: the dark end
        assert painted[ids[0.1]] == "rgb(253, 231, 37)"  # the worst: the light end
        assert len(set(painted.values())) == 4
        scale = page.evaluate(f"document.querySelector('{sel} .hl-graph-scale').textContent")
        assert "val/loss: 0.2 (dark, best) to 0.9 (light)" in scale
        assert page.evaluate("location.search") == "?colour=val%2Floss"
        screenshot(page, "site/graph.png")
        assert page.errors == [], page.errors
        page.close()
        # the URL restores the choice on load
        again = browser.new_page()
        again.goto(base + "graph.html?colour=val%2Floss")
        again.wait_for(f"document.querySelector('{sel}').dataset.drawn === '1'", timeout=20)
        assert again.evaluate("document.querySelector('select.hl-graph-colour').value") == (
            "val/loss"
        )
        assert _colours(again, sel) == painted
        assert again.evaluate("window.pwned === undefined && !document.querySelector('img')")
        assert again.errors == [], again.errors
        again.close()
    finally:
        server.shutdown()
