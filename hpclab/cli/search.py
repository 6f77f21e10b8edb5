"""``hpclab search list|show|resume``: the Optuna studies of ``hydra/sweeper=optuna``."""

from __future__ import annotations

import json
import subprocess
import sys

import click

from hpclab.store import Store


@click.group()
def search() -> None:
    """Hyperparameter searches (hydra/sweeper=optuna): list, show, resume.

    Example: hpclab search show lr-search
    """


@search.command("list")
@click.option("--project", "-p", default=None, help="Project (default: every).")
@click.pass_obj
def search_list(store: Store, project: str | None) -> None:
    """Every study: trials done of planned, best value, why it stopped.

    Example: hpclab search list --project example
    """
    from hpclab.search.summary import studies

    store.require()
    found = studies(store, project)
    if not found:
        click.echo("no studies")
        return
    click.echo(f"{'PROJECT':<14} {'STUDY':<32} {'TRIALS':>9}  {'BEST':<24} STOPPED")
    for s in found:
        done = sum(n for k, n in s.counts.items() if k in ("COMPLETE", "FAIL", "PRUNED"))
        best = [t for t in s.trials if t.on_front]
        shown = _values(best[0].values) if len(best) == 1 else f"{len(best)} on the front"
        click.echo(
            f"{s.info.project:<14} {_clip(s.info.name, 32):<32} "
            f"{f'{done}/{s.info.n_trials}':>9}  {shown:<24} {s.info.stopped or ''}"
        )


@search.command("show")
@click.argument("study")
@click.option("--project", "-p", default=None, help="Project (default: the study's).")
@click.option("--json", "as_json", is_flag=True, help="Every trial as JSON.")
@click.pass_obj
def search_show(store: Store, study: str, project: str | None, as_json: bool) -> None:
    """A study's trials: state, values, parameters and run; * marks the best (or the
    Pareto front of a multi-objective study).

    Example: hpclab search show lr-search
    """
    from hpclab.search.summary import find_study, summarize

    store.require()
    s = summarize(store, find_study(store, study, project), study)
    if as_json:
        doc = {
            "study": s.info.to_json(),
            "trials": [t.__dict__ for t in s.trials],
        }
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    objectives = ", ".join(
        f"{o} ({d})" for o, d in zip(s.info.objectives, s.info.directions, strict=True)
    )
    click.echo(f"study {s.info.name} (project {s.info.project}): {objectives}")
    counts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(s.counts.items())) or "no trials"
    click.echo(f"trials: {counts} of {s.info.n_trials} planned, {s.info.n_jobs} at a time")
    if s.info.budget:
        click.echo("budget: " + ", ".join(f"{v:g} {k}" for k, v in s.info.budget.items()))
    if s.info.stopped:
        click.echo(f"stopped: {s.info.stopped}")
    for t in s.trials:
        mark = "*" if t.on_front else " "
        params = " ".join(f"{k}={_short(v)}" for k, v in t.params.items())
        pruned = f" (pruned at step {t.pruned_at})" if t.pruned_at is not None else ""
        click.echo(
            f"{mark} {t.number:>4}  {t.state:<8} {_values(t.values):<24} {params}  "
            f"run {t.run_id or '-'}{pruned}"
        )


@search.command("resume", context_settings={"ignore_unknown_options": True})
@click.argument("study")
@click.option("--project", "-p", default=None, help="Project (default: the study's).")
@click.pass_obj
def search_resume(store: Store, study: str, project: str | None) -> None:
    """Go on with a study whose driver is gone (the login shell closed): collect the
    trials it left running from their runs, then run the rest, in the study's directory
    with its command.

    Example: hpclab search resume lr-search
    """
    from hpclab.search.summary import find_study, resume_command

    store.require()
    cmd = resume_command(store, find_study(store, study, project), study)
    click.echo(f"hpclab: resuming study {study} in {cmd.cwd}", err=True)
    code = subprocess.call(cmd.argv, cwd=cmd.cwd, env=cmd.env)
    sys.exit(code)


def _values(values: list[float] | None) -> str:
    if not values:
        return "-"
    return ", ".join(f"{v:.4g}" for v in values)


def _short(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
