"""A small but complete store for the site's tests: two sweeps of finished runs written by
``scripts/make_bench_store.py`` (seed groups, comparisons and a Pareto front follow from
them), a project with key metrics, an explicit parent and child run logged through
``hpclab.init`` (one value NaN), notes, and a hypothesis over one sweep. Indexed."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

import hpclab
from hpclab.catalog.indexer import index_store
from hpclab.site.build import build
from hpclab.site.layout import SiteLayout
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

REPO = Path(__file__).resolve().parents[1]
BENCH_RUNS = 24  # 2 sweeps x 12 points: 4 lrs x 3 weight decays, seed 0


def make_site_store(root: Path) -> Store:
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_bench_store.py"),
            str(root),
            "--runs",
            str(BENCH_RUNS),
            "--steps",
            "300",
            "--sweeps",
            "2",
            "--jobs",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    store = Store(root)
    (root / "bench" / "project.yaml").write_text(
        yaml.safe_dump({"key_metrics": [{"name": "val/loss", "direction": "minimize"}]})
    )
    sweeps = sorted(p.stem for p in store.sweeps_dir("bench").glob("*.json"))
    store.hypotheses_dir("bench").mkdir(parents=True, exist_ok=True)
    store.hypothesis_yaml("bench", "lr-matters").write_text(
        yaml.safe_dump(
            {
                "title": "A larger learning rate lowers val/loss",
                "metrics": [{"name": "val/loss", "direction": "minimize"}],
                # a fixed run of the other sweep ("best" needs a group of 3 seeds; these
                # sweeps have one seed per point)
                "baseline": store.read_sweep("bench", sweeps[1]).points[0].run_id,
                "select": [{"sweep": sweeps[0]}],
            }
        )
    )
    parent = log_run(store, "base", {"optim": {"lr": 0.01}, "train": {"steps": 40}}, None)
    child = log_run(store, "lower-lr", {"optim": {"lr": 0.001}, "train": {"steps": 40}}, parent)
    store.run_paths("lab", child).notes_yaml.write_text(
        yaml.safe_dump({"tags": ["PUBLISH"], "text": "best so far"})
    )
    index_store(store)
    return store


def log_run(store: Store, name: str, config: dict, parent: str | None) -> str:
    run = hpclab.init("lab", config, name=name, parent=parent, store=store.root)
    scale = 1.0 if parent is None else 0.7
    for step in range(40):
        values = {"train/loss": scale * math.exp(-step / 15)}
        if step % 10 == 9:
            values["val/loss"] = math.nan if step == 19 else scale * math.exp(-step / 18)
        run.log(values, step=step)
    run.finish()
    return run.id


def run_page_text(store: Store, project: str, run_id: str) -> tuple[str, int]:
    """Index ``store``, build its site, open the run's page in headless Chromium and
    return the rendered page's text and how many ``<img>`` elements it holds (asserting
    the page logged no error)."""
    from hpclab.site.build import build
    from hpclab.site.chromium import Chromium
    from hpclab.site.serve import make_server, serve_in_thread, url_of

    index_store(store)
    build(store)
    server = make_server(store.site_dir / "html", port=0)
    serve_in_thread(server)
    try:
        with Chromium() as browser:
            page = browser.new_page()
            page.goto(f"{url_of(server)}runs/run.html?p={project}&id={run_id}")
            page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
            text = page.evaluate("document.getElementById('hl-run').innerText")
            images = page.evaluate("document.querySelectorAll('#hl-run img').length")
            assert page.errors == [], page.errors
            page.close()
    finally:
        server.shutdown()
        server.server_close()
    return str(text), int(images)


@contextmanager
def served_site(store: Store, site: Path) -> Iterator[str]:
    """The store indexed, its site built under ``site`` and served on a free port:
    yields the server's base URL (shut down after the block)."""
    index_store(store)
    layout = SiteLayout(site)
    build(store, layout.dir)
    server = make_server(layout.html, port=0)
    serve_in_thread(server)
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()
