"""The Training tab lists only what is running or queued, each run with its last values
and a sparkline of its loss, and collapses the runs that just ended under the table
(issue 17). A real build, a real server and real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from site_fixtures import served_site

import hpclab
from hpclab.site.chromium import Chromium, find_chromium
from hpclab.store import Store

HOSTILE = '<img src=x onerror="window.pwned=1">'

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")


def test_training_lists_running_runs_with_last_values_and_a_sparkline(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    done = hpclab.init("lab", {"lr": 0.1}, store=store.root, name="finished-one")
    for step in range(10):
        done.log({"train/loss": 2.0 - 0.1 * step}, step=step)
    done.finish()
    live = hpclab.init("lab", {"lr": 0.01}, store=store.root, name=HOSTILE)
    n = 200
    for step in range(n):
        live.log({"train/loss": 1.0 / (1 + step)}, step=step)
        if step % 50 == 49:
            live.log({"val/loss": 0.5 + 1.0 / (1 + step)}, step=step)
    live.flush()
    try:
        with served_site(store, tmp_path / "site") as base, Chromium() as browser:
            page = browser.new_page()
            page.goto(base + "training.html")
            page.wait_for(
                "document.querySelector('.hl-jobs .hl-spark svg') !== null"
                " && document.querySelector('.hl-recent') !== null",
                timeout=30,
            )
            table = page.evaluate(
                "Array.from(document.querySelectorAll('table.hl-jobs:not(.hl-recent-jobs)"
                " tbody tr'), tr => ({run: tr.querySelector('a.hl-run').textContent,"
                " last: tr.querySelector('.hl-last').textContent,"
                " points: Number(tr.querySelector('.hl-spark svg').dataset.points),"
                " path: tr.querySelector('.hl-spark path').getAttribute('d')}))"
            )
            assert [r["run"] for r in table] == [HOSTILE]  # the finished run is not a job
            row = table[0]
            assert row["last"] == f"train/loss {1.0 / n:.4g} · val/loss {0.5 + 1.0 / n:.4g}"
            # at most 64 points plus the last one; the path starts high and ends low
            assert 2 < row["points"] <= 65 and row["path"].startswith("M")
            ys = [float(p.split(",")[1]) for p in row["path"].replace("M", "L").split("L")[1:]]
            assert ys[0] < ys[-1]  # SVG y grows downwards: the loss fell
            recent = page.evaluate(
                "(() => { const d = document.querySelector('details.hl-recent');"
                " return {open: d.open, summary: d.querySelector('summary').textContent,"
                " runs: Array.from(d.querySelectorAll('a.hl-run'), a => a.textContent),"
                " last: d.querySelector('.hl-last').textContent}; })()"
            )
            assert recent == {
                "open": False,
                "summary": "1 finished in the last 15 minutes",
                "runs": ["finished-one"],
                "last": f"train/loss {2.0 - 0.9:.4g}",
            }
            assert page.evaluate("window.pwned === undefined && !document.querySelector('img')")
            assert page.errors == [], page.errors
            page.close()
    finally:
        live.finish()
