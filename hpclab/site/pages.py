"""The site's Markdown pages, generated from :class:`~hpclab.site.data.SiteData`:
Overview, Runs (the list, and one page that shows any run from its data files), Board
and Training. Graph, Hypotheses and Reports are in :mod:`hpclab.site.research`.

A page per run would make MkDocs' build time grow with the runs (it builds pages one
by one) and a live update rebuild it: instead ``runs/run.md`` renders whichever run its
URL names (``run.html?p=PROJECT&id=RUN``) from ``data/details`` and ``data/runs``, and
``runs/compare.md`` the runs ticked on the Runs list
(``compare.html?r=PROJECT/RUN,PROJECT/RUN,...``) from the same files.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hpclab.site import charts
from hpclab.site.data import ACTIVE, FAILED, Key, SiteData
from hpclab.site.html import (
    MISSING,
    badge,
    block,
    duration,
    e,
    empty,
    num,
    run_link,
    table,
    when,
)

# Front matter for full-width pages (mkdocs-material; other themes ignore it).
WIDE = "---\nhide:\n  - navigation\n  - toc\n---\n"
OVERVIEW_ROWS = 25  # runs per project in the Overview table
ACTIVITY_ROWS = 15
BOARD_CARDS = 40  # per column; the Runs list has the rest
COMPARE_MAX = 12  # runs on one compare page: one colour each in the charts' palette
BOARD_COLUMNS = (
    ("planned", {"planned"}),
    ("queued", {"queued", "preempted"}),
    ("running", {"running"}),
    ("completed", {"completed"}),
    ("failed", FAILED),
)


def overview(data: SiteData) -> str:
    root = ""
    out = [WIDE, "# Overview\n"]
    if not data.runs:
        out.append(
            block(
                empty(
                    "No runs yet. Launch some with `python -m hpclab.launch -m ...`, then "
                    "hpclab index (or keep hpclab watch --site running) and rebuild."
                )
            )
        )
        return "".join(out)
    counts = Counter(r["status"] for r in data.runs)
    cards = "".join(
        f'<div class="hl-card"><div class="hl-card-n">{n}</div>{badge(s)}</div>'
        for s, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    out.append(block(f'<div class="hl-cards">{cards}</div>'))
    for project in data.projects:
        metrics = data.key_metrics.get(project, [])
        runs = [r for r in data.runs if r["project"] == project]
        out.append(f"\n## {e(project)}\n")
        n_sweeps = len([s for s in data.sweeps if s["project"] == project])
        named = ", ".join(f"`{m.name}` ({m.direction})" for m in metrics) or "none"
        out.append(
            f"{len(runs)} runs, {n_sweeps} sweeps. Key metrics: {named}. "
            "▲ improves on the run's parent, ▼ regresses, – missing (NaN or not logged).\n"
        )
        body = []
        for r in runs[:OVERVIEW_ROWS]:
            key = (project, r["run_id"])
            parent = r.get("parent")
            cells = [
                run_link(project, r["run_id"], root, r.get("name") or r["run_id"]),
                badge(r["status"]),
                e(_short_sweep(r.get("sweep_id"))),
            ]
            for m in metrics:
                value = data.metric_value(key, m.name)
                old = data.metric_value((project, parent), m.name) if parent else None
                cells.append(_delta_cell(value, m.better(value, old), old))
            body.append(cells)
        out.append(
            block(
                table(
                    ["experiment", "status", "sweep", *[e(m.name) for m in metrics]],
                    body,
                    cls="hl-overview",
                )
            )
        )
        if len(runs) > OVERVIEW_ROWS:
            out.append(
                f"\nThe {OVERVIEW_ROWS} most recent of {len(runs)}: "
                "all are in [Runs](runs/index.md).\n"
            )
    out.append("\n## Recent activity\n")
    out.append(block(_activity(data, root)))
    return "".join(out)


def _delta_cell(value: float | None, better: bool | None, old: float | None) -> str:
    if value is None:
        return MISSING
    if better is None:
        return num(value)
    cls, arrow = ("hl-up", "▲") if better else ("hl-down", "▼")
    return f'<span class="{cls}" title="parent: {num(old)}">{num(value)} {arrow}</span>'


def _activity(data: SiteData, root: str) -> str:
    events: list[tuple[Any, str]] = []
    for r in data.runs:
        link = run_link(r["project"], r["run_id"], root, r.get("name") or r["run_id"])
        if r.get("ended_at"):
            events.append((r["ended_at"], f"{link} ended {badge(r['status'])}"))
        elif r.get("started_at"):
            events.append((r["started_at"], f"{link} started {badge(r['status'])}"))
        elif r.get("created_at"):
            events.append((r["created_at"], f"{link} created {badge(r['status'])}"))
    for s in data.sweeps:
        if s.get("created_at"):
            events.append(
                (
                    s["created_at"],
                    f"sweep <code>{e(s['sweep_id'])}</code> submitted: {s['n_points']} points "
                    f"({e(s['launcher'])})",
                )
            )
    events.sort(key=lambda ev: str(ev[0]), reverse=True)
    items = "".join(f"<li>{when(t)} {text}</li>" for t, text in events[:ACTIVITY_ROWS])
    return f'<ul class="hl-activity">{items}</ul>'


def _short_sweep(sweep_id: str | None) -> str:
    return (
        (sweep_id or "")[len("sweep-") :]
        if (sweep_id or "").startswith("sweep-")
        else (sweep_id or "")
    )


def runs_list(data: SiteData) -> str:
    root = "../"
    out = [WIDE, "# Runs\n"]
    if not data.runs:
        return "".join([*out, block(empty("No runs indexed yet."))])
    names: list[str] = []
    for project in data.projects:
        for m in data.key_metrics.get(project, []):
            if m.name not in names:
                names.append(m.name)
    body = []
    for r in data.runs:
        key: Key = (r["project"], r["run_id"])
        tags = " ".join(f'<span class="hl-tag">{e(t)}</span>' for t in r.get("tags") or [])
        label = r.get("name") or r["run_id"]
        body.append(
            [
                f'<input type="checkbox" class="hl-pick" value="{e(r["project"])}/'
                f'{e(r["run_id"])}" aria-label="compare {e(label)}">',
                badge(r["status"]),
                run_link(r["project"], r["run_id"], root),
                e(r.get("name")),
                e(r["project"]),
                e(_short_sweep(r.get("sweep_id"))),
                *[num(data.metric_value(key, n)) for n in names],
                num(r.get("step")),
                when(r.get("created_at")),
                duration(r.get("duration_s")),
                tags,
            ]
        )
    headers = ["", "status", "run", "name", "project", "sweep", *[e(n) for n in names]]
    headers += ["step", "created", "duration", "tags"]
    sort = ["none"] + ["text"] * 5 + ["num"] * len(names) + ["num", "text", "num", "text"]
    out.append(
        block(
            '<div class="hl-filter"><input type="search" class="hl-filter-input" '
            'placeholder="Filter runs: text in any column (status, sweep, tag, ...)" '
            'aria-label="Filter runs"><span class="hl-filter-count"></span>'
            f'<span class="hl-compare-bar"><a class="hl-compare" data-max="{COMPARE_MAX}" '
            'aria-disabled="true">Compare (0)</a>'
            '<button type="button" class="hl-compare-clear" hidden>clear</button>'
            f'<span class="hl-compare-hint">tick 2 to {COMPARE_MAX} runs to compare them'
            "</span></span></div>"
        )
    )
    out.append(block(table(headers, body, cls="hl-sortable hl-runs", sort=sort)))
    return "".join(out)


def run_page() -> str:
    """The one page for every run: filled in by hpclab.js from the run's data files."""
    return (
        WIDE
        + "# Run\n"
        + block(
            '<div id="hl-run" class="hl-run-page"><p class="hl-empty">Loading the run… '
            "(the page reads its data with fetch: open the site through "
            "<code>hpclab site serve</code> or any web server, not as a file)</p></div>"
            + chart_specs()
        )
    )


