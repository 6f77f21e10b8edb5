"""Results written beside a run after its metrics (an evaluation, a latency profile):
which run a caller means, and how a result reaches the run's summary.

A live :class:`~hpclab.tracking.run.Run` gets the values in ``run.summary`` (written with
its next record: a heartbeat or ``finish``); a finished run, or a run directory, has them
merged into ``run.json`` at once. Neither goes through ``run.log``: these are final
values, not series.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hpclab.errors import HpclabError
from hpclab.store import RunPaths, Store


def run_target(run: Any, error: type[HpclabError]) -> tuple[RunPaths, Any]:
    """The run's paths and the live Run (None for a directory); ``error`` otherwise."""
    if hasattr(run, "paths") and hasattr(run, "summary"):
        if run.paths is None:
            raise error("run: this Run has no directory (rank > 0 or not started)")
        return run.paths, run
    if isinstance(run, (str, os.PathLike)):
        paths = RunPaths(Path(run).expanduser().absolute())
        if not paths.run_json.is_file():
            raise error(f"run: {paths.dir} is not a run directory (no run.json)")
        return paths, None
    raise error(f"run: an hpclab.Run or a run directory, not {type(run).__name__}")


def set_summary(
    paths: RunPaths, live: Any, values: dict[str, float], error: type[HpclabError]
) -> None:
    """Merge ``values`` into the run's summary (see the module's docstring)."""
    if live is not None:
        live.summary.update(values)
        if not getattr(live, "finished", False):
            return
    try:
        store = Store(paths.dir.parent.parent.parent)  # <store>/<project>/runs/<run_id>
        record = store.read_record(paths)
    except HpclabError as e:
        raise error(f"run: cannot read {paths.run_json} ({e})") from None
    record.summary = {**record.summary, **values}
    store.write_record(paths, record)
