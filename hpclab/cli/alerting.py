"""``hpclab alerts``: what ``hpclab watch`` alerted on (project.yaml ``alerts:``)."""

from __future__ import annotations

import json

import click

from hpclab.cli.terminal import echo
from hpclab.store import Store


@click.command("alerts")
@click.option("--project", "-p", default=None, help="Only this project.")
@click.option("--limit", "-n", default=50, show_default=True, help="Most recent N alerts.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def alerts(store: Store, project: str | None, limit: int, as_json: bool) -> None:
    """The alerts hpclab watch sent, newest first: when, project, rule, message.

    Example: hpclab alerts --project mnist
    """
    from hpclab.catalog.alerts_log import recent

    store.require()
    projects = [project] if project else store.projects()
    found = recent(store, projects, limit)
    if as_json:
        for a in found:
            click.echo(json.dumps({k: a.get(k) for k in _FIELDS}))
        return
    if not found:
        echo("no alerts (rules go in project.yaml under alerts:, hpclab watch sends them)")
        return
    for a in found:
        echo(f"{a.get('at', '')}  {a['project']:<14} {a.get('kind', ''):<15} {a['message']}")


_FIELDS = ("at", "project", "kind", "run_id", "sweep_id", "message", "key")
