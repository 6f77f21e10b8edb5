"""Per-slice metrics: each value of each slice (``slices={"age": ages}``) as a subset of
the examples, its metrics with bootstrap CIs, and a test of whether it is below the rest.

A slice value is flagged when its Holm-adjusted p-value is under ``ALPHA``; the
correction runs over every slice value of every slice, for each metric separately (one
family per metric: flagging on any of four correlated metrics is what the table shows
row by row, so each row's p-value is adjusted only against its own metric's tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpclab.errors import EvalError
from hpclab.eval.bootstrap import bootstrap_distribution, holm, percentile_ci, permutation_pvalues
from hpclab.eval.metrics import Features

ALPHA = 0.05
MAX_SLICE_VALUES = 100  # distinct values of one slice (a continuous column: bin it first)


def slice_groups(slices: Mapping[str, Sequence[Any]], n: int) -> dict[str, dict[str, Any]]:
    """Each slice's values as text -> the example indices that have it."""
    out: dict[str, dict[str, Any]] = {}
    for name, column in slices.items():
        if not isinstance(name, str) or not name:
            raise EvalError(f"slices: a slice name must be a non-empty string, not {name!r}")
        col = list(column) if not isinstance(column, np.ndarray) else column.tolist()
        if len(col) != n:
            raise EvalError(f"slices[{name!r}]: {len(col)} values for {n} predictions")
        groups: dict[str, list[int]] = {}
        for i, v in enumerate(col):
            groups.setdefault(_text(v), []).append(i)
        if len(groups) > MAX_SLICE_VALUES:
            raise EvalError(
                f"slices[{name!r}]: {len(groups)} distinct values (at most "
                f"{MAX_SLICE_VALUES}): bin a continuous column first"
            )
        out[name] = {k: np.asarray(v, dtype=np.intp) for k, v in sorted(groups.items())}
    return out


def _text(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 2**53 else str(v)
    return str(v)


def slice_rows(
    features: Features,
    n: int,
    groups: dict[str, dict[str, Any]],
    n_boot: int,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """One row per (slice, value, metric): n, value, CI, the rest's value, p (raw and
    Holm-adjusted) and whether it is flagged."""
    rows: list[dict[str, Any]] = []
    for name, values_ in groups.items():
        for value, members in values_.items():
            inside = features.sums(members[None, :])
            point = {k: float(fn(inside)[0]) for k, fn in features.metrics.items()}
            dist = bootstrap_distribution(features, members, n_boot, rng)
            tests = permutation_pvalues(features, n, members, n_boot, rng)
            for metric in features.metrics:
                low, high = percentile_ci(dist[metric])
                p, rest = tests[metric]
                rows.append(
                    {
                        "slice": name,
                        "slice_value": value,
                        "n": len(members),
                        "metric": metric,
                        "value": _finite(point[metric]),
                        "ci_low": low,
                        "ci_high": high,
                        "rest_value": _finite(rest),
                        "p_raw": _finite(p),
                    }
                )
    for metric in features.metrics:
        mine = [r for r in rows if r["metric"] == metric]
        adjusted = holm([np.nan if r["p_raw"] is None else r["p_raw"] for r in mine])
        for r, p in zip(mine, adjusted, strict=True):
            r["p_value"] = _finite(p)
            r["flagged"] = bool(r["p_value"] is not None and r["p_value"] < ALPHA)
    return rows


def _finite(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
