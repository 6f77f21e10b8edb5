"""``hpclab run -- CMD``: track any command as a run."""

from __future__ import annotations

import sys

import click

from hpclab.launch.command import CommandRun, run_command
from hpclab.store import Store


@click.command(
    "run",
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
)
@click.option(
    "--project",
    "-p",
    default=None,
    help="Project (default: $HPCLAB_PROJECT, else the script's stem).",
)
@click.option("--name", "-n", default=None, help="A human name for the run.")
@click.option("--tag", "-t", "tags", multiple=True, help="A tag (repeatable).")
@click.option(
    "--config",
    "config_file",
    default=None,
    metavar="FILE",
    help="YAML/JSON config merged under the argv config.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def run(
    store: Store,
    project: str | None,
    name: str | None,
    tags: tuple[str, ...],
    config_file: str | None,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND as a tracked run: config from its arguments, code and environment
    snapshot, stdout/stderr in the run's logs/, TensorBoard scalars, exit code as status.

    Exits with the command's exit code.

    Example: hpclab run --project mnist -- python train.py --lr 0.01 --epochs 3
    """
    _, code = run_command(
        store,
        CommandRun(
            command=list(command),
            project=project,
            name=name,
            tags=list(tags),
            config_file=config_file,
        ),
    )
    sys.exit(code)
