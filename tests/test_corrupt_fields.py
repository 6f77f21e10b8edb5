"""One malformed field never stops the store's readers (issue 20).

Each case corrupts one field of one store file of run ``bad`` (or of a sweep) in a copy
of a three-run store; ``hpclab index``, ``runs list``, ``status`` and ``runs show`` must
exit cleanly, report the bad run once in one line naming the file and the field (or
index it with the bad field null), and index every other run. Hostile inputs that used
to hang (YAML alias bombs, FIFOs, /dev/zero, a backtracking ``naming.regex``) return an
error quickly: each is run in a subprocess with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import CliResult, hpclab_cli, hpclab_subprocess, poll, write

import hpclab
from hpclab.catalog.connect import connect
from hpclab.launch.sweep import PlannedPoint, plan_sweep
from hpclab.store import Store

RUNS = ("good1", "good2", "bad")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three finished runs with a code and a datasets record, and a sweep (built once;
    every test corrupts its own copy)."""
    root = tmp_path_factory.mktemp("corrupt") / "st ore 'q'"
    for run_id in RUNS:
        run = hpclab.Run(
            project="p",
            store=root,
            run_id=run_id,
            settings={"snapshot_env": False},
            config={"optim": {"lr": 0.1}, "seed": 0},
        )
        for s in range(3):
            run.log({"train/loss": 1.0 / (s + 1)}, step=s)
        run.finish()
        write(run.paths.code_json, json.dumps({"git": {"commit": "abc", "is_dirty": True}}))
        datasets = [{"name": "d", "path": "/d", "size": 10, "n_files": 1, "sha256": "0" * 64}]
        write(run.paths.datasets_json, json.dumps(datasets))
    plan_sweep(Store(root), "p", [PlannedPoint(0, ["seed=0"], {"seed": 0})], launcher="local")
    return root


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "st ore 'q'"
    shutil.copytree(template, root)
    return root


def _paths(store: Path, run_id: str = "bad") -> Any:
    return Store(store).run_paths("p", run_id)


def _edit_json(path: Path, edit: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(edit(data)))


def _set(field: str, value: Any) -> Callable[[Any], Any]:
    def edit(data: Any) -> Any:
        data[field] = value
        return data

    return edit


def _clean(out: CliResult, *, allow_error: bool = False) -> None:
    assert "Traceback" not in out.output, out.output
    assert out.returncode == 0 or (allow_error and out.returncode == 1), out.output


def _all(store: Path) -> set[str]:
    """Every run id in the store (the three runs and the sweep's planned point)."""
    return set(Store(store).run_ids("p"))


def _indexed(store: Path) -> set[str]:
    con = connect(Store(store))
    try:
        return {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}
    finally:
        con.close()


# (case id, field named in the report, edit of bad's run.json)
RUN_JSON_CASES = [
    ("attempt-text", "attempt", _set("attempt", "x")),
    ("attempt-2^70", "attempt", _set("attempt", 2**70)),
    ("step-2^70", "step", _set("step", 2**70)),
    ("sweep_index-2^70", "sweep_index", _set("sweep_index", 2**70)),
    ("total_steps-2^70", "total_steps", _set("total_steps", 2**70)),
    ("pid-2^70", "pid", _set("pid", 2**70)),
    ("world_size-2^70", "world_size", _set("world_size", 2**70)),
    ("created_at-garbage", "created_at", _set("created_at", "garbage")),
    ("created_at-python-only", "created_at", _set("created_at", "20240101T000000")),
    ("heartbeat_interval-text", "heartbeat_interval", _set("heartbeat_interval", "x")),
    ("sweep_id-list", "sweep_id", _set("sweep_id", ["a"])),
    ("tags-number", "tags", _set("tags", 5)),
    ("status-unknown", "status", _set("status", "bogus")),
    ("error-list", "error", _set("error", ["x"])),
    ("returned-text", "returned", _set("returned", {"loss": "low"})),
    ("returned-10^400", "returned", _set("returned", {"loss": 10**400})),
    ("whole-array", "not a JSON object", lambda data: [1, 2]),
]