def compare_page(data: SiteData) -> str:
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
    }
    doc_json = json.dumps(doc, separators=(",", ":")).replace("</", "<\\/")
    return (
        WIDE
        + "# Compare runs\n"
        + block(
            '<div id="hl-compare" class="hl-compare-page"><p class="hl-empty">Loading the '
            "runs… (the page reads their data with fetch: open the site through "
            "<code>hpclab site serve</code> or any web server, not as a file)</p></div>"
            f'<script type="application/json" class="hl-compare-data">{doc_json}</script>'
            + chart_specs()
        )
    )


def board(data: SiteData) -> str:
    root = ""
    out = [WIDE, "# Board\n"]
    cols = []
    for title, statuses in BOARD_COLUMNS:
        runs = [r for r in data.runs if r["status"] in statuses]
        cards = []
        for r in runs[:BOARD_CARDS]:
            key = (r["project"], r["run_id"])
            metrics = data.key_metrics.get(r["project"], [])
            metric = ""
            if metrics:
                value = num(data.metric_value(key, metrics[0].name))
                metric = f'<div class="hl-kcard-m">{e(metrics[0].name)} {value}</div>'
            progress = ""
            total = data.total_steps(key)
            if r["status"] == "running" and total and r.get("step") is not None:
                pct = max(0.0, min(100.0, 100.0 * (r["step"] + 1) / total))
                progress = f'<div class="hl-progress"><span style="width:{pct:.0f}%"></span></div>'
            link = run_link(r["project"], r["run_id"], root, r.get("name") or r["run_id"])
            sub = f"{e(r['project'])} · {e(_short_sweep(r.get('sweep_id')))}"
            if title == "failed":
                sub += " · " + badge(r["status"])
            cards.append(
                f'<div class="hl-kcard">{link}<div class="hl-kcard-sub">{sub}</div>'
                f"{metric}{progress}</div>"
            )
        more = (
            f'<div class="hl-kmore">and {len(runs) - BOARD_CARDS} more in '
            '<a href="runs/index.html">Runs</a></div>'
            if len(runs) > BOARD_CARDS
            else ""
        )
        cols.append(
            f'<section class="hl-kcol hl-kcol-{title}"><h3>{title.capitalize()} '
            f'<span class="hl-kcount">{len(runs)}</span></h3>'
            f"{''.join(cards) or empty('none')}{more}</section>"
        )
    out.append(block(f'<div class="hl-board">{"".join(cols)}</div>'))
    return "".join(out)


def chart_specs() -> str:
    """The line charts' Vega-Lite specs for hpclab.js (run and sweep), in the page."""
    specs = {
        "run": charts.line_spec(color="metric", height=220),
        "sweep": charts.line_spec(color="run", height=260),
    }
    spec_json = json.dumps(specs, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" class="hl-chart-specs">{spec_json}</script>'


def training() -> str:
    """The live page: hpclab.js polls data/live.json and redraws only what changed."""
    return (
        WIDE
        + "# Training\n"
        + block(
            '<div id="hl-training" class="hl-training">'
            '<p class="hl-live-status"><span class="hl-live-dot"></span>'
            '<span class="hl-live-text">connecting…</span></p>'
            '<div class="hl-live-jobs"></div><div class="hl-live-sweeps"></div>'
            f'<div class="hl-live-runs"></div>{chart_specs()}</div>'
        )
    )


def active_runs(data: SiteData) -> list[dict[str, Any]]:
    return [r for r in data.runs if r["status"] in ACTIVE]
