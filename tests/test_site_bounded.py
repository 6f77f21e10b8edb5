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


def test_a_big_seed_groups_members_are_listed_up_to_a_bound_in_each_details_file(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each run's details name the first MAX_MEMBERS of its seed group and how many there
    are: a group gathers every run of its config (here 5 seeds of one config), and each
    member listing them all made the site's data grow with runs x group size."""
    import json

    import hpclab.site.details as details

    monkeypatch.setattr(details, "MAX_MEMBERS", 2)
    store = Store(store_root)
    ids = []
    for seed in range(5):
        run = hpclab.init(PROJECT, {"optim": {"lr": 0.1}, "seed": seed}, store=store.root)
        run.log({"val/loss": 0.5 + seed / 100}, step=0)
        run.finish()
        ids.append(run.id)
    index_store(store)
    build(store)
    layout = SiteLayout(store.site_dir)
    for rid in ids:
        group = json.loads(layout.details_json(PROJECT, rid).read_text())["seed_group"]
        assert group["n_members"] == 5 and group["size"] == 5
        assert [m["run_id"] for m in group["members"]] == ids[:2], "the first, by creation"
