"""The ``alerts:`` and ``notify:`` sections of ``project.yaml``: what ``hpclab watch``
tells the lab about, and where.

::

    notify:                                  # defaults for every rule
      webhook: https://hooks.slack.com/services/T0/B0/XXXX   # Slack, Mattermost, Discord
      email: [me@lab.org]
      smtp: {host: smtp.lab.org, port: 25, from: hpclab@lab.org}
    alerts:
      - {when: increases, metric: val/loss, for: 3}   # 3 evaluations in a row, each higher
      - {when: failed}                                # a run failed (or hit its time limit)
      - {when: nan, metric: train/loss}               # NaN or inf logged (any metric if none)
      - {when: sweep_finished}                        # every point of a sweep has ended
      - {when: no_heartbeat, minutes: 10}             # a running run went silent
      - {when: failed, webhook: https://..., email: [oncall@lab.org]}   # its own targets

Parsed here, with the rest of ``project.yaml``: a typo is one line naming the file, the
rule and the field, with the closest valid name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpclab.errors import ConfigError, check_keys

KINDS = ("increases", "failed", "nan", "sweep_finished", "no_heartbeat")
RULE_KEYS = {
    "increases": ("when", "metric", "for", "webhook", "email"),
    "failed": ("when", "webhook", "email"),
    "nan": ("when", "metric", "webhook", "email"),
    "sweep_finished": ("when", "webhook", "email"),
    "no_heartbeat": ("when", "minutes", "webhook", "email"),
}
NOTIFY_KEYS = ("webhook", "email", "smtp")
SMTP_KEYS = ("host", "port", "from", "starttls")


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 25
    sender: str = "hpclab@localhost"
    starttls: bool = False


@dataclass(frozen=True)
class AlertRule:
    """One rule; ``webhook``/``email`` None: the project's ``notify`` defaults."""

    kind: str
    metric: str | None = None
    count: int = 3  # increases: evaluations in a row
    minutes: float = 10.0  # no_heartbeat
    webhook: str | None = None
    email: tuple[str, ...] | None = None

    @property
    def id(self) -> str:
        """A stable id of what the rule watches (not where it sends): ``kind-hash``."""
        what: dict[str, Any] = {"kind": self.kind, "metric": self.metric}
        if self.kind == "increases":
            what["count"] = self.count
        if self.kind == "no_heartbeat":
            what["minutes"] = self.minutes
        digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
        return f"{self.kind}-{digest[:8]}"

    def describe(self) -> str:
        if self.kind == "increases":
            return f"{self.metric} increases for {self.count} evals"
        if self.kind == "nan":
            return f"NaN or inf in {self.metric or 'any metric'}"
        if self.kind == "no_heartbeat":
            return f"no heartbeat for {self.minutes:g} min"
        return {"failed": "a run failed", "sweep_finished": "a sweep finished"}[self.kind]


@dataclass(frozen=True)
class Notify:
    webhook: str | None = None
    email: tuple[str, ...] = ()
    smtp: Smtp | None = None


@dataclass(frozen=True)
class Alerting:
    rules: tuple[AlertRule, ...] = ()
    notify: Notify = field(default_factory=Notify)


def parse_alerting(alerts: Any, notify: Any, where: str) -> Alerting:
    """The rules and targets of one ``project.yaml`` (``where`` names it in errors)."""
    parsed_notify = _notify(notify, f"{where}: notify")
    if alerts is None:
        return Alerting((), parsed_notify)
    if not isinstance(alerts, list):
        raise ConfigError(f"{where}: alerts: expected a list of rules")
    rules = tuple(_rule(r, f"{where}: alerts[{i}]") for i, r in enumerate(alerts))
    if any(r.email or (r.email is None and parsed_notify.email) for r in rules) and (
        parsed_notify.smtp is None
    ):
        raise ConfigError(f"{where}: notify.smtp: email alerts need an SMTP host")
    return Alerting(rules, parsed_notify)


def _rule(raw: Any, where: str) -> AlertRule:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping like {{when: failed}}")
    kind = raw.get("when")
    if kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(str(kind), KINDS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}: when: {kind!r} is not one of {', '.join(KINDS)}{hint}")
    check_keys(raw, RULE_KEYS[kind], where)
    metric = raw.get("metric")
    if kind == "increases" and metric is None:
        raise ConfigError(f"{where}: metric: `increases` needs the metric to watch")
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise ConfigError(f"{where}: metric: expected a metric name")
    count = raw.get("for", 3)
    if type(count) is not int or not 1 <= count <= 1000:
        raise ConfigError(f"{where}: for: expected a whole number of evaluations, 1 to 1000")
    minutes = raw.get("minutes", 10)
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
        raise ConfigError(f"{where}: minutes: expected a positive number")
    return AlertRule(
        kind=kind,
        metric=metric,
        count=count,
        minutes=float(minutes),
        webhook=_url(raw["webhook"], f"{where}: webhook") if "webhook" in raw else None,
        email=_emails(raw["email"], f"{where}: email") if "email" in raw else None,
    )


def _notify(raw: Any, where: str) -> Notify:
    if raw is None:
        return Notify()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    check_keys(raw, NOTIFY_KEYS, where)
    smtp = raw.get("smtp")
    parsed = None
    if smtp is not None:
        if not isinstance(smtp, Mapping) or not isinstance(smtp.get("host"), str):
            raise ConfigError(f"{where}.smtp: expected {{host: NAME, port: 25, from: ADDRESS}}")
        check_keys(smtp, SMTP_KEYS, f"{where}.smtp")
        port = smtp.get("port", 25)
        if type(port) is not int or not 0 < port < 65536:
            raise ConfigError(f"{where}.smtp.port: expected a port number")
        sender = smtp.get("from", "hpclab@localhost")
        if not isinstance(sender, str) or "@" not in sender:
            raise ConfigError(f"{where}.smtp.from: expected an email address")
        starttls = smtp.get("starttls", False)
        if not isinstance(starttls, bool):
            raise ConfigError(f"{where}.smtp.starttls: expected true or false")
        parsed = Smtp(smtp["host"], port, sender, starttls)
    return Notify(
        webhook=_url(raw["webhook"], f"{where}.webhook") if raw.get("webhook") else None,
        email=_emails(raw.get("email") or [], f"{where}.email"),
        smtp=parsed,
    )


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: expected an http:// or https:// URL")
    return value


def _emails(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and "@" in v for v in value):
        raise ConfigError(f"{where}: expected an email address or a list of them")
    return tuple(value)
