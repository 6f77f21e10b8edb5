"""The site's page registry: the pages and the navigation come from one list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hpclab.site.build import build
from hpclab.site.cost import Cost
from hpclab.site.data import Key, SiteData
from hpclab.site.html import h
from hpclab.site.layout import SiteLayout
from hpclab.site.page import Page
from hpclab.site.registry import PAGES, PageSpec, register_page, unregister_page
from hpclab.store import Store


def _lab_notes(data: SiteData, costs: dict[Key, Cost]) -> Page:
    return (
        Page("Lab notes")
        .heading(1, "Lab notes", in_toc=False)
        .add(h("<p>{} runs, written by a registered page <b>here</b></p>", len(data.runs)))
    )


@pytest.fixture
def lab_notes() -> Iterator[PageSpec]:
    spec = register_page(PageSpec("notes/lab.md", "Lab <notes>", _lab_notes))
    try:
        yield spec
    finally:
        unregister_page(spec.path)


def test_a_registered_page_is_built_and_in_the_nav(tmp_path: Path, lab_notes: PageSpec) -> None:
    store = Store(tmp_path / "store")
    store.root.mkdir()
    build(store)
    layout = SiteLayout(store.site_dir)
    page = (layout.html / "notes" / "lab.html").read_text()
    assert "0 runs, written by a registered page <b>here</b>" in page
    nav = yaml.safe_load(layout.mkdocs_yml.read_text())["nav"]
    assert nav[-1] == {"Lab &lt;notes&gt;": "notes/lab.md"}  # last tab, title escaped
    index = (layout.html / "index.html").read_text()
    assert 'href="notes/lab.html"' in index and "Lab &lt;notes&gt;" in index
    assert "Lab <notes>" not in index


def test_every_built_in_page_has_one_entry() -> None:
    paths = [p.path for p in PAGES]
    assert len(paths) == len(set(paths))
    tabs = [p.nav_title for p in PAGES if p.nav_title]
    assert tabs == [
        "Overview",
        "Runs",
        "Graph",
        "Hypotheses",
        "Board",
        "Training",
        "SQL",
        "Reports",
    ]


def test_a_page_path_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered at 'index.md'"):
        register_page(PageSpec("index.md", "Again", _lab_notes))
    with pytest.raises(ValueError, match="ending in .md"):
        PageSpec("notes.html", "Notes", _lab_notes)
    with pytest.raises(ValueError, match="no site page is registered at 'nope.md'"):
        unregister_page("nope.md")
