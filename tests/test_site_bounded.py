"""A sweep report stays light however many runs the sweep has (issue 16): its loss
charts overlay the best runs only, its tables are cut at a bound and say how many rows
there are; the cut keeps the best, not the first."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import yaml

import hpclab
import hpclab.site.research as research
from hpclab.catalog.indexer import index_store
from hpclab.launch.sweep import PlannedPoint, plan_sweep
from hpclab.site.build import build
from hpclab.site.layout import SiteLayout
from hpclab.store import Store

PROJECT = "lab"
FINALS = [0.9, 0.2, 0.7, 0.1, 0.5, 0.3]  # val/loss per point: best are points 3, 1, 5


def _sweep(store: Store) -> tuple[str, list[str]]:
    configs = [{"optim": {"lr": 10.0**-i}, "seed": 0} for i in range(len(FINALS))]
    plan = plan_sweep(
        store,
        PROJECT,
        [PlannedPoint(i, [f"optim.lr={c['optim']['lr']}"], c) for i, c in enumerate(configs)],
        launcher="local",
        meta={"argv": ["hpclab.launch", "-m"]},
    )
    ids = []
    for point, config, final in zip(plan.points, configs, FINALS, strict=True):
        run = hpclab.init(PROJECT, config, store=store.root, run_id=point.run_id, sweep_id=plan.id)
        for step in range(5):
            run.log({"val/loss": final + 0.1 * (4 - step)}, step=step)
        run.finish()
        ids.append(run.id)
    return plan.id, ids


def test_a_big_sweeps_report_charts_and_lists_its_best_runs_and_says_how_many(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(research, "MAX_CURVE_RUNS", 2)
    monkeypatch.setattr(research, "MAX_ROWS", 3)
    store = Store(store_root)
    store.project_yaml(PROJECT).parent.mkdir(parents=True)
    store.project_yaml(PROJECT).write_text(
        yaml.safe_dump({"key_metrics": [{"name": "val/loss", "direction": "minimize"}]})
    )
    sweep_id, ids = _sweep(store)
    index_store(store)
    build(store)
    page = (SiteLayout(store.site_dir).html / f"reports/{PROJECT}/{sweep_id}.html").read_text()

    charted = re.findall(r'data-runs="([^"]*)"', page)
    assert charted, "the report has loss charts"
    best_two = [f"{PROJECT}/{ids[3]}", f"{PROJECT}/{ids[1]}"]
    assert all(html.unescape(c).split(",") == best_two for c in charted)
    assert "The 2 best of 6 runs by val/loss" in page

    board = page.split('id="leaderboard"', 1)[1].split("<h2", 1)[0]
    ranked = [i for i in ids if i in board]
    assert sorted(ranked, key=board.index) == [ids[3], ids[1], ids[5]]  # best 3, in order
    assert "The first 3 of 6 runs" in board

    points = page.split("<table", 2)[1]  # the points table, first of the page
    assert sum(i in points for i in ids) == 3 and "The first 3 of 6 points" in page
