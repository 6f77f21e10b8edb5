"""The Graph tab: each project's experiment DAG as an SVG drawn here (no layout engine in
the browser, nothing to load): trees left to right by depth, runs with neither parent
nor child in a compact grid below. Nodes are filled by status, ringed green or red when
the run improves or regresses on its parent's first key metric, and link to run pages.
"""

from __future__ import annotations

from typing import Any

from hpclab.site.data import SiteData
from hpclab.site.html import Html, css_token, empty, h, join, link
from hpclab.site.layout import run_href
from hpclab.site.page import Page
from hpclab.store.record import STATUSES

DX, DY, R = 170, 30, 8
GRID_COLUMNS = 24
GRID_DX = 28


def graph_page(data: SiteData) -> Page:
    root = ""
    page = Page("Graph", wide=True).heading(1, "Graph", in_toc=False)
    # colours: hpclab.css's --hl-<status> (the site's one colour map), through the class
    legend = join(
        h(
            '<span class="hl-legend-item"><svg width="12" height="12"><circle cx="6" cy="6" '
            'r="5" class="hl-fill-{}"/></svg>{}</span>',
            s,
            s,
        )
        for s in STATUSES
    )
    page.add(
        h(
            '<div class="hl-legend">{}'
            '<span class="hl-legend-item hl-up">◯ improves on parent</span>'
            '<span class="hl-legend-item hl-down">◯ regresses</span></div>',
            legend,
        )
    )
    if not data.runs:
        return page.add(empty("No runs yet."))
    for project in data.projects:
        page.heading(2, project)
        page.add(project_svg(data, project, root))
    return page


def project_svg(data: SiteData, project: str, root: str) -> Html:
    runs = {r["run_id"]: r for r in data.runs if r["project"] == project}
    children: dict[str, list[str]] = {}
    parents: dict[str, str] = {}
    for edge in data.edges:
        if edge["project"] != project:
            continue
        p, c = edge["parent_id"], edge["child_id"]
        if p in runs and c in runs and c not in parents:
            parents[c] = p
            children.setdefault(p, []).append(c)
    pos: dict[str, tuple[float, float]] = {}
    y = 0.0
    in_tree = [rid for rid in sorted(runs) if rid not in parents and rid in children]

    def place(rid: str, depth: int, seen: set[str]) -> float:
        nonlocal y
        seen.add(rid)
        kids = [k for k in sorted(children.get(rid, [])) if k not in seen]
        if not kids:
            pos[rid] = (depth * DX, y)
            y += DY
            return pos[rid][1]
        ys = [place(k, depth + 1, seen) for k in kids]
        pos[rid] = (depth * DX, (min(ys) + max(ys)) / 2)
        return pos[rid][1]

    seen: set[str] = set()
    for rid in in_tree:
        place(rid, 0, seen)
        y += DY / 2
    lone = [rid for rid in sorted(runs) if rid not in pos]
    top = y + (DY / 2 if pos else 0)
    for i, rid in enumerate(lone):
        pos[rid] = ((i % GRID_COLUMNS) * GRID_DX, top + (i // GRID_COLUMNS) * GRID_DX)
    width = max(x for x, _ in pos.values()) + DX + 40
    height = max(yy for _, yy in pos.values()) + 2 * DY
    parts = [
        h(
            '<svg class="hl-graph" data-project="{}" viewBox="-20 -20 {} {}" width="{}" '
            'height="{}" role="img" aria-label="experiment DAG of {}">',
            project,
            f"{width:.0f}",
            f"{height:.0f}",
            f"{width:.0f}",
            f"{height:.0f}",
            project,
        )
    ]
    for c, p in parents.items():
        (x1, y1), (x2, y2) = pos[p], pos[c]
        mx = (x1 + x2) / 2
        d = f"M{x1:.0f},{y1:.0f} C{mx:.0f},{y1:.0f} {mx:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
        parts.append(h('<path class="hl-edge" d="{}"/>', d))
    metrics = data.key_metrics.get(project, [])
    for rid, (x, yy) in pos.items():
        r = runs[rid]
        ring = ""
        if metrics and rid in parents:
            m = metrics[0]
            better = m.better(
                data.metric_value((project, rid), m.name),
                data.metric_value((project, parents[rid]), m.name),
            )
            ring = {True: " hl-node-up", False: " hl-node-down"}.get(better, "")  # type: ignore[arg-type]
        label = r.get("name") or rid[-4:] if rid in parents or rid in children else ""
        text = (
            h('<text x="{}" y="{}">{}</text>', f"{x + R + 4:.0f}", f"{yy + 4:.0f}", label)
            if label
            else Html("")
        )
        node = h(
            '<g class="hl-node{}" data-run="{}"><title>{}</title>'
            '<circle cx="{}" cy="{}" r="{}" class="hl-fill-{}"/>{}</g>',
            ring,
            rid,
            _tooltip(data, project, r),
            f"{x:.0f}",
            f"{yy:.0f}",
            R,
            css_token(str(r["status"]).lower()),
            text,
        )
        parts.append(link(run_href(project, rid, root), node))
    parts.append(Html("</svg>"))
    return h('<div class="hl-graph-wrap">{}</div>', join(parts))


def _tooltip(data: SiteData, project: str, r: dict[str, Any]) -> str:
    lines = [f"{r['run_id']} ({r['status']})"]
    if r.get("name"):
        lines.append(str(r["name"]))
    for m in data.key_metrics.get(project, [])[:3]:
        v = data.metric_value((project, r["run_id"]), m.name)
        lines.append(f"{m.name}: {'–' if v is None else f'{v:.4g}'}")
    return "\n".join(lines)
