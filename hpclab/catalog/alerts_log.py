"""``<project>/alerts.jsonl``: what ``hpclab watch`` alerted on, so that each alert is
sent once, a restarted watcher sends nothing twice, and the site shows what was sent.

One JSON object a line, appended (``O_APPEND``: a line is written whole, and a torn last
line from a crash is skipped when read):

- ``{"event": "armed", "rule": ID, "at": ISO}``: the rule was first evaluated; what it
  matched then is history (``"event": "baseline"`` lines), not news: a watcher started on
  a store with 200 old failures sends none of them;
- ``{"event": "fired", "key": KEY, "rule": ID, "kind": ..., "run_id": ..., "message": ...}``;
- ``{"event": "delivered", "key": KEY, "target": "webhook" | "email"}``: a target took it
  (a fired alert with a target not yet delivered is retried on the next pass).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from hpclab.errors import HpclabError
from hpclab.store import Store
from hpclab.store.reading import MAX_JSON_BYTES, read_regular

MAX_LINES_SHOWN = 200


@dataclass
class AlertState:
    """What one project's log says."""

    armed: set[str] = field(default_factory=set)  # rule ids
    seen: set[str] = field(default_factory=set)  # keys fired or taken as history
    fired: list[dict[str, Any]] = field(default_factory=list)  # in order
    delivered: set[tuple[str, str]] = field(default_factory=set)  # (key, target)


def read_state(store: Store, project: str) -> AlertState:
    """The project's alert log; an absent file is an empty state. Unreadable lines (a
    torn write) are skipped; an unreadable file is a :class:`StoreError` (sending with an
    empty state could send everything again)."""
    path = store.alerts_log(project)
    state = AlertState()
    if not path.exists():
        return state
    data = read_regular(path, MAX_JSON_BYTES)
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        event, key = entry.get("event"), entry.get("key")
        if event == "armed" and isinstance(entry.get("rule"), str):
            state.armed.add(entry["rule"])
        elif event in ("fired", "baseline") and isinstance(key, str):
            state.seen.add(key)
            if event == "fired":
                state.fired.append(entry)
        elif event == "delivered" and isinstance(key, str):
            state.delivered.add((key, str(entry.get("target"))))
    return state


def append(store: Store, project: str, entries: list[dict[str, Any]]) -> None:
    """Append ``entries`` to the project's log, one line each, synced."""
    if not entries:
        return
    path = store.alerts_log(project)
    data = "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in entries)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def recent(store: Store, projects: list[str], limit: int = MAX_LINES_SHOWN) -> list[dict[str, Any]]:
    """The most recent fired alerts of ``projects``, newest first (what the site shows)."""
    out = []
    for p in projects:
        try:
            out += [dict(a, project=p) for a in read_state(store, p).fired]
        except HpclabError:  # unreadable: shown as nothing, never a broken page
            continue
    out.sort(key=lambda a: str(a.get("at") or ""), reverse=True)
    return out[:limit]


def log_signature(store: Store, projects: list[str]) -> tuple[tuple[str, int], ...]:
    """(project, log size) of each project with a log: equal means no new alert."""
    out = []
    for p in projects:
        try:
            out.append((p, store.alerts_log(p).stat().st_size))
        except OSError:
            continue
    return tuple(out)
