"""``hpclab index``, ``hpclab sql`` and ``hpclab note``: the catalog from the command line."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from hpclab.cli.terminal import printable
from hpclab.errors import CatalogError
from hpclab.store import Store
from hpclab.store.atomic import read_yaml, write_yaml_atomic

FORMATS = ("table", "csv", "json", "parquet")


@click.command()
@click.option(
    "--scheduler/--no-scheduler",
    "ask_scheduler",
    default=True,
    show_default=True,
    help="Reconcile unfinished runs with Slurm (one batched squeue/sacct) before publishing.",
)
@click.pass_obj
def index(store: Store, ask_scheduler: bool) -> None:
    """Index the store into the catalog once (incremental: only changed runs are read).

    Unfinished runs are reconciled with the scheduler first (one batched call), so the
    catalog says what Slurm says of jobs that ended, were cancelled or are pending.

    Example: hpclab --store /shared/hpclab index
    """
    from hpclab.catalog.indexer import index_store

    report = index_store(store, reconcile=ask_scheduler)
    click.echo(
        f"catalog current: {report.scanned} run(s), {report.indexed} (re)indexed, in "
        f"{report.seconds:.2f} s"
        + (f", {report.errors} unreadable (see warnings)" if report.errors else "")
        + (f", {report.removed} removed" if report.removed else "")
        + (f", {report.reconciled} updated from the scheduler" if report.reconciled else "")
    )


@click.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to this file instead of stdout (required for parquet).",
)
@click.option("--max-rows", type=int, default=100, show_default=True, help="Rows shown as a table.")
@click.pass_obj
def sql(store: Store, query: str, fmt: str, output: str | None, max_rows: int) -> None:
    """Run a SQL query on the catalog (DuckDB), while hpclab watch keeps indexing.

    Example: hpclab sql "SELECT run_id, last FROM metric_summary ORDER BY last LIMIT 5"
    """
    import duckdb

    from hpclab.catalog.connect import connect

    con = connect(store)
    try:
        rel = con.sql(query)
    except duckdb.Error as e:
        raise CatalogError(f"SQL: {str(e).strip().splitlines()[0]}") from None
    if rel is None:
        return
    try:
        if fmt == "table" and output is None:
            rel.show(max_rows=max_rows, max_width=200)
            return
        if fmt == "parquet" and output is None:
            raise CatalogError("--format parquet needs --output FILE")
        target = output or "/dev/stdout"
        options = {
            "csv": "FORMAT csv, HEADER",
            "json": "FORMAT json, ARRAY true",
            "parquet": "FORMAT parquet",
            "table": "FORMAT csv, HEADER, DELIMITER '\t'",
        }[fmt]
        path = str(Path(target)).replace("'", "''")
        con.execute(f"COPY ({query}) TO '{path}' ({options})")
    except duckdb.Error as e:
        raise CatalogError(f"SQL: {str(e).strip().splitlines()[0]}") from None
    finally:
        sys.stdout.flush()


@click.command()
@click.argument("run_id")
@click.option("--tag", "tags", multiple=True, help="Add a tag (PUBLISH, BAD, ...).")
@click.option("--untag", "untags", multiple=True, help="Remove a tag.")
@click.option("--text", default=None, help="Set the free-text note (replaces it).")
@click.option("--append", "append", default=None, help="Append a line to the note.")
@click.option("--project", "-p", default=None)
@click.pass_obj
def note(
    store: Store,
    run_id: str,
    tags: tuple[str, ...],
    untags: tuple[str, ...],
    text: str | None,
    append: str | None,
    project: str | None,
) -> None:
    """Tag a run or write a note about it (kept in the run's notes.yaml).

    Example: hpclab note 20261122-143501-k3x9 --tag PUBLISH --append "best so far"
    """
    _, paths = store.find_run(run_id, project)
    current = read_yaml(paths.notes_yaml) if paths.notes_yaml.exists() else {}
    if not isinstance(current, dict):
        raise CatalogError(f"{paths.notes_yaml}: expected a mapping")
    new_tags = [t for t in current.get("tags") or [] if t not in untags]
    new_tags += [t for t in tags if t not in new_tags]
    body = str(current.get("text") or "")
    if text is not None:
        body = text
    if append:
        body = f"{body}\n{append}" if body else append
    doc = {"tags": new_tags, "text": body, "updated_at": datetime.now(tz=timezone.utc).isoformat()}
    write_yaml_atomic(paths.notes_yaml, doc)
    click.echo(printable(f"{run_id}: tags {', '.join(new_tags) or '(none)'}"))


@click.command()
@click.option(
    "--polling/--native",
    default=None,
    help="How to notice changes (default: polling on NFS/Lustre/GPFS, native elsewhere).",
)
@click.option(
    "--interval",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds between polls of unfinished runs (polling mode).",
)
@click.option(
    "--full-every",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds between full reconciliation passes over every run.",
)
@click.option(
    "--scheduler-every",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds between scheduler calls (one batched squeue/sacct) for unfinished runs; "
    "0 turns them off.",
)
@click.option(
    "--site",
    "site",
    is_flag=True,
    help="Also keep the website current (built with hpclab site build): changed runs' data.",
)
@click.option(
    "--alerts/--no-alerts",
    default=True,
    show_default=True,
    help="Evaluate project.yaml's alert rules after each pass and send what they match.",
)
@click.pass_obj
def watch(
    store: Store,
    polling: bool | None,
    interval: float,
    full_every: float,
    scheduler_every: float,
    site: bool,
    alerts: bool,
) -> None:
    """Keep the catalog current while runs train (Ctrl-C stops).

    Example: hpclab --store /shared/hpclab watch --polling --interval 5 --site
    """
    import threading

    from hpclab.catalog.watch import Watcher

    check_alerts = None
    if alerts:
        from hpclab.catalog.alerts import Alerts

        check_alerts = Alerts(store, echo=click.echo, every=2.0)

    def on_pass(report: object) -> None:
        indexed = getattr(report, "indexed", 0)
        if indexed or getattr(report, "removed", 0):
            stamp = datetime.now().strftime("%H:%M:%S")
            click.echo(f"{stamp} indexed {indexed} run(s) in {getattr(report, 'seconds', 0):.2f} s")
        if check_alerts is not None:
            try:
                check_alerts(report)
            except Exception as e:  # noqa: BLE001  (alerts must never stop the catalog)
                click.echo(f"hpclab: warning: alerts not evaluated ({e})", err=True)

    site_hook = None
    if site:
        from hpclab.site.live import LiveSite

        site_hook = LiveSite(store, log=click.echo)
    watcher = Watcher(
        store,
        polling=polling,
        interval=interval,
        full_every=full_every,
        on_pass=on_pass,
        site_hook=site_hook,
        scheduler_every=scheduler_every if scheduler_every > 0 else None,
    )
    click.echo(f"watching {store.root} ({watcher.mode}); catalog in {store.catalog_dir}")
    stop = threading.Event()
    try:
        watcher.run(stop)
    except KeyboardInterrupt:
        stop.set()
