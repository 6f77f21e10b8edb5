"""Sending an alert: a webhook POST (one JSON body that Slack and Mattermost read as
``text`` and Discord as ``content``) and email through the project's SMTP host. Each
returns None on success or the reason it failed, in one line; nothing here raises."""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any

from hpclab.catalog.alert_rules import Smtp

TIMEOUT_S = 10.0


def post_webhook(url: str, alert: dict[str, Any], *, timeout: float = TIMEOUT_S) -> str | None:
    text = f"hpclab: {alert['message']}"
    body = json.dumps(
        {
            "text": text,  # Slack, Mattermost
            "content": text[:2000],  # Discord (2,000 characters at most)
            "username": "hpclab",
            "hpclab": {k: alert.get(k) for k in ("kind", "project", "run_id", "sweep_id", "at")},
        }
    ).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if not 200 <= response.status < 300:
                return f"HTTP {response.status}"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return str(getattr(e, "reason", e))
    return None


def send_email(
    smtp: Smtp, to: tuple[str, ...], alert: dict[str, Any], *, timeout: float = TIMEOUT_S
) -> str | None:
    msg = EmailMessage()
    msg["Subject"] = f"hpclab: {alert['message']}"[:200]
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(to)
    lines = [alert["message"], ""]
    lines += [f"{k}: {alert[k]}" for k in ("project", "run_id", "sweep_id", "at") if alert.get(k)]
    msg.set_content("\n".join(lines) + "\n")
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as server:
            if smtp.starttls:
                server.starttls()
            server.send_message(msg)
    except (smtplib.SMTPException, OSError) as e:
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None
