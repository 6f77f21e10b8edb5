"""``hpclab restore``, ``hpclab rerun``, ``hpclab repro`` and ``hpclab env build``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hpclab.store import Store


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Target directory (default: ./restored-RUN); must be empty.",
)
@click.option("--force", is_flag=True, help="Empty a non-empty target first.")
@click.option(
    "--repo",
    "repos",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A local clone to look for the run's commit in first (repeatable).",
)
@click.option("--project", "-p", default=None, help="The run's project (default: any).")
@click.option(
    "--remote-timeout",
    type=float,
    default=20.0,
    show_default=True,
    help="Seconds to wait for a remote when no local clone has the commit.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def restore(
    ctx: click.Context,
    run_id: str,
    into: Path | None,
    force: bool,
    repos: tuple[Path, ...],
    project: str | None,
    remote_timeout: float,
    as_json: bool,
) -> None:
    """Rebuild a run's exact source tree from its snapshot and verify it byte for byte.

    Checks out the recorded commit (from a local clone, else the recorded remote) into
    the target, never touching your working copy, applies the uncommitted changes and
    unpacks the untracked files (or the source archive, for a run outside git). Writes
    the resolved config, overrides and environment spec to TARGET/.hpclab-restore/ and
    prints the command that runs the code again. Exits 1 when the restored tree differs
    from the run's (the differences are listed).

    Example: hpclab restore 20261120-101500-k3x9 --into /tmp/k3x9
    """
    from hpclab.restore.tree import restore_run

    store: Store = ctx.obj
    report = restore_run(
        store,
        run_id,
        into if into is not None else Path(f"restored-{run_id}"),
        project=project,
        force=force,
        repos=repos,
        remote_timeout=remote_timeout,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        where = (
            f"commit {report.commit[:12]} from {report.commit_source}"
            if (report.commit and report.commit_source)
            else "the snapshot's files"
        )
        patch = ", uncommitted changes applied" if report.patch_applied else ""
        click.echo(f"restored run {report.run_id} into {report.target} ({where}{patch})")
        assert report.verification is not None
        for line in report.verification.summary():
            click.echo(line)
        if report.meta_dir is not None:
            click.echo(f"config, overrides and environment spec: {report.meta_dir}")
        if report.command:
            click.echo(f"run it again here:\n  {report.command}")
        click.echo(f"or submit it again: hpclab --store {store.root} rerun {report.run_id}")
    if not report.ok:
        sys.exit(1)
