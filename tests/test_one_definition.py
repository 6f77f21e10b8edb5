"""One definition per concept: every reader of a run's status (``hpclab runs show``, the
catalog's ``runs.status``, the Training page's live data) gives the same answer for the same
record, and the status vocabulary has one source."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import Indexer
from hpclab.cli import cli
from hpclab.site.livedoc import run_info
from hpclab.store import RunRecord, RunStatus, Store
from hpclab.store.record import utcnow_iso

STALE = 3600.0  # seconds: far past 3 heartbeat intervals + grace

# (name, stored status, heartbeat age or None (never beat), scheduler state recorded by
# ``hpclab status`` or None, the status every reader shows)
CASES = [
    ("completed", RunStatus.COMPLETED, STALE, None, "completed"),
    ("fresh", RunStatus.RUNNING, 0.0, None, "running"),
    ("fresh-timeout", RunStatus.RUNNING, 0.0, "TIMEOUT", "running"),
    ("stale", RunStatus.RUNNING, STALE, None, "lost"),
    ("never-beat", RunStatus.RUNNING, None, None, "lost"),
    ("stale-was-running", RunStatus.RUNNING, STALE, "RUNNING", "lost"),
    ("stale-timeout", RunStatus.RUNNING, STALE, "TIMEOUT", "timeout"),
    ("stale-cancelled", RunStatus.RUNNING, STALE, "CANCELLED by 0", "cancelled"),
    ("stale-oom", RunStatus.RUNNING, STALE, "OUT_OF_MEMORY", "failed"),
    ("stale-completed", RunStatus.RUNNING, STALE, "COMPLETED", "failed"),
    ("queued", RunStatus.QUEUED, None, "PENDING", "queued"),
    ("planned", RunStatus.PLANNED, None, None, "planned"),
    ("preempted", RunStatus.PREEMPTED, STALE, "REQUEUED", "preempted"),
    ("failed", RunStatus.FAILED, STALE, "COMPLETED", "failed"),
    ("timeout", RunStatus.TIMEOUT, STALE, "TIMEOUT", "timeout"),
]


def _write_cases(store: Store) -> dict[str, str]:
    """name -> run id, one run per case in project ``p``."""
    now = time.time()
    ids = {}
    for name, status, beat_age, state, _ in CASES:
        paths = store.create_run_dir("p")
        record = RunRecord(id=paths.id, project="p", status=status, name=name)
        record.started_at = utcnow_iso(now - 2 * STALE)
        if beat_age is not None:
            record.heartbeat_at = utcnow_iso(now - beat_age)
        if state is not None:
            record.scheduler_state = {"state": state, "checked_at": utcnow_iso(now)}
        store.write_record(paths, record)
        ids[name] = paths.id
    return ids


def _cli_status(store: Store, run_id: str) -> str:
    out = CliRunner().invoke(cli, ["--store", str(store.root), "runs", "show", run_id])
    assert out.exit_code == 0, out.output
    line = next(ln for ln in out.output.splitlines() if ln.startswith("status "))
    return line.split()[1]


def test_every_reader_shows_the_same_status(store_root: Path) -> None:
    store = Store(store_root)
    ids = _write_cases(store)
    with Indexer(store) as ix:
        ix.index()
    catalog = dict(connect(store_root).execute("SELECT name, status FROM runs").fetchall())
    want = {name: expected for name, *_, expected in CASES}
    cli_says = {name: _cli_status(store, run_id) for name, run_id in ids.items()}
    live_says = {
        name: run_info(store, ("p", run_id), {}, None)["status"] for name, run_id in ids.items()
    }
    assert cli_says == want
    assert catalog == want
    assert live_says == want


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_effective_status_cases(name: str) -> None:
    from hpclab.catalog.indexer import row_status
    from hpclab.store.views import status_view

    _, status, beat_age, state, expected = next(c for c in CASES if c[0] == name)
    now = time.time()
    record = RunRecord(id="r", project="p", status=status)
    record.heartbeat_at = None if beat_age is None else utcnow_iso(now - beat_age)
    record.scheduler_state = None if state is None else {"state": state}
    row = {
        "stored_status": status.value,
        "heartbeat_at": record.heartbeat_at,
        "heartbeat_interval": record.heartbeat_interval,
        "scheduler_state": state,
    }
    stale = status is RunStatus.RUNNING and (beat_age is None or beat_age > 100)
    assert status_view(record, now) == (expected, stale)
    assert row_status(row, now) == (expected, stale)


# -- progress and ETA: hpclab status and the Training page ------------------------------------
def _training_run(store_root: Path, steps: int, total: int) -> hpclab.Run:
    run = hpclab.Run(
        project="p",
        store=store_root,
        settings={"snapshot_env": False},
        config={"train": {"steps": total}},
    )
    for s in range(steps):
        run.log({"train/loss": 1.0 / (s + 1)}, step=s)
        if s % 10 == 0:
            run.log({"val/loss": 1.0 / (s + 1)}, step=s)  # a shorter series, same last step
        time.sleep(0.001)
    run.flush()
    return run


@pytest.mark.parametrize("case", ["running", "lost", "completed"])
def test_status_and_training_page_agree_on_progress(store_root: Path, case: str) -> None:
    from hpclab.cli.jobs import progress
    from hpclab.site.livedoc import total_steps_from_config
    from hpclab.site.series import run_series

    run = _training_run(store_root, 60, 100)
    store = Store(store_root)
    if case == "completed":
        run.finish()
    else:
        run._worker.stop()
        run.finished = True  # the process is gone (lost) or still beating (running)
    record = store.read_record(run.paths)
    if case == "lost":
        record.heartbeat_at = utcnow_iso(time.time() - STALE)
        store.write_record(run.paths, record)
    key = ("p", run.id)
    cli = progress(run.paths, record)
    live = run_info(store, key, run_series(store, *key), total_steps_from_config(store, key))
    assert live["status"] == {"running": "running", "lost": "lost", "completed": "completed"}[case]
    assert (cli["step"], cli["total"]) == (live["step"], live["total"]) == (59, 100)
    assert cli["progress"] == live["percent"] == 60.0
    if case == "running":
        assert live["rate"] and live["rate"] > 0
        assert cli["eta_s"] == pytest.approx(live["eta_s"]) and cli["eta_s"] == pytest.approx(
            40 / live["rate"]
        )
    else:  # an ETA only while the run runs: not for a lost run, nor a finished one
        assert cli["eta_s"] is None and live["eta_s"] is None


def test_progress_rules() -> None:
    from hpclab.store.views import progress, step_rate, total_steps

    assert progress("running", 9, 10, 2.0).eta_s == 0.0  # last step reached: nothing left
    assert progress("running", 4, 10, 2.0).eta_s == pytest.approx(2.5)
    assert progress("queued", 4, 10, 2.0).eta_s is None
    assert progress("lost", 4, 10, 2.0).percent == 50.0
    assert progress("running", 40, 10, 2.0).percent == 100.0
    assert progress("running", None, 10, 2.0) == progress("running", None, 10, 2.0)
    assert progress("running", None, 10, 2.0).percent is None
    assert step_rate([0, 10, 20], [0.0, 1.0, 2.0]) == 10.0
    assert step_rate([5], [1.0]) is None and step_rate([1, 1], [0.0, 1.0]) is None
    assert step_rate(list(range(1000)), [s / 4 for s in range(1000)]) == pytest.approx(4.0)
    assert total_steps({"train": {"steps": 30}}) == 30
    assert total_steps({"trainer": {"max_steps": 7}, "steps": 3}) == 7  # first match wins
    assert total_steps({"train.max_steps": 12.0}) == 12  # the catalog's dotted features
    assert total_steps({"train": {"steps": 0}}) is None and total_steps(None) is None


# -- the CLI's tables and numbers ---------------------------------------------------------------
def test_one_table_printer_and_formatters() -> None:
    import click

    from hpclab.cli import output

    @click.command()
    def show() -> None:
        output.table([], ["run", "status"])
        output.table(
            [{"run": "a", "status": None}, {"run": "bbb", "status": "ok"}],
            ["run", "status"],
            indent="  ",
        )

    out = CliRunner().invoke(show)
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["RUN  STATUS", "  RUN  STATUS", "  a", "  bbb  ok"]
    assert [output.fmt_number(v) for v in (0.000123456789, 1.5e7, 3, None, float("nan"))] == [
        "0.000123457",
        "1.5e+07",
        "3",
        "",
        "nan",
    ]
    assert output.fmt_number(float("-inf")) == "-inf" and output.fmt_number(2 / 3, 3) == "0.667"
    assert [output.fmt_duration(s) for s in (None, float("inf"), 4.4, 62, 3723, 93784)] == [
        "",
        "",
        "00:04",
        "01:02",
        "01:02:03",
        "1d 02:03:04",
    ]


def test_cli_modules_print_through_output() -> None:
    """No command module defines its own table printer or number/duration format."""
    import re

    cli_dir = Path(__file__).resolve().parents[1] / "hpclab" / "cli"
    own = re.compile(r"^def (_?table|_fmt\w*|fmt_\w+|_?duration\w*)\(", re.M)
    found = {
        p.name: own.findall(p.read_text())
        for p in cli_dir.glob("*.py")
        if p.name != "output.py" and own.search(p.read_text())
    }
    assert found == {}


# -- the status vocabulary --------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
JS = REPO / "site" / "assets" / "hpclab" / "hpclab.js"
CSS = REPO / "site" / "assets" / "hpclab" / "hpclab.css"


def test_status_groups() -> None:
    from hpclab.store.record import (
        ACTIVE_STATUSES,
        ENDED_STATUSES,
        FAILED_STATUSES,
        FINAL_STATUSES,
        STATUSES,
        WAITING_STATUSES,
    )

    assert STATUSES == (
        "planned",
        "queued",
        "running",
        "completed",
        "failed",
        "cancelled",
        "timeout",
        "preempted",
        "lost",
    )
    assert ACTIVE_STATUSES == {"planned", "queued", "running", "preempted"}
    assert WAITING_STATUSES == {"planned", "queued", "preempted"}
    assert FAILED_STATUSES == {"failed", "cancelled", "timeout", "lost"}
    assert ACTIVE_STATUSES | ENDED_STATUSES == set(STATUSES)
    assert not ACTIVE_STATUSES & ENDED_STATUSES
    assert ENDED_STATUSES == {s.value for s in FINAL_STATUSES} | {"lost"}


def test_status_vocabulary_has_one_python_definition() -> None:
    """No module but store/record.py lists statuses in a set, list or tuple: they import
    the groups from there (dicts keyed by status, policies per status, are fine)."""
    import ast

    from hpclab.store.record import STATUSES

    found = []
    for path in sorted((REPO / "hpclab").rglob("*.py")):
        if path.relative_to(REPO).as_posix() == "hpclab/store/record.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Set, ast.List, ast.Tuple)):
                words = [
                    n.value
                    for n in node.elts
                    if isinstance(n, ast.Constant) and n.value in STATUSES
                ]
                if len(words) >= 2 and len(words) == len(node.elts):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {words}")
    assert found == []


def test_status_policies_cover_every_status() -> None:
    from hpclab.site.pages import BOARD_COLUMNS
    from hpclab.store.record import STATUSES

    columns = [s for _, group in BOARD_COLUMNS for s in group]
    assert sorted(columns) == sorted(STATUSES), "each status in exactly one board column"


def test_pages_carry_the_vocabulary_and_hpclab_js_reads_it() -> None:
    import json
    import re

    from hpclab.site.page import Page
    from hpclab.store.record import ACTIVE_STATUSES, FAILED_STATUSES, STATUSES, WAITING_STATUSES

    source = Page("T").heading(1, "T").source()
    found = re.findall(
        r'<script type="application/json" class="hl-statuses">(.*?)</script>', source
    )
    assert len(found) == 1, "every page carries the vocabulary once"
    doc = json.loads(found[0])
    assert doc["all"] == list(STATUSES)
    assert set(doc["active"]) == ACTIVE_STATUSES and set(doc["waiting"]) == WAITING_STATUSES
    assert set(doc["failed"]) == FAILED_STATUSES
    js = JS.read_text()
    named = [s for s in STATUSES if re.search(rf"""["']{s}["']""", js)]
    assert named == [], "hpclab.js names no status: it reads script.hl-statuses"
    assert "script.hl-statuses" in js


def test_status_colours_are_defined_once_in_css() -> None:
    from hpclab.store.record import STATUSES

    css = CSS.read_text()
    for s in STATUSES:
        assert f"--hl-{s}:" in css, s
        if s != "planned":  # planned is the default colour of badges and nodes
            assert f".hl-s-{s}" in css and f"circle.hl-fill-{s}" in css, s
    import ast

    for path in sorted((REPO / "hpclab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Dict):
                pairs = [
                    (k.value, v.value)
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
                ]
                coloured = [k for k, v in pairs if k in STATUSES and str(v).startswith("#")]
                assert len(coloured) < 2, f"{path.name}:{node.lineno}: colours live in hpclab.css"
