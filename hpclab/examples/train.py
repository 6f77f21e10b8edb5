"""A real, small training task: an MLP regressor on synthetic data made in-process.

No data set is downloaded: the inputs are Gaussian features and the target a fixed
random nonlinear function of them plus noise, all from ``seed``. A few seconds on CPU.

As a script (the quickstart)::

    python -m hpclab.examples.train --project demo --steps 300 --lr 1e-3 --seed 0

As a task: ``train(cfg, run)`` takes the config mapping and the run, logs
``train/loss`` every step and ``val/loss`` every ``eval_every`` steps, and returns the
final metrics.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

import hpclab

DEFAULT_CONFIG: dict[str, Any] = {
    "seed": 0,
    "model": {"hidden": 64, "depth": 2},
    "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0},
    "data": {"n_train": 2048, "n_val": 512, "n_features": 16, "noise": 0.1},
    "train": {"steps": 300, "batch_size": 64, "eval_every": 25},
    "engine": {"name": "torch"},
}


def make_data(cfg: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(x_train, y_train, x_val, y_val) from the data config and the seed."""
    import torch

    data = cfg["data"]
    g = torch.Generator().manual_seed(int(cfg["seed"]) + 10_000)
    n, d = int(data["n_train"]) + int(data["n_val"]), int(data["n_features"])
    x = torch.randn(n, d, generator=g)
    w1 = torch.randn(d, 32, generator=g) / d**0.5
    w2 = torch.randn(32, 1, generator=g) / 32**0.5
    y = torch.tanh(x @ w1) @ w2 + float(data["noise"]) * torch.randn(n, 1, generator=g)
    k = int(data["n_train"])
    return x[:k], y[:k], x[k:], y[k:]


def make_model(cfg: Mapping[str, Any], n_features: int) -> Any:
    import torch

    hidden, depth = int(cfg["model"]["hidden"]), int(cfg["model"]["depth"])
    layers: list[Any] = []
    width = n_features
    for _ in range(depth):
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def estimate_model(cfg: Mapping[str, Any]) -> Any:
    """Size of the model a config describes, without building it (preflight calls this)."""
    from hpclab.launch.estimate import mlp_size

    return mlp_size(
        int(cfg["model"]["hidden"]), int(cfg["model"]["depth"]), int(cfg["data"]["n_features"])
    )


def make_optimizer(cfg: Mapping[str, Any], params: Any) -> Any:
    import torch

    ocfg = cfg["optim"]
    name = str(ocfg.get("name", "adam")).lower()
    lr, wd = float(ocfg["lr"]), float(ocfg.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, weight_decay=wd, momentum=float(ocfg.get("momentum", 0.0))
        )
    raise hpclab.HpclabError(f"optim.name: unknown optimizer {name!r} (adam or sgd)")


def train(cfg: Mapping[str, Any], run: hpclab.Run) -> dict[str, float]:
    """Train and log; return the final ``train/loss`` and ``val/loss``.

    ``engine.name: deepspeed`` trains through a DeepSpeed engine (ZeRO stage from
    ``engine.zero_stage``; the CPU accelerator when there is no GPU).
    """
    import torch

    threads = (cfg.get("train") or {}).get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(int(cfg["seed"]))
    x_train, y_train, x_val, y_val = make_data(cfg)
    model = make_model(cfg, x_train.shape[1])
    optim = make_optimizer(cfg, model.parameters())
    tcfg = cfg["train"]
    steps, batch, every = int(tcfg["steps"]), int(tcfg["batch_size"]), int(tcfg["eval_every"])
    engine_cfg = cfg.get("engine") or {"name": "torch"}
    if engine_cfg.get("name") == "deepspeed":
        model, optim = _deepspeed_engine(model, optim, engine_cfg, batch, run)
    g = torch.Generator().manual_seed(int(cfg["seed"]))
    loss_fn = torch.nn.MSELoss()
    start = run.step + 1  # a resumed run continues after its last logged step
    for _ in range(start):  # keep the batch sequence of an uninterrupted run
        torch.randint(0, x_train.shape[0], (batch,), generator=g)
    train_loss = val_loss = float("nan")
    for step in range(start, steps):
        idx = torch.randint(0, x_train.shape[0], (batch,), generator=g)
        loss = loss_fn(model(x_train[idx]), y_train[idx])
        if engine_cfg.get("name") == "deepspeed":
            model.backward(loss)
            model.step()
        else:
            optim.zero_grad()
            loss.backward()
            optim.step()
        train_loss = loss.item()
        metrics = {"train/loss": train_loss}
        if (step + 1) % every == 0 or step == steps - 1:
            with torch.no_grad():
                val_loss = loss_fn(model(x_val), y_val).item()
            metrics["val/loss"] = val_loss
        run.log(metrics, step=step)
    return {"train/loss": train_loss, "val/loss": val_loss}


