"""``hpclab import wandb``: offline runs written by the real wandb library (its Go core)
become runs with the same config, tags, points (step, value, time), summary and exit
status; a log longer than one 32 KiB block (records split across blocks) reads whole; a
log cut short imports what came before the cut; a second import skips; bad input is one
line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import hpclab_cli

from hpclab.catalog.connect import connect
from hpclab.store import RunStatus, Store

pytest.importorskip("wandb")

WRITER = r"""
import json, os, sys
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
import wandb
where, name = sys.argv[1], sys.argv[2]
lr, steps, code = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
run = wandb.init(project="p1", name=name, dir=where, tags=["base", name],
                 config={"optim": {"lr": lr, "name": "adam"}, "seed": 1})
points = []
for s in range(steps):
    row = {"train/loss": lr / (s + 1), "note": "text is not a metric"}
    if s % 10 == 0:
        row["val/acc"] = s / steps
    run.log(row, step=s)
    points.append(row)
run.summary["best_acc"] = 0.75
run.finish(exit_code=code)
print(json.dumps({"id": run.id, "points": points}))
"""


def _write(where: Path, name: str, lr: float, steps: int, code: int = 0) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", WRITER, str(where), name, str(lr), str(steps), str(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    where = tmp_path_factory.mktemp("wb")
    written = {
        "lr-0.1": _write(where, "lr-0.1", 0.1, 2000),  # > 32 KiB: records cross blocks
        "crashed": _write(where, "crashed", 0.5, 30, code=1),
    }
    return where / "wandb", written


def test_offline_runs_become_runs_with_the_same_points(
    tmp_path: Path, wandb_dir: tuple[Path, dict[str, dict]]
) -> None:
    wdir, written = wandb_dir
    big = next(wdir.glob(f"offline-run-*-{written['lr-0.1']['id']}/run-*.wandb"))
    assert big.stat().st_size > 2 * 32 * 1024
    store = tmp_path / "store"
    res = hpclab_cli(store, "import", "wandb", str(wdir), "--project", "old")
    assert res.returncode == 0, res.stderr
    assert "2 run(s) imported into project old, 0 skipped" in res.stdout
    s = Store(store)
    records = {r.name: r for r in (s.read_record(p) for _, p in s.iter_runs("old"))}
    assert set(records) == {"lr-0.1", "crashed"}
    ok, bad = records["lr-0.1"], records["crashed"]
    assert ok.status is RunStatus.COMPLETED and bad.status is RunStatus.FAILED
    assert bad.error["exit_code"] == 1
    assert ok.tags == ["base", "lr-0.1"] and ok.summary["best_acc"] == 0.75
    assert ok.extra["wandb"]["project"] == "p1"
    assert ok.summary["train/loss"] == pytest.approx(0.1 / 2000)
    assert hpclab_cli(store, "index", "--no-scheduler").returncode == 0
    con = connect(s)
    rows = con.execute(
        "SELECT r.name, m.name, m.step, m.value FROM metrics m "
        "JOIN runs r USING (project, run_id) ORDER BY 1, 2, 3"
    ).fetchall()
    want = sorted(
        (name, key, step, value)
        for name, w in written.items()
        for step, row in enumerate(w["points"])
        for key, value in row.items()
        if key != "note"
    )
    assert len(rows) == len(want)
    for got, exp in zip(rows, want, strict=True):
        assert got[:3] == exp[:3] and got[3] == pytest.approx(exp[3], rel=1e-6)
    features = con.execute(
        "SELECT path, value FROM features JOIN runs r USING (project, run_id) "
        "WHERE r.name = 'lr-0.1' ORDER BY 1"
    ).fetchall()
    assert [(p, json.loads(v)) for p, v in features] == [
        ("optim.lr", 0.1),
        ("optim.name", "adam"),
        ("seed", 1),
    ]
    walls = con.execute(
        "SELECT min(wall_time), max(wall_time) FROM metrics m JOIN runs r USING (run_id) "
        "WHERE r.name = 'lr-0.1'"
    ).fetchone()
    assert 0 < walls[1] - walls[0] < 600  # the run's own timestamps, seconds apart
    again = hpclab_cli(store, "import", "wandb", str(wdir), "--project", "old")
    assert "0 run(s) imported into project old, 2 skipped" in again.stdout


def test_a_log_cut_short_imports_what_came_before(
    tmp_path: Path, wandb_dir: tuple[Path, dict[str, dict]]
) -> None:
    wdir, written = wandb_dir
    src = next(wdir.glob(f"offline-run-*-{written['lr-0.1']['id']}"))
    cut = tmp_path / "cut" / src.name
    shutil.copytree(src, cut)
    log = next(cut.glob("run-*.wandb"))
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2])
    store = tmp_path / "store"
    res = hpclab_cli(store, "import", "wandb", str(cut), "--project", "old")
    assert res.returncode == 0, res.stderr
    s = Store(store)
    (record,) = [s.read_record(p) for _, p in s.iter_runs("old")]
    assert record.status is RunStatus.FAILED and "no exit record" in record.error["message"]
    assert 100 < record.step < 1999  # the first half of the steps, not none, not all


def test_bad_input_is_one_line_naming_the_path(
    tmp_path: Path, wandb_dir: tuple[Path, dict[str, dict]]
) -> None:
    store = tmp_path / "store"
    (tmp_path / "empty").mkdir()
    fake = tmp_path / "fake" / "offline-run-x"
    fake.mkdir(parents=True)
    (fake / "run-x.wandb").write_bytes(b"not a log")
    wdir, written = wandb_dir
    corrupt = tmp_path / "corrupt"
    shutil.copytree(next(wdir.glob(f"offline-run-*-{written['crashed']['id']}")), corrupt / "r")
    log = next(corrupt.glob("r/run-*.wandb"))
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern mid-file
    log.write_bytes(bytes(data))
    for path, words in [
        (tmp_path / "nope", "not a directory"),
        (tmp_path / "empty", "no W&B run logs"),
        (tmp_path / "fake", "not a W&B run log"),
        (corrupt, "corrupt record"),
    ]:
        res = hpclab_cli(store, "import", "wandb", str(path))
        assert res.returncode == 1, res.stdout
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and str(path) in lines[0], lines
    assert not Store(store).has_project("imported")  # nothing half-imported


def test_any_changed_byte_is_an_error_not_a_shorter_run(
    tmp_path: Path, wandb_dir: tuple[Path, dict[str, dict]]
) -> None:
    """A flipped byte in the header, a block's padding, a record's CRC, length, type
    or payload raises; none reads as a log cut short (which imports silently). Every
    byte of the crashed run's log before its final record is tried."""
    from hpclab.errors import ImportSourceError
    from hpclab.importers.wandb import RECORD_HEADER, records

    wdir, written = wandb_dir
    log = next(wdir.glob(f"offline-run-*-{written['crashed']['id']}/run-*.wandb"))
    data = log.read_bytes()
    assert data[:7] == b":W&B\xe1\xbe\x00"  # the header the reader checks whole
    whole = list(records(log))
    assert len(whole) > 10
    last = len(data) - len(whole[-1]) - RECORD_HEADER.size  # final record's header
    bad = tmp_path / "run-x.wandb"
    missed = []
    for at in range(last):
        changed = bytearray(data)
        changed[at] ^= 0xFF
        bad.write_bytes(bytes(changed))
        try:
            list(records(bad))
        except ImportSourceError:
            continue
        missed.append(at)
    assert not missed, f"flips read as valid at bytes {missed[:10]}"