@pytest.mark.parametrize(
    ("field", "edit"), [c[1:] for c in RUN_JSON_CASES], ids=[c[0] for c in RUN_JSON_CASES]
)
def test_a_malformed_run_json_field_skips_that_run_only(
    store: Path, field: str, edit: Callable[[Any], Any]
) -> None:
    bad = _paths(store)
    _edit_json(bad.run_json, edit)
    index = hpclab_cli(store, "index")
    _clean(index)
    reports = [ln for ln in index.stderr.splitlines() if str(bad.dir) in ln]
    assert len(reports) == 1, index.stderr  # once, one line
    assert "run.json" in reports[0] and field in reports[0]
    assert _indexed(store) == _all(store) - {"bad"}
    listing = hpclab_cli(store, "runs", "list")
    _clean(listing)
    assert "good1" in listing.stdout and "good2" in listing.stdout
    _clean(hpclab_cli(store, "status"))
    show = hpclab_cli(store, "runs", "show", "bad")
    _clean(show, allow_error=True)
    assert show.returncode == 1
    detail = reports[0].split("unreadable (", 1)[1][:-1]  # the same words as the index's
    assert show.stderr.strip().splitlines() == [f"hpclab: error: {detail}"]
    assert field in show.stderr
    assert hpclab_cli(store, "runs", "show", "good1").returncode == 0


def test_status_reports_an_unreadable_unfinished_run_and_shows_the_others(store: Path) -> None:
    _edit_json(_paths(store, "good2").run_json, _set("status", "queued"))
    _edit_json(_paths(store).run_json, lambda data: [data])
    out = hpclab_cli(store, "status")
    _clean(out)
    assert "good2" in out.stdout
    lines = [ln for ln in out.stderr.splitlines() if "run.json" in ln]
    assert len(lines) == 1 and str(_paths(store).run_json) in lines[0]
    assert "not a JSON object" in lines[0]


def _first(field: str, value: Any) -> Callable[[Any], Any]:
    def edit(data: Any) -> Any:
        data[0][field] = value
        return data

    return edit


@pytest.mark.parametrize(
    ("file", "edit", "table", "column"),
    [
        ("datasets_json", _first("size", "x"), "datasets", "size"),
        ("datasets_json", _first("n_files", 2**70), "datasets", "n_files"),
        ("datasets_json", _first("sha256", {"a": 1}), "datasets", "sha256"),
        (
            "code_json",
            lambda d: {"git": {"is_dirty": "maybe", "commit": "abc"}},
            "runs",
            "git_dirty",
        ),
        ("code_json", lambda d: {"git": {"is_dirty": True, "commit": [1]}}, "runs", "git_commit"),
        ("code_json", lambda d: {"git": "not an object"}, "runs", "git_commit"),
    ],
    ids=["size-text", "n_files-2^70", "sha256-object", "is_dirty-maybe", "commit-list", "git-text"],
)
def test_a_malformed_field_of_a_run_file_is_null_in_the_catalog(
    store: Path, file: str, edit: Callable[[Any], Any], table: str, column: str
) -> None:
    _edit_json(getattr(_paths(store), file), edit)
    index = hpclab_cli(store, "index")
    _clean(index)
    assert _indexed(store) == _all(store)
    con = connect(Store(store))
    values = dict(con.execute(f"SELECT run_id, {column} FROM {table}").fetchall())
    con.close()
    assert values["bad"] is None and values["good1"] is not None
    _clean(hpclab_cli(store, "runs", "list"))
    _clean(hpclab_cli(store, "status"))
    show = hpclab_cli(store, "runs", "show", "bad")  # shows the run, or says in one line
    _clean(show, allow_error=True)  # which field of which file it cannot show
    if show.returncode:
        assert show.stderr.count("\n") == 1 and file.removesuffix("_json") in show.stderr


def test_a_huge_config_number_is_a_feature_without_a_numeric_value(store: Path) -> None:
    _paths(store).config_yaml.write_text(f"optim:\n  lr: {10**400}\nseed: 0\n")
    _clean(hpclab_cli(store, "index"))
    con = connect(Store(store))
    rows = con.execute("SELECT run_id, value_num FROM features WHERE path = 'optim.lr'").fetchall()
    con.close()
    assert dict(rows) == {"good1": 0.1, "good2": 0.1, "bad": None}
    _clean(hpclab_cli(store, "runs", "show", "bad"))
    _clean(hpclab_cli(store, "status"))


