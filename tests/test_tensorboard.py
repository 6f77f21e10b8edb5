"""SummaryWriter (torch, tensorboardX) and DeepSpeed monitor scalars land in the run."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from helpers import python_script

import hpclab
from hpclab.tracking.metrics import read_metrics


def _event_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(log_dir))
    mux.Reload()
    out: dict[str, list[tuple[int, float]]] = {}
    for run_name, tags in mux.Runs().items():
        for tag in tags.get("tensors", []) + tags.get("scalars", []):
            events = (
                mux.Tensors(run_name, tag)
                if tag in tags.get("tensors", [])
                else mux.Scalars(run_name, tag)
            )
            vals = []
            for e in events:
                v = (
                    float(e.tensor_proto.float_val[0])
                    if hasattr(e, "tensor_proto")
                    else float(e.value)
                )
                vals.append((e.step, v))
            key = tag if run_name == "." else f"{run_name}:{tag}"
            out[key] = vals
    return out


def test_torch_summary_writer_scalars_land_in_the_run(store_root: Path, tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with hpclab.Run(project="p", store=store_root, settings={"snapshot_env": False}) as run:
        writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
        for step in range(5):
            writer.add_scalar("train/loss", 1.0 / (step + 1), step)
        writer.add_scalars("losses", {"train": 0.5, "val": 0.7}, 4)
        writer.close()
    got = read_metrics(run.paths.metrics_zarr)
    assert got["train/loss"].step.tolist() == [0, 1, 2, 3, 4]
    assert got["train/loss"].value.tolist() == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])
    assert got["losses/train"].value.tolist() == [0.5] and got["losses/val"].step.tolist() == [4]
    events = _event_scalars(tmp_path / "tb")
    assert [s for s, _ in events["train/loss"]] == [0, 1, 2, 3, 4], (
        "the event file is still written"
    )


def test_event_files_can_be_turned_off(store_root: Path, tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with hpclab.Run(
        project="p", store=store_root, settings={"snapshot_env": False, "tensorboard_events": False}
    ) as run:
        writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
        writer.add_scalar("loss", 0.3, 0)
        writer.close()
    assert read_metrics(run.paths.metrics_zarr)["loss"].value.tolist() == [0.3]
    assert "loss" not in _event_scalars(tmp_path / "tb")


def test_without_a_run_summary_writer_behaves_as_before(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    assert hpclab.current_run() is None
    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    writer.add_scalar("loss", 0.3, 7)
    writer.close()
    assert _event_scalars(tmp_path / "tb")["loss"] == [(7, pytest.approx(0.3))]


IMPORT_AFTER_INIT = r"""
import sys, hpclab
run = hpclab.init(project="p", store=sys.argv[1], settings={"snapshot_env": False})
assert "torch.utils.tensorboard" not in sys.modules
from torch.utils.tensorboard import SummaryWriter   # imported after init: hooked on import
import tensorboardX
w = SummaryWriter(log_dir=sys.argv[2])
w.add_scalar("torch/loss", 0.25, 3)
w.close()
x = tensorboardX.SummaryWriter(logdir=sys.argv[3])
x.add_scalar("tbx/loss", 0.75, 5)
x.add_scalars("tbx/group", {"a": 1.0, "b": 2.0}, 6)
x.close()
run.finish()
print(run.dir)
"""


def test_writers_imported_after_init_are_hooked(store_root: Path, tmp_path: Path) -> None:
    proc = python_script(
        IMPORT_AFTER_INIT, str(store_root), str(tmp_path / "a"), str(tmp_path / "b")
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    got = read_metrics(Path(out.strip()) / "metrics.zarr")
    assert got["torch/loss"].step.tolist() == [3]
    assert got["tbx/loss"].value.tolist() == [0.75]
    assert got["tbx/group/a"].value.tolist() == [1.0] and got["tbx/group/b"].step.tolist() == [6]


DEEPSPEED = r"""
import os, sys
import torch, hpclab
store, out = sys.argv[1], sys.argv[2]
run = hpclab.init(project="ds", store=store, settings={"snapshot_env": False})
import deepspeed
# one CPU process reduces nothing: no shared-memory allreduce to JIT-compile (a minute of
# C++ in every fresh environment; hpclab's example does the same)
deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
config = {
    "train_batch_size": 8,
    "steps_per_print": 1000,
    "zero_optimization": {"stage": int(sys.argv[3])},
    "tensorboard": {"enabled": True, "output_path": out, "job_name": "tb"},
    "csv_monitor": {"enabled": True, "output_path": out, "job_name": "csv"},
    "wall_clock_breakdown": True,
    "zero_allow_untested_optimizer": True,
}
optim = torch.optim.SGD(model.parameters(), lr=0.05)
engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optim, config=config)
x, y = torch.randn(64, 8), torch.randn(64, 1)
for i in range(6):
    xb, yb = x[i*8:(i+1)*8], y[i*8:(i+1)*8]
    loss = torch.nn.functional.mse_loss(engine(xb), yb)
    engine.backward(loss)
    engine.step()
    # DeepSpeed's documented way to add one's own metrics to its monitors
    engine.monitor.write_events([("Train/Samples/train_loss", loss.item(), engine.global_samples)])
