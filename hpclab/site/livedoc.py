"""``data/live.json``, what the Training page polls: one entry per active or recently
ended run, from its record (fresher than the catalog). Used by the full build and by
:class:`~hpclab.site.live.LiveSite`'s passes alike."""

from __future__ import annotations

import time
from typing import Any

from hpclab.site.data import ACTIVE, TOTAL_STEP_PATHS, Key
from hpclab.store import Store
from hpclab.store.atomic import read_yaml

RECENT_S = 900.0  # finished runs stay on the Training page this long
MAX_RECENT = 12


def run_info(store: Store, key: Key, series: dict[str, Any], total: int | None) -> dict[str, Any]:
    """What the Training page shows of one run (from its record: fresher than the catalog)."""
    from hpclab.store.record import parse_iso
    from hpclab.store.views import effective_status

    paths = store.run_paths(*key)
    record = store.read_record(paths)
    state = record.scheduler_state or {}
    step = series.get("step")
    rate = series.get("rate")
    status = effective_status(record)
    eta = None
    if status == "running" and total and step is not None and rate:
        eta = max(0.0, (total - 1 - step) / rate)
    return {
        "project": key[0],
        "run_id": key[1],
        "name": record.name,
        "status": status,
        "scheduler_state": state.get("state") if isinstance(state, dict) else None,
        "reason": state.get("reason") if isinstance(state, dict) else None,
        "sweep_id": record.sweep_id,
        "step": step,
        "total": total,
        "rate": rate,
        "eta_s": eta,
        "version": series.get("version"),
        "metrics": sorted(series.get("metrics", {})),
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "ended": parse_iso(record.ended_at) if record.ended_at else None,
    }


def total_steps_from_config(store: Store, key: Key) -> int | None:
    """The run's planned steps from its config.yaml (TOTAL_STEP_PATHS), for runs the
    catalog has not indexed yet."""
    path = store.run_paths(*key).config_yaml
    try:
        cfg = read_yaml(path) if path.is_file() else None
    except Exception:
        return None
    for dotted in TOTAL_STEP_PATHS:
        node: Any = cfg
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and not isinstance(node, bool) and node > 0:
            return int(node)
    return None


def live_doc(infos: dict[Key, dict[str, Any]], now: float | None = None) -> dict[str, Any]:
    """``data/live.json``: active runs, and runs that ended in the last RECENT_S seconds."""
    now = time.time() if now is None else now
    active = [i for i in infos.values() if i["status"] in ACTIVE]
    recent = sorted(
        (
            i
            for i in infos.values()
            if i["status"] not in ACTIVE and i.get("ended") and now - i["ended"] < RECENT_S
        ),
        key=lambda i: -i["ended"],
    )[:MAX_RECENT]
    order = {"running": 0, "preempted": 1, "queued": 2, "planned": 3}
    active.sort(key=lambda i: (order.get(i["status"], 9), i["project"], i["run_id"]))
    return {"generated_at": now, "runs": active + recent}
