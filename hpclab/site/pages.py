"""The site's Markdown pages, generated from :class:`~hpclab.site.data.SiteData`:
Overview, Runs (the list, and one page that shows any run from its data files), Board
and Training. Graph, Hypotheses and Reports are in :mod:`hpclab.site.research`.

A page per run would make MkDocs' build time grow with the runs (it builds pages one
by one) and a live update rebuild it: instead ``runs/run.md`` renders whichever run its
URL names (``run.html?p=PROJECT&id=RUN``) from ``data/details`` and ``data/series``, and
``runs/compare.md`` the runs ticked on the Runs list
(``compare.html?r=PROJECT/RUN,PROJECT/RUN,...``) from the same files, with the Pareto
front of that selection (computed in the browser over the selected runs only, on the
project's two Pareto objectives: docs/statistics.md#pareto).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Any
from urllib.parse import quote

import altair as alt

from hpclab.site import charts
from hpclab.site.alerts_card import alerts_card
from hpclab.site.data import Key, SiteData
from hpclab.site.eval_pages import eval_specs
from hpclab.site.graph import write_graph_data
from hpclab.site.html import (
    MISSING,
    Html,
    badge,
    code,
    e,
    empty,
    h,
    join,
    json_script,
    link,
    num,
    run_link,
    table,
    when,
)
from hpclab.site.layout import SiteLayout
from hpclab.site.page import Page
from hpclab.site.redact import redact_config_value
from hpclab.site.runs_table import runs_config_doc
from hpclab.site.series import write_json
from hpclab.store.record import (
    ACTIVE_STATUSES,
    ENDED_STATUSES,
    FAILED_STATUSES,
    WAITING_STATUSES,
    RunStatus,
)
from hpclab.store.views import progress as progress_of

OVERVIEW_ROWS = 25  # runs per project in the Overview table
ACTIVITY_ROWS = 15
BOARD_CARDS = 40  # per column; the Runs list has the rest
COMPARE_MAX = 12  # runs on one compare page: one colour each in the charts' palette
# The board's columns group the status vocabulary (store.record): each status in one column.
BOARD_COLUMNS = (
    ("planned", {RunStatus.PLANNED.value}),
    ("queued", WAITING_STATUSES - {RunStatus.PLANNED.value}),  # and preempted (requeued)
    ("running", ACTIVE_STATUSES - WAITING_STATUSES),
    ("completed", ENDED_STATUSES - FAILED_STATUSES),
    ("failed", FAILED_STATUSES),
)
FETCH_HINT = Html(
    "(the page reads its data with fetch: open the site through "
    "<code>hpclab site serve</code> or any web server, not as a file)"
)


OVERVIEW_CONFIG = 4  # hyperparameter columns on the Overview: the paths that vary most


def _varying_config(data: SiteData, project: str, runs: list[dict[str, Any]]) -> list[str]:
    """The config paths whose values differ among ``runs`` (at most OVERVIEW_CONFIG: the
    ones with the most distinct values first, then by name), less the seed and hpclab's
    own keys: what tells these runs apart."""
    values: dict[str, set[str]] = {}
    for r in runs:
        for path, raw in data.features.get((project, r["run_id"]), {}).items():
            values.setdefault(path, set()).add(raw)
    n = len(runs)
    varying = []
    for path, vs in values.items():
        if len(vs) < 2 or path.startswith("hpclab.") or path.split(".")[-1] in ("seed", "name"):
            continue
        text = any(not v[:1].isdigit() and v[:1] not in "-." for v in vs)
        if text and len(vs) == n > 10:  # a text value per run: an output path, a timestamp
            continue
        varying.append(path)
    varying.sort(key=lambda p: (-len(values[p]), p))
    return sorted(varying[:OVERVIEW_CONFIG])


def _config_text(path: str, raw: str) -> str:
    """A config value as the Overview shows it: redacted, JSON text unquoted."""
    import json

    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    shown = redact_config_value(path, value)
    return shown if isinstance(shown, str) else json.dumps(shown)


def overview(data: SiteData) -> Page:
    root = ""
    page = Page("Overview", wide=True).heading(1, "Overview", in_toc=False)
    if not data.runs:
        return page.add(
            h(
                '<p class="hl-empty">No runs yet. Launch some with {}, then {} (or keep {} '
                "running) and rebuild.</p>",
                code("python -m hpclab.launch -m ..."),
                code("hpclab index"),
                code("hpclab watch --site"),
            )
        )
    counts = Counter(r["status"] for r in data.runs)
    cards = join(
        h('<div class="hl-card"><div class="hl-card-n">{}</div>{}</div>', n, badge(s))
        for s, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    page.add(h('<div class="hl-cards">{}</div>', cards))
    if (card := alerts_card(data, root)) is not None:  # what hpclab watch alerted on
        page.heading(2, "Alerts").add(card)
    for project in data.projects:
        metrics = data.key_metrics.get(project, [])
        runs = [r for r in data.runs if r["project"] == project]
        page.heading(2, project)
        n_sweeps = len([s for s in data.sweeps if s["project"] == project])
        named = join((h("{} ({})", code(m.name), m.direction) for m in metrics), ", ")
        page.add(
            h(
                "<p>{} runs, {} sweeps. Key metrics: {}. ▲ improves on the run's parent, "
                "▼ regresses, – missing (NaN or not logged).</p>",
                len(runs),
                n_sweeps,
                named or "none",
            )
        )
        body = []
        recent = runs[:OVERVIEW_ROWS]
        hyper = _varying_config(data, project, recent)
        for r in recent:
            key = (project, r["run_id"])
            parent = r.get("parent")
            cells: list[Html] = [
                run_link(project, r["run_id"], root, r.get("name") or r["run_id"]),
                badge(r["status"]),
                e(_short_sweep(r.get("sweep_id"))),
            ]
            features = data.features.get(key, {})
            for path in hyper:  # the hyperparameters that differ among these runs
                raw = features.get(path)
                cells.append(code(_config_text(path, raw)) if raw is not None else e("–"))
            for m in metrics:
                value = data.metric_value(key, m.name)
                old = data.metric_value((project, parent), m.name) if parent else None
                cells.append(_delta_cell(value, m.better(value, old), old))
            body.append(cells)
        page.add(
            table(
                ["experiment", "status", "sweep", *hyper, *[m.name for m in metrics]],
                body,
                cls="hl-overview",
            )
        )
        if len(runs) > OVERVIEW_ROWS:
            page.add(
                h(
                    "<p>The {} most recent of {}: all are in {}.</p>",
                    OVERVIEW_ROWS,
                    len(runs),
                    link(runs_href(project), "Runs"),
                )
            )
    page.heading(2, "Recent activity")
    return page.add(_activity(data, root))


def _delta_cell(value: float | None, better: bool | None, old: float | None) -> Html:
    if value is None:
        return MISSING
    if better is None:
        return num(value)
    cls, arrow = ("hl-up", "▲") if better else ("hl-down", "▼")
    return h('<span class="{}" title="parent: {}">{} {}</span>', cls, num(old), num(value), arrow)


def _activity(data: SiteData, root: str) -> Html:
    events: list[tuple[Any, Html]] = []
    for r in data.runs:
        link_ = run_link(r["project"], r["run_id"], root, r.get("name") or r["run_id"])
        for field, verb in (
            ("ended_at", "ended"),
            ("started_at", "started"),
            ("created_at", "created"),
        ):
            if r.get(field):
                events.append((r[field], h("{} {} {}", link_, verb, badge(r["status"]))))
                break
    for s in data.sweeps:
        if s.get("created_at"):
            events.append(
                (
                    s["created_at"],
                    h(
                        "sweep {} submitted: {} points ({})",
                        code(s["sweep_id"]),
                        s["n_points"],
                        s["launcher"],
                    ),
                )
            )
    events.sort(key=lambda ev: str(ev[0]), reverse=True)
    items = join(h("<li>{} {}</li>", when(t), text) for t, text in events[:ACTIVITY_ROWS])
    return h('<ul class="hl-activity">{}</ul>', items)


def runs_href(query: str = "", root: str = "") -> str:
    """The Runs list, filtered by ``query`` when given (``runs/index.html?q=...``)."""
    return f"{root}runs/index.html" + (f"?q={quote(query, safe='')}" if query else "")


def _short_sweep(sweep_id: str | None) -> str:
    return (
        (sweep_id or "")[len("sweep-") :]
        if (sweep_id or "").startswith("sweep-")
        else (sweep_id or "")
    )


def runs_list(data: SiteData) -> Page:
    """The Runs list: the header, the filter and the compare bar; its rows are
    ``data/runs-list.json`` (:func:`runs_list_doc`), drawn by hpclab.js a screenful at a
    time (a virtualised table), filtered and sorted over every run in memory: a page of
    the same size for 10 runs or 100,000."""
    page = Page("Runs", wide=True).heading(1, "Runs", in_toc=False)
    if not data.runs:
        return page.add(empty("No runs indexed yet."))
    names = list_metrics(data)
    headers = ["", "status", "run", "name", "project", "sweep", *names]
    headers += ["step", "created", "duration", "tags"]
    sort = ["none"] + ["text"] * 5 + ["num"] * len(names) + ["num", "text", "num", "text"]
    page.add(
        h(
            '<div class="hl-filter"><input type="search" class="hl-filter-input" '
            'placeholder="Filter runs: text, or optim.lr &lt; 0.01 and val/loss &lt; 0.2" '
            'aria-label="Filter runs"><span class="hl-filter-count" aria-live="polite"></span>'
            '<span class="hl-compare-bar"><a class="hl-compare" data-max="{}" '
            'aria-disabled="true">Compare (0)</a>'
            '<button type="button" class="hl-compare-clear" hidden>clear</button>'
            '<span class="hl-compare-hint">tick 2 to {} runs to compare them'
            "</span></span></div>"
            '<div class="hl-runs-tools"><details class="hl-cols"><summary>Columns</summary>'
            '<div class="hl-cols-body"></div></details>'
            '<span class="hl-export-bar">export the view: '
            '<button type="button" class="hl-export" data-format="csv">CSV</button> '
            '<button type="button" class="hl-export" data-format="json">JSON</button></span>'
            '<span class="hl-cols-note hl-facts"></span></div>'
            '<p class="hl-empty hl-runs-loading">Loading {} runs… {}</p>',
            COMPARE_MAX,
            COMPARE_MAX,
            f"{len(data.runs):,}",
            FETCH_HINT,
        )
    )
    return page.add(
        h(
            '<div class="hl-runs-scroll" data-src="{}" data-config="{}" data-total="{}" '
            'tabindex="-1"><div class="hl-runs-pad hl-runs-top"></div>{}'
            '<div class="hl-runs-pad hl-runs-bottom"></div></div>',
            RUNS_LIST_DATA,
            RUNS_CONFIG_DATA,
            len(data.runs),
            table(headers, [], cls="hl-runs", sort=sort),
        )
    )


RUNS_LIST_DATA = "data/runs-list.json"  # SiteLayout.runs_list_json, as the page fetches it
RUNS_CONFIG_DATA = "data/runs-config.json"  # SiteLayout.runs_config_json (runs_table.py)


def list_metrics(data: SiteData) -> list[str]:
    """The Runs list's metric columns: every project's key metrics, in order, once."""
    names: list[str] = []
    for project in data.projects:
        for m in data.key_metrics.get(project, []):
            if m.name not in names:
                names.append(m.name)
    return names


def runs_list_doc(data: SiteData) -> dict[str, Any]:
    """Every run as one compact row for the Runs list (hpclab.js ``runsList``): ``[project,
    run_id, status, name, sweep, step, created, duration_s, tags, *metrics]``, newest
    first; metric values to 6 significant digits (the page shows 4), missing as null."""
    names = list_metrics(data)
    rows = []
    for r in data.runs:
        key: Key = (r["project"], r["run_id"])
        created = r.get("created_at")
        if isinstance(created, datetime):
            created = created.isoformat(sep=" ", timespec="seconds")
        dur = r.get("duration_s")
        dur = round(float(dur), 1) if dur is not None and math.isfinite(float(dur)) else None
        rows.append(
            [
                r["project"],
                r["run_id"],
                r["status"],
                r.get("name") or "",
                _short_sweep(r.get("sweep_id")),
                r.get("step"),
                None if created is None else str(created),
                dur,
                [str(t) for t in r.get("tags") or []],
                *[_sig(data.metric_value(key, n)) for n in names],
            ]
        )
    return {"metrics": names, "rows": rows}


def _sig(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def write_list_data(data: SiteData, layout: SiteLayout) -> None:
    """The data files the pages' lists are drawn from: the Runs list's rows
    (``data/runs-list.json``), its config and metric columns (``data/runs-config.json``)
    and the Graph's groups (``data/graph/``). Written with the
    pages, whenever they are rebuilt: they show what the pages were generated from."""
    write_json(layout.runs_list_json, runs_list_doc(data))
    write_json(layout.runs_config_json, runs_config_doc(data, list_metrics(data)))
    write_graph_data(data, layout)


def run_page() -> Page:
    """The one page for every run: filled in by hpclab.js from the run's data files."""
    return (
        Page("Run", wide=True)
        .heading(1, "Run", in_toc=False)
        .add(
            h(
                '<div id="hl-run" class="hl-run-page"><p class="hl-empty">Loading the run… '
                "{}</p></div>",
                FETCH_HINT,
            ),
            chart_specs(),
            eval_specs(),  # the evaluation and latency cards (evaluation.js)
        )
    )


