"""What an evaluation leaves beside the run: ``eval/metrics.json``, ``eval/slices.json``,
``eval/failure_examples.json`` (names from :class:`hpclab.store.RunPaths`), and the
headline metrics in the run's summary (``eval/<metric>``).

Inputs of the failure examples are made JSON-safe and bounded: NumPy scalars and arrays
become numbers and lists, anything else its ``str``; text is cut at ``MAX_TEXT``
characters, lists and mappings at ``MAX_ITEMS`` entries, nesting at ``MAX_DEPTH``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpclab.errors import EvalError
from hpclab.store import RunPaths
from hpclab.store.atomic import write_json_atomic
from hpclab.tracking import results

MAX_TEXT = 2000
MAX_ITEMS = 64
MAX_DEPTH = 4
MAX_WORST = 200  # failure examples kept at most, whatever ``worst`` asks


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-safe, bounded data (see the module's docstring)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if isinstance(value, bytes):
        return jsonable(repr(value), depth)
    if depth >= MAX_DEPTH:
        return jsonable(str(value), depth)
    if isinstance(value, np.ndarray):
        value = value.ravel()[:MAX_ITEMS].tolist() if value.ndim else value.item()
        return jsonable(value, depth)
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_ITEMS]
        return {str(k): jsonable(v, depth + 1) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value[:MAX_ITEMS]]
    return jsonable(str(value), depth)


def example_input(data: Any, i: int, n: int) -> Any:
    """Row ``i`` of ``data``: a DataFrame's row (``iloc``), a mapping of columns, or a
    sequence's item."""
    if data is None:
        return None
    if hasattr(data, "iloc"):
        row = data.iloc[i]
        return row.to_dict() if hasattr(row, "to_dict") else row
    if isinstance(data, Mapping):
        return {str(k): col[i] for k, col in data.items()}
    return data[i]


def check_data(data: Any, n: int) -> None:
    """``data`` has a row per prediction."""
    if data is None:
        return
    if isinstance(data, Mapping) and not hasattr(data, "iloc"):
        for k, col in data.items():
            if not hasattr(col, "__len__") or len(col) != n:
                size = len(col) if hasattr(col, "__len__") else "no"
                raise EvalError(f"data[{k!r}]: {size} rows for {n} predictions")
        return
    if not hasattr(data, "__len__") or not isinstance(data, (Sequence, np.ndarray)):
        if not hasattr(data, "iloc"):
            raise EvalError(
                f"data: a list, a dict of columns or a DataFrame, not {type(data).__name__}"
            )
    if len(data) != n:
        raise EvalError(f"data: {len(data)} rows for {n} predictions")


def write_files(paths: RunPaths, metrics: Any, slices: Any, failures: Any) -> None:
    paths.eval_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(paths.eval_metrics_json, metrics)
    write_json_atomic(paths.eval_slices_json, slices)
    write_json_atomic(paths.eval_failures_json, failures)


def set_summary(paths: RunPaths, live: Any, values: dict[str, float | None]) -> None:
    """``eval/<metric>`` in the run's summary (:mod:`hpclab.tracking.results`)."""
    found = {f"eval/{k}": v for k, v in values.items() if v is not None}
    results.set_summary(paths, live, found, EvalError)


def run_target(run: Any) -> tuple[RunPaths, Any]:
    """The run's paths and the live :class:`hpclab.Run` (None for a directory)."""
    return results.run_target(run, EvalError)
