"""``hpclab.profile.latency``: how long a function takes per call, and how many calls a
second it serves, recorded into a run.

Each timed call is measured on its own with ``time.perf_counter_ns`` (a monotonic clock;
``clock=`` replaces it, as the tests do with a fake one), warm-up calls first and
untimed. With ``concurrency=N`` the calls run on a pool of N threads, each call still
timed by itself, and throughput is the timed calls over the wall time from the first
submission to the last completion. Percentiles are NumPy's (linear interpolation
between order statistics), over every timed call.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from time import perf_counter_ns
from typing import Any

import numpy as np

from hpclab.errors import ProfileError
from hpclab.store.atomic import write_json_atomic
from hpclab.tracking import results

NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
CURVE_QUANTILES = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100)  # the percentile curve
HISTOGRAM_BINS = 30
METHOD = "numpy.percentile (linear) over every timed call; time.perf_counter_ns per call"


@dataclass
class LatencyResult:
    """One profile: per-call latencies (ms) and what was derived from them."""

    name: str
    calls: int
    warmup: int
    concurrency: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    wall_s: float
    throughput_per_s: float
    curve: list[dict[str, float]] = field(default_factory=list)  # {q, ms}
    histogram: dict[str, list[float]] = field(default_factory=dict)  # edges_ms, counts
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    path: str | None = None  # profile/<name>.json, when recorded into a run

    def doc(self) -> dict[str, Any]:
        """The JSON document (every field but the raw latencies)."""
        out = asdict(self)
        out.pop("latencies_ms")
        out.pop("path")
        return {"method": METHOD, **out}


def latency(
    fn: Callable[[Any], Any],
    inputs: Sequence[Any],
    warmup: int = 10,
    iters: int = 100,
    concurrency: int = 1,
    run: Any = None,
    name: str = "latency",
    clock: Callable[[], int] = perf_counter_ns,
) -> LatencyResult:
    """Call ``fn(inputs[i % len(inputs)])`` ``warmup`` times untimed, then ``iters`` times
    timed (on ``concurrency`` threads), and record the profile into ``run`` (an
    :class:`hpclab.Run` or a run directory; None: the current run, if any) as
    ``profile/<name>.json`` and ``latency/<name>/p50_ms`` ... in its summary."""
    counts = (("warmup", warmup, 0), ("iters", iters, 1), ("concurrency", concurrency, 1))
    for arg, value, low in counts:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ProfileError(f"{arg}: an integer of at least {low}, not {value!r}")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ProfileError(f"name: {name!r} is not a file name (letters, digits, '._-')")
    if not callable(fn):
        raise ProfileError(f"fn: not callable ({type(fn).__name__})")
    try:
        items = list(inputs)
    except TypeError:
        raise ProfileError(f"inputs: a sequence, not {type(inputs).__name__}") from None
    if not items:
        raise ProfileError("inputs: empty (at least one input to call fn with)")
    target = _target(run)
    for i in range(warmup):
        _call(fn, items[i % len(items)], i, "warm-up")
    lat_ns, wall_ns = _timed(fn, items, warmup, iters, concurrency, clock)
    result = summarise(name, lat_ns, wall_ns, warmup, concurrency)
    if target is not None:
        paths, live = target
        path = paths.latency_json(name)
        paths.profile_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, result.doc())
        result.path = str(path)
        keys = ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "throughput_per_s")
        values = {
            f"latency/{name}/{k}": float(getattr(result, k))
            for k in keys
            if np.isfinite(getattr(result, k))
        }
        results.set_summary(paths, live, values, ProfileError)
    return result


def _target(run: Any) -> Any:
    if run is None:
        from hpclab.tracking.context import current_run

        run = current_run()
        if run is None:
            return None
    return results.run_target(run, ProfileError)


def _call(fn: Callable[[Any], Any], x: Any, i: int, what: str) -> None:
    try:
        fn(x)
    except Exception as e:  # the user's function: its error, named, in one line
        text = str(e).splitlines()[0] if str(e) else ""
        raise ProfileError(f"fn raised {type(e).__name__} on {what} call {i}: {text}") from e


def _timed(
    fn: Callable[[Any], Any],
    items: list[Any],
    offset: int,
    iters: int,
    concurrency: int,
    clock: Callable[[], int],
) -> tuple[np.ndarray, int]:
    out = np.zeros(iters, dtype=np.int64)

    def one(i: int) -> None:
        x = items[(offset + i) % len(items)]
        t0 = clock()
        _call(fn, x, i, "timed")
        out[i] = clock() - t0

    start = clock()
    if concurrency == 1:
        for i in range(iters):
            one(i)
    else:
        lock = threading.Lock()
        errors: list[tuple[int, ProfileError]] = []  # the earliest call's is reported

        def guarded(i: int) -> None:
            try:
                one(i)
            except ProfileError as e:
                with lock:
                    errors.append((i, e))

        prefix = "hpclab-latency"
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=prefix) as pool:
            list(pool.map(guarded, range(iters)))
        if errors:
            raise min(errors, key=lambda ie: ie[0])[1]
    return out, clock() - start


def summarise(
    name: str, lat_ns: np.ndarray, wall_ns: int, warmup: int, concurrency: int
) -> LatencyResult:
    """The profile of the latencies ``lat_ns`` (nanoseconds) over ``wall_ns``."""
    ms = lat_ns.astype(np.float64) / 1e6
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    curve = [
        {"q": float(q), "ms": float(v)}
        for q, v in zip(CURVE_QUANTILES, np.percentile(ms, CURVE_QUANTILES), strict=True)
    ]
    counts, edges = np.histogram(ms, bins=HISTOGRAM_BINS)
    wall_s = max(wall_ns, 0) / 1e9
    return LatencyResult(
        name=name,
        calls=len(ms),
        warmup=warmup,
        concurrency=concurrency,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        mean_ms=float(ms.mean()),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        std_ms=float(ms.std()),
        wall_s=wall_s,
        throughput_per_s=len(ms) / wall_s if wall_s > 0 else float("nan"),
        curve=curve,
        histogram={"edges_ms": edges.tolist(), "counts": counts.astype(float).tolist()},
        latencies_ms=ms.tolist(),
    )