def compare_page(data: SiteData) -> Page:
    """The one page that compares the runs its URL names (``compare.html?r=P/RUN,...``):
    filled in by hpclab.js from their data files. The page lists the runs the site has,
    so that an unknown run is reported without a request that fails."""
    doc = {
        "max": COMPARE_MAX,
        "runs": [f"{r['project']}/{r['run_id']}" for r in data.runs],
        "key_metrics": {
            p: [{"name": m.name, "direction": m.direction} for m in ms]
            for p, ms in data.key_metrics.items()
        },
        "pareto": pareto_objectives(data),
    }
    specs = {"pareto": compare_pareto_spec()}
    return (
        Page("Compare runs", wide=True)
        .heading(1, "Compare runs", in_toc=False)
        .add(
            h(
                '<div id="hl-compare" class="hl-compare-page"><p class="hl-empty">Loading the '
                "runs… {}</p></div>",
                FETCH_HINT,
            ),
            json_script(doc, "hl-compare-data"),
            chart_specs(),
            json_script(specs, "hl-compare-specs"),
            eval_specs(),  # the radar of evaluation metrics, latency curves (evaluation.js)
        )
    )


def pareto_objectives(data: SiteData) -> dict[str, list[dict[str, str]]]:
    """Each project's Pareto objectives, as the catalog's fronts name them (project.yaml
    ``pareto``, default: the first key metric and ``duration_s``), with their directions
    (the ``pareto`` entry's, else the metric's); a project without a front is left out."""
    from hpclab.catalog.project_config import load_project_config
    from hpclab.errors import HpclabError

    out: dict[str, list[dict[str, str]]] = {}
    for (project, scope, _), rows_ in sorted(data.pareto.items()):
        names = [str(n) for n in (rows_[0].get("objectives") or [])] if rows_ else []
        if scope != "project" or len(names) < 2:
            continue
        try:
            config = load_project_config(data.store.project_yaml(project))
        except (HpclabError, OSError):  # the indexer reported it; its fronts are stale
            continue
        listed = {o.name: o.direction for o in config.pareto}
        out[project] = [
            {"name": n, "direction": listed.get(n) or config.direction(n)} for n in names
        ]
    return out


