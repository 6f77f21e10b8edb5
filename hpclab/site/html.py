"""Small HTML pieces the generated pages are made of: tables, status badges, numbers,
links. Pages are Markdown with HTML blocks: fast for MkDocs to pass through (a
1,000-row table as a Markdown table would be parsed cell by cell) and the same under any
theme: every class is ``hl-*``, styled by ``site/assets/hpclab/hpclab.css``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any

from hpclab.site.layout import run_href

MISSING = '<span class="hl-missing" title="missing (NaN or not logged)">–</span>'


def e(value: Any) -> str:
    return escape("" if value is None else str(value))


def num(value: Any, digits: int = 4) -> str:
    """A number for a table cell; missing, NaN and inf show as a dash."""
    if value is None:
        return MISSING
    try:
        f = float(value)
    except (TypeError, ValueError):
        return e(value)
    if math.isnan(f) or math.isinf(f):
        return MISSING
    if f == int(f) and abs(f) < 1e12 and isinstance(value, int):
        return str(int(f))
    return f"{f:.{digits}g}"


def badge(status: Any) -> str:
    s = str(status or "unknown")
    return f'<span class="hl-badge hl-s-{e(s.lower())}">{e(s)}</span>'


def run_link(project: str, run_id: str, root: str, label: str | None = None) -> str:
    return f'<a class="hl-run" href="{e(run_href(project, run_id, root))}">{e(label or run_id)}</a>'


def when(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM`` (UTC), with the full value as a tooltip."""
    if value is None:
        return MISSING
    text = (
        value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else str(value)
    )
    return f'<time title="{e(text)} UTC">{e(text[:16])}</time>'


def duration(seconds: Any) -> str:
    if seconds is None:
        return MISSING
    s = float(seconds)
    if s != s:
        return MISSING
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def table(
    headers: Sequence[str],
    body: Iterable[Sequence[str]],
    *,
    cls: str = "",
    sort: Sequence[str] | None = None,
) -> str:
    """An HTML table block; cells are HTML already. ``sort`` gives each column's sort
    type (``text``, ``num``, ``none``) for the sortable tables' script."""
    head = "".join(
        f'<th data-sort="{sort[i]}">{h}</th>' if sort else f"<th>{h}</th>"
        for i, h in enumerate(headers)
    )
    rows = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
    return (
        f'<div class="hl-table-wrap"><table class="hl-table {cls}">'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>"
    )


def empty(message: str) -> str:
    return f'<p class="hl-empty">{e(message)}</p>'


def block(text: str) -> str:
    """An HTML block set apart by blank lines, so Markdown passes it through untouched."""
    return f"\n\n{text.strip()}\n\n"
