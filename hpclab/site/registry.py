"""The site's pages, in one list: each entry is a page's path, its tab in the navigation
and the function that makes it. The pages MkDocs builds and the navigation it shows are
both derived from :data:`PAGES`, so they cannot disagree.

A tab whose pages come from the data (Reports: one per sweep and per hypothesis) has a
``children`` function; its pages join the tab's section in the navigation.

A new page is one entry (see ``docs/architecture.md``)::

    def notes(data: SiteData, costs: Costs) -> Page:
        return Page("Notes").heading(1, "Notes").add(h("<p>{}</p>", len(data.runs)))

    register_page(PageSpec("notes.md", "Notes", notes))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpclab.errors import SiteError
from hpclab.site import graph, pages, research, search_pages, sql_tables
from hpclab.site.cost import Cost
from hpclab.site.data import Key, SiteData
from hpclab.site.html import e
from hpclab.site.page import Page

Costs = dict[Key, Cost]
Make = Callable[[SiteData, Costs], Page]


@dataclass(frozen=True)
class ChildPage:
    """A page made from the data (one sweep's report): its path, its navigation title
    (text: escaped when the navigation is written) and the page."""

    path: str
    nav_title: str
    page: Page


@dataclass(frozen=True)
class PageSpec:
    """One page of the site.

    ``path`` is under ``docs/`` and ends in ``.md`` (MkDocs writes ``.html`` beside it);
    ``nav_title`` is its tab, or None for a page reached only by links (the run page);
    ``make`` builds it from the catalog's data and the runs' costs; ``children``, if
    given, makes the pages of the tab's section from the data.
    """

    path: str
    nav_title: str | None
    make: Make
    children: Callable[[SiteData, Costs], list[ChildPage]] | None = None

    def __post_init__(self) -> None:
        if not self.path.endswith(".md") or self.path.startswith("/") or ".." in self.path:
            raise ValueError(f"page path {self.path!r}: a relative path under docs/ ending in .md")


def _of_data(make: Callable[[SiteData], Page]) -> Make:
    return lambda data, costs: make(data)


def _fixed(make: Callable[[], Page]) -> Make:
    return lambda data, costs: make()


def _reports(data: SiteData, costs: Costs) -> list[ChildPage]:
    out = [
        ChildPage(
            research.sweep_report_path(s["project"], s["sweep_id"]),
            f"{s['project']} · {s['sweep_id']}",
            research.sweep_report(data, s, costs),
        )
        for s in data.sweeps
    ]
    out += [
        ChildPage(
            research.hypothesis_report_path(hyp["project"], hyp["hypothesis_id"]),
            f"{hyp['project']} · {hyp.get('title') or hyp['hypothesis_id']}",
            research.hypothesis_report(data, hyp, costs),
        )
        for hyp in data.hypotheses
    ]
    out += [
        ChildPage(
            search_pages.study_report_path(*key),
            f"{key[0]} · study {key[1]}",
            search_pages.study_report(data, key),
        )
        for key in sorted(data.search_trials)
    ]
    return out


# In navigation order; pages without a tab can go anywhere.
PAGES: list[PageSpec] = [
    PageSpec("index.md", "Overview", _of_data(pages.overview)),
    PageSpec("runs/index.md", "Runs", _of_data(pages.runs_list)),
    PageSpec("runs/run.md", None, _fixed(pages.run_page)),  # any run, from its data files
    PageSpec("runs/compare.md", None, _of_data(pages.compare_page)),  # ticked on Runs
    PageSpec("graph.md", "Graph", _of_data(graph.graph_page)),
    PageSpec("hypotheses.md", "Hypotheses", _of_data(research.hypotheses_page)),
    PageSpec("board.md", "Board", _of_data(pages.board)),
    PageSpec("training.md", "Training", _fixed(pages.training)),
    PageSpec("sql.md", "SQL", _of_data(sql_tables.sql_page)),  # issue 17
    PageSpec("reports/index.md", "Reports", _of_data(research.reports_index), _reports),
]


def register_page(spec: PageSpec) -> PageSpec:
    """Add a page to the site (at the end of the navigation); returns ``spec``."""
    if any(p.path == spec.path for p in PAGES):
        raise ValueError(f"a site page is already registered at {spec.path!r}")
    PAGES.append(spec)
    return spec


def unregister_page(path: str) -> None:
    """Remove the page registered at ``path`` (ValueError if there is none)."""
    for i, spec in enumerate(PAGES):
        if spec.path == path:
            del PAGES[i]
            return
    raise ValueError(f"no site page is registered at {path!r}")


@dataclass
class SiteDocs:
    """Every page of one build (path under docs/ -> page), its navigation in MkDocs' form
    and the pages left out of it."""

    pages: dict[str, Page] = field(default_factory=dict)
    nav: list[Any] = field(default_factory=list)
    not_in_nav: list[str] = field(default_factory=list)


def generate(data: SiteData, costs: Costs) -> SiteDocs:
    """Make every registered page and its children, and the navigation from the same walk.
    MkDocs' theme prints navigation titles as HTML: they are escaped here."""
    docs = SiteDocs()

    def put(path: str, page: Page) -> None:
        if path in docs.pages:
            raise SiteError(f"two site pages at {path!r}")
        docs.pages[path] = page

    for spec in list(PAGES):
        put(spec.path, spec.make(data, costs))
        children = spec.children(data, costs) if spec.children else []
        for child in children:
            put(child.path, child.page)
        if spec.nav_title is None:
            docs.not_in_nav.append(spec.path)
            continue
        title = str(e(spec.nav_title))
        if spec.children is None:
            docs.nav.append({title: spec.path})
        else:
            section: list[Any] = [spec.path]
            section += [{str(e(c.nav_title)): c.path} for c in children]
            docs.nav.append({title: section})
    return docs
