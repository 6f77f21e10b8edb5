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


# Hydra's options that take a value: argparse cannot read overrides after them
_VALUE_OPTIONS = frozenset(
    {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c"}
    | {"--package", "-p", "--experimental-rerun"}
)
_INFO_CHOICES = frozenset({"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"})


def _split_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra's options (with their values) and the overrides, wherever each was written:
    argparse reads no override after an option (``lr=0.1 --config-path X seed=1``)."""
    options: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config-path", "-cp") and i + 1 < len(argv):
            # relative to the working directory, not to this module as Hydra would have it
            options += [arg, str(Path(argv[i + 1]).absolute())]
            i += 2
            continue
        if arg in _VALUE_OPTIONS and i + 1 < len(argv):
            options += argv[i : i + 2]
            i += 2
            continue
        if arg in ("--info", "-i") and i + 1 < len(argv) and argv[i + 1] in _INFO_CHOICES:
            options += argv[i : i + 2]
            i += 2
            continue
        (options if arg.startswith("-") else overrides).append(arg)
        i += 1
    return options, overrides


def _config_dir(options: list[str]) -> Path:
    """The config tree these options select (``--config-path``), else the default."""
    for flag in ("--config-path", "-cp"):
        if flag in options:
            return Path(options[options.index(flag) + 1]).absolute()
        for o in options:
            if o.startswith(flag + "="):
                return Path(o.split("=", 1)[1]).absolute()
    return Path(default_config_dir())


def translate_argv(argv: list[str]) -> list[str]:
    """hpclab's additions to Hydra's command line: ``--wait``, and the default launcher
    (the tree's ``hydra/launcher/{slurm,local}.yaml`` preset, else hpclab's own)."""
    wait = "--wait" in argv
    options, out = _split_options([a for a in argv if a != "--wait"])
    multirun = any(a in ("-m", "--multirun") for a in options)
    chose_launcher = any(a.split("=")[0].lstrip("+~") == "hydra/launcher" for a in out)
    if multirun and not chose_launcher:
        name = "slurm" if slurm_available() else "local"
        if not (_config_dir(options) / "hydra" / "launcher" / f"{name}.yaml").exists():
            name = f"hpclab_{name}"  # an own config tree without hpclab's presets
        out.append(f"hydra/launcher={name}")
    if wait:
        out.append("hydra.launcher.wait=true")
    return options + out


def config_error_line(exc: BaseException) -> str | None:
    """One line for a config tree that does not load (broken YAML, a missing file or
    group), naming the file and line; None for anything else (a bug keeps its traceback)."""
    import yaml
    from hydra.errors import HydraException

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, yaml.MarkedYAMLError):
            mark = e.problem_mark or e.context_mark
            where = f"{mark.name}:{mark.line + 1}:{mark.column + 1}" if mark else "config"
            problem = str(e.problem or e.context or "invalid YAML")
            return f"{where}: invalid YAML: {problem}"
        if isinstance(e, yaml.YAMLError):
            return f"invalid YAML: {e}".splitlines()[0]
        e = e.__cause__ or e.__context__
    if isinstance(exc, HydraException):
        return " ".join(str(exc).split())
    return None


def main() -> Any:
    import hydra

    import hydra_plugins.hpclab_launcher.config  # noqa: F401  (hpclab_local, hpclab_slurm)
    import hydra_plugins.hpclab_launcher.optuna_sweeper  # noqa: F401  (hydra/sweeper=optuna)
    import hydra_plugins.hpclab_launcher.sweeper  # noqa: F401  (hydra/sweeper=hpclab)
    from hpclab.launch.task import run_app_task

    sys.argv = [sys.argv[0], *translate_argv(sys.argv[1:])]
    app = hydra.main(version_base=None, config_path=default_config_dir(), config_name="config")(
        run_app_task
    )
    from hpclab.settings import unknown_env_vars

    for warning in unknown_env_vars():
        print(f"hpclab: warning: {warning}", file=sys.stderr)
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra re-raises; one line below, not its dump
    try:
        return app()
    except Exception as e:
        line = config_error_line(e)
        if line is None:
            raise
        print(f"hpclab: error: {line}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
