"""Where the website's files go. :class:`SiteLayout` is the only code that knows file names
under a site directory (the store's layout is :class:`~hpclab.store.Store`'s)::

    <site>/src/mkdocs.yml  src/overrides/  src/docs/*.md   the MkDocs project (generated)
    <site>/html/                                          the built site: serve or publish this
    <site>/html/data/live.json                            running and queued runs (polled)
    <site>/html/data/series/<project>/<run_id>.parquet    a run's metric series (downsampled)
    <site>/html/data/details/<project>/<run_id>.json      a run's config, code, artifacts, ...
    <site>/html/data/pages.json                           what the pages were generated from
    <site>/html/data/runs-list.json                       the Runs list's rows (one per run)
    <site>/html/data/runs-config.json                     its config and metric columns
    <site>/html/data/graph/<project>/<group>.json         a Graph group's drawing (a sweep's)
    <site>/cache/                                         Vega bundle (if ~/.cache is read-only)

``data/`` is written by hpclab, not by MkDocs: a page rebuild replaces the pages around it
and leaves it alone, and a live update rewrites a few files in it, never a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class SiteLayout:
    """Every path under one site directory."""

    dir: Path

    @property
    def src(self) -> Path:
        return self.dir / "src"

    @property
    def docs(self) -> Path:
        return self.src / "docs"

    @property
    def mkdocs_yml(self) -> Path:
        return self.src / "mkdocs.yml"

    @property
    def html(self) -> Path:
        return self.dir / "html"

    @property
    def cache(self) -> Path:
        return self.dir / "cache"

    @property
    def data(self) -> Path:
        return self.html / "data"

    @property
    def live_json(self) -> Path:
        return self.data / "live.json"

    @property
    def pages_json(self) -> Path:
        return self.data / "pages.json"

    @property
    def runs_list_json(self) -> Path:
        return self.data / "runs-list.json"

    @property
    def runs_config_json(self) -> Path:
        """The Runs table's config and summary-metric columns (site/runs_table.py)."""
        return self.data / "runs-config.json"

    def series_parquet(self, project: str, run_id: str) -> Path:
        """A run's metric series (site/series.py: long format, read by hyparquet)."""
        return self.data / "series" / project / f"{run_id}.parquet"

    def full_series_parquet(self, project: str, run_id: str) -> Path:
        """Every point of a run whose series file was cut to MAX_POINTS a metric (the same
        columns): what a zoomed chart fetches for the range it shows."""
        return self.data / "series-full" / project / f"{run_id}.parquet"

    @property
    def legacy_series(self) -> Path:
        """Where builds before the Parquet files put the series (``runs/*/*.json``)."""
        return self.data / "runs"

    @property
    def series_scratch(self) -> Path:
        """The full build's partitioned output before its files are renamed into place."""
        return self.dir / ".series-build"

    def details_json(self, project: str, run_id: str) -> Path:
        return self.data / "details" / project / f"{run_id}.json"

    def graph_json(self, project: str, group: str) -> Path:
        """One group of the Graph page (a sweep's runs, or those outside any sweep)."""
        return self.data / "graph" / project / f"{group}.json"

    def logs_json(self, project: str, run_id: str) -> Path:
        """The tail of a run's stdout/stderr, rewritten while it runs (site/logtail.py)."""
        return self.data / "logs" / project / f"{run_id}.json"

    def built(self) -> bool:
        return (self.html / "index.html").is_file()


RUN_PAGE = "runs/run.html"  # the one page that shows any run: run.html?p=PROJECT&id=RUN


def run_href(project: str, run_id: str, root: str = "") -> str:
    """Link to a run's page from a page ``root`` levels below the site root ("../")."""
    return f"{root}{RUN_PAGE}?p={quote(project, safe='')}&id={quote(run_id, safe='')}"
