"""Plain-text output shared by the commands: aligned tables, short numbers, durations.
Every command prints through these (one table printer, one number and one duration
format), so the same value reads the same in ``runs``, ``status`` and ``hypothesis``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import click

from hpclab.cli.terminal import printable


def fmt_number(value: float | int | None, digits: int = 6) -> str:
    """A number in at most ``digits`` significant digits (``0.000123``, ``1.5e+07``);
    integers in full, NaN and inf as ``nan``/``inf``/``-inf``, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.{digits}g}"


def fmt_duration(seconds: float | None) -> str:
    """``1d 02:03:04``, ``02:03:04`` or ``03:04``; empty when unknown (None, NaN, inf)."""
    if seconds is None or math.isnan(seconds) or math.isinf(seconds):
        return ""
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    text = f"{h:02d}:{m:02d}:{s:02d}" if h or d else f"{m:02d}:{s:02d}"
    return f"{d}d {text}" if d else text


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], indent: str = "") -> None:
    """Print ``rows`` as columns aligned under upper-case headers (None prints as empty;
    no rows: the headers alone). Trailing blanks are trimmed from every line; control
    characters in cells are shown escaped (:func:`~hpclab.cli.terminal.printable`)."""

    def cell(row: dict[str, Any], col: str) -> str:
        value = row.get(col)
        return "" if value is None else printable(str(value))

    widths = {c: max([len(c), *(len(cell(r, c)) for r in rows)]) for c in columns}
    click.echo(indent + "  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        click.echo(indent + "  ".join(cell(r, c).ljust(widths[c]) for c in columns).rstrip())


__all__ = ["fmt_duration", "fmt_number", "table"]
