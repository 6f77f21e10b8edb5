"""``hpclab import tensorboard``: event files written by the real SummaryWriter become
runs with the same points (step, value, wall time), indexed like any run; a second
import skips what came in before; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import hpclab_cli

from hpclab.catalog.connect import connect
from hpclab.store import RunStatus, Store

torch_tb = pytest.importorskip("torch.utils.tensorboard")


def _write_logdir(logdir: Path) -> dict[str, list[tuple[str, int, float, float]]]:
    """Two runs of a TensorBoard logdir, with known points: name -> (tag, step, wall, value)."""
    written: dict[str, list[tuple[str, int, float, float]]] = {}
    for r, name in enumerate(["lr_0.1", "lr_0.01"]):
        w = torch_tb.SummaryWriter(log_dir=str(logdir / name))
        points = []
        for step in range(0, 50, 5):
            wall = 1_700_000_000.0 + 60 * step + r
            for tag, value in (("train/loss", 1.0 / (step + 1 + r)), ("lr", 0.1 / 10**r)):
                w.add_scalar(tag, value, global_step=step, walltime=wall)
                points.append((tag, step, wall, value))
        w.close()
        written[f"logs/{name}"] = points
    return written


def test_event_files_become_runs_with_the_same_points(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    written = _write_logdir(logdir)
    store = tmp_path / "store"
    res = hpclab_cli(store, "import", "tensorboard", str(logdir), "--project", "old")
    assert res.returncode == 0, res.stderr
    assert "2 run(s) imported into project old" in res.stdout
    s = Store(store)
    records = {r.name: r for r in (s.read_record(p) for _, p in s.iter_runs("old"))}
    assert set(records) == set(written)
    for name, record in records.items():
        assert record.status is RunStatus.COMPLETED
        assert record.extra["imported_from"]["kind"] == "tensorboard"
        walls = [p[2] for p in written[name]]
        assert record.started_at.startswith("2023-11-14")  # the events' own times
    assert hpclab_cli(store, "index", "--no-scheduler").returncode == 0
    con = connect(s)
    rows = con.execute(
        "SELECT r.name, m.name, m.step, m.wall_time, m.value FROM metrics m "
        "JOIN runs r USING (project, run_id) ORDER BY 1, 2, 3"
    ).fetchall()
    want = sorted((n, t, st, w, v) for n, pts in written.items() for t, st, w, v in pts)
    assert len(rows) == len(want)
    for got, exp in zip(rows, want, strict=True):
        assert got[:3] == exp[:3]
        assert got[3] == pytest.approx(exp[3]) and got[4] == pytest.approx(exp[4], rel=1e-6)
    assert min(walls) > 0
    # a second import of the same logdir brings nothing new
    again = hpclab_cli(store, "import", "tensorboard", str(logdir), "--project", "old")
    assert again.returncode == 0 and "0 run(s) imported" in again.stdout
    assert len(list(s.iter_runs("old"))) == 2


def test_bad_input_is_one_line_naming_the_path(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (tmp_path / "empty").mkdir()
    for path, words in [
        (tmp_path / "nope", "not a directory"),
        (tmp_path / "empty", "no TensorBoard event files"),
    ]:
        res = hpclab_cli(store, "import", "tensorboard", str(path))
        assert res.returncode == 1, res.stdout
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and str(path) in lines[0]


def test_a_lightning_logger_s_hparams_become_the_config(tmp_path: Path) -> None:
    loggers = pytest.importorskip("lightning.pytorch.loggers")
    lg = loggers.TensorBoardLogger(str(tmp_path / "logs"), name="mnist")
    lg.log_hyperparams({"optim": {"lr": 0.1, "name": "adam"}, "seed": 1})
    for step in range(5):
        lg.log_metrics({"train/loss": 1.0 / (step + 1)}, step=step)
    lg.save()
    lg.finalize("success")
    store = tmp_path / "store"
    res = hpclab_cli(store, "import", "tensorboard", str(tmp_path / "logs"), "-p", "old")
    assert res.returncode == 0, res.stderr
    s = Store(store)
    ((_, paths),) = list(s.iter_runs("old"))
    assert s.read_record(paths).name == "logs/mnist/version_0"
    import yaml

    assert yaml.safe_load(paths.config_yaml.read_text()) == {
        "optim": {"lr": 0.1, "name": "adam"},
        "seed": 1,
    }
    # a hparams.yaml holding a Python object is refused in one line, nothing imported
    bad = tmp_path / "bad" / "run"
    bad.mkdir(parents=True)
    (bad / "hparams.yaml").write_text("model: !!python/object:collections.OrderedDict {}\n")
    w = torch_tb.SummaryWriter(log_dir=str(bad))
    w.add_scalar("loss", 1.0, 0)
    w.close()
    res = hpclab_cli(store, "import", "tensorboard", str(tmp_path / "bad"), "-p", "bad")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and "hparams.yaml" in lines[0], lines
    assert not s.has_project("bad")
