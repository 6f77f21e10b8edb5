"""``hpclab preflight`` and ``hpclab cluster``: the login-node side of launching."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from hpclab.errors import ConfigError

CLUSTER_SCRIPT = Path(__file__).resolve().parents[2] / "slurm" / "cluster.sh"


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def preflight(overrides: tuple[str, ...]) -> None:
    """Compose and check every point of a sweep; submit nothing.

    Takes the arguments of ``python -m hpclab.launch -m``. Errors (a point that does not
    compose, a request over the partition's limits, memory or time estimates over the
    request) exit 1; warnings print.

    Example: hpclab preflight hydra/launcher=slurm optim.lr=1e-3,1e-4 seed=0,1,2
    """
    import tempfile

    args = [a for a in overrides if a not in ("-m", "--multirun")]
    cmd = [sys.executable, "-m", "hpclab.launch", "-m", *args, "hydra.launcher.preflight_only=true"]
    with tempfile.TemporaryDirectory(prefix="hpclab-preflight-") as scratch:
        if not any(a.startswith("hydra.sweep.dir=") for a in args):
            cmd.append(f"hydra.sweep.dir={scratch}")  # Hydra's multirun.yaml: not in the cwd
        code = subprocess.run(cmd).returncode
    sys.exit(code)


@click.command()
@click.argument("action", type=click.Choice(["start", "stop", "status", "env"]))
def cluster(action: str) -> None:
    """The single-node dev Slurm cluster (munge, MariaDB, slurmdbd, slurmctld, slurmd).

    ``start`` is idempotent and prints the ``export SLURM_CONF=...`` line that client
    commands need; needs root and Debian's slurm-wlm slurmdbd munge mariadb-server.

    Example: eval "$(hpclab cluster start)"
    """
    if not CLUSTER_SCRIPT.exists():
        raise ConfigError(f"{CLUSTER_SCRIPT} not found: the dev cluster ships with the source tree")
    code = subprocess.run(["bash", str(CLUSTER_SCRIPT), action]).returncode
    sys.exit(code)
