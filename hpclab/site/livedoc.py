"""``data/live.json``, what the Training page polls: one entry per running or queued run
(planned, queued, running, preempted), from its record (fresher than the catalog), with
the scheduler state that ``hpclab index``/``watch`` reconciled into it; and, apart, the
runs that ended in the last minutes (their curves stay charted; the page's job table
lists running and queued runs only). Used by the full build and by
:class:`~hpclab.site.live.LiveSite`'s passes alike."""

from __future__ import annotations

import time
from typing import Any

from hpclab.launch.reconcile import state_words
from hpclab.site.data import Key
from hpclab.store import Store
from hpclab.store.atomic import read_yaml
from hpclab.store.record import ACTIVE_STATUSES, parse_iso
from hpclab.store.views import effective_status, run_progress, total_steps

RECENT_S = 900.0  # runs that ended stay charted on the Training page this long
MAX_RECENT = 12


def run_info(store: Store, key: Key, series: dict[str, Any], total: int | None) -> dict[str, Any]:
    """What the Training page shows of one run (from its record: fresher than the catalog);
    status, progress and ETA as ``hpclab status`` computes them (:mod:`hpclab.store.views`)."""
    paths = store.run_paths(*key)
    record = store.read_record(paths)
    state = record.scheduler_state or {}
    status = effective_status(record)
    prog = run_progress(record, total, series.get("step"), series.get("rate"))
    return {
        "project": key[0],
        "run_id": key[1],
        "name": record.name,
        "status": status,
        "scheduler_state": state.get("state") if isinstance(state, dict) else None,
        "reason": state.get("reason") if isinstance(state, dict) else None,
        "scheduler": state_words(state),  # "PENDING (Resources)": hpclab status's words
        "sweep_id": record.sweep_id,
        "step": prog.step,
        "total": prog.total,
        "rate": prog.rate,
        "percent": prog.percent,
        "eta_s": prog.eta_s,
        "version": series.get("version"),
        "metrics": sorted(series.get("metrics", {})),
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "ended": parse_iso(record.ended_at) if record.ended_at else None,
    }


def total_steps_from_config(store: Store, key: Key) -> int | None:
    """The run's planned steps from its config.yaml, for runs the catalog has not indexed
    yet (:func:`hpclab.store.views.total_steps`)."""
    path = store.run_paths(*key).config_yaml
    try:
        return total_steps(read_yaml(path)) if path.is_file() else None
    except Exception:
        return None


def live_doc(infos: dict[Key, dict[str, Any]], now: float | None = None) -> dict[str, Any]:
    """``data/live.json``: ``runs``, the runs that are running or queued, running first (a
    run that ended, as its record reconciled with the scheduler says, is not among them:
    the Training page's job table agrees with ``hpclab status`` and Slurm); ``recent``, the
    runs that ended in the last RECENT_S seconds, newest first, for their charts only."""
    now = time.time() if now is None else now
    active = [i for i in infos.values() if i["status"] in ACTIVE_STATUSES]
    recent = sorted(
        (
            i
            for i in infos.values()
            if i["status"] not in ACTIVE_STATUSES and i.get("ended") and now - i["ended"] < RECENT_S
        ),
        key=lambda i: -i["ended"],
    )[:MAX_RECENT]
    order = {"running": 0, "preempted": 1, "queued": 2, "planned": 3}
    active.sort(key=lambda i: (order.get(i["status"], 9), i["project"], i["run_id"]))
    return {"generated_at": now, "runs": active, "recent": recent, "recent_s": RECENT_S}
