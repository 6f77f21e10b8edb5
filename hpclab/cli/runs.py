"""``hpclab runs``: list and show runs straight from the store."""

from __future__ import annotations

import json
from typing import Any

import click
import yaml

from hpclab.cli.guard import check_metrics
from hpclab.cli.output import fmt_number, table
from hpclab.cli.terminal import echo
from hpclab.store import Store
from hpclab.store.atomic import read_yaml
from hpclab.store.documents import read_artifacts, read_code_info, read_notes
from hpclab.store.textlog import read_text_log
from hpclab.store.views import (
    code_origin,
    dropped_warnings,
    effective_status,
    run_progress,
    total_steps,
)


@click.group()
def runs() -> None:
    """Inspect runs.

    Example: hpclab runs list --project demo
    """


@runs.command("list")
@click.option("--project", "-p", default=None, help="Only this project.")
@click.option("--sweep", default=None, help="Only the points of this sweep.")
@click.option("--status", "-s", default=None, help="Only runs with this status.")
@click.option("--tag", "-t", default=None, help="Only runs with this tag.")
@click.option("--text", default=None, help="Name, id or notes contain this text.")
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="METRIC<VALUE",
    help="Last value bound, e.g. --where 'val/loss<0.1' (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def list_runs(
    store: Store,
    project: str | None,
    sweep: str | None,
    status: str | None,
    tag: str | None,
    text: str | None,
    where: tuple[str, ...],
    as_json: bool,
) -> None:
    """List runs from the catalog (indexed first), oldest first.

    Example: hpclab runs list --status completed --tag PUBLISH --where 'val/loss<0.1'
    """
    from hpclab.catalog import queries

    bounds = [queries.parse_bound(w) for w in where]
    con = queries.fresh(store)
    check_metrics(con, [b.metric for b in bounds])  # a typo is an error, not no rows
    rows = queries.list_runs(
        con,
        project=project,
        sweep=sweep,
        status=status,
        tag=tag,
        text=text,
        where=bounds,
    )
    if as_json:
        for r in rows:
            click.echo(json.dumps({**r, "id": r["run_id"]}, default=str))
        return
    if not rows:
        click.echo(f"no matching runs in {store.root}")
        return
    table(rows, ["project", "run_id", "status", "name", "sweep_id", "step", "started"])


@runs.command("top")
@click.option("--metric", "-m", required=True, help="Metric to rank by.")
@click.option(
    "--by",
    "aggregation",
    default="last",
    show_default=True,
    type=click.Choice(["last", "best", "mean"]),
)
@click.option("--project", "-p", default=None)
@click.option("--sweep", default=None, help="Only the points of this sweep.")
@click.option("--limit", "-n", default=10, show_default=True)
@click.pass_obj
def top(
    store: Store, metric: str, aggregation: str, project: str | None, sweep: str | None, limit: int
) -> None:
    """The leaderboard: best runs by a metric, in its direction (project.yaml or by name).

    Example: hpclab runs top --metric val/loss --sweep sweep-20261122-101500-k3x9
    """
    from hpclab.catalog import queries

    rows = queries.top(
        queries.fresh(store),
        metric,
        project=project,
        sweep=sweep,
        limit=limit,
        aggregation=aggregation,
    )
    for i, r in enumerate(rows, 1):
        r["rank"] = i
        r["value"] = fmt_number(r["value"])
    table(rows, ["rank", "run_id", "value", "step", "status", "name", "sweep_id"])


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_obj
def compare(store: Store, run_ids: tuple[str, ...]) -> None:
    """Metrics side by side (last values) and the config paths that differ.

    Example: hpclab runs compare 20261122-143501-k3x9 20261122-143502-p7sh
    """
    from hpclab.catalog import queries

    con = queries.fresh(store)
    metrics, diffs = queries.compare(con, list(run_ids))
    for row in metrics:
        for r in run_ids:
            row[r] = fmt_number(row[r]) if row.get(r) is not None else ""
    click.echo("metrics (last value):")
    table(metrics, ["metric", *run_ids], indent="  ") if metrics else click.echo("  (none)")
    click.echo("config differences:")
    if diffs:
        table(diffs, ["path", *run_ids], indent="  ")
    else:
        click.echo("  (identical)")
    from hpclab.catalog.project_config import ProjectConfig, load_project_config
    from hpclab.errors import HpclabError

    project, _ = store.find_run(run_ids[0])
    try:
        cfg = load_project_config(store.project_yaml(project))
    except HpclabError as e:  # a broken project.yaml: its defaults, said in one line
        click.echo(f"warning: {e}; statistics with the defaults", err=True)
        cfg = ProjectConfig()
    groups, comparisons = queries.compare_groups(
        con, list(run_ids), project=project, alpha=cfg.alpha, min_seeds=cfg.min_seeds,
        level=cfg.level,
    )  # fmt: skip
    pct = f"{100 * cfg.level:g}%"
    if groups:
        click.echo(
            "seed groups (samples: one completed run per seed; reruns are reproductions, "
            f"not samples; mean, {pct} CI):"
        )
        cols = ["group", "samples", "reproductions", "metric", "n", "mean", "std", "ci"]
        table(groups, cols, indent="  ")
    if comparisons:
        click.echo(
            f"vs {comparisons[0]['b']} (difference of means, {pct} CI, Welch and "
            f"permutation p-values, verdict at {cfg.alpha:g} Holm-corrected; "
            "docs/statistics.md):"
        )
        table(
            comparisons,
            ["group", "metric", "diff", "ci", "p_welch", "p_permutation", "verdict"],
            indent="  ",
        )


