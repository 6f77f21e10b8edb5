"""``hpclab dag`` and ``hpclab hypothesis``: the experiment DAG and the research claims."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click

from hpclab.cli.output import fmt_number, table
from hpclab.cli.terminal import printable
from hpclab.errors import HypothesisError
from hpclab.store import Store
from hpclab.store.record import RunRecord

if TYPE_CHECKING:
    from hpclab.catalog.dag import Dag, Naming


def _project_of(store: Store, run_id: str, project: str | None) -> str:
    return store.find_run(run_id, project)[0]


def _naming(store: Store, project: str) -> Naming | None:
    from hpclab.catalog.project_config import load_project_config

    return load_project_config(store.project_yaml(project)).naming


def _reindex(store: Store) -> None:
    from hpclab.catalog import queries

    queries.fresh(store)  # unless hpclab watch runs (it will see the edit itself)


@click.group()
def dag() -> None:
    """The experiment DAG: which run derives from which.

    Example: hpclab dag show 20261122-143501-k3x9
    """


@dag.command("show")
@click.argument("run_id", required=False)
@click.option("--project", "-p", default=None, help="Project (default: the run's, or every).")
@click.pass_obj
def dag_show(store: Store, run_id: str | None, project: str | None) -> None:
    """Print the DAG as trees (roots first), or one run's ancestry and descendants.

    Example: hpclab dag show --project example
    """
    from hpclab.catalog.dag import store_dag

    projects = (
        [_project_of(store, run_id, project)]
        if run_id
        else ([project] if project else store.projects())
    )
    for proj in projects:
        d = store_dag(store, proj, _naming(store, proj))
        records = _records(store, proj)
        if run_id:
            click.echo(f"{proj}: ancestry of {run_id}")
            for depth, rid in enumerate(d.lineage(run_id)):
                click.echo("  " * depth + _label(rid, d, records))
            for child in d.children(run_id):
                _tree(child, d, records, len(d.lineage(run_id)))
            continue
        click.echo(f"{proj}:")
        for root in d.roots():
            _tree(root, d, records, 1)


@dag.command("set-parent")
@click.argument("run_id")
@click.argument("parent")
@click.option("--project", "-p", default=None, help="Project of the run (default: search all).")
@click.pass_obj
def dag_set_parent(store: Store, run_id: str, parent: str, project: str | None) -> None:
    """Set a run's parent after the fact (PARENT ``none`` detaches it). Kept in the store
    (``<project>/dag.yaml``); diffs and evidence downstream are recomputed.

    Example: hpclab dag set-parent 20261122-143502-p7sh 20261122-143501-k3x9
    """
    from hpclab.catalog.dag import set_parent

    proj = _project_of(store, run_id, project)
    new = None if parent.lower() == "none" else parent
    set_parent(store, proj, run_id, new, _naming(store, proj))
    _reindex(store)
    click.echo(f"{run_id}: parent {new or '(none)'} (manual, {store.dag_yaml(proj)})")


def _records(store: Store, project: str) -> dict[str, RunRecord]:
    out = {}
    for rid in store.run_ids(project):
        try:
            out[rid] = store.read_record(store.run_paths(project, rid))
        except Exception:
            continue
    return out


def _label(run_id: str, d: Dag, records: dict[str, RunRecord]) -> str:
    r = records.get(run_id)
    edge = d.edges.get(run_id)
    parts = [run_id]
    if r is not None and r.name:
        parts.append(r.name)
    if r is not None:
        parts.append(f"[{r.status.value}]")
    if edge is not None:
        parts.append(f"({edge.rule})")
    return printable(" ".join(parts))


def _tree(run_id: str, d: Dag, records: dict[str, RunRecord], depth: int) -> None:
    click.echo("  " * depth + _label(run_id, d, records))
    for child in d.children(run_id):
        _tree(child, d, records, depth + 1)


@click.group()
def hypothesis() -> None:
    """Hypotheses: research claims, and the evidence runs give them.

    Example: hpclab hypothesis list
    """


@hypothesis.command("add")
@click.argument("hypothesis_id")
@click.option("--project", "-p", required=True, help="Project the hypothesis is about.")
@click.option("--title", required=True, help="The claim, one line.")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    required=True,
    metavar="NAME[:minimize|maximize]",
    help="Target metric (repeatable).",
)
@click.option("--baseline", default="parent", show_default=True, help="parent|root|best|RUN.")
@click.option("--run", "runs", multiple=True, help="Link a run (repeatable).")
@click.option("--sweep", "sweeps", multiple=True, help="Link a sweep's runs (repeatable).")
@click.option(
    "--where", "wheres", multiple=True, metavar="PATH=VALUE", help="Link runs whose config has it."
)
@click.option("--description", default="", help="Free text.")
@click.option("--author", default=None, help="Who claims it (default: $USER).")
@click.option("--replace", is_flag=True, help="Replace an existing hypothesis of this id.")
@click.pass_obj
def hypothesis_add(
    store: Store,
    hypothesis_id: str,
    project: str,
    title: str,
    metrics: tuple[str, ...],
    baseline: str,
    runs: tuple[str, ...],
    sweeps: tuple[str, ...],
    wheres: tuple[str, ...],
    description: str,
    author: str | None,
    replace: bool,
) -> None:
    """Write ``<project>/hypotheses/ID.yaml`` (edit the file for more).

    Example: hpclab hypothesis add adamw -p example --title "AdamW beats SGD"
    --metric val/loss --where optim.name=adamw
    """
    import getpass

    import yaml

    from hpclab.catalog.hypotheses import parse_hypothesis, write_hypothesis

    targets = []
    for m in metrics:
        name, _, direction = m.partition(":")
        targets.append({"name": name, **({"direction": direction} if direction else {})})
    select: list[dict[str, object]] = [{"sweep": s} for s in sweeps]
    if wheres:
        conditions = {}
        for w in wheres:
            path, eq, value = w.partition("=")
            if not eq or not path:
                raise HypothesisError(f"--where {w!r}: expected PATH=VALUE")
            conditions[path] = yaml.safe_load(value)
        select.append({"features": conditions})
    data = {
        "title": title,
        "description": description,
        "author": author or getpass.getuser(),
        "metrics": targets,
        "baseline": baseline,
        "runs": list(runs),
        "select": select,
    }
    store.project_dir(project)
    h = parse_hypothesis(hypothesis_id, data, f"hypothesis {hypothesis_id}")
    h = write_hypothesis(store, project, h, replace=replace)
    _reindex(store)
    click.echo(f"hypothesis {h.id}: {h.file}")


@hypothesis.command("status")
@click.argument("hypothesis_id")
@click.argument("status", metavar="STATUS|auto")
@click.option("--project", "-p", default=None, help="Project (default: the one that has it).")
@click.pass_obj
def hypothesis_status(store: Store, hypothesis_id: str, status: str, project: str | None) -> None:
    """Set a hypothesis's status by hand (Proposed, Testing, Supported, Refuted,
    Inconclusive), or ``auto`` to go back to the status its evidence gives. Kept in the
    hypothesis file (``status:``); the catalog shows both.

    Example: hpclab hypothesis status adamw Supported
    """
    from hpclab.catalog.hypotheses import STATUSES, set_status

    wanted = None if status.lower() == "auto" else _status_word(status, STATUSES)
    proj = project or _hypothesis_project(store, hypothesis_id)
    h = set_status(store, proj, hypothesis_id, wanted)
    _reindex(store)
    click.echo(f"hypothesis {h.id}: status {h.status or 'auto (from the evidence)'} ({h.file})")


def _status_word(word: str, statuses: tuple[str, ...]) -> str:
    """``supported`` -> ``Supported``; anything else is a one-line error."""
    for s in statuses:
        if s.lower() == word.lower():
            return s
    raise HypothesisError(f"status {word!r}: use one of {', '.join(statuses)} or auto")


def _hypothesis_project(store: Store, hypothesis_id: str) -> str:
    """The one project with a hypothesis of this id (an error when none or several)."""
    found = [p for p in store.projects() if store.hypothesis_yaml(p, hypothesis_id).is_file()]
    if len(found) != 1:
        where = "no project" if not found else f"projects {', '.join(found)} (use --project)"
        raise HypothesisError(f"hypothesis {hypothesis_id!r}: found in {where}")
    return found[0]


@hypothesis.command("list")
@click.option("--project", "-p", default=None, help="Only this project.")
@click.pass_obj
def hypothesis_list(store: Store, project: str | None) -> None:
    """Every hypothesis with its status and its evidence E (with its interval).

    Example: hpclab hypothesis list --project example
    """
    from hpclab.catalog import queries

    con = queries.fresh(store)
    rows = con.execute(
        "SELECT h.project, h.hypothesis_id AS id, s.status, s.evidence, s.evidence_low, "
        "s.evidence_high, s.n_units, s.n_runs AS runs, h.title FROM hypotheses h "
        "JOIN hypothesis_status s USING (project, hypothesis_id) "
        "WHERE ? IS NULL OR h.project = ? ORDER BY h.project, h.hypothesis_id",
        [project, project],
    ).fetchall()
    cols = ["project", "id", "status", "E", "units", "runs", "title"]
    out = []
    for proj, hid, status, e, low, high, units, runs, title in rows:
        out.append(
            {
                "project": proj,
                "id": hid,
                "status": status,
                "E": evidence_words(e, low, high, _level(con, proj)),
                "units": units,
                "runs": runs,
                "title": title,
            }
        )
    table(out, cols) if out else click.echo("(no hypotheses)")


@hypothesis.command("show")
@click.argument("hypothesis_id")
@click.option("--project", "-p", default=None, help="Project (default: search all).")
@click.pass_obj
def hypothesis_show(store: Store, hypothesis_id: str, project: str | None) -> None:
    """Explain a verdict: E with its interval, the reason, and each evidence unit (a
    treatment seed group against its baseline group) with n per side, the difference
    with its CI, the tests, Holm's p, Hedges' g, the verdict and the confidence.

    Example: hpclab hypothesis show adamw
    """
    from hpclab.catalog import queries

    con = queries.fresh(store)
    found = con.execute(
        "SELECT h.project, h.title, h.baseline, h.metrics, h.file, s.status, s.computed_status, "
        "s.evidence, s.evidence_low, s.evidence_high, s.n_units, s.n_for, s.n_against, "
        "s.supported_at, s.refuted_at, s.alpha, s.reason FROM hypotheses h "
        "JOIN hypothesis_status s USING (project, hypothesis_id) "
        "WHERE hypothesis_id = ? AND (? IS NULL OR project = ?)",
        [hypothesis_id, project, project],
    ).fetchall()
    if not found:
        raise HypothesisError(f"hypothesis {hypothesis_id!r} not in the catalog (hpclab index?)")
    (proj, title, baseline, metrics, file, status, computed, e, low, high, n_units, n_for,
     n_against, supported_at, refuted_at, alpha, reason) = found[0]  # fmt: skip
    level = _level(con, proj)
    click.echo(printable(f"{hypothesis_id}: {title}"))
    click.echo(f"status    {status}" + (f" (computed: {computed})" if computed != status else ""))
    click.echo(
        f"evidence  {evidence_words(e, low, high, level)} over {n_units} unit(s) "
        f"({n_for} better, {n_against} worse); supported above {supported_at:g}, refuted "
        f"below {refuted_at:g}, alpha {alpha:g}"
    )
    click.echo(printable(f"why       {reason}"))
    click.echo(printable(f"targets   {', '.join(metrics)}; baseline: {baseline}"))
    click.echo(f"file      {file}")
    cur = con.execute(
        "SELECT * FROM evidence WHERE project = ? AND hypothesis_id = ? "
        "ORDER BY contribution DESC, metric, label",
        [proj, hypothesis_id],
    )
    names = [d[0] for d in cur.description]
    units = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    click.echo("evidence units (treatment seed group vs baseline group, one sample per seed):")
    if not units:
        click.echo("  (none)")
    for u in units:
        click.echo("  " + unit_line(u, level))
        click.echo(
            f"    samples {' '.join(u['runs'] or [])} vs {' '.join(u['baseline_runs'] or [])}"
        )


def _level(con: Any, project: str) -> float:
    """The project's confidence level as the catalog's rows hold it (0.95 before any)."""
    row = con.execute(
        "SELECT level FROM seed_group_stats WHERE project = ? AND level IS NOT NULL "
        "UNION ALL SELECT level FROM group_comparisons WHERE project = ? AND level IS NOT NULL "
        "LIMIT 1",
        [project, project],
    ).fetchone()
    return float(row[0]) if row else 0.95


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def evidence_words(e: Any, low: Any, high: Any, level: float) -> str:
    """``+1.8 (95% CI 0.9 to 2.7)``: E with its interval (never ``±``)."""
    ev, lo, hi = _finite(e), _finite(low), _finite(high)
    if ev is None:
        return "-"
    if lo is None or hi is None:
        return f"{ev:+.3g} (no interval)"
    return f"{ev:+.3g} ({100 * level:g}% CI {lo:.3g} to {hi:.3g})"


def _p(v: Any) -> str:
    from hpclab.catalog.verdicts import fmt_p

    f = _finite(v)
    return "n/a" if f is None else fmt_p(f)


def unit_line(u: dict[str, Any], level: float) -> str:
    """One evidence unit in words, with the facts the hypothesis page shows."""
    delta = _finite(u.get("delta"))
    lo, hi = _finite(u.get("ci_low")), _finite(u.get("ci_high"))
    ci = f" ({100 * level:g}% CI {lo:.4g} to {hi:.4g})" if lo is not None and hi is not None else ""
    tests = f"Welch p={_p(u.get('p_welch'))}, permutation p={_p(u.get('p_permutation'))}"
    if u.get("paired"):
        tests += (
            f" (beside: paired t p={_p(u.get('p_paired_t'))}, "
            f"sign-flip p={_p(u.get('p_paired_permutation'))})"
        )
    g = _finite(u.get("hedges_g"))
    return (
        f"{u['metric']}  {u['label']} vs {u['baseline_label']}: "
        f"{u['n']} vs {u['n_baseline']} seeds, delta "
        f"{'-' if delta is None else f'{delta:+.4g}'}{ci} (+ = better), {tests}, "
        f"Holm p={_p(u.get('p_holm'))}, Hedges' g={'n/a' if g is None else f'{g:.3g}'}; "
        f"{u['verdict']}; confidence {fmt_number(_finite(u.get('confidence')), 2)} "
        f"(n {fmt_number(_finite(u.get('n_confidence')), 2)} x agreement "
        f"{fmt_number(_finite(u.get('agreement')), 2)} x stability "
        f"{fmt_number(_finite(u.get('stability')), 2)}), contribution "
        f"{_finite(u.get('contribution')) or 0.0:+.3g}"
    )
