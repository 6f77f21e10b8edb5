"""Tasks for launch tests, importable by jobs through PYTHONPATH (no torch: fast jobs)."""

from __future__ import annotations

import time
from typing import Any


def stepper(cfg: dict[str, Any], run: Any) -> dict[str, float]:
    """Log ``train/loss`` for ``train.steps`` steps, ``sleep`` seconds each; fail when
    ``seed == fail_seed``. Continues after the last logged step when resumed."""
    steps = int(cfg["train"]["steps"])
    pause = float(cfg.get("sleep", 0.0))
    if cfg.get("fail_seed") is not None and int(cfg["seed"]) == int(cfg["fail_seed"]):
        raise RuntimeError(f"planned failure for seed {cfg['seed']}")
    loss = float("nan")
    for step in range(run.step + 1, steps):
        loss = float(cfg["optim"]["lr"]) * 1000.0 / (step + 1) + int(cfg["seed"])
        run.log({"train/loss": loss}, step=step)
        if pause:
            time.sleep(pause)  # the job's own work, not test synchronisation
    return {"train/loss": loss, "attempts_seen": float(run.resumed)}
