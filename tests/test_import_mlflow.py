"""``hpclab import mlflow``: runs written by the real MLflow client, in a file store and
in a SQLite store, become runs with the same parameters (typed back), points (step,
value, time), status and tags; the SQLite database is not modified; a second import
skips what came in before; bad input is one line."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from helpers import hpclab_cli

from hpclab.catalog.connect import connect
from hpclab.store import RunStatus, Store

pytest.importorskip("mlflow")

T0 = 1_700_000_000_000  # ms


def _write_store(uri: str) -> dict[str, dict]:
    """Two finished runs and a failed one in experiment "exp"; what was written, by name."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("exp")
    other = client.create_experiment("other")
    written: dict[str, dict] = {}
    for i, (name, lr, status) in enumerate(
        [("lr-0.1", 0.1, "FINISHED"), ("lr-0.01", 0.01, "FINISHED"), ("broken", 1.0, "FAILED")]
    ):
        run = client.create_run(exp, start_time=T0 + i, run_name=name)
        rid = run.info.run_id
        client.log_param(rid, "optim.lr", str(lr))
        client.log_param(rid, "model.depth", "3")
        client.log_param(rid, "optim.name", "adam")
        client.set_tag(rid, "team", "vision")
        points = []
        for step in range(0, 20, 2):
            ts = T0 + 1000 * step + i
            for key, value in (("train/loss", lr / (step + 1)), ("val/acc", step / 20)):
                client.log_metric(rid, key, value, timestamp=ts, step=step)
                points.append((key, step, ts / 1000.0, value))
        client.set_terminated(rid, status=status, end_time=T0 + 30_000 + i)
        written[name] = {"lr": lr, "status": status, "points": points, "id": rid}
    client.create_run(other, run_name="elsewhere")
    return written


def _check(store: Path, written: dict[str, dict]) -> None:
    s = Store(store)
    records = {r.name: r for r in (s.read_record(p) for _, p in s.iter_runs("old"))}
    assert set(records) == set(written)
    for name, rec in records.items():
        want = written[name]
        assert rec.status is (
            RunStatus.COMPLETED if want["status"] == "FINISHED" else RunStatus.FAILED
        )
        assert rec.extra["imported_from"]["id"] == want["id"]
        assert rec.extra["mlflow"]["experiment"] == "exp"
        assert "exp" in rec.tags and "team=vision" in rec.tags
        assert rec.started_at.startswith("2023-11-14T22:13:20")
        paths = next(p for _, p in s.iter_runs("old") if p.id == rec.id)
        import yaml

        cfg = yaml.safe_load(paths.config_yaml.read_text())
        assert cfg == {"optim": {"lr": want["lr"], "name": "adam"}, "model": {"depth": 3}}
    assert hpclab_cli(store, "index", "--no-scheduler").returncode == 0
    con = connect(s)
    rows = con.execute(
        "SELECT r.name, m.name, m.step, m.wall_time, m.value FROM metrics m "
        "JOIN runs r USING (project, run_id) ORDER BY 1, 2, 3"
    ).fetchall()
    want_rows = sorted((n, *p) for n, w in written.items() for p in w["points"])
    assert len(rows) == len(want_rows)
    for got, exp in zip(rows, want_rows, strict=True):
        assert got[:3] == exp[:3]
        assert got[3] == pytest.approx(exp[3]) and got[4] == pytest.approx(exp[4], rel=1e-6)


def test_a_file_store_imports_with_every_point(tmp_path: Path) -> None:
    mlruns = tmp_path / "mlruns"
    written = _write_store(mlruns.as_uri())
    store = tmp_path / "store"
    res = hpclab_cli(
        store, "import", "mlflow", str(tmp_path), "--project", "old", "--experiment", "exp"
    )
    assert res.returncode == 0, res.stderr
    assert "3 run(s) imported into project old" in res.stdout
    _check(store, written)
    again = hpclab_cli(store, "import", "mlflow", str(mlruns), "--project", "old", "-e", "exp")
    assert again.returncode == 0
    assert "0 run(s) imported into project old, 3 skipped" in again.stdout
    assert len(list(Store(store).iter_runs("old"))) == 3


def test_a_sqlite_store_imports_and_is_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    written = _write_store(f"sqlite:///{db}")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    store = tmp_path / "store"
    res = hpclab_cli(store, "import", "mlflow", str(db), "--project", "old", "-e", "exp")
    assert res.returncode == 0, res.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    _check(store, written)


def test_bad_input_is_one_line_naming_the_path(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    mlruns = tmp_path / "mlruns"
    _write_store(mlruns.as_uri())
    for args, words in [
        ([str(tmp_path / "nope")], "no MLflow store there"),
        ([str(tmp_path / "empty")], "not an MLflow file store"),
        ([str(tmp_path / "notes.txt")], "not an MLflow SQLite database"),
        ([str(mlruns), "-e", "exps"], "no MLflow experiment 'exps'"),
    ]:
        res = hpclab_cli(store, "import", "mlflow", *args)
        assert res.returncode == 1, res.stdout
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and args[0] in lines[0], lines
