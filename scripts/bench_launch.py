#!/usr/bin/env python
"""Time to preflight and submit a large sweep as one Slurm array job.

    python scripts/bench_launch.py            # 1,000 points on the dev cluster
    python scripts/bench_launch.py --points 200

Needs a Slurm cluster (``eval "$(slurm/cluster.sh start)"`` gives the dev one). The sweep
is ``seed=range(N)`` over the example project with a task that returns at once; the
benchmark measures the login-node command (compose and check every point, write the
sweep record and N planned runs, one sbatch for the array, N runs marked queued), then
cancels the array.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()
    if not os.environ.get("SLURM_CONF"):
        print('set SLURM_CONF (eval "$(slurm/cluster.sh start)")', file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:
        store = Path(d) / "store"
        cmd = [
            sys.executable,
            "-m",
            "hpclab.launch",
            "-m",
            "hydra/launcher=slurm",
            f"seed=range({args.points})",
            "train.steps=1",
            "hydra.launcher.array_parallelism=4",
        ]
        env = {**os.environ, "HPCLAB_STORE": str(store)}
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        (sweep_file,) = (store / "example" / "sweeps").glob("*.json")
        sweep = json.loads(sweep_file.read_text())
        subprocess.run(["scancel", str(sweep["job_id"])], check=False)
        queued = sum(
            json.loads((store / "example" / "runs" / p["run_id"] / "run.json").read_text())[
                "status"
            ]
            in ("queued", "running", "completed")
            for p in sweep["points"]
        )
        print(
            f"{args.points} points preflighted and submitted as array job {sweep['job_id']} "
            f"in {elapsed:.1f} s (whole command, python start included); {queued} runs queued"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
