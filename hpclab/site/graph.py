"""The Graph tab: each project's experiment DAG, one collapsible group per sweep (and one
for the runs outside any sweep), each group's runs drawn as an SVG laid out here (no
layout engine in the browser): trees left to right by depth, runs with neither parent
nor child in the group in a compact grid below. Nodes are filled by status, ringed green
or red when the run improves or regresses on its parent's first key metric, and link to
run pages. A parent in another group is named in the group as a link ("parent: sweep /
run"), not drawn as a curve across groups.

The page holds the groups' headings only; a group's nodes are a data file
(``data/graph/<project>/<group>.json``, :func:`write_graph_data`) that hpclab.js draws
when the group is opened. Groups are open from the start while the page has at most
:data:`OPEN_NODES` runs, closed past that: 10,000 runs are 100 headings, not 10,000 SVG
nodes, until one is opened.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hpclab.catalog.diffs import under
from hpclab.site.data import SiteData
from hpclab.site.html import Html, css_token, empty, h, join, link, num
from hpclab.site.layout import SiteLayout, run_href
from hpclab.site.page import Page
from hpclab.site.redact import redact_config_value
from hpclab.site.series import write_json
from hpclab.store.record import STATUSES

DX, DY, R = 170, 30, 8
LABEL_COLUMNS = 6  # runs with neither parent nor child in the group: labelled columns
LABEL_KEYS = 3  # config values in a node's label
LABEL_CHARS = 26
COLOUR_METRICS = 3  # key metrics a group's nodes carry, for "colour by"
OPEN_NODES = 200  # the page opens every group while it has at most this many runs
PARENT_LINKS = 8  # parents in other groups named per group; the rest are counted
LOOSE = "_loose"  # the group of a project's runs outside any sweep (sweep ids are sweep-...)


@dataclass
class Group:
    """One sweep's runs (or the runs outside any sweep) of a project."""

    project: str
    id: str  # the sweep id, or LOOSE
    runs: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return "runs outside any sweep" if self.id == LOOSE else self.id


def graph_page(data: SiteData) -> Page:
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
    metrics = sorted({m.name for ms in data.key_metrics.values() for m in ms[:COLOUR_METRICS]})
    choose = (
        h(
            '<label class="hl-legend-item">colour by <select class="hl-graph-colour">'
            '<option value="">status</option>{}</select></label>',
            join(h('<option value="{}">{}</option>', m, m) for m in metrics),
        )
        if metrics
        else ""
    )
    page.add(
        h(
            '<div class="hl-legend">{}'
            '<span class="hl-legend-item hl-up">◯ improves on parent</span>'
            '<span class="hl-legend-item hl-down">◯ regresses</span>{}</div>',
            legend,
            choose,
        )
    )
    if not data.runs:
        return page.add(empty("No runs yet."))
    is_open = len(data.runs) <= OPEN_NODES
    if not is_open:
        page.add(
            h(
                '<p class="hl-facts">{} runs: open a group to draw its runs.</p>',
                f"{len(data.runs):,}",
            )
        )
    graph = _Graph(data)
    for project in data.projects:
        groups = graph.groups(project)
        if not groups:
            continue
        page.heading(2, project)
        page.add(join(_group_html(graph, g, is_open) for g in groups))
    return page


def _group_html(graph: _Graph, group: Group, is_open: bool) -> Html:
    counts = Counter(str(graph.runs[(group.project, rid)]["status"]) for rid in group.runs)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    outside = graph.outside_parents(group)
    parents = join(
        (
            h(
                "{} of {}",
                link(
                    run_href(group.project, p, ""),
                    h("{} / {}", graph.group_of(group.project, p).title, p),
                ),
                c,
            )
            for c, p in outside[:PARENT_LINKS]
        ),
        "; ",
    )
    more = h(" and {} more", len(outside) - PARENT_LINKS) if len(outside) > PARENT_LINKS else ""
    named = h('<p class="hl-graph-parents">parent: {}{}</p>', parents, more) if outside else ""
    return h(
        '<details class="hl-graph-group" data-project="{}" data-group="{}" data-src="{}"{}>'
        '<summary><span class="hl-graph-title">{}</span> <span class="hl-facts">{} runs · {}'
        "{}{}</span></summary>{}"
        '<div class="hl-graph-wrap"><p class="hl-empty hl-graph-loading">Drawing… {}</p></div>'
        "</details>",
        group.project,
        group.id,
        graph_src(group.project, group.id),
        Html(" open") if is_open else "",
        group.title,
        len(group.runs),
        statuses,
        h(" · {} with a parent in another group", len(outside)) if outside else "",
        _best(graph, group),
        named,
        Html("(the graph reads its data with fetch: open the site through a web server)"),
    )


