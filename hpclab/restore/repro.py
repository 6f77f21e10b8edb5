"""``hpclab repro``: rerun a run and compare its metrics with the original's.

Every metric's points at the steps both runs logged, and every final value (the run
summary), are compared with numpy's rule, ``|rerun - original| <= atol + rtol *
|original|`` (NaN equals NaN; an infinity equals only itself). The verdict is
``reproduced`` when every value is within tolerance, both runs logged the same metrics
at the same steps and the same final values, and the rerun ended as the original did;
otherwise ``drifted``. The result is written to the rerun's ``repro.json``, where the
catalog and the site read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpclab.store import RunPaths, Store
from hpclab.store.atomic import write_json_atomic
from hpclab.store.documents import ReproRecord
from hpclab.store.record import utcnow_iso
from hpclab.tracking.metrics import MetricSeries, is_sample_series, read_metrics

FORMAT = 1
RTOL = 1e-5
ATOL = 1e-8


@dataclass
class _Worst:
    """The value furthest outside (or least inside) its tolerance so far."""

    ratio: float = 0.0  # |diff| / tolerance
    abs_diff: float = 0.0
    rel_diff: float = 0.0
    metric: str | None = None
    step: int | None = None

    def offer(self, ratio: float, abs_diff: float, rel_diff: float, metric: str,
              step: int | None) -> None:  # fmt: skip
        if abs_diff > 0 and (self.metric is None or ratio > self.ratio):
            self.ratio, self.abs_diff, self.rel_diff = ratio, abs_diff, rel_diff
            self.metric, self.step = metric, step


def compare_runs(
    store: Store, original: RunPaths, rerun: RunPaths, *, rtol: float = RTOL,
    atol: float = ATOL,
) -> ReproRecord:  # fmt: skip
    """The reproduction record of ``rerun`` against ``original`` (the repro.json format)."""
    orig_rec, new_rec = store.read_record(original), store.read_record(rerun)
    a, b = _metrics(original), _metrics(rerun)
    details: list[dict[str, Any]] = []
    worst = _Worst()
    problems: list[str] = []
    for name in sorted(set(a) | set(b)):
        entry = _compare_series(name, a.get(name), b.get(name), rtol, atol, worst)
        details.append(entry)
        if entry["missing_in"]:
            problems.append(f"{name} missing in the {entry['missing_in']}")
        elif entry["only_in_original"] or entry["only_in_rerun"]:
            problems.append(f"{name} logged at different steps")
    for name in sorted(
        n for n in set(orig_rec.summary) | set(new_rec.summary) if not is_sample_series(n)
    ):
        entry = _compare_final(name, orig_rec.summary.get(name), new_rec.summary.get(name),
                               rtol, atol, worst)  # fmt: skip
        details.append(entry)
        if entry["missing_in"]:
            problems.append(f"final {name} missing in the {entry['missing_in']}")
    n_compared = sum(d["n_compared"] for d in details)
    n_bad = sum(d["n_mismatched"] for d in details)
    max_abs = max_rel = 0.0
    for d in details:
        max_abs, max_rel = _max(max_abs, d["max_abs_diff"]), _max(max_rel, d["max_rel_diff"])
    if new_rec.status != orig_rec.status:
        problems.insert(0, f"the rerun ended {new_rec.status.value}, the original "
                           f"{orig_rec.status.value}")  # fmt: skip
    if n_bad:
        where = f"{worst.metric}" + (f" step {worst.step}" if worst.step is not None else "")
        problems.insert(0, f"{n_bad} of {n_compared} value(s) outside tolerance, worst {where} "
                           f"(|diff| {worst.abs_diff:.3g})")  # fmt: skip
    if n_compared == 0:
        problems.append("no metric to compare")
    verdict = "drifted" if problems else "reproduced"
    return {
        "format": FORMAT,
        "of": original.id,
        "run_id": rerun.id,
        "project": orig_rec.project,
        "verdict": verdict,
        "reason": "; ".join(problems)
        if problems
        else f"all {n_compared} value(s) within tolerance",
        "rtol": rtol,
        "atol": atol,
        "n_compared": n_compared,
        "n_mismatched": n_bad,
        "max_abs_diff": _json_num(max_abs),
        "max_rel_diff": _json_num(max_rel),
        "worst_metric": worst.metric,
        "worst_step": worst.step,
        "original_status": orig_rec.status.value,
        "rerun_status": new_rec.status.value,
        "checked_at": utcnow_iso(),
        "metrics": details,
    }


def reproduce(
    store: Store,
    run_id: str,
    overrides: Sequence[str] = (),
    *,
    project: str | None = None,
    against: str | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    **rerun_options: Any,
) -> ReproRecord:
    """Rerun ``run_id`` (waiting for it), compare, write the rerun's ``repro.json`` and
    return it. ``against`` compares with an existing run instead of rerunning."""
    proj, original = store.find_run(run_id, project)
    if against is None:
        from hpclab.restore.rerun import rerun

        result = rerun(store, original.id, overrides, project=proj, wait=True, **rerun_options)
        again = store.run_paths(proj, result.run_id)
    else:
        _, again = store.find_run(against, proj)
    record = compare_runs(store, original, again, rtol=rtol, atol=atol)
    write_json_atomic(again.repro_json, record)
    return record


def _metrics(paths: RunPaths) -> dict[str, MetricSeries]:
    """The run's results: its series less the system samples (CPU, memory, GPU: two runs
    of the same code never measure the same machine the same)."""
    if not Path(paths.metrics_zarr).exists():
        return {}
    return {n: s for n, s in read_metrics(paths.metrics_zarr).items() if not is_sample_series(n)}


def _compare_series(
    name: str, a: MetricSeries | None, b: MetricSeries | None, rtol: float, atol: float,
    worst: _Worst,
) -> dict[str, Any]:  # fmt: skip
    entry: dict[str, Any] = {
        "name": name, "kind": "series", "n_compared": 0, "n_mismatched": 0,
        "max_abs_diff": 0.0, "max_rel_diff": 0.0, "worst_step": None,
        "only_in_original": 0, "only_in_rerun": 0, "missing_in": None,
        "final_original": None, "final_rerun": None,
    }  # fmt: skip
    if a is None or b is None:
        entry["missing_in"] = "rerun" if b is None else "original"
        return entry
    entry["final_original"] = _json_num(float(a.value[-1])) if len(a) else None
    entry["final_rerun"] = _json_num(float(b.value[-1])) if len(b) else None
    steps, ia, ib = np.intersect1d(a.step, b.step, return_indices=True)
    entry["only_in_original"] = int(len(a.step) - len(steps))
    entry["only_in_rerun"] = int(len(b.step) - len(steps))
    abs_d, rel_d, ratio, ok = _diffs(a.value[ia], b.value[ib], rtol, atol)
    entry["n_compared"] = int(len(steps))
    entry["n_mismatched"] = int((~ok).sum())
    if len(steps) and abs_d.max() > 0:
        i = int(np.argmax(ratio))
        entry["max_abs_diff"] = _json_num(float(abs_d.max()))
        entry["max_rel_diff"] = _json_num(float(rel_d.max()))
        entry["worst_step"] = int(steps[i])
        worst.offer(float(ratio[i]), float(abs_d[i]), float(rel_d[i]), name, int(steps[i]))
    return entry


def _compare_final(
    name: str, a: Any, b: Any, rtol: float, atol: float, worst: _Worst
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name, "kind": "final", "n_compared": 0, "n_mismatched": 0,
        "max_abs_diff": 0.0, "max_rel_diff": 0.0, "worst_step": None, "missing_in": None,
        "final_original": _json_num(a), "final_rerun": _json_num(b),
    }  # fmt: skip
    fa, fb = _as_number(a), _as_number(b)
    if fa is None or fb is None:
        entry["missing_in"] = "rerun" if fb is None else "original"
        return entry
    entry["final_original"], entry["final_rerun"] = _json_num(fa), _json_num(fb)
    abs_d, rel_d, ratio, ok = _diffs(np.array([fa]), np.array([fb]), rtol, atol)
    entry["n_compared"] = 1
    entry["n_mismatched"] = int(not ok[0])
    entry["max_abs_diff"], entry["max_rel_diff"] = _json_num(abs_d[0]), _json_num(rel_d[0])
    worst.offer(float(ratio[0]), float(abs_d[0]), float(rel_d[0]), name, None)
    return entry


def _diffs(
    a: np.ndarray, b: np.ndarray, rtol: float, atol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per point: |diff|, |diff| / max(|a|, |b|), |diff| / tolerance, and within tolerance.
    Equal values (NaN and NaN, an infinity and itself) differ by 0; a non-finite value
    against anything else differs by infinity."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        abs_d = np.where(same, 0.0, np.abs(a - b))
        abs_d = np.where(~same & ~(np.isfinite(a) & np.isfinite(b)), np.inf, abs_d)
        scale = np.maximum(np.abs(a), np.abs(b))
        rel_d = np.where(abs_d == 0, 0.0, abs_d / np.where(scale > 0, scale, 1.0))
        tol = atol + rtol * np.abs(a)
        ratio = np.where(abs_d == 0, 0.0, np.where(tol > 0, abs_d / tol, np.inf))
        ok = same | (abs_d <= tol)
    return abs_d, rel_d, ratio, ok


def _as_number(v: Any) -> float | None:
    """A summary value as a float: numbers, and the strings run.json uses for non-finite
    values ("nan", "inf", "-inf"); None for anything else (or a missing value)."""
    if _is_number(v):
        return float(v)
    if isinstance(v, str) and v.strip().lower() in ("nan", "inf", "-inf", "+inf"):
        return float(v)
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _json_num(v: Any) -> float | None:
    """A float for JSON, None for a non-number or an infinite/NaN difference."""
    if not _is_number(v) and not isinstance(v, np.floating):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _max(current: float, value: float | None) -> float:
    """Running maximum; None (an infinite difference) wins."""
    if value is None or current == math.inf:
        return math.inf
    return max(current, value)


def summary_line(record: Mapping[str, Any]) -> str:
    """One line: verdict, by how much, and where."""
    head = f"{record['verdict']}: run {record['run_id']} vs original {record['of']}"
    return f"{head}: {record['reason']} (rtol {record['rtol']:g}, atol {record['atol']:g})"
