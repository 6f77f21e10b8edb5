"""Alerts: project.yaml rules evaluated after indexing passes, each match sent once to a
real local webhook server and a real local SMTP server (aiosmtpd), recorded in the
project's alerts.jsonl (a restarted watcher sends nothing twice), retried after a failed
delivery, shown on the site's Overview; history is not news; bad rules are one line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import hpclab_cli

import hpclab
from hpclab.catalog.alerts import Alerts
from hpclab.catalog.indexer import index_store
from hpclab.catalog.project_config import load_project_config
from hpclab.errors import ConfigError
from hpclab.store import RunStatus, Store
from hpclab.store.record import RunRecord

QUIET = {"snapshot_code": False, "snapshot_env": False, "capture_output": "off",
         "system_interval": 0}  # fmt: skip


class Hook:
    """A webhook receiver: every JSON body it was posted; answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(n))
                if hook.status == 200:
                    hook.bodies.append(body)
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/lab"

    def texts(self) -> list[str]:
        return [b["text"] for b in self.bodies]


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Any]]]:
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    got: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            got.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free port (the controller checks it by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = aiosmtpd.Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, got
    finally:
        controller.stop()


def _project(store: Path, hook: Hook, port: int | None, *rules: dict[str, Any]) -> None:
    notify: dict[str, Any] = {"webhook": hook.url}
    if port is not None:
        notify |= {"email": ["me@lab.org"], "smtp": {"host": "127.0.0.1", "port": port,
                                                     "from": "hpclab@lab.org"}}  # fmt: skip
    (store / "lab").mkdir(parents=True, exist_ok=True)
    (store / "lab" / "project.yaml").write_text(
        yaml.safe_dump({"notify": notify, "alerts": list(rules)})
    )


def _run(store: Path, name: str, points: list[dict[str, float]], fail: bool = False) -> str:
    run = hpclab.Run(project="lab", store=store, config={"x": 1}, name=name, settings=QUIET)
    for step, row in enumerate(points):
        run.log(row, step=step)
    run.finish(status=RunStatus.FAILED if fail else RunStatus.COMPLETED)
    assert run.paths is not None
    return run.paths.id


def _pass(store: Path, alerts: Alerts) -> list[dict[str, Any]]:
    index_store(Store(store), reconcile=False)
    return alerts()


def test_rules_fire_once_to_webhook_and_email_and_history_is_not_news(
    tmp_path: Path, hook: Hook, smtp: tuple[int, list[Any]]
) -> None:
    port, mails = smtp
    store = tmp_path / "store"
    _project(
        store, hook, port,
        {"when": "increases", "metric": "val/loss", "for": 3},
        {"when": "failed"},
        {"when": "nan", "metric": "train/loss"},
    )  # fmt: skip
    old = _run(store, "old-failure", [{"train/loss": 1.0}], fail=True)
    lines: list[str] = []
    alerts = Alerts(Store(store), echo=lines.append)
    assert _pass(store, alerts) == []  # the first look arms the rules: history, not news
    assert hook.bodies == [] and mails == []
    # now, news: a loss that rises 3 evals in a row, a NaN, a failure; and a run whose loss
    # rises only twice, which must not fire
    _run(store, "rising", [{"val/loss": v} for v in (1.0, 0.5, 0.6, 0.7, 0.8)])
    _run(store, "wobbly", [{"val/loss": v} for v in (1.0, 0.5, 0.6, 0.7, 0.65)])
    # a streak that fell again before the pass looked: still a streak
    _run(store, "peaked", [{"val/loss": v} for v in (1.0, 0.5, 0.6, 0.7, 0.8, 0.3)])
    _run(store, "nan", [{"train/loss": 1.0}, {"train/loss": math.nan}])
    broken = _run(store, "broken", [{"train/loss": 1.0}], fail=True)
    fired = _pass(store, alerts)
    assert sorted(a["kind"] for a in fired) == ["failed", "increases", "increases", "nan"]
    texts = hook.texts()
    assert len(texts) == 4
    assert any("peaked (lab): val/loss increased for 3 evals" in t for t in texts)
    assert any("rising (lab): val/loss increased for 3 evals (0.5 at step 1 to 0.8" in t
               for t in texts)  # fmt: skip
    assert any("nan (lab): train/loss is NaN or inf at step 1" in t for t in texts)
    assert any("run broken (lab) failed" in t for t in texts)
    assert not any("old-failure" in t or "wobbly" in t for t in texts)
    assert all(b["content"] == b["text"] for b in hook.bodies)  # Discord reads content
    assert {b["hpclab"]["run_id"] for b in hook.bodies if b["hpclab"]["kind"] == "failed"} == {
        broken
    }
    assert len(mails) == 4 and all(m.rcpt_tos == ["me@lab.org"] for m in mails)
    assert any(b"Subject: hpclab: run broken (lab) failed" in m.content for m in mails)
    assert sum(line.startswith("ALERT lab:") for line in lines) == 4
    # another pass, and a new watcher (a restart): nothing is sent twice
    assert _pass(store, alerts) == []
    assert _pass(store, Alerts(Store(store), echo=lines.append)) == []
    assert len(hook.bodies) == 4 and len(mails) == 4
    listed = hpclab_cli(store, "alerts", "--json")
    assert listed.returncode == 0, listed.stderr
    got = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(a["kind"] for a in got) == ["failed", "increases", "increases", "nan"]
    assert old not in {a["run_id"] for a in got}
    # a rule added while the watcher runs takes the runs already there as history
    _project(store, hook, port, {"when": "nan"}, {"when": "failed"})
    assert _pass(store, alerts) == []
    assert len(hook.bodies) == 4


def test_a_failed_delivery_is_one_warning_and_is_sent_after_the_next_pass(
    tmp_path: Path, hook: Hook
) -> None:
    store = tmp_path / "store"
    _project(store, hook, None, {"when": "failed"})
    lines: list[str] = []
    alerts = Alerts(Store(store), echo=lines.append)
    _pass(store, alerts)
    hook.status = 503
    _run(store, "broken", [{"loss": 1.0}], fail=True)
    _pass(store, alerts)
    _pass(store, alerts)
    warnings = [line for line in lines if "alert webhook failed (HTTP 503)" in line]
    assert len(warnings) == 1 and hook.bodies == []
    hook.status = 200
    _pass(store, alerts)
    assert len(hook.bodies) == 1 and "run broken (lab) failed" in hook.bodies[0]["text"]
    _pass(store, Alerts(Store(store), echo=lines.append))  # delivered: not sent again
    assert len(hook.bodies) == 1


def test_silent_runs_and_finished_sweeps(tmp_path: Path, hook: Hook) -> None:
    from hpclab.launch.sweep import PlannedPoint, plan_sweep

    store = tmp_path / "store"
    _project(store, hook, None, {"when": "no_heartbeat", "minutes": 10},
             {"when": "sweep_finished"})  # fmt: skip
    s = Store(store)
    s.ensure_version()
    now = [time.time()]
    alerts = Alerts(s, echo=lambda _: None, clock=lambda: now[0])
    _pass(store, alerts)
    plan = plan_sweep(
        s, "lab", [PlannedPoint(i, [f"x={i}"], {"x": i}) for i in range(2)], launcher="local"
    )
    running = s.create_run_dir("lab")
    beat = datetime.now(timezone.utc) - timedelta(minutes=3)
    s.write_record(running, RunRecord(
        id=running.id, project="lab", status=RunStatus.RUNNING, name="silent",
        heartbeat_at=beat.isoformat(), started_at=beat.isoformat(),
    ))  # fmt: skip
    assert _pass(store, alerts) == []  # 3 min silent, sweep not finished
    now[0] += 8 * 60  # 11 minutes after the last heartbeat
    fired = _pass(store, alerts)
    assert [a["kind"] for a in fired] == ["no_heartbeat"]
    assert "run silent (lab): no heartbeat for 10 min" in hook.texts()[0]
    for i, p in enumerate(plan.points):  # the sweep's runs end: one completed, one failed
        paths = s.run_paths("lab", p.run_id)
        record = s.read_record(paths)
        record.status = RunStatus.COMPLETED if i == 0 else RunStatus.FAILED
        record.ended_at = record.started_at = record.heartbeat_at = record.created_at
        s.write_record(paths, record)
        fired = _pass(store, alerts)  # the sweep ends with its second run, not before
        assert [a["kind"] for a in fired] == ([] if i == 0 else ["sweep_finished"])
    texts = hook.texts()
    assert sum("finished" in t for t in texts) == 1
    assert f"sweep {plan.id} (lab) finished: 1 of 2 runs completed" in texts[-1]


def test_hpclab_watch_sends_alerts_and_the_overview_shows_them(tmp_path: Path, hook: Hook) -> None:
    store = tmp_path / "store"
    _project(store, hook, None, {"when": "failed"})
    s = Store(store)
    s.ensure_version()
    env = {**os.environ, "HPCLAB_STORE": str(store)}
    watch = subprocess.Popen(
        [sys.executable, "-m", "hpclab", "--store", str(store), "watch", "--polling",
         "--interval", "0.2", "--scheduler-every", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (store / "lab" / "alerts.jsonl").exists():  # armed by its first pass
            assert time.monotonic() < deadline and watch.poll() is None
            time.sleep(0.05)
        _run(store, "<img src=x onerror=alert(1)>", [{"loss": 1.0}], fail=True)
        while not hook.bodies:
            assert time.monotonic() < deadline and watch.poll() is None, "no alert sent"
            time.sleep(0.05)
    finally:
        watch.terminate()
        out, _ = watch.communicate(timeout=30)
    assert "ALERT lab: run <img src=x onerror=alert(1)> (lab) failed" in out
    built = hpclab_cli(store, "site", "build", "--out", str(tmp_path / "site"))
    assert built.returncode == 0, built.stderr
    html = (tmp_path / "site" / "html" / "index.html").read_text()
    assert "Alerts" in html and "&lt;img src=x onerror=alert(1)&gt; (lab) failed" in html
    assert "<img src=x" not in html


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ({"alerts": [{"when": "failled"}]}, "alerts[0]: when: 'failled' is not one of"),
        ({"alerts": [{"when": "increases"}]}, "alerts[0]: metric: `increases` needs"),
        ({"alerts": [{"when": "increases", "metric": "l", "fro": 3}]}, "unknown key 'fro'"),
        ({"alerts": [{"when": "failed", "webhook": "hooks.slack.com"}]}, "an http:// or"),
        ({"alerts": [{"when": "failed", "email": "me@lab.org"}]}, "email alerts need an SMTP"),
        ({"alerts": [{"when": "no_heartbeat", "minutes": -1}]}, "minutes: expected a positive"),
        ({"alert": []}, "unknown key 'alert'"),
    ],
)
def test_a_bad_rule_is_one_line_naming_the_file_and_field(
    tmp_path: Path, rules: dict[str, Any], words: str
) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(yaml.safe_dump(rules))
    with pytest.raises(ConfigError) as err:
        load_project_config(path)
    assert str(path) in str(err.value) and words in str(err.value)
    assert "\n" not in str(err.value)
