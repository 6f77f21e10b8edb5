"""Tasks for launch tests, importable by jobs through PYTHONPATH (no torch: fast jobs)."""

from __future__ import annotations

import json
import time
from typing import Any


def stepper(cfg: dict[str, Any], run: Any) -> dict[str, float]:
    """Log ``train/loss`` for ``train.steps`` steps, ``sleep`` seconds each; fail when
    ``seed == fail_seed``. Saves its step when preempted and, resumed, logs the step it
    restored as ``restored_from`` before going on after the last logged step."""
    steps = int(cfg["train"]["steps"])
    pause = float(cfg.get("sleep", 0.0))
    if cfg.get("fail_seed") is not None and int(cfg["seed"]) == int(cfg["fail_seed"]):
        raise RuntimeError(f"planned failure for seed {cfg['seed']}")

    def save(r: Any) -> None:
        (r.checkpoint_dir / "state.json").write_text(json.dumps({"step": r.step}))

    run.on_preempt(save)
    start = run.step + 1
    if run.resumed and (run.checkpoint_dir / "state.json").exists():
        restored = json.loads((run.checkpoint_dir / "state.json").read_text())["step"]
        run.log({"restored_from": float(restored)}, step=start)
    loss = float("nan")
    for step in range(start, steps):
        loss = float(cfg["optim"]["lr"]) * 1000.0 / (step + 1) + int(cfg["seed"])
        run.log({"train/loss": loss}, step=step)
        if pause:
            time.sleep(pause)  # the job's own work, not test synchronisation
    return {"train/loss": loss}
