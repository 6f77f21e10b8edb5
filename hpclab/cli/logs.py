"""``hpclab logs``: a run's captured stdout and stderr."""

from __future__ import annotations

import sys

import click

from hpclab.store import Store
from hpclab.tracking.logs import STREAMS, print_logs


@click.command("logs")
@click.argument("run_id")
@click.option("--project", "-p", default=None, help="Project of the run (default: search all).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
@click.option("--stdout", "stream", flag_value="stdout", help="Only stdout.")
@click.option("--stderr", "stream", flag_value="stderr", help="Only stderr.")
@click.option(
    "--lines", "-n", type=click.IntRange(min=0), default=None, help="Only the last N lines."
)
@click.pass_obj
def logs(
    store: Store,
    run_id: str,
    project: str | None,
    follow: bool,
    stream: str | None,
    lines: int | None,
) -> None:
    """Print a run's stdout (to stdout) and stderr (to stderr), from its ``logs/``.

    Example: hpclab logs 20261122-143501-k3x9 -f -n 20
    """
    _, paths = store.find_run(run_id, project)
    print_logs(
        store,
        paths,
        streams=[stream] if stream else list(STREAMS),
        lines=lines,
        follow_run=follow,
        out=sys.stdout,
        err=sys.stderr,
    )