@runs.command("show")
@click.argument("run_id")
@click.option("--project", "-p", default=None, help="Project of the run (default: search all).")
@click.pass_obj
def show(store: Store, run_id: str, project: str | None) -> None:
    """Show one run: record, config, metric summary, snapshot and artifacts.

    Example: hpclab runs show 20261122-143501-k3x9
    """
    proj, paths = store.find_run(run_id, project)
    record = store.read_record(paths)
    echo(f"run       {record.id}  ({proj})")
    echo(f"status    {effective_status(record)}")
    prog = run_progress(record, total_steps(_config_of(paths)))
    if prog.total is not None:  # the progress model: hpclab.store.views.run_progress
        done = f" ({prog.percent:.0f}%)" if prog.percent is not None else ""
        echo(f"steps     {'-' if prog.step is None else prog.step} of {prog.total}{done}")
    for key in ("name", "parent", "sweep_id", "host", "started_at", "ended_at"):
        value = getattr(record, key)
        if value:
            echo(f"{key:<9} {value}")
    if record.tags:
        echo(f"tags      {', '.join(record.tags)}")
    echo(f"dir       {paths.dir}")
    if record.error:
        echo(f"error     {record.error.get('type')}: {record.error.get('message')}")
    if paths.config_yaml.exists():
        echo("config:")
        text = yaml.safe_dump(
            read_yaml(paths.config_yaml), sort_keys=False, default_flow_style=False
        )
        for line in text.splitlines():
            echo(f"  {line}")
    from hpclab.tracking.metrics import read_metrics  # NumPy: only when a run is shown

    series = read_metrics(paths.metrics_zarr)
    if series:
        echo("metrics:")
        rows = []
        for name, s in sorted(series.items()):
            finite = s.value[~_nan_mask(s.value)]
            rows.append(
                {
                    "metric": name,
                    "n": len(s),
                    "last_step": int(s.step[-1]) if len(s) else "",
                    "last": fmt_number(float(s.value[-1])) if len(s) else "",
                    "min": fmt_number(float(finite.min())) if len(finite) else "",
                    "max": fmt_number(float(finite.max())) if len(finite) else "",
                }
            )
        table(rows, ["metric", "n", "last_step", "last", "min", "max"], indent="  ")
    if record.returned:  # the task's return value: the final metrics (catalog source=return)
        echo("returned:")
        returned = [
            {"metric": k, "value": fmt_number(v)} for k, v in sorted(record.returned.items())
        ]
        table(returned, ["metric", "value"], indent="  ")
    for line in dropped_warnings(record):
        echo(f"warning   {line}")
    if paths.code_json.exists():
        code = read_code_info(paths.code_json)
        desc = (code.get("git") or {}).get("commit") or "source archive"
        dirty = " + uncommitted changes" if paths.code_patch.exists() else ""
        echo(f"code      {desc}{dirty}")
        origin = code_origin(code)
        if origin:
            echo(f"          {origin}")
        for module in (code.get("isolation") or {}).get("imported_outside") or []:
            echo(f"warning   module {module} was imported from the working tree")
    if paths.notes_yaml.exists():
        notes = read_notes(paths.notes_yaml)
        if notes.get("tags"):
            echo(f"notes     tags: {', '.join(notes['tags'])}")
        for line in str(notes.get("text") or "").splitlines():
            echo(f"  {line}")
    if paths.artifacts_manifest.exists():
        arts = read_artifacts(paths.artifacts_manifest)
        echo(f"artifacts {len(arts)} file(s)")
        for a in arts[:20]:
            sha = f"sha256:{a['sha256'][:12]}" if a.get("sha256") else "not hashed"
            ref = f"  -> {a['source']}" if a.get("kind") == "reference" else ""
            echo(f"  {a['path']}  {a['size']} B  {sha}{ref}")
    texts = read_text_log(paths)
    if texts:
        echo(f"text      {len(texts)} entr{'y' if len(texts) == 1 else 'ies'}")
        for t in texts[-5:]:
            at = "" if t["step"] is None else f"@{t['step']}"
            first = t["text"].splitlines()[0] if t["text"] else ""
            more = " ..." if len(first) > 100 or "\n" in t["text"] else ""
            echo(f"  {t['tag']}{at}: {first[:100]}{more}")
    from hpclab.tracking.logs import show_lines

    for line in show_lines(store, proj, paths, record):  # log paths; a failed run's tail
        echo(line)


