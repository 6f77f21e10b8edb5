"""Text for the terminal: what users wrote (run names, tags, error messages, notes) is
shown, never obeyed.

A run name like ``"\\x1b]0;pwned\\x07"`` would retitle the window, clear the screen or
worse if printed raw. Every command prints user text through :func:`printable` (the
table printer and the error line do it for every cell and message): the C0 controls but
tab and newline, DEL and the C1 controls are shown as ``\\xNN``, everything else as it is.
"""

from __future__ import annotations

import re

import click

_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline written ``\\xNN``."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def echo(message: object = "", *, err: bool = False) -> None:
    """:func:`click.echo` of ``str(message)`` through :func:`printable`."""
    click.echo(printable(str(message)), err=err)


__all__ = ["echo", "printable"]