@pytest.mark.parametrize(
    ("field", "edit"),
    [
        ("n_points", _set("n_points", 2**70)),
        ("points[0].index", lambda d: {**d, "points": [{**d["points"][0], "index": 2**70}]}),
        ("created_at", _set("created_at", "garbage")),
    ],
    ids=["n_points-2^70", "index-2^70", "created_at-garbage"],
)
def test_a_malformed_sweep_file_is_reported_and_the_runs_indexed(
    store: Path, field: str, edit: Callable[[Any], Any]
) -> None:
    (sweep_file,) = Store(store).sweeps_dir("p").glob("*.json")
    _edit_json(sweep_file, edit)
    index = hpclab_cli(store, "index")
    _clean(index)
    reports = [ln for ln in index.stderr.splitlines() if str(sweep_file) in ln]
    assert len(reports) == 1 and field in reports[0], index.stderr
    assert _indexed(store) == _all(store)
    _clean(hpclab_cli(store, "runs", "list"))
    _clean(hpclab_cli(store, "status"))
    status = hpclab_cli(store, "status", sweep_file.stem)
    _clean(status, allow_error=True)
    assert len(status.stderr.strip().splitlines()) == 1 and field in status.stderr


def test_watch_reports_each_bad_run_once_and_indexes_the_others(store: Path) -> None:
    _edit_json(_paths(store).run_json, _set("attempt", 2**70))
    _edit_json(_paths(store, "good2").datasets_json, _first("size", "x"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpclab", "--store", str(store), "watch", "--polling",
         "--interval", "0.2", "--scheduler-every", "0", "--full-every", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        poll(lambda: _has_catalog(store) and _indexed(store) == _all(store) - {"bad"}, 60)
        # a later full pass (polling watches unfinished runs; good1 ended: the full pass
        # every 2 s indexes its note) must not report the bad run again
        write(_paths(store, "good1").notes_yaml, "tags: [SEEN]\n")
        poll(lambda: _tags(store, "good1") == ["SEEN"], 60, message="the note indexed")
        assert proc.poll() is None, "watch is still running"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "run.json" in ln]
    assert len(lines) == 1 and "attempt" in lines[0], err


def _has_catalog(store: Path) -> bool:
    return Store(store).catalog_manifest.exists()


def _tags(store: Path, run_id: str) -> list[str] | None:
    con = connect(Store(store))
    try:
        row = con.execute("SELECT tags FROM notes WHERE run_id = ?", [run_id]).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def test_the_fields_other_writers_add_are_accepted(store: Path) -> None:
    """What the launcher, the reconciler and ``hpclab cancel`` write passes validation."""
    paths = _paths(store, "good1")
    others = {
        "submission": {"scheduler": "slurm", "job_id": "7_0", "array_job_id": "7"},
        "scheduler_state": {"state": "COMPLETED", "exit_code": "0:0", "reason": None},
        "sweep_index": 0, "signal": "SIGTERM", "last_signal": "SIGUSR1",
        "cancelled_by": "me", "total_steps": 3, "pid": 123, "my_key": [1],
    }  # fmt: skip
    _edit_json(paths.run_json, lambda data: {**data, **others})
    record = Store(store).read_record(paths)
    assert record.submission == others["submission"] and record.sweep_index == 0
    assert record.extra == {"my_key": [1]}
    assert record.to_dict() == json.loads(paths.run_json.read_text())
    _clean(hpclab_cli(store, "index"))
    con = connect(Store(store))
    row = con.execute("SELECT job_id, sweep_index FROM runs WHERE run_id = 'good1'").fetchone()
    con.close()
    assert row == ("7_0", 0)


@pytest.mark.parametrize(
    ("file", "text", "field"),
    [
        ("notes_yaml", "tags: 5\n", "tags"),
        ("notes_yaml", "- a list\n", "top level"),
        ("artifacts_manifest", '[{"path": "a", "size": "big"}]', "[0].size"),
        ("artifacts_manifest", '{"path": "a"}', "top level"),
        ("code_json", '{"isolation": {"imported_outside": 5}}', "imported_outside"),
    ],
    ids=["notes-tags-number", "notes-list", "artifact-size-text", "artifacts-object", "code-iso"],
)
def test_runs_show_names_the_malformed_field_in_one_line(
    store: Path, file: str, text: str, field: str
) -> None:
    path = getattr(_paths(store), file)
    write(path, text)
    show = hpclab_cli(store, "runs", "show", "bad")
    _clean(show, allow_error=True)
    assert show.returncode == 1
    assert show.stderr.strip().splitlines() == [show.stderr.strip()]
    assert str(path) in show.stderr and field in show.stderr
    index = hpclab_cli(store, "index")  # the catalog still takes the run
    _clean(index)
    assert "bad" in _indexed(store)


# -- hostile inputs that used to hang: each command runs in a subprocess with a deadline
DEADLINE_S = 120  # a hang is forever; a loaded 2-core machine starts hpclab in seconds

BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)  # 9**9 nodes when walked; 700 bytes as text


