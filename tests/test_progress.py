"""One progress model: ``run.total_steps``, else the config's ``hpclab.total_steps``, else
a known config key; the same numbers in ``hpclab status``, the catalog and the site; and
the step rule's dropped points shown in ``runs show`` and on the run page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import hpclab_cli, poll
from site_fixtures import run_page_text

import hpclab
from hpclab.catalog.connect import connect
from hpclab.cli.jobs import progress
from hpclab.errors import ConfigError
from hpclab.site.chromium import find_chromium
from hpclab.site.data import load
from hpclab.site.details import run_details
from hpclab.site.livedoc import run_info, total_steps_from_config
from hpclab.site.series import run_series
from hpclab.store import RunRecord, Store
from hpclab.store.views import dropped_warnings, planned_steps, total_steps

QUIET = {"snapshot_env": False}


def test_the_config_declares_its_total_or_names_the_key_that_holds_it() -> None:
    known = {"train": {"steps": 30}}
    assert total_steps(known) == 30
    assert total_steps({**known, "hpclab": {"total_steps": 500}}) == 500
    named = {"trainer": {"max_steps": 40, "epochs": 3}, "train": {"steps": 30}}
    assert total_steps({**named, "hpclab": {"total_steps": "trainer.epochs"}}) == 3
    assert total_steps({"hpclab.total_steps": 12.0, "train.steps": 30}) == 12  # features
    # declared but unusable: no guess from other keys
    assert total_steps({**known, "hpclab": {"total_steps": "no.such.key"}}) is None
    assert total_steps({**known, "hpclab": {"total_steps": float("inf")}}) is None
    record = RunRecord(id="r", project="p", total_steps=1000)
    assert planned_steps(record, 30) == 1000
    assert planned_steps(RunRecord(id="r", project="p"), 30) == 30


def test_run_total_steps_is_recorded_with_the_next_write_and_cleared_by_none(
    store_root: Path,
) -> None:
    run = hpclab.Run(project="p", store=store_root, heartbeat_interval=0.05, settings=QUIET)
    try:

        def on_disk() -> object:
            return json.loads(run.paths.run_json.read_text()).get("total_steps", "absent")

        assert on_disk() is None and run.total_steps is None
        run.total_steps = 10_000
        assert run.total_steps == 10_000
        poll(lambda: on_disk() == 10_000, message="total_steps in run.json")
        run.total_steps = -1  # Lightning's max_steps when unlimited
        assert run.total_steps is None
        poll(lambda: on_disk() is None, message="total_steps cleared")
        run.total_steps = 20.0
        assert run.total_steps == 20
        with pytest.raises(ConfigError, match="run.total_steps"):
            run.total_steps = "many"  # type: ignore[assignment]
        with pytest.raises(ConfigError, match="run.total_steps"):
            run.total_steps = 2.5  # type: ignore[assignment]
        assert run.total_steps == 20
    finally:
        run.finish()
    assert Store(store_root).read_record(run.paths).total_steps == 20


def test_status_catalog_and_site_read_total_steps_from_the_run(store_root: Path) -> None:
    # the config's known key says 1000; the run knows better
    run = hpclab.Run(project="p", store=store_root, settings=QUIET, config={"steps": 1000})
    run.total_steps = 10
    for s in range(5):
        run.log({"train/loss": 1.0 / (s + 1)}, step=s)
    run.finish()
    store = Store(store_root)
    key = ("p", run.id)
    cli = progress(run.paths, store.read_record(run.paths))
    live = run_info(store, key, run_series(store, *key), total_steps_from_config(store, key))
    assert (cli["step"], cli["total"], cli["progress"]) == (4, 10, 50.0)
    assert (live["step"], live["total"], live["percent"]) == (4, 10, 50.0)
    shown = hpclab_cli(store_root, "status", run.id, "--json")
    assert shown.returncode == 0, shown.output
    row = json.loads(shown.stdout.strip().splitlines()[-1])
    assert (row["step"], row["total"], row["progress"]) == (4, 10, "50%")
    assert "steps     4 of 10 (50%)" in hpclab_cli(store_root, "runs", "show", run.id).stdout
    assert hpclab_cli(store_root, "index").returncode == 0
    got = connect(store_root).execute("SELECT total_steps FROM runs WHERE run_id = ?", [run.id])
    assert got.fetchall() == [(10,)]
    assert load(store).total_steps(key) == 10


def test_dropped_points_are_shown_in_runs_show_and_on_the_run_page(store_root: Path) -> None:
    with hpclab.Run(project="p", store=store_root, settings=QUIET) as run:
        run.log({"loss": 1.0, "acc": 0.1}, step=5)
        run.log({"loss": 0.5}, step=3)  # not increasing: dropped
        run.log({"loss": 0.4}, step=5)  # equal: dropped
        run.log({"loss": 0.3, "acc": 0.2}, step=6)
    record = Store(store_root).read_record(run.paths)
    assert record.metrics_dropped == {"loss": 2}
    line = "2 points dropped (step not increasing) for metric loss"
    assert dropped_warnings(record) == [line]
    shown = hpclab_cli(store_root, "runs", "show", run.id)
    assert shown.returncode == 0, shown.output
    assert f"warning   {line}" in shown.stdout and "metric acc" not in shown.stdout
    assert hpclab_cli(store_root, "index").returncode == 0
    details = run_details(load(Store(store_root)), ("p", run.id))
    assert details["dropped"] == [line]


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_run_page_shows_dropped_points_returned_metrics_and_total_steps(
    store_root: Path,
) -> None:
    with hpclab.Run(project="p", store=store_root, settings=QUIET) as run:
        run.total_steps = 10
        for s in range(6):
            run.log({"train/loss": 1.0 / (s + 1)}, step=s)
        run.log({"train/loss": 9.0}, step=2)  # dropped
        run.returned.update({"test/acc": 0.75})
    text, _ = run_page_text(Store(store_root), "p", run.id)
    assert "1 point dropped (step not increasing) for metric train/loss" in text
    assert "step 5 of 10" in text
    rows = {line.split("\t")[0]: line for line in text.splitlines() if "\t" in line}
    assert rows["test/acc"].split("\t")[-1].strip() == "return"
    assert rows["train/loss"].split("\t")[-1].strip() == "logged"
