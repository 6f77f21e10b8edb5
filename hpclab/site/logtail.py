"""The run page's view of a run's captured output (``logs/stdout.log``, ``logs/stderr.log``):
the last lines of each, through the site's secret redaction, as data. The page escapes them
when it shows them (``html```` in hpclab.js).

The same document is in the run's details (``data/details/...``, at build) and, while runs
are live, in ``data/logs/<project>/<run_id>.json``, rewritten by :class:`LiveSite` when a
log grows; the run page polls it while the run is active.
"""

from __future__ import annotations

import os
from typing import Any

from hpclab.site.redact import redact_value
from hpclab.store import RunPaths
from hpclab.tracking.logs import STREAMS, tail_lines

TAIL_LINES = 100
"""Lines of each stream the run page shows."""
MAX_LINE_CHARS = 2000  # a progress bar without newlines is one huge line: cut it
READ_BYTES = 64_000  # read per log: a build reads every run's, so keep it small


def log_fingerprint(paths: RunPaths) -> tuple[int, ...]:
    """Size and mtime of both logs: changes when either grows (or is replaced)."""
    out: list[int] = []
    for stream in STREAMS:
        try:
            st = os.stat(paths.output_log(stream))
            out += [st.st_size, st.st_mtime_ns]
        except OSError:
            out += [0, 0]
    return tuple(out)


def log_doc(paths: RunPaths, lines: int = TAIL_LINES) -> dict[str, Any]:
    """``{"version", "stdout": [...], "stderr": [...], "redacted": n}`` (``redacted``:
    lines with a secret replaced by its marker); the version changes when a log grows."""
    doc: dict[str, Any] = {"version": "-".join(map(str, log_fingerprint(paths)))}
    redacted = 0
    for stream in STREAMS:
        tail = [
            line[:MAX_LINE_CHARS]
            for line in tail_lines(paths.output_log(stream), lines, max_bytes=READ_BYTES)
        ]
        # all lines at once: a private key block spans several
        shown = str(redact_value("\n".join(tail))).split("\n") if tail else []
        redacted += sum(a != b for a, b in zip(tail, shown, strict=False))
        doc[stream] = shown
    doc["redacted"] = redacted
    return doc
