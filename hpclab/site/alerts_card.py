"""The Overview's Alerts card: the most recent alerts ``hpclab watch`` sent (project.yaml
``alerts:``), newest first, every text escaped, runs linked."""

from __future__ import annotations

from hpclab.site.data import SiteData
from hpclab.site.html import Html, e, h, run_link, table


def alerts_card(data: SiteData, root: str) -> Html | None:
    """The card, or None when no alert was ever sent."""
    if not data.alerts:
        return None
    body = []
    for a in data.alerts:
        project, run_id = str(a.get("project") or ""), a.get("run_id")
        where = run_link(project, str(run_id), root, run_id) if run_id else e(a.get("sweep_id"))
        body.append([e(str(a.get("at") or "")[:19].replace("T", " ")), e(project),
                     e(a.get("kind")), e(a.get("message")), where])  # fmt: skip
    return h(
        '<div class="hl-alerts">{}</div>',
        table(["when (UTC)", "project", "rule", "alert", "run or sweep"], body, cls="hl-alerts"),
    )
