"""``hpclab restore``, ``hpclab rerun``, ``hpclab repro`` and ``hpclab env build``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hpclab.cli.terminal import echo
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
    from the run's (the differences are listed). Lines whose secrets the snapshot
    redacted are listed per file on stderr: fill them in by hand.

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
        echo(json.dumps(report.to_dict(), indent=2))
    else:
        for note in report.notes:
            echo(f"note: {note}", err=True)
        for line in report.redaction_lines():
            echo(line, err=True)
        where = (
            f"commit {report.commit[:12]} from {report.commit_source}"
            if (report.commit and report.commit_source)
            else "the snapshot's files"
        )
        patch = ", uncommitted changes applied" if report.patch_applied else ""
        echo(f"restored run {report.run_id} into {report.target} ({where}{patch})")
        assert report.verification is not None
        for line in report.verification.summary():
            echo(line)
        if report.meta_dir is not None:
            echo(f"config, overrides and environment spec: {report.meta_dir}")
        if report.command:
            echo(f"run it again here:\n  {report.command}")
        echo(f"or submit it again: hpclab --store {store.root} rerun {report.run_id}")
    if not report.ok:
        sys.exit(1)


_launcher_option = click.option(
    "--launcher",
    type=click.Choice(["local", "slurm"]),
    default=None,
    help="Launcher to submit through (default: the one the original used).",
)
_allow_option = click.option(
    "--allow-unverified",
    is_flag=True,
    help="Rerun even if the restored tree differs from the run's.",
)
_repo_option = click.option(
    "--repo",
    "repos",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A local clone to look for the run's commit in first (repeatable).",
)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_id", metavar="RUN")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
@_launcher_option
@click.option("--wait", is_flag=True, help="Block until the job ends (local always does).")
@_allow_option
@_repo_option
@click.option("--project", "-p", default=None, help="The run's project (default: any).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def rerun(
    store: Store,
    run_id: str,
    overrides: tuple[str, ...],
    launcher: str | None,
    wait: bool,
    allow_unverified: bool,
    repos: tuple[Path, ...],
    project: str | None,
    as_json: bool,
) -> None:
    """Restore a run and submit it again through the same launcher, as its child.

    The restored code runs with the original's resolved config (same seed) and launcher
    settings, plus OVERRIDES (Hydra syntax, values of the resolved config). The restored
    tree lives in <store>/<project>/reruns/ while the job needs it. Exits 1 if a waited
    rerun did not complete.

    Example: hpclab rerun 20261120-101500-k3x9 optim.lr=3e-4 --launcher slurm --wait
    """
    from hpclab.restore.rerun import rerun as do_rerun

    result = do_rerun(
        store,
        run_id,
        list(overrides),
        project=project,
        launcher=launcher,
        wait=wait,
        allow_unverified=allow_unverified,
        repos=repos,
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for note in result.restore.notes:
            click.echo(f"note: {note}", err=True)
        for line in result.restore.redaction_lines():
            click.echo(line, err=True)
        job = f", job {result.job_id}" if result.job_id else ""
        click.echo(
            f"rerun of {result.original}: run {result.run_id} ({result.status}), sweep "
            f"{result.sweep_id}{job} on {result.launcher}; code in {result.restore.code_dir}"
        )
    waited = wait or result.launcher == "local"
    if result.returncode != 0 or (waited and result.status != "completed"):
        sys.exit(1)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_id", metavar="RUN")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
@click.option("--rtol", type=float, default=1e-5, show_default=True, help="Relative tolerance.")
@click.option("--atol", type=float, default=1e-8, show_default=True, help="Absolute tolerance.")
@click.option(
    "--against",
    default=None,
    metavar="RUN2",
    help="Compare with this existing run instead of rerunning.",
)
@_launcher_option
@_allow_option
@_repo_option
@click.option("--project", "-p", default=None, help="The run's project (default: any).")
@click.option("--json", "as_json", is_flag=True, help="Print repro.json.")
@click.pass_obj
def repro(
    store: Store,
    run_id: str,
    overrides: tuple[str, ...],
    rtol: float,
    atol: float,
    against: str | None,
    launcher: str | None,
    allow_unverified: bool,
    repos: tuple[Path, ...],
    project: str | None,
    as_json: bool,
) -> None:
    """Rerun a run, wait, and compare per-step and final metrics with the original's.

    Verdict "reproduced" (every value within |rerun - original| <= atol + rtol *
    |original|, same metrics, steps and ending) or "drifted", with the largest
    differences and where; written to the rerun's repro.json. Exits 1 when drifted.

    Example: hpclab repro 20261120-101500-k3x9 --rtol 1e-6 --launcher slurm
    """
    from hpclab.restore.repro import reproduce, summary_line

    options: dict[str, object] = {}
    if against is None:
        options = {"launcher": launcher, "allow_unverified": allow_unverified, "repos": repos}
    record = reproduce(
        store,
        run_id,
        list(overrides),
        project=project,
        against=against,
        rtol=rtol,
        atol=atol,
        **options,
    )
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        click.echo(summary_line(record))
        for m in record["metrics"]:
            if (
                m["n_mismatched"]
                or m["missing_in"]
                or m.get("only_in_original")
                or m.get("only_in_rerun")
            ):
                click.echo(
                    f"  {m['kind']} {m['name']}: {m['n_mismatched']}/{m['n_compared']} outside "
                    f"tolerance, max |diff| {m['max_abs_diff']}"
                    + (f", missing in the {m['missing_in']}" if m["missing_in"] else "")
                )
    if record["verdict"] != "reproduced":
        sys.exit(1)


@click.group()
def env() -> None:
    """Environments of runs.

    Example: hpclab env build 20261120-101500-k3x9 --into ./venv --wheelhouse /shared/wheels
    """


@env.command("build")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to create the virtualenv (default: ./venv-RUN); must be empty.",
)
@click.option(
    "--wheelhouse",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Install offline from this directory of wheels (--no-index --find-links).",
)
@click.option("--index-url", default=None, help="Package index to install from.")
@click.option("--python", "python", default=None, help="Interpreter (default: this one).")
@click.option("--exclude", multiple=True, metavar="NAME", help="Leave a package out.")
@click.option("--allow-python-mismatch", is_flag=True, help="Accept another Python minor version.")
@click.option("--with-pip", is_flag=True, help="Give the venv its own pip (ensurepip).")
@click.option("--force", is_flag=True, help="Empty a non-empty target first.")
@click.option("--project", "-p", default=None, help="The run's project (default: any).")
@click.pass_obj
def build(
    store: Store,
    run_id: str,
    into: Path | None,
    wheelhouse: Path | None,
    index_url: str | None,
    python: str | None,
    exclude: tuple[str, ...],
    allow_python_mismatch: bool,
    with_pip: bool,
    force: bool,
    project: str | None,
) -> None:
    """Create a virtualenv with exactly the packages (and Python version) a run had.

    Installs the run's requirements.txt with pip --no-deps (the list is the whole
    environment). Offline: --wheelhouse DIR. Leave out packages installed from source
    (the project itself, editable installs) with --exclude.

    Example: hpclab env build 20261120-101500-k3x9 --wheelhouse /shared/wheels --exclude myproj
    """
    from hpclab.restore.envbuild import build_env

    built = build_env(
        store,
        run_id,
        into if into is not None else Path(f"venv-{run_id}"),
        project=project,
        python=python,
        wheelhouse=wheelhouse,
        index_url=index_url,
        exclude=exclude,
        allow_python_mismatch=allow_python_mismatch,
        force=force,
        with_pip=with_pip,
    )
    click.echo(
        f"built {built.path} (Python {built.python_version}; the run had "
        f"{built.recorded_version or 'an unrecorded version'}): {len(built.installed)} "
        f"package(s) installed"
        + (f", left out: {', '.join(built.excluded)}" if built.excluded else "")
    )
    click.echo(f"use it: {built.python}")
