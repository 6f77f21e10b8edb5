"""Plain-text output shared by the commands: aligned tables, short numbers."""

from __future__ import annotations

import math
from typing import Any

import click


def _fmt(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.6g}"


def _table(rows: list[dict[str, Any]], columns: list[str], indent: str = "") -> None:
    rows = [{c: ("" if r.get(c) is None else r.get(c)) for c in columns} for r in rows]
    widths = {
        c: max(len(c), *(len(str(r.get(c) if r.get(c) is not None else "")) for r in rows))
        for c in columns
    }
    click.echo(indent + "  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        cells = [str(r.get(c) if r.get(c) is not None else "").ljust(widths[c]) for c in columns]
        click.echo(indent + "  ".join(cells).rstrip())