run.finish()
print("RUNDIR", run.dir)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_deepspeed_monitor_lands_in_the_run(store_root: Path, tmp_path: Path) -> None:
    """A real DeepSpeed engine (CPU accelerator, ZeRO stage 1) with its TensorBoard and CSV
    monitors on: every monitor event is in the run once, and DeepSpeed's files are written."""
    stage = 1
    env = {
        "DS_ACCELERATOR": "cpu",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "OMP_NUM_THREADS": "1",
    }
    proc = python_script(DEEPSPEED, str(store_root), str(tmp_path / "ds"), str(stage), env=env)
    out, err = proc.communicate(timeout=280)
    assert proc.returncode == 0, err[-3000:]
    run_dir = Path(
        next(line for line in out.splitlines() if line.startswith("RUNDIR")).split(" ", 1)[1]
    )
    got = read_metrics(run_dir / "metrics.zarr")
    samples = [8, 16, 24, 32, 40, 48]
    assert got["Train/Samples/lr"].step.tolist() == samples
    assert got["Train/Samples/lr"].value.tolist() == [0.05] * 6
    assert got["Train/Samples/train_loss"].step.tolist() == samples
    assert "Train/Samples/elapsed_time_ms_forward" in got
    assert list((tmp_path / "ds").rglob("*train_loss*.csv")), (
        "DeepSpeed's own CSV monitor still writes"
    )
    assert list((tmp_path / "ds").rglob("events.out.tfevents*")), "and its TensorBoard monitor too"
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["metrics_dropped"] == {}


def test_tensorboardx_add_text_and_add_hparams_land_in_the_run(
    store_root: Path, tmp_path: Path
) -> None:
    from tensorboardX import SummaryWriter

    from hpclab.store.atomic import read_yaml
    from hpclab.store.textlog import read_text_log

    with hpclab.Run(project="p", store=store_root, settings={"snapshot_env": False}) as run:
        writer = SummaryWriter(logdir=str(tmp_path / "tbx"))
        writer.add_text("caption", "a dog", 2)
        writer.add_hparams({"lr": 0.1, "layers": 2}, {"final/loss": 0.25}, global_step=9)
        writer.close()
    assert [(t["tag"], t["step"], t["text"]) for t in read_text_log(run.paths)] == [
        ("caption", 2, "a dog")
    ]
    assert read_yaml(run.paths.config_yaml) == {"hparams": {"lr": 0.1, "layers": 2}}
    loss = read_metrics(run.paths.metrics_zarr)["final/loss"]
    assert loss.step.tolist() == [9] and loss.value.tolist() == [0.25]


def test_sync_tensorboard_off_captures_nothing(store_root: Path, tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    settings = {"snapshot_env": False, "sync_tensorboard": False}
    with hpclab.Run(project="p", store=store_root, settings=settings) as run:
        writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
        writer.add_scalar("loss", 1.0, 0)
        writer.close()
        texts = SummaryWriter(log_dir=str(tmp_path / "tb-text"))
        texts.add_text("t", "x", 0)
        texts.close()
    assert read_metrics(run.paths.metrics_zarr) == {}
    assert not run.paths.text_jsonl.exists()
    assert _event_scalars(tmp_path / "tb")["loss"] == [(0, 1.0)], "events still written"