def _best(graph: _Graph, group: Group) -> Html:
    """`` · best val/loss 0.123 (RUN)``: the group's best run on the first key metric."""
    metrics = graph.data.key_metrics.get(group.project, [])
    if not metrics:
        return Html("")
    m = metrics[0]
    values = [
        (v, rid)
        for rid in group.runs
        if (v := graph.data.metric_value((group.project, rid), m.name)) is not None
    ]
    if not values:
        return Html("")
    v, rid = (max if m.direction == "maximize" else min)(values)
    return h(" · best {} {} ({})", m.name, num(v), link(run_href(group.project, rid, ""), rid))


def graph_src(project: str, group: str) -> str:
    """The group's data file as the page fetches it (SiteLayout.graph_json)."""
    from urllib.parse import quote

    return f"data/graph/{quote(project, safe='')}/{quote(group, safe='')}.json"


class _Graph:
    """The runs, their groups and their parent edges, read once for the page and the data."""

    def __init__(self, data: SiteData) -> None:
        self.data = data
        self.runs = {(r["project"], r["run_id"]): r for r in data.runs}
        self.parents: dict[tuple[str, str], str] = {}
        for edge in data.edges:
            p, c = (edge["project"], edge["parent_id"]), (edge["project"], edge["child_id"])
            if p in self.runs and c in self.runs and c not in self.parents:
                self.parents[c] = edge["parent_id"]
        self._groups: dict[str, dict[str, Group]] = {}
        self._ignore: dict[str, tuple[str, ...]] = {}
        self._redacted: dict[tuple[str, str], Any] = {}
        self._of: dict[tuple[str, str], Group] = {}
        for r in data.runs:  # newest first (the catalog's order): groups by their newest run
            project, gid = r["project"], r.get("sweep_id") or LOOSE
            groups = self._groups.setdefault(project, {})
            g = groups.get(gid) or groups.setdefault(gid, Group(project, gid))
            g.runs.append(r["run_id"])
            self._of[(project, r["run_id"])] = g

    def groups(self, project: str) -> list[Group]:
        """The project's sweeps, newest first, then its runs outside any sweep."""
        gs = list(self._groups.get(project, {}).values())
        return [g for g in gs if g.id != LOOSE] + [g for g in gs if g.id == LOOSE]

    def group_of(self, project: str, run_id: str) -> Group:
        return self._of[(project, run_id)]

    def outside_parents(self, group: Group) -> list[tuple[str, str]]:
        """(child, parent) for the group's runs whose parent is in another group."""
        out = []
        for rid in sorted(group.runs):
            p = self.parents.get((group.project, rid))
            if p is not None and self._of[(group.project, p)] is not group:
                out.append((rid, p))
        return out

    def doc(self, group: Group) -> dict[str, Any]:
        """The group's drawing for hpclab.js (``graphGroup``): its size, its edges as
        ``[x1, y1, x2, y2]``, its nodes as ``[run_id, x, y, status, ring, label, title]``
        (ring: 1 improves on the parent, -1 regresses, 0 neither or unknown)."""
        project = group.project
        mine = set(group.runs)
        parents = {
            rid: p
            for rid in group.runs
            if (p := self.parents.get((project, rid))) is not None and p in mine
        }
        children: dict[str, list[str]] = {}
        for c, p in parents.items():
            children.setdefault(p, []).append(c)
        pos: dict[str, tuple[float, float]] = {}
        y = 0.0

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
        for rid in sorted(mine):
            if rid not in parents and rid in children:
                place(rid, 0, seen)
                y += DY / 2
        labels = distinguishing_labels(
            {rid: self._published_config(project, rid) for rid in group.runs},
            self.ignore(project),
        )
        lone = sorted((r for r in mine if r not in pos), key=lambda r: _label_order(labels, r))
        top = y + (DY / 2 if pos else 0)
        columns = max(1, min(LABEL_COLUMNS, math.ceil(len(lone) / 8)))
        for i, rid in enumerate(lone):  # labelled columns, in the order of the labels
            pos[rid] = ((i % columns) * DX, top + (i // columns) * DY)
        width = max(x for x, _ in pos.values()) + DX + 40
        height = max(yy for _, yy in pos.values()) + 2 * DY
        edges = [[round(v) for v in (*pos[p], *pos[c])] for c, p in parents.items()]
        metrics = self.data.key_metrics.get(project, [])[:COLOUR_METRICS]
        nodes = []
        for rid, (x, yy) in pos.items():
            r = self.runs[(project, rid)]
            parent = self.parents.get((project, rid))
            ring = 0
            if metrics and parent is not None:
                m = metrics[0]
                better = m.better(
                    self.data.metric_value((project, rid), m.name),
                    self.data.metric_value((project, parent), m.name),
                )
                ring = {True: 1, False: -1}.get(better, 0)  # type: ignore[arg-type]
            label = labels.get(rid) or r.get("name") or rid[-4:]
            status = css_token(str(r["status"]).lower())
            values = [self.data.metric_value((project, rid), m.name) for m in metrics]
            nodes.append(
                [rid, round(x), round(yy), status, ring, label, _tooltip(self.data, r), values]
            )
        return {
            "project": project,
            "width": round(width),
            "height": round(height),
            "edges": edges,
            "nodes": nodes,
            "metrics": [{"name": m.name, "direction": m.direction} for m in metrics],
        }

    def _published_config(self, project: str, rid: str) -> dict[str, str]:
        """The run's config as the site may show it: secrets redacted (a label names
        values, and the page is published)."""
        return {
            path: str(self._redact(path, value))
            for path, value in self.data.features.get((project, rid), {}).items()
        }

    def _redact(self, path: str, value: str) -> Any:
        key = (path, value)
        if key not in self._redacted:
            self._redacted[key] = redact_config_value(path, value)
        return self._redacted[key]

    def ignore(self, project: str) -> tuple[str, ...]:
        """Config paths a label leaves out: the project's ``features.ignore``."""
        from hpclab.catalog.project_config import load_project_config

        if project not in self._ignore:
            path = self.data.store.project_yaml(project)
            try:
                self._ignore[project] = load_project_config(path).feature_ignore
            except Exception:  # a malformed project.yaml: the indexer reports it
                self._ignore[project] = ("hpclab",)
        return self._ignore[project]


def distinguishing_labels(
    configs: dict[str, dict[str, str]], ignore: tuple[str, ...] = ("hpclab",)
) -> dict[str, str]:
    """Each run's label from the config values that differ among ``configs`` (run ->
    path -> JSON value): ``lr=0.01 seed=1``. A path goes by its last part unless two
    varying paths share it (then in full); at most LABEL_KEYS values, LABEL_CHARS
    characters. Runs whose configs are all alike get no label (the caller names them)."""
    paths = sorted({p for c in configs.values() for p in c if not under(p, ignore)})
    varying = [p for p in paths if len({c.get(p) for c in configs.values()}) > 1]
    if not varying:
        return {}
    last = Counter(_tail(p) for p in varying)
    short = {p: _tail(p) if last[_tail(p)] == 1 else p for p in varying}
    out = {}
    for rid, c in configs.items():
        parts = [f"{short[p]}={_value(c.get(p))}" for p in varying[:LABEL_KEYS]]
        text = " ".join(parts)
        out[rid] = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"
    return out


def _tail(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _value(raw: str | None) -> str:
    """A config value as a label shows it: strings without quotes, - when absent."""
    if raw is None:
        return "-"
    try:
        v = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(v, float):
        return f"{v:.4g}"
    return v if isinstance(v, str) else json.dumps(v)


def _label_order(labels: dict[str, str], rid: str) -> tuple[Any, ...]:
    """Runs by their label's values, numbers as numbers (lr=0.001 before lr=0.01)."""
    out: list[tuple[int, float, str]] = []
    for part in (labels.get(rid) or "").split(" "):
        value = part.split("=", 1)[-1]
        try:
            out.append((0, float(value), ""))
        except ValueError:
            out.append((1, 0.0, value))
    return (*out, rid)


def write_graph_data(data: SiteData, layout: SiteLayout) -> None:
    """Every group's drawing (``data/graph/<project>/<group>.json``), with the pages."""
    graph = _Graph(data)
    for project in data.projects:
        for group in graph.groups(project):
            write_json(layout.graph_json(project, group.id), graph.doc(group))


def _tooltip(data: SiteData, r: dict[str, Any]) -> str:
    project = r["project"]
    lines = [f"{r['run_id']} ({r['status']})"]
    if r.get("name"):
        lines.append(str(r["name"]))
    for m in data.key_metrics.get(project, [])[:3]:
        v = data.metric_value((project, r["run_id"]), m.name)
        lines.append(f"{m.name}: {'–' if v is None else f'{v:.4g}'}")
    return "\n".join(lines)