PARETO_DATA = "pareto"  # the compare page's front: rows {run, x, y, front}, filled by hpclab.js
ON_FRONT = "front of this selection"  # the legend's words (hpclab.js writes them in the rows)


def compare_pareto_spec() -> dict:
    """The selection's runs on two objectives (data ``pareto``: run, x, y, front), its
    front highlighted and joined. hpclab.js titles the fields ``x`` and ``y`` (axes and
    tooltips) with the objectives' names."""
    base = alt.Chart(alt.Data(name=PARETO_DATA))
    color = alt.Color(
        "front:N",
        scale=alt.Scale(domain=[ON_FRONT, "dominated"], range=["#e8710a", "#9aa0a6"]),
        legend=alt.Legend(orient="bottom", title=None, labelLimit=260),
    )
    line = (
        base.transform_filter(alt.datum.front == ON_FRONT)
        .mark_line(color="#e8710a", strokeDash=[4, 3])
        .encode(x="x:Q", y="y:Q", order="x:Q")
    )
    dots = base.mark_circle(size=90, opacity=1).encode(
        x=alt.X("x:Q", title="x", scale=alt.Scale(zero=False, padding=16)),
        y=alt.Y("y:Q", title="y", scale=alt.Scale(zero=False, padding=16)),
        color=color,
        tooltip=["run:N", alt.Tooltip("x:Q", format=".4g"), alt.Tooltip("y:Q", format=".4g")],
    )
    spec: dict = alt.layer(line, dots).properties(width="container", height=280).to_dict()
    spec.pop("config", None)  # the page sets the theme (light or dark)
    return spec


