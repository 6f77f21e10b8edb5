"""Alerts: the rules of each project's ``project.yaml`` (:mod:`~hpclab.catalog.alert_rules`)
evaluated against the catalog after each pass of ``hpclab watch``, each match sent once
(:mod:`~hpclab.catalog.alerts_log`) to the rule's webhook and email and printed as a line.

Per pass the cost is a few queries per project over the small tables (runs, metric
summaries, sweep points); metric points are read only for runs whose points changed since
the last evaluation (their count in ``metric_summary``), so a quiet 10,000-run store
costs the same as a small one. A rule fires once per run (``increases``, ``failed``,
``nan``), per sweep (``sweep_finished``) or per silence (``no_heartbeat``: again if the
run beats and goes silent again). What a rule matches when it is first evaluated is
history, not news: recorded, never sent. A target that fails (a webhook down, SMTP
refusing) is one warning line; the alert is sent again after the next pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from hpclab.catalog import alerts_log
from hpclab.catalog.alert_delivery import post_webhook, send_email
from hpclab.catalog.alert_rules import Alerting, AlertRule
from hpclab.errors import HpclabError
from hpclab.store import Store
from hpclab.store.record import FINAL_STATUSES

FINAL = tuple(sorted(s.value for s in FINAL_STATUSES))
RETRIES_PER_PASS = 50


class Alerts:
    """Evaluates every project's rules; call it after each indexing pass."""

    def __init__(
        self,
        store: Store,
        *,
        echo: Callable[[str], None] = print,
        clock: Callable[[], float] = time.time,
        every: float = 0.0,
    ) -> None:
        self.store = store
        self.echo = echo
        self.clock = clock
        self.every = every  # at most one evaluation this often (watch passes can be many)
        self._last = -float("inf")
        self._points: dict[tuple[str, str], int] = {}  # (project, run) -> points seen
        self._warned: set[str] = set()

    def __call__(self, report: Any = None) -> list[dict[str, Any]]:
        """One evaluation of every project's rules; the alerts fired now."""
        from hpclab.catalog.connect import connect

        if time.monotonic() - self._last < self.every:
            return []
        self._last = time.monotonic()
        projects = [p for p in self._with_settings() if self._alerting(p).rules]
        if not projects:
            return []
        fired: list[dict[str, Any]] = []
        con = connect(self.store)
        try:
            for project in projects:
                fired += self._project(con, project, self._alerting(project))
        finally:
            con.close()
        return fired

    def _with_settings(self) -> list[str]:
        """Projects with a project.yaml (rules can be armed before the first run)."""
        from hpclab.store.layout import check_project_name

        out = []
        root = self.store.root
        for child in sorted(root.iterdir()) if root.is_dir() else []:
            try:
                check_project_name(child.name)
            except HpclabError:
                continue
            if (child / "project.yaml").is_file():
                out.append(child.name)
        return out

    # -- one project ---------------------------------------------------------------------
    def _alerting(self, project: str) -> Alerting:
        from hpclab.catalog.project_config import load_project_config

        try:
            return load_project_config(self.store.project_yaml(project)).alerting
        except HpclabError as e:  # the indexer reports project.yaml too; warn once here
            self._warn(f"alerts off for project {project}: {e}")
            return Alerting()

    def _project(self, con: Any, project: str, alerting: Alerting) -> list[dict[str, Any]]:
        try:
            state = alerts_log.read_state(self.store, project)
        except HpclabError as e:  # unreadable: sending anything could send it twice
            self._warn(f"alerts off for project {project}: {e}")
            return []
        now = self.clock()
        at = datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec="seconds")
        changed = self._changed_runs(con, project)
        entries: list[dict[str, Any]] = []
        fired: list[dict[str, Any]] = []
        everyone: set[str] | None = None
        for rule in alerting.rules:
            looked = changed
            if rule.id not in state.armed:  # a new rule takes every run as history
                if everyone is None:
                    everyone = {r for (p, r) in self._points if p == project}
                looked = everyone
            matches = self._matches(con, project, rule, looked, now)
            if rule.id not in state.armed:  # the first look: history, not news
                entries.append({"event": "armed", "rule": rule.id, "at": at})
                entries += [{"event": "baseline", "key": m["key"], "at": at} for m in matches]
                state.armed.add(rule.id)
                state.seen.update(m["key"] for m in matches)
                continue
            for m in matches:
                if m["key"] in state.seen:
                    continue
                state.seen.add(m["key"])
                alert = {"event": "fired", "rule": rule.id, "at": at, "project": project, **m}
                entries.append(alert)
                fired.append(alert)
        alerts_log.append(self.store, project, entries)
        by_rule = {r.id: r for r in alerting.rules}
        for alert in fired:
            self.echo(f"ALERT {project}: {alert['message']}")
        pending = [a for a in state.fired[-RETRIES_PER_PASS:] if a.get("rule") in by_rule] + fired
        delivered: list[dict[str, Any]] = []
        down: set[str] = set()  # targets that failed this pass: not tried again until next
        for alert in pending:
            delivered += self._deliver(alert, by_rule[alert["rule"]], alerting, state, down)
        alerts_log.append(self.store, project, delivered)
        return fired

    def _deliver(
        self,
        alert: dict[str, Any],
        rule: AlertRule,
        alerting: Alerting,
        state: Any,
        down: set[str],
    ) -> list[dict[str, Any]]:
        out = []
        webhook = rule.webhook or alerting.notify.webhook
        emails = rule.email if rule.email is not None else alerting.notify.email
        key = alert["key"]
        if webhook and webhook not in down and (key, "webhook") not in state.delivered:
            error = post_webhook(webhook, alert)
            if error is None:
                out.append({"event": "delivered", "key": key, "target": "webhook"})
                self._recovered("webhook")
            else:
                down.add(webhook)  # a hanging endpoint costs one timeout a pass, not 50
                self._warn(f"alert webhook failed ({error}): sent again after the next pass")
        smtp = alerting.notify.smtp
        target = f"smtp:{smtp.host}" if smtp is not None else ""
        if (
            emails
            and smtp is not None
            and target not in down
            and (
                key,
                "email",
            )
            not in state.delivered
        ):
            error = send_email(smtp, emails, alert)
            if error is None:
                out.append({"event": "delivered", "key": key, "target": "email"})
                self._recovered(f"via {smtp.host}")
            else:
                down.add(target)
                self._warn(f"alert email via {smtp.host} failed ({error}): sent again later")
        for entry in out:
            state.delivered.add((key, entry["target"]))
        return out

    def _recovered(self, words: str) -> None:
        """A target works again: its next failure is worth a warning again."""
        self._warned = {w for w in self._warned if words not in w}

    def _warn(self, message: str) -> None:
        if message not in self._warned:  # a target that stays down: one line, not one a pass
            self._warned.add(message)
            self.echo(f"hpclab: warning: {message}")

    # -- what each rule matches ----------------------------------------------------------
    def _changed_runs(self, con: Any, project: str) -> set[str]:
        """Runs whose metric points changed since the last evaluation (all, the first)."""
        rows = con.execute(
            "SELECT run_id, sum(n) FROM metric_summary WHERE project = ? GROUP BY run_id",
            [project],
        ).fetchall()
        changed = set()
        for run_id, n in rows:
            key = (project, run_id)
            if self._points.get(key) != n:
                self._points[key] = int(n or 0)
                changed.add(run_id)
        return changed

    def _matches(
        self, con: Any, project: str, rule: AlertRule, changed: set[str], now: float
    ) -> list[dict[str, Any]]:
        kind = rule.kind
        if kind == "failed":
            rows = con.execute(
                "SELECT run_id, coalesce(name, run_id), status FROM runs "
                "WHERE project = ? AND status IN ('failed', 'timeout') ORDER BY created_at",
                [project],
            ).fetchall()
            return [
                _match(rule, run_id, f"run {name} ({project}) {status}", run_id=run_id)
                for run_id, name, status in rows
            ]
        if kind == "sweep_finished":
            final = ", ".join(f"'{s}'" for s in FINAL)
            rows = con.execute(
                f"SELECT p.sweep_id, count(*), count(*) FILTER (WHERE r.status = 'completed') "
                f"FROM sweep_points p LEFT JOIN runs r ON r.project = p.project "
                f"AND r.run_id = p.run_id WHERE p.project = ? GROUP BY p.sweep_id "
                f"HAVING count(*) = count(*) FILTER (WHERE r.status IN ({final})) "
                f"ORDER BY p.sweep_id",
                [project],
            ).fetchall()
            return [
                _match(
                    rule,
                    sweep_id,
                    f"sweep {sweep_id} ({project}) finished: {ok} of {n} runs completed",
                    sweep_id=sweep_id,
                )
                for sweep_id, n, ok in rows
            ]
        if kind == "no_heartbeat":
            cutoff = datetime.fromtimestamp(now - 60 * rule.minutes, tz=timezone.utc)
            rows = con.execute(
                "SELECT run_id, coalesce(name, run_id), heartbeat_at FROM runs WHERE project = ? "
                "AND stored_status = 'running' AND heartbeat_at < ? ORDER BY created_at",
                [project, cutoff.replace(tzinfo=None)],
            ).fetchall()
            return [
                _match(
                    rule,
                    f"{run_id}:{beat}",
                    f"run {name} ({project}): no heartbeat for {rule.minutes:g} min "
                    f"(last {beat:%Y-%m-%d %H:%M} UTC)",
                    run_id=run_id,
                )
                for run_id, name, beat in rows
            ]
        if not changed:
            return []
        ids = sorted(changed)
        marks = ", ".join("?" for _ in ids)
        if kind == "nan":
            metric = "AND m.name = ?" if rule.metric else ""
            rows = con.execute(
                "SELECT m.run_id, coalesce(r.name, m.run_id), m.name, min(m.step) FROM metrics m "
                "JOIN runs r ON r.project = m.project AND r.run_id = m.run_id "
                f"WHERE m.project = ? AND m.run_id IN ({marks}) {metric} "
                "AND (isnan(m.value) OR isinf(m.value)) GROUP BY ALL ORDER BY 1, 3",
                [project, *ids, *([rule.metric] if rule.metric else [])],
            ).fetchall()
            seen: dict[str, tuple[str, str, int]] = {}
            for run_id, name, metric_name, step in rows:
                seen.setdefault(run_id, (name, metric_name, step))
            return [
                _match(
                    rule,
                    run_id,
                    f"run {name} ({project}): {metric_name} is NaN or inf at step {step}",
                    run_id=run_id,
                )
                for run_id, (name, metric_name, step) in seen.items()
            ]
        # increases: a streak of ``count`` rises anywhere in the run's points (a rise that
        # fell again between two passes is not missed); the run's first such streak
        rows = con.execute(
            "WITH p AS (SELECT run_id, step, value, coalesce(value > lag(value) OVER "
            "(PARTITION BY run_id ORDER BY step), false) AS up FROM metrics WHERE project = ? "
            f"AND name = ? AND run_id IN ({marks})), g AS (SELECT *, sum(CASE WHEN up THEN 0 "
            "ELSE 1 END) OVER (PARTITION BY run_id ORDER BY step) AS streak FROM p) "
            "SELECT run_id, min(step), max(step), arg_min(value, step), arg_max(value, step) "
            "FROM g GROUP BY run_id, streak HAVING count(*) - 1 >= ? ORDER BY run_id, 2",
            [project, rule.metric, *ids, rule.count],
        ).fetchall()
        names = dict(
            con.execute(
                f"SELECT run_id, coalesce(name, run_id) FROM runs WHERE project = ? "
                f"AND run_id IN ({marks})",
                [project, *ids],
            ).fetchall()
        )
        out, done = [], set()
        for run_id, first, last, low, high in rows:
            if run_id in done:
                continue
            done.add(run_id)
            out.append(
                _match(
                    rule,
                    run_id,
                    f"run {names.get(run_id, run_id)} ({project}): {rule.metric} increased "
                    f"for {rule.count} evals ({low:.4g} at step {first} to "
                    f"{high:.4g} at step {last})",
                    run_id=run_id,
                )
            )
        return out


def _match(rule: AlertRule, what: str, message: str, **ids: str) -> dict[str, Any]:
    return {"key": f"{rule.id}:{what}", "kind": rule.kind, "message": message, **ids}
