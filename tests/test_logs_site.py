"""The run page shows the tail of a run's captured output, redacted and as text, and
keeps it current while the run runs (LiveSite rewrites data/logs/..., the page polls)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import poll, python_script

from hpclab.catalog.indexer import index_store
from hpclab.site.build import build
from hpclab.site.chromium import Chromium, find_chromium
from hpclab.site.layout import SiteLayout
from hpclab.site.live import LiveSite
from hpclab.site.serve import make_server, serve_in_thread, url_of
from hpclab.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from test_site_hostile import PROBE, _assert_inert  # noqa: E402

HOSTILE = "</script><script>alert(7)</script> <img src=x onerror=alert(1)>"
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # a GitHub token's shape

FAILING = f"""
import sys
import hpclab
run = hpclab.init(project="p", run_id="failing")
print("loading data")
print({HOSTILE!r}, file=sys.stderr)
print("using token {TOKEN} and password=hunter2", file=sys.stderr)
raise RuntimeError("diverged")
"""

LIVE = """
import hpclab
run = hpclab.init(project="p", run_id="live")
print("epoch 1", flush=True)
input()
print("epoch 2", flush=True)
input()
run.finish()
"""


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _start(store_root: Path, code: str, run_id: str) -> subprocess.Popen[str]:
    env = {"HPCLAB_STORE": str(store_root), "HPCLAB_RUN_ID": run_id}
    return python_script(code, env=env, stdin=subprocess.PIPE)


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_run_page_shows_the_redacted_tail_as_text_and_follows_it_live(store_root: Path) -> None:
    store = Store(store_root)
    failing = _start(store_root, FAILING, "failing")
    failing.communicate(timeout=60)
    assert failing.returncode != 0
    live = _start(store_root, LIVE, "live")
    live_paths = store.run_paths("p", "live")
    try:
        poll(lambda: "epoch 1" in _text(live_paths.stdout_log), message="the live run's output")
        index_store(store)
        build(store)
        layout = SiteLayout(store.site_dir)

        # the data: the tail, secrets replaced, markup kept as text for the page to escape
        details = json.loads(layout.details_json("p", "failing").read_text())
        logs = details["logs"]
        assert logs["stdout"] == ["loading data"]
        assert logs["stderr"][0] == HOSTILE
        assert TOKEN not in json.dumps(logs) and "hunter2" not in json.dumps(logs)
        assert logs["redacted"] == 1
        assert "RuntimeError: diverged" in logs["stderr"][-1]

        server = make_server(store.site_dir / "html", port=0)
        serve_in_thread(server)
        base = url_of(server)
        try:
            with Chromium() as browser:
                page = browser.new_page()
                page.send("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
                page.goto(base + "runs/run.html?p=p&id=failing")
                page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
                shown = page.evaluate(
                    "document.querySelector('.hl-run-output pre[data-stream=stderr]').innerText"
                )
                assert HOSTILE in shown and "RuntimeError: diverged" in shown
                assert TOKEN not in shown
                _assert_inert(page, base, "run page of the failing run")
                page.close()

                page = browser.new_page()
                page.goto(base + "runs/run.html?p=p&id=live")
                page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'")
                output = "document.querySelector('.hl-run-output').innerText"
                assert "epoch 1" in page.evaluate(output)
                assert "epoch 2" not in page.evaluate(output)
                live.stdin.write("\n")  # type: ignore[union-attr]
                live.stdin.flush()  # type: ignore[union-attr]
                poll(lambda: "epoch 2" in _text(live_paths.stdout_log), message="epoch 2")
                LiveSite(store).refresh([("p", "live")])  # what hpclab watch --site does
                page.wait_for(f"{output}.includes('epoch 2')", timeout=20)
                page.close()
        finally:
            server.shutdown()
            server.server_close()
    finally:
        live.communicate("\n", timeout=60)
    assert live.returncode == 0
