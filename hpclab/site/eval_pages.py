"""The evaluation and latency parts of the run and compare pages (issue 19).

:func:`evaluation_doc` and :func:`latency_doc` go into a run's details document
(``data/details/<project>/<run>.json``: ``evaluation``, ``latency``); the catalog gives
the metrics, slices and percentiles (``eval_metrics``, ``eval_slices``, ``latency``), the
run's files the rest (the worst examples, a profile's percentile curve and histogram).
``site/assets/hpclab/evaluation.js`` draws them: the run page's Evaluation and Latency
cards, the compare page's radar of evaluation metrics and its latency comparison, with
the Vega-Lite specs made here (:func:`eval_specs`).

Failure examples' inputs are the user's data: they pass through the secret scanner (a
value under a key naming a credential becomes a marker) and are cut to
``MAX_EXAMPLES`` examples; the page escapes every value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpclab.errors import HpclabError
from hpclab.site.data import Key, SiteData, finite
from hpclab.site.html import Html, json_script
from hpclab.site.redact import MARKER, SECRET_KEY_RE, redact_value
from hpclab.store import RunPaths
from hpclab.store.atomic import read_json

if TYPE_CHECKING:
    import altair as alt

MAX_EXAMPLES = 20  # failure examples a run page shows
RADAR_DATA = "radar"  # rows {run, metric, i, k, r, value, ci_low, ci_high}, from evaluation.js
RADAR_GRID = "radar_grid"  # rows {ring, i, k}: the rings at 0.25 ... 1 and the spokes
RADAR_AXES = "radar_axes"  # rows {metric, i, k}: a spoke's label
CURVE_DATA = "latency_curve"  # rows {series, q, ms}


def evaluation_doc(data: SiteData, key: Key, paths: RunPaths) -> dict[str, Any] | None:
    """The run's evaluation for its page: metrics with CIs, slice rows (flagged marked),
    the worst examples; None when the run was never evaluated."""
    metrics = data.eval_metrics.get(key)
    if not metrics:
        return None
    slices = data.eval_slices.get(key, [])
    failures = _read(paths.eval_failures_json)
    examples = failures.get("examples") if isinstance(failures, dict) else None
    examples = examples if isinstance(examples, list) else []
    names = {m["metric"] for m in metrics}
    return {
        "task": "regression" if "mae" in names else "classification",
        "n": metrics[0].get("n"),
        "method": metrics[0].get("method"),
        "metrics": [
            {k: _value(m.get(k)) for k in ("metric", "value", "ci_low", "ci_high")} for m in metrics
        ],
        "slices": [
            {
                k: _value(s.get(k))
                for k in ("slice", "slice_value", "n", "metric", "value", "ci_low", "ci_high")
            }
            | {"p_value": finite(s.get("p_value")), "flagged": bool(s.get("flagged"))}
            for s in slices
        ],
        "flagged": sum(1 for s in slices if s.get("flagged")),
        "failures": {
            "ranked_by": str(failures.get("ranked_by") or "") if isinstance(failures, dict) else "",
            "total": len(examples),
            "examples": [_redact(e) for e in examples[:MAX_EXAMPLES] if isinstance(e, dict)],
        },
    }


def latency_doc(data: SiteData, key: Key, paths: RunPaths) -> list[dict[str, Any]]:
    """The run's latency profiles: the catalog's percentiles, and each profile's curve
    and histogram from its file."""
    out = []
    for row in data.latency.get(key, []):
        found = _read(paths.latency_json(str(row["name"])))
        doc: dict[str, Any] = found if isinstance(found, dict) else {}
        curve = [
            {"q": finite(c.get("q")), "ms": finite(c.get("ms"))}
            for c in _list(doc.get("curve"))
            if isinstance(c, dict)
        ]
        hist: dict[str, Any] = doc["histogram"] if isinstance(doc.get("histogram"), dict) else {}
        out.append(
            {
                **{k: _value(v) for k, v in row.items() if k not in ("project", "run_id")},
                "curve": [c for c in curve if c["q"] is not None and c["ms"] is not None],
                "histogram": {
                    "edges_ms": [finite(v) for v in _list(hist.get("edges_ms"))],
                    "counts": [finite(v) for v in _list(hist.get("counts"))],
                },
            }
        )
    return out


def eval_specs() -> Html:
    """The Vega-Lite specs evaluation.js draws, in the page (``hl-eval-specs``)."""
    return json_script({"radar": radar_spec(), "curve": curve_spec()}, "hl-eval-specs")


def _xy(base: alt.Chart, radius: str) -> alt.Chart:
    """x and y of a point at ``radius`` on spoke ``i`` of ``k``: spoke 0 straight up, the
    others clockwise (y grows upwards)."""
    angle = "2 * PI * datum.i / datum.k - PI / 2"
    return base.transform_calculate(x=f"{radius} * cos({angle})", y=f"-{radius} * sin({angle})")


def radar_spec() -> dict:
    """A radar of evaluation metrics per run, in Vega-Lite: each metric a spoke, each run
    a closed line through its scores (polar coordinates computed by calculate transforms;
    Vega-Lite has no polar line). ``r`` is the metric itself for scores in [0, 1], R²
    clipped at 0, and for an error (MAE, RMSE) the selection's lowest over the run's."""
    import altair as alt

    scale = alt.Scale(domain=[-1.35, 1.35], nice=False, zero=False)
    x = alt.X("x:Q", axis=None, scale=scale)
    y = alt.Y("y:Q", axis=None, scale=scale)
    grid = (
        _xy(alt.Chart(alt.Data(name=RADAR_GRID)), "datum.ring")
        .mark_line(color="#9aa0a6", strokeWidth=0.6, opacity=0.6)
        .encode(x=x, y=y, detail="ring:N", order="i:Q")
    )
    spokes = (
        _xy(alt.Chart(alt.Data(name=RADAR_AXES)), "1")
        .transform_calculate(x0="0", y0="0")
        .mark_rule(color="#9aa0a6", strokeWidth=0.6, opacity=0.6)
        .encode(x=x, y=y, x2="x0:Q", y2="y0:Q")
    )
    labels = (
        _xy(alt.Chart(alt.Data(name=RADAR_AXES)), "1.18")
        .mark_text(fontSize=11)
        .encode(x=x, y=y, text="metric:N")
    )
    runs = _xy(alt.Chart(alt.Data(name=RADAR_DATA)), "datum.r")
    color = alt.Color("run:N", legend=alt.Legend(orient="bottom", title=None, labelLimit=260))
    lines = runs.mark_line(strokeWidth=2, opacity=0.85).encode(
        x=x, y=y, color=color, order="i:Q", detail="run:N"
    )
    dots = (
        runs.transform_filter("datum.i < datum.k")
        .mark_circle(size=50, opacity=1)
        .encode(
            x=x,
            y=y,
            color=color,
            tooltip=[
                "run:N",
                "metric:N",
                alt.Tooltip("value:Q", format=".4g"),
                alt.Tooltip("ci_low:Q", format=".4g", title="95% CI low"),
                alt.Tooltip("ci_high:Q", format=".4g", title="95% CI high"),
                alt.Tooltip("r:Q", format=".3f", title="radius"),
            ],
        )
    )
    chart = alt.layer(grid, spokes, labels, lines, dots).properties(width=340, height=340)
    spec: dict = chart.to_dict()
    spec.pop("config", None)  # the page sets the theme
    return spec


def curve_spec() -> dict:
    """Latency percentile curves (data ``latency_curve``: series, q, ms): a line per run
    and profile, percentile across, milliseconds up (log scale)."""
    import altair as alt

    base = alt.Chart(alt.Data(name=CURVE_DATA))
    x = alt.X(
        "q:Q",
        title="percentile of calls",
        scale=alt.Scale(domain=[0, 100]),
        axis=alt.Axis(values=[0, 10, 25, 50, 75, 90, 95, 99, 100]),
    )
    y = alt.Y("ms:Q", title="latency (ms)", scale=alt.Scale(type="log"))
    color = alt.Color("series:N", legend=alt.Legend(orient="bottom", title=None, labelLimit=260))
    line = base.mark_line(point=True).encode(
        x=x,
        y=y,
        color=color,
        order="q:Q",
        tooltip=[
            "series:N",
            alt.Tooltip("q:Q", title="percentile"),
            alt.Tooltip("ms:Q", format=".4g"),
        ],  # fmt: skip
    )
    spec: dict = line.properties(width="container", height=240).to_dict()
    spec.pop("config", None)
    return spec


def _read(path: Any) -> Any:
    try:
        return read_json(path)
    except (FileNotFoundError, HpclabError, OSError):
        return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _value(v: Any) -> Any:
    if isinstance(v, float):
        return finite(v)
    return v


def _redact(value: Any, depth: int = 0) -> Any:
    """An example through the secret scanner: text by its shape, a mapping's value by its
    key's name."""
    if isinstance(value, dict):
        return {
            str(k): MARKER if SECRET_KEY_RE.search(str(k)) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v, depth + 1) for v in value]
    if isinstance(value, float):
        return finite(value)
    return redact_value(value)