def _config_of(paths: Any) -> Any:
    """The run's config.yaml, or None when it has none."""
    return read_yaml(paths.config_yaml) if paths.config_yaml.exists() else None


def _nan_mask(values: Any) -> Any:
    import numpy as np

    return ~np.isfinite(values)


@runs.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--project", "-p", default=None, help="Project of the runs (default: search all).")
@click.option("--patch/--no-patch", default=True, help="Show the diff of the stored patches.")
@click.pass_obj
def diff(store: Store, run_a: str, run_b: str, project: str | None, patch: bool) -> None:
    """How two runs differ: config (added/changed/removed paths) and code (commits, files
    that differ between the trees they saw, their uncommitted patches).

    Example: hpclab runs diff 20261122-143501-k3x9 20261122-143502-p7sh
    """
    from hpclab.catalog.rundiff import diff_runs

    d = diff_runs(store, run_a, run_b, project)
    click.echo(f"config ({run_a} -> {run_b}):")
    rows = [{"path": p, "change": c, "old": o or "", "new": n or ""} for p, c, o, n in d.config]
    table(rows, ["path", "change", "old", "new"], indent="  ") if rows else click.echo(
        "  (identical)"
    )
    ca, cb = d.commits
    click.echo("code:")
    click.echo(f"  commit  {ca or '-'}" + ("" if ca == cb else f" -> {cb or '-'}"))
    for note in d.notes:
        echo(f"  {note}")
    if d.files:
        click.echo(f"  {len(d.files)} file(s) differ between the trees the runs saw:")
        for path, change in d.files:
            echo(f"    {change:<8} {path}")
    elif not d.notes:
        click.echo("  the trees the runs saw are identical")
    if patch and d.patch_diff:
        click.echo("  uncommitted patches differ:")
        echo("".join("    " + line for line in d.patch_diff).rstrip())
