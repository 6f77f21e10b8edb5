"""``python -m hpclab.launch [-m] [overrides...]``: hpclab's Hydra app.

Composes ``conf/`` (``--config-path``/``--config-name`` for your own tree; default: the
``conf/`` of the current directory, else ``$HPCLAB_CONF``, else the one shipped beside
the package), calls ``task._target_(config, run)`` inside a tracked run, and with ``-m``
launches the sweep through ``hydra/launcher=hpclab_slurm`` when Slurm is available,
``hpclab_local`` otherwise. ``--wait`` makes a Slurm sweep block until every job ends.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hpclab.launch.scheduler import slurm_available


def default_config_dir() -> str:
    """./conf, else $HPCLAB_CONF, else the example project's conf/ beside the package."""
    if os.environ.get("HPCLAB_CONF"):
        return str(Path(os.environ["HPCLAB_CONF"]).absolute())
    local = Path.cwd() / "conf"
    if (local / "config.yaml").exists():
        return str(local)
    return str(Path(__file__).resolve().parents[2] / "conf")


def translate_argv(argv: list[str]) -> list[str]:
    """hpclab's additions to Hydra's command line: ``--wait``, and the default launcher."""
    out = []
    wait = False
    for arg in argv:
        if arg == "--wait":
            wait = True
        else:
            out.append(arg)
    multirun = any(a in ("-m", "--multirun") for a in out)
    chose_launcher = any(a.split("=")[0].lstrip("+~") == "hydra/launcher" for a in out)
    if multirun and not chose_launcher:
        out.append("hydra/launcher=" + ("slurm" if slurm_available() else "local"))
    if wait:
        out.append("hydra.launcher.wait=true")
    return out


def main() -> Any:
    import hydra

    import hydra_plugins.hpclab_launcher.config  # noqa: F401  (hpclab_local, hpclab_slurm)
    import hydra_plugins.hpclab_launcher.sweeper  # noqa: F401  (hydra/sweeper=hpclab)
    from hpclab.launch.task import run_app_task

    sys.argv = [sys.argv[0], *translate_argv(sys.argv[1:])]
    app = hydra.main(version_base=None, config_path=default_config_dir(), config_name="config")(
        run_app_task
    )
    return app()


if __name__ == "__main__":
    main()
