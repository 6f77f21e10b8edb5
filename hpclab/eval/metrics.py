"""Metrics computed from sums, so that the whole set, every bootstrap resample and every
permutation are one vectorised pass each.

A set of examples (the whole set, a resample, a slice) is summarised by sums: for
classification its k x k confusion counts (each example counts in the cell ``label * k +
predicted``), for regression the sums of ``1, |e|, e², y, y²`` with ``e`` the error. Each
metric is a function of those sums, applied to many sets at once (a (b, d) array).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

CLASSIFICATION = ("accuracy", "macro_f1", "macro_precision", "macro_recall")
REGRESSION = ("mae", "rmse", "r2")
# metrics where a lower value is better (a slice is "below" the rest when its value is higher)
LOWER_IS_BETTER = frozenset({"mae", "rmse"})


@dataclass(frozen=True)
class Features:
    """The examples as rows of sums, and how to turn summed rows into each metric."""

    width: int  # d: the sums per set
    metrics: dict[str, Callable[[Array], Array]]  # name -> (b, d) sums -> (b,) values
    codes: npt.NDArray[np.int64] | None = None  # classification: each example's cell
    rows: Array | None = None  # regression: (n, d) each example's terms

    def sums(self, idx: npt.NDArray[np.intp]) -> Array:
        """The sums of each row of ``idx`` ((b, m) example indices, repeats allowed)."""
        b = len(idx)
        if self.codes is not None:
            flat = (np.arange(b)[:, None] * self.width + self.codes[idx]).ravel()
            counts = np.bincount(flat, minlength=b * self.width)
            return counts.reshape(b, self.width).astype(np.float64)
        assert self.rows is not None
        return self.rows[idx].sum(axis=1)

    def total(self, n: int) -> Array:
        """The sums of the whole set, as a (1, d) array."""
        return self.sums(np.arange(n)[None, :])


def classification_features(
    labels: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64], k: int
) -> Features:
    """Rows one-hot in the k x k confusion matrix (``label * k + predicted``)."""

    def confusion(s: Array) -> Array:
        return s.reshape(len(s), k, k)

    def per_class(s: Array) -> tuple[Array, Array, Array, Array]:
        c = confusion(s)
        tp = np.einsum("bii->bi", c)
        support = c.sum(axis=2)  # true counts per class
        predicted_n = c.sum(axis=1)
        present = (support + predicted_n) > 0  # a class in neither is left out (as sklearn)
        return tp, support, predicted_n, present

    def _div(a: Array, b: Array) -> Array:
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)  # 0/0 -> 0, as sklearn

    def _macro(v: Array, present: Array) -> Array:
        n_present = present.sum(axis=1)
        total = np.where(present, v, 0.0).sum(axis=1)
        return np.divide(total, n_present, out=np.full(len(v), np.nan), where=n_present > 0)

    def accuracy(s: Array) -> Array:
        c = confusion(s)
        total = c.sum(axis=(1, 2))
        return np.divide(
            np.einsum("bii->b", c), total, out=np.full(len(s), np.nan), where=total > 0
        )

    def precision(s: Array) -> Array:
        tp, _, pred_n, present = per_class(s)
        return _macro(_div(tp, pred_n), present)

    def recall(s: Array) -> Array:
        tp, support, _, present = per_class(s)
        return _macro(_div(tp, support), present)

    def f1(s: Array) -> Array:
        tp, support, pred_n, present = per_class(s)
        return _macro(_div(2 * tp, support + pred_n), present)  # 2PR/(P+R) = 2tp/(t+p)

    return Features(
        k * k,
        {
            "accuracy": accuracy,
            "macro_f1": f1,
            "macro_precision": precision,
            "macro_recall": recall,
        },
        codes=labels * k + predicted,
    )


def regression_features(labels: Array, predicted: Array) -> Features:
    """Rows ``1, |e|, e², y, y²`` (``e = predicted - label``)."""
    e = predicted - labels
    rows = np.column_stack([np.ones_like(e), np.abs(e), e * e, labels, labels * labels])

    def _mean(total: Array, n: Array) -> Array:
        return np.divide(total, n, out=np.full(len(n), np.nan), where=n > 0)

    def mae(s: Array) -> Array:
        return _mean(s[:, 1], s[:, 0])

    def rmse(s: Array) -> Array:
        return np.sqrt(_mean(s[:, 2], s[:, 0]))

    def r2(s: Array) -> Array:
        n = s[:, 0]
        mean_y = _mean(s[:, 3], n)
        sst = s[:, 4] - n * mean_y * mean_y  # sum (y - mean)^2
        # a constant target: R² undefined (NaN), as the formula 1 - SSE/0 would give
        ok = sst > 1e-12 * np.maximum(s[:, 4], 1e-300)
        return np.divide(sst - s[:, 2], sst, out=np.full(len(n), np.nan), where=ok & (n > 0))

    return Features(5, {"mae": mae, "rmse": rmse, "r2": r2}, rows=rows)


def values(features: Features, sums: Array) -> dict[str, Array]:
    """Each metric of each set (a row of ``sums``)."""
    return {name: fn(sums) for name, fn in features.metrics.items()}
