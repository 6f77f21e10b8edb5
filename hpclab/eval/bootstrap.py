"""Resampling: percentile bootstrap confidence intervals, a one-sided permutation test of
a slice against the rest of the set, and Holm's correction over many such tests.

Every draw comes from one ``numpy.random.Generator`` seeded by the caller, so the same
inputs and seed give the same intervals and p-values. Work is done a block of resamples
at a time (at most ``BLOCK`` indices in memory).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from hpclab.eval.metrics import LOWER_IS_BETTER, Array, Features, values

BLOCK = 2_000_000  # example indices drawn at once (a block of resamples)
METHOD = "percentile bootstrap"
TEST = "one-sided permutation test of the slice against the rest, Holm-corrected"


def _block(m: int, features: Features) -> int:
    per = m * (5 if features.rows is not None else 1)
    return max(1, BLOCK // max(per, features.width, 1))


def bootstrap_distribution(
    features: Features, members: npt.NDArray[np.intp], n_boot: int, rng: np.random.Generator
) -> dict[str, Array]:
    """Each metric on ``n_boot`` resamples, with replacement, of the examples ``members``."""
    m = len(members)
    out: dict[str, list[Array]] = {name: [] for name in features.metrics}
    step = _block(m, features)
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        idx = members[rng.integers(0, m, size=(b, m))]
        for name, v in values(features, features.sums(idx)).items():
            out[name].append(v)
    return {name: np.concatenate(v) for name, v in out.items()}


def percentile_ci(dist: Array, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """The percentile interval of a bootstrap distribution (resamples where the metric is
    undefined, NaN, are left out; none left: no interval)."""
    finite = dist[np.isfinite(dist)]
    if not len(finite):
        return None, None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def permutation_pvalues(
    features: Features,
    n: int,
    members: npt.NDArray[np.intp],
    n_perm: int,
    rng: np.random.Generator,
) -> dict[str, tuple[float, float | None]]:
    """For each metric, (p, rest's value): how often a random set of the slice's size,
    drawn without replacement from all ``n`` examples, is at least as far below the rest
    as the slice is. One-sided: "below" is a lower score, or a higher error (MAE, RMSE).
    ``p = (1 + #{T* >= T}) / (1 + n_perm)``, T = rest - slice (or slice - rest)."""
    m = len(members)
    total = features.total(n)
    mask = np.zeros(n, dtype=bool)
    mask[members] = True
    inside = features.sums(members[None, :])
    rest_idx = np.flatnonzero(~mask)
    observed = {
        name: _gap(name, fn(inside)[0], fn(total - inside)[0])
        for name, fn in features.metrics.items()
    }
    rest_value = {
        name: (float(fn(total - inside)[0]) if len(rest_idx) else None)
        for name, fn in features.metrics.items()
    }
    hits = dict.fromkeys(features.metrics, 0)
    counted = dict.fromkeys(features.metrics, 0)
    step = _block(n, features)
    base = np.arange(n)
    for start in range(0, n_perm, step):
        b = min(step, n_perm - start)
        order = rng.permuted(np.broadcast_to(base, (b, n)), axis=1)[:, :m]
        s = features.sums(order)
        for name, fn in features.metrics.items():
            gap = _gap(name, fn(s), fn(total - s))
            ok = np.isfinite(gap)
            counted[name] += int(ok.sum())
            hits[name] += int((gap[ok] >= observed[name] - 1e-12).sum())
    out: dict[str, tuple[float, float | None]] = {}
    for name in features.metrics:
        if not np.isfinite(observed[name]) or not len(rest_idx):
            out[name] = (float("nan"), rest_value[name])
        else:
            out[name] = ((1 + hits[name]) / (1 + counted[name]), rest_value[name])
    return out


def _gap(name: str, inside: Array, rest: Array) -> Array:
    """How far the slice is below the rest (positive: worse)."""
    return inside - rest if name in LOWER_IS_BETTER else rest - inside


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(pvalues, dtype=float)
    ok = np.flatnonzero(np.isfinite(p))
    out = np.full(len(p), np.nan)
    if not len(ok):
        return out.tolist()
    order = ok[np.argsort(p[ok], kind="stable")]
    k = len(order)
    adjusted = np.maximum.accumulate((k - np.arange(k)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()
