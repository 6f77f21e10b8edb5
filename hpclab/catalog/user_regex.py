"""Regular expressions users write (``project.yaml`` ``naming.regex``), run with a timeout.

Python's ``re`` backtracks without limit: ``^(a|a)+$`` on forty ``a`` and a ``!`` takes
longer than the universe has existed, and the indexer runs the project's naming regex on
every run name. Here patterns are compiled and run with the ``regex`` package (``re``'s
syntax) and a search that takes over :data:`TIMEOUT_S` is abandoned: the name counts as
not matched, one warning names the pattern and the name, and the pattern is not run
again in this process (one slow search per pass, not one per run).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import regex

log = logging.getLogger(__name__)

TIMEOUT_S = 0.1
"""The longest one search may take (a name is a line of text: microseconds normally)."""

PatternError = regex.error
"""What :func:`compile_pattern` raises for a malformed pattern."""

_gave_up: set[str] = set()


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled ``pattern``; :data:`PatternError` when it is not one."""
    return regex.compile(pattern)


def group_names(pattern: str) -> set[str]:
    """The named groups of ``pattern``."""
    return set(compile_pattern(pattern).groupindex)


def search_groups(pattern: str, text: str, where: str) -> dict[str, str | None] | None:
    """The named groups of ``pattern``'s first match in ``text``, or None when it does not
    match, or took over :data:`TIMEOUT_S` (said once, naming ``where``: the setting)."""
    if pattern in _gave_up:
        return None
    try:
        m = compile_pattern(pattern).search(text, timeout=TIMEOUT_S)
    except TimeoutError:
        _gave_up.add(pattern)
        log.warning(
            "%s: %r took over %g s on %r (it backtracks without end); not used",
            where, pattern, TIMEOUT_S, text[:80],
        )  # fmt: skip
        return None
    return dict(m.groupdict()) if m else None