def _deepspeed_engine(
    model: Any, optim: Any, engine_cfg: Mapping[str, Any], batch: int, run: hpclab.Run
) -> tuple[Any, Any]:
    """Wrap model and optimizer in a single-process DeepSpeed engine, with its CSV monitor
    writing into the run's logs (and, through hpclab's hook, into the run's metrics)."""
    import os
    import socket

    os.environ.setdefault("DS_ACCELERATOR", "cpu" if not _cuda() else "cuda")
    for var, value in (
        ("RANK", "0"),
        ("LOCAL_RANK", "0"),
        ("WORLD_SIZE", "1"),
        ("MASTER_ADDR", "127.0.0.1"),
    ):
        os.environ.setdefault(var, value)
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    if get_accelerator().device_name() == "cpu" and os.environ["WORLD_SIZE"] == "1":
        # One CPU process reduces nothing: without this DeepSpeed JIT-compiles its
        # shared-memory allreduce (C++, a minute or more) on first use in every new
        # environment. deepspeed.ops keeps one dict of usable ops, edits persist.
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    stage = int(engine_cfg.get("zero_stage", 0))
    ds_config: dict[str, Any] = {
        "train_batch_size": batch,
        "steps_per_print": 10**9,
        "zero_optimization": {"stage": stage},
        "zero_allow_untested_optimizer": True,
        "csv_monitor": {
            "enabled": True,
            "output_path": str(run.dir / "logs"),
            "job_name": "deepspeed",
        },
    }
    if engine_cfg.get("offload") and stage > 0:
        ds_config["zero_optimization"]["offload_optimizer"] = {"device": "cpu"}
    deepspeed.init_distributed(
        dist_backend="gloo" if not _cuda() else "nccl", auto_mpi_discovery=False
    )
    engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optim, config=ds_config)
    return engine, optimizer


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    import copy

    cfg = copy.deepcopy(DEFAULT_CONFIG)
    cfg["seed"] = args.seed
    cfg["optim"]["lr"] = args.lr
    cfg["train"]["steps"] = args.steps
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the example MLP as one tracked run.")
    parser.add_argument("--project", default="example")
    parser.add_argument(
        "--store", default=None, help="store root (default $HPCLAB_STORE or ./hpclab-store)"
    )
    parser.add_argument("--steps", type=int, default=DEFAULT_CONFIG["train"]["steps"])
    parser.add_argument("--lr", type=float, default=DEFAULT_CONFIG["optim"]["lr"])
    parser.add_argument("--seed", type=int, default=DEFAULT_CONFIG["seed"])
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    cfg = _config_from_args(args)
    with hpclab.Run(project=args.project, config=cfg, name=args.name, store=args.store) as run:
        final = train(cfg, run)
        run.summary.update(final)
    print(f"run {run.id} ({run.status}) in {run.dir}")
    for key, value in final.items():
        print(f"  {key} = {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
