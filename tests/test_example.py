"""The example training of the quickstart runs for real and is tracked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from hpclab.store import RunStatus, Store
from hpclab.tracking.metrics import read_metrics


def test_example_training_writes_a_complete_run(store_root: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpclab.examples.train",
            "--store",
            str(store_root),
            "--project",
            "example",
            "--steps",
            "60",
            "--lr",
            "0.01",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    store = Store(store_root)
    (run_id,) = store.run_ids("example")
    paths = store.run_paths("example", run_id)
    assert f"run {run_id} (completed) in {paths.dir}" in out.stdout
    record = store.read_record(paths)
    assert record.status is RunStatus.COMPLETED
    cfg = yaml.safe_load(paths.config_yaml.read_text())
    assert cfg["seed"] == 3 and cfg["optim"]["lr"] == 0.01 and cfg["train"]["steps"] == 60
    metrics = read_metrics(paths.metrics_zarr)
    train = metrics["train/loss"]
    assert train.step.tolist() == list(range(60))
    assert metrics["val/loss"].step.tolist() == [24, 49, 59]
    # it learns: the last train losses are well below the first ones
    assert train.value[-10:].mean() < 0.5 * train.value[:10].mean()
    printed = {
        line.split("=")[0].strip(): float(line.split("=")[1])
        for line in out.stdout.splitlines()
        if "=" in line
    }
    assert printed["val/loss"] == round(metrics["val/loss"].value[-1], 4)
    assert record.summary["val/loss"] == metrics["val/loss"].value[-1]
    assert paths.environment_json.exists()


def test_example_is_reproducible_with_its_seed(store_root: Path) -> None:
    import hpclab
    from hpclab.examples.train import DEFAULT_CONFIG, train

    cfg = {**DEFAULT_CONFIG, "train": {"steps": 30, "batch_size": 32, "eval_every": 10}}
    finals = []
    for _ in range(2):
        with hpclab.Run(
            project="repro", config=cfg, store=store_root, settings={"snapshot_env": False}
        ) as run:
            finals.append(train(cfg, run))
    assert finals[0] == finals[1]