def board(data: SiteData) -> Page:
    root = ""
    page = Page("Board", wide=True).heading(1, "Board", in_toc=False)
    cols = []
    for title, statuses in BOARD_COLUMNS:
        runs = [r for r in data.runs if r["status"] in statuses]
        cards = []
        for r in runs[:BOARD_CARDS]:
            key = (r["project"], r["run_id"])
            metrics = data.key_metrics.get(r["project"], [])
            metric = Html("")
            if metrics:
                value = num(data.metric_value(key, metrics[0].name))
                metric = h('<div class="hl-kcard-m">{} {}</div>', metrics[0].name, value)
            progress = Html("")
            # the catalog's row: its total_steps is the progress model's (views.planned_steps)
            pct = progress_of(r["status"], r.get("step"), data.total_steps(key), None).percent
            if r["status"] == RunStatus.RUNNING.value and pct is not None:
                progress = h(
                    '<div class="hl-progress"><span style="width:{}%"></span></div>',
                    f"{pct:.0f}",
                )
            link_ = run_link(r["project"], r["run_id"], root, r.get("name") or r["run_id"])
            sub = h("{} · {}", r["project"], _short_sweep(r.get("sweep_id")))
            if title == "failed":
                sub = h("{} · {}", sub, badge(r["status"]))
            cards.append(
                h(
                    '<div class="hl-kcard">{}<div class="hl-kcard-sub">{}</div>{}{}</div>',
                    link_,
                    sub,
                    metric,
                    progress,
                )
            )
        more = (
            h(
                '<div class="hl-kmore">and {} more in {}</div>',
                len(runs) - BOARD_CARDS,
                link(runs_href(*statuses) if len(statuses) == 1 else runs_href(), "Runs"),
            )
            if len(runs) > BOARD_CARDS
            else Html("")
        )
        cols.append(
            h(
                '<section class="hl-kcol hl-kcol-{}"><h3>{} <span class="hl-kcount">{}</span>'
                "</h3>{}{}</section>",
                title,
                title.capitalize(),
                len(runs),
                join(cards) or empty("none"),
                more,
            )
        )
    return page.add(h('<div class="hl-board">{}</div>', join(cols)))


def chart_specs() -> Html:
    """The line charts' Vega-Lite specs for hpclab.js (run and sweep), in the page."""
    specs = {
        "run": charts.line_spec(color="metric", height=220),
        "sweep": charts.line_spec(color="run", height=260),
    }
    return json_script(specs, "hl-chart-specs")


def training() -> Page:
    """The live page: hpclab.js polls data/live.json and redraws only what changed."""
    return (
        Page("Training", wide=True)
        .heading(1, "Training", in_toc=False)
        .add(
            h(
                '<div id="hl-training" class="hl-training">'
                '<p class="hl-live-status"><span class="hl-live-dot"></span>'
                '<span class="hl-live-text">connecting…</span></p>'
                '<div class="hl-live-jobs"></div><div class="hl-live-recent"></div>'
                '<div class="hl-live-sweeps"></div>'
                '<div class="hl-live-runs"></div>{}</div>',
                chart_specs(),
            )
        )
    )


def active_runs(data: SiteData) -> list[dict[str, Any]]:
    return [r for r in data.runs if r["status"] in ACTIVE_STATUSES]
