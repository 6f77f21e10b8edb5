"""``hpclab.eval.evaluate``: a run's predictions against their labels, with bootstrap
CIs, per-slice values tested against the rest, and the worst examples with their inputs.

Statistics are documented in ``docs/statistics.md`` ("Evaluation").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hpclab.errors import EvalError
from hpclab.eval.bootstrap import METHOD, TEST, bootstrap_distribution, percentile_ci
from hpclab.eval.metrics import Features, classification_features, regression_features
from hpclab.eval.slices import ALPHA, slice_groups, slice_rows
from hpclab.eval.writing import (
    MAX_WORST,
    check_data,
    example_input,
    jsonable,
    run_target,
    set_summary,
    write_files,
)
from hpclab.store import RunPaths

TASKS = ("classification", "regression")
MAX_CLASSES = 1000
CONFIDENCE = 0.95


@dataclass
class Evaluation:
    """What :func:`evaluate` computed and wrote."""

    paths: RunPaths
    task: str
    n: int
    metrics: dict[str, dict[str, Any]]  # name -> {value, ci_low, ci_high}
    slices: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def flagged(self) -> list[dict[str, Any]]:
        """The slice rows significantly below the rest."""
        return [r for r in self.slices if r["flagged"]]


def evaluate(
    run: Any,
    predictions: Any,
    labels: Any,
    task: str = "classification",
    slices: Mapping[str, Sequence[Any]] | None = None,
    data: Any = None,
    n_boot: int = 1000,
    seed: int = 0,
    worst: int = 20,
) -> Evaluation:
    """Evaluate ``predictions`` against ``labels`` and write the results beside ``run``.

    ``predictions``: labels (classification) or values (regression), one per example; for
    classification also a (n, k) array of class scores, labels then being 0..k-1 (the
    predicted class is the highest score, and the worst examples those that give their
    true class the lowest score). ``slices``: name -> a value per example.
    ``data``: the inputs (a list, a dict of columns, a DataFrame) shown with the worst
    examples. Bad input is an :class:`~hpclab.errors.EvalError`.
    """
    if task not in TASKS:
        raise EvalError(f"task: {task!r} is not one of {', '.join(TASKS)}")
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 1:
        raise EvalError(f"n_boot: a positive integer, not {n_boot!r}")
    if not isinstance(worst, int) or isinstance(worst, bool) or worst < 0:
        raise EvalError(f"worst: a count (0 or more), not {worst!r}")
    paths, live = run_target(run)
    features, predicted, y, badness, classes = _prepare(task, predictions, labels)
    n = len(y)
    groups = slice_groups(slices or {}, n)
    check_data(data, n)
    rng = np.random.default_rng(seed)
    everyone = np.arange(n)
    total = features.total(n)
    dist = bootstrap_distribution(features, everyone, n_boot, rng)
    metrics: dict[str, dict[str, Any]] = {}
    for name, fn in features.metrics.items():
        low, high = percentile_ci(dist[name], CONFIDENCE)
        value = float(fn(total)[0])
        metrics[name] = {
            "value": value if np.isfinite(value) else None,
            "ci_low": low,
            "ci_high": high,
        }
    rows = slice_rows(features, n, groups, n_boot, rng)
    failures = _failures(task, y, predicted, badness, data, n, min(worst, MAX_WORST), classes)
    method = {"method": METHOD, "n_boot": n_boot, "confidence": CONFIDENCE, "seed": seed}
    write_files(
        paths,
        {"task": task, "n": n, **method, "metrics": metrics},
        {"task": task, "n": n, **method, "test": TEST, "alpha": ALPHA, "slices": rows},
        {"task": task, "n": n, "ranked_by": _ranked_by(task, badness), "examples": failures},
    )
    set_summary(paths, live, {k: m["value"] for k, m in metrics.items()})
    return Evaluation(paths, task, n, metrics, rows, failures)


def _array(name: str, value: Any) -> npt.NDArray[Any]:
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise EvalError(f"{name}: not an array ({e})") from None
    if a.ndim == 0 or a.size == 0:
        raise EvalError(f"{name}: no values")
    return a


def _prepare(
    task: str, predictions: Any, labels: Any
) -> tuple[Features, npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[np.float64] | None, list[Any]]:
    """(features, predicted, labels, badness per example or None, class list)."""
    p = _array("predictions", predictions)
    y = _array("labels", labels)
    if y.ndim != 1:
        raise EvalError(f"labels: one value per example, not an array of shape {y.shape}")
    if len(p) != len(y):
        raise EvalError(f"predictions: {len(p)} values for {len(y)} labels")
    if _has_nan(y):
        raise EvalError(f"labels: {_nan_count(y)} NaN or missing values")
    if task == "regression":
        if p.ndim != 1:
            raise EvalError(f"predictions: one value per example, not shape {p.shape}")
        try:
            yf, pf = y.astype(np.float64), p.astype(np.float64)
        except (TypeError, ValueError):
            raise EvalError("labels and predictions: numbers for a regression") from None
        if not np.isfinite(yf).all():
            raise EvalError("labels: infinite values")
        if not np.isfinite(pf).all():
            raise EvalError(f"predictions: {int((~np.isfinite(pf)).sum())} NaN or infinite")
        return regression_features(yf, pf), pf, yf, np.abs(pf - yf), []
    scores = None
    if p.ndim == 2:
        scores = p.astype(np.float64)
        if not np.isfinite(scores).all():
            raise EvalError("predictions: NaN or infinite class scores")
        k = scores.shape[1]
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
            raise EvalError("labels: class indices 0..k-1 when predictions are (n, k) scores")
        yi = y.astype(np.int64)
        if yi.min() < 0 or yi.max() >= k:
            raise EvalError(f"labels: class indices 0..{k - 1} for {k} score columns")
        classes: list[Any] = list(range(k))
        pi = scores.argmax(axis=1)
    elif p.ndim == 1:
        if _has_nan(p):
            raise EvalError(f"predictions: {_nan_count(p)} NaN or missing values")
        classes = sorted(set(y.tolist()) | set(p.tolist()), key=lambda c: (str(type(c)), c))
        index = {c: i for i, c in enumerate(classes)}
        yi = np.array([index[c] for c in y.tolist()], dtype=np.int64)
        pi = np.array([index[c] for c in p.tolist()], dtype=np.int64)
        k = len(classes)
    else:
        raise EvalError(f"predictions: labels (n,) or class scores (n, k), not shape {p.shape}")
    if k > MAX_CLASSES:
        raise EvalError(f"labels: {k} classes (at most {MAX_CLASSES})")
    badness = None if scores is None else -scores[np.arange(len(yi)), yi]
    return classification_features(yi, pi, k), pi, yi, badness, classes


def _has_nan(a: npt.NDArray[Any]) -> bool:
    if a.dtype.kind == "f":
        return bool(np.isnan(a).any())
    if a.dtype.kind == "O":
        return any(v is None or (isinstance(v, float) and v != v) for v in a.tolist())
    return False


def _nan_count(a: npt.NDArray[Any]) -> int:
    if a.dtype.kind == "f":
        return int(np.isnan(a).sum())
    return sum(1 for v in a.tolist() if v is None or (isinstance(v, float) and v != v))


def _ranked_by(task: str, badness: Any) -> str:
    if task == "regression":
        return "absolute error, largest first"
    if badness is None:
        return "misclassified examples, in input order"
    return "misclassified examples, the lowest score given to the true class first"


def _failures(
    task: str,
    y: npt.NDArray[Any],
    predicted: npt.NDArray[Any],
    badness: npt.NDArray[np.float64] | None,
    data: Any,
    n: int,
    worst: int,
    classes: list[Any],
) -> list[dict[str, Any]]:
    if task == "regression":
        assert badness is not None
        order = np.argsort(-badness, kind="stable")
    else:
        wrong = predicted != y
        if badness is None:
            order = np.flatnonzero(wrong)
        else:  # the misclassified, by how little they believed the true class
            order = np.flatnonzero(wrong)
            order = order[np.argsort(-badness[order], kind="stable")]
    out = []
    for i in order[:worst].tolist():
        row: dict[str, Any] = {"index": i}
        if task == "regression":
            row.update(label=float(y[i]), prediction=float(predicted[i]))
            row["error"] = float(predicted[i] - y[i])
        else:
            row.update(label=jsonable(classes[y[i]]), prediction=jsonable(classes[predicted[i]]))
            if badness is not None:
                row["true_class_score"] = float(-badness[i])
        if data is not None:
            row["input"] = jsonable(example_input(data, i, n))
        out.append(row)
    return out
