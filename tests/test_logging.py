"""Warnings go through ``logging`` (the ``hpclab`` logger hierarchy): a library user sees
standard log records; the CLI prints them as ``hpclab: warning: <message>`` on stderr."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers import hpclab_cli, hpclab_subprocess

import hpclab
from hpclab.catalog.indexer import Indexer
from hpclab.store import Store
from hpclab.store.atomic import write_yaml_atomic

NO_SNAP = {"snapshot_code": False, "snapshot_env": False}


def _corrupt_run(store_root: Path) -> Path:
    run = hpclab.Run(project="p", store=store_root, run_id="bad", settings=NO_SNAP)
    run.finish()
    text = run.paths.run_json.read_text()
    run.paths.run_json.write_text(text[: len(text) // 2])
    return run.paths.run_json


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("hpclab.")]


def test_the_library_logs_warnings_to_the_hpclab_logger(
    store_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_json = _corrupt_run(store_root)
    with Indexer(Store(store_root)) as ix:
        ix.index()
        ix.index()
    (record,) = _records(caplog)  # reported once, not once per pass
    assert record.name == "hpclab.catalog.indexer" and record.levelno == logging.WARNING
    assert str(run_json) in record.getMessage()


def test_a_dag_cycle_is_logged_once_by_the_indexer(
    store_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for run_id, name, parent in (("a", "1_from_2", None), ("b", "2", "a")):
        hpclab.Run(
            project="p", store=store_root, run_id=run_id, name=name, parent=parent,
            settings=NO_SNAP,
        ).finish()  # fmt: skip
    write_yaml_atomic(
        Store(store_root).project_yaml("p"),
        {"naming": {"regex": r"^(?P<id>\d+)(_from_(?P<parent>\d+))?"}},
    )
    with Indexer(Store(store_root)) as ix:
        ix.index()
        hpclab.Run(project="p", store=store_root, run_id="c", settings=NO_SNAP).finish()
        ix.index()  # the knowledge is computed again: the same cycle, not a second warning
    messages = [r.getMessage() for r in _records(caplog)]
    assert len(messages) == 1 and "cycle" in messages[0] and "naming edge b -> a" in messages[0]


def test_the_cli_prints_warnings_as_one_hpclab_line(store_root: Path) -> None:
    run_json = _corrupt_run(store_root)
    handlers = list(logging.getLogger("hpclab").handlers)

    out = hpclab_cli(store_root, "index")

    assert out.returncode == 0
    warnings = [line for line in out.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("hpclab: warning: ")
    assert str(run_json) in warnings[0]
    assert logging.getLogger("hpclab").handlers == handlers, "the handler lives for a command"


def test_the_console_script_prints_each_warning_once(store_root: Path) -> None:
    run_json = _corrupt_run(store_root)

    out = hpclab_subprocess(store_root, "index", timeout=120)

    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpclab: warning: "), out.stderr
    assert str(run_json) in lines[0]


def test_site_data_problems_are_logged(store_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    from hpclab.catalog.indexer import index_store
    from hpclab.site.build import write_series
    from hpclab.site.data import load
    from hpclab.site.layout import SiteLayout

    run = hpclab.Run(project="p", store=store_root, run_id="r", settings=NO_SNAP)
    run.log({"loss": 1.0}, step=0)
    run.finish()
    store = Store(store_root)
    index_store(store)
    (run.paths.metrics_zarr / "zarr.json").write_text("{ broken")

    infos = write_series(load(store), SiteLayout(store_root / "site"), [("p", "r")])

    assert infos == {}
    (record,) = _records(caplog)
    assert record.name == "hpclab.site.build" and record.levelno == logging.WARNING
    assert record.getMessage().startswith("p/r: no chart data (")
