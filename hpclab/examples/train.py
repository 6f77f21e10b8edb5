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
    "optim": {"lr": 1e-3, "weight_decay": 0.0},
    "data": {"n_train": 2048, "n_val": 512, "n_features": 16, "noise": 0.1},
    "train": {"steps": 300, "batch_size": 64, "eval_every": 25},
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


def train(cfg: Mapping[str, Any], run: hpclab.Run) -> dict[str, float]:
    """Train and log; return the final ``train/loss`` and ``val/loss``."""
    import torch

    torch.manual_seed(int(cfg["seed"]))
    x_train, y_train, x_val, y_val = make_data(cfg)
    model = make_model(cfg, x_train.shape[1])
    optim = torch.optim.Adam(
        model.parameters(),
        lr=float(cfg["optim"]["lr"]),
        weight_decay=float(cfg["optim"]["weight_decay"]),
    )
    tcfg = cfg["train"]
    steps, batch, every = int(tcfg["steps"]), int(tcfg["batch_size"]), int(tcfg["eval_every"])
    g = torch.Generator().manual_seed(int(cfg["seed"]))
    loss_fn = torch.nn.MSELoss()
    start = run.step + 1  # a resumed run continues after its last logged step
    train_loss = val_loss = float("nan")
    for step in range(start, steps):
        idx = torch.randint(0, x_train.shape[0], (batch,), generator=g)
        loss = loss_fn(model(x_train[idx]), y_train[idx])
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