def _in_time(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out = hpclab_subprocess(store, *args, timeout=DEADLINE_S)  # TimeoutExpired: a hang
    assert "Traceback" not in out.stderr, out.stderr
    return out


def _make_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _link_dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_text(BOMB), "aliases expand"),
        (lambda p: p.write_text("a: &x [1, *x]\n"), "refers to its own anchor"),
        (_make_fifo, "not a regular file (a FIFO)"),
        (_link_dev_zero, "not a regular file (a device)"),
    ],
    ids=["alias-bomb", "recursive-alias", "fifo", "dev-zero"],
)
def test_a_hostile_config_yaml_is_refused_in_time(
    store: Path, make: Callable[[Path], None], words: str
) -> None:
    config = _paths(store).config_yaml
    make(config)
    index = _in_time(store, "index")
    assert index.returncode == 0
    lines = [ln for ln in index.stderr.splitlines() if str(config) in ln]
    assert len(lines) == 1 and words in lines[0], index.stderr
    assert _indexed(store) == _all(store) - {"bad"}
    show = _in_time(store, "runs", "show", "bad")
    assert show.returncode == 1
    assert show.stderr.strip().splitlines() == [
        f"hpclab: error: {config}: {lines[0].split(f'{config}: ', 1)[1].rstrip(')')}"
    ]
    status = _in_time(store, "status", "bad")
    assert status.returncode == 0 and "bad" in status.stdout


@pytest.mark.parametrize(
    ("make", "words"),
    [(lambda p: p.write_text(BOMB), "aliases expand"), (_make_fifo, "a FIFO")],
    ids=["alias-bomb", "fifo"],
)
def test_a_hostile_project_yaml_is_reported_and_the_runs_indexed(
    store: Path, make: Callable[[Path], None], words: str
) -> None:
    project_yaml = Store(store).project_yaml("p")
    project_yaml.write_text("key_metrics: [train/loss]\n")
    make(project_yaml)
    index = _in_time(store, "index")
    assert index.returncode == 0
    lines = [ln for ln in index.stderr.splitlines() if str(project_yaml) in ln]
    assert len(lines) == 1 and words in lines[0], index.stderr
    assert _indexed(store) == _all(store)
    assert _in_time(store, "runs", "list").returncode == 0


def test_a_backtracking_naming_regex_is_given_up_in_time(store: Path) -> None:
    """``^(a|a)+`` on forty a's and a '!' backtracks 2**40 times in Python's re."""
    Store(store).project_yaml("p").write_text(
        "naming:\n  regex: '^(?P<id>(a|a)+)(_from_(?P<parent>\\d+))?$'\n"
    )
    _edit_json(_paths(store).run_json, _set("name", "a" * 40 + "!"))
    _edit_json(_paths(store, "good2").run_json, _set("name", "aa_from_7"))
    index = _in_time(store, "index")
    assert index.returncode == 0
    lines = [ln for ln in index.stderr.splitlines() if "naming.regex" in ln]
    assert len(lines) == 1 and "a" * 40 in lines[0], index.stderr
    assert _indexed(store) == _all(store)


@pytest.mark.parametrize("which", ["chunk", "commit"])
def test_a_fifo_among_a_runs_metric_files_is_refused_in_time(store: Path, which: str) -> None:
    """A metric chunk or the commit record replaced by a FIFO: opened without blocking and
    refused, the run's other rows indexed, every other run's metrics too."""
    from hpclab.tracking.metrics import encode_metric_name

    metrics = _paths(store).metrics_zarr
    target = {
        "chunk": metrics / encode_metric_name("train/loss") / "c" / "0" / "0",
        "commit": metrics / "zarr.json",
    }[which]
    _make_fifo(target)
    index = _in_time(store, "index")
    assert index.returncode == 0
    lines = [ln for ln in index.stderr.splitlines() if str(target) in ln]
    assert len(lines) == 1 and "a FIFO" in lines[0], index.stderr
    assert _indexed(store) == _all(store)
    con = connect(Store(store))
    try:
        with_points = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM metrics").fetchall()}
    finally:
        con.close()
    assert with_points == {"good1", "good2"}
