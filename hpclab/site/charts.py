"""Vega-Lite specs (made with Altair) for the site's charts, and how a page embeds one.

Specs of loss curves name their data (``series``) instead of holding it: the browser
fills it from the runs' data files (and refreshes it while they train), the report
export fills it from the same series in Python. Small charts (evidence waterfall, Pareto
front, seed groups) carry their data inline (the Pareto and interval charts as named
``datasets`` beside a spec made once per axis: Altair's validation is the costly part).

A chart is embedded as ``<div class="hl-chart" ...><script type="application/json">``
with the spec inside (``<`` written as ``\\u003c``): plain HTML, so the pages do not
depend on the MkDocs theme.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import altair as alt

from hpclab.site.html import Html, h, join, json_script

SERIES = "series"  # the named data set of line charts: rows {run, metric, step, value}
WIDTH = "container"


def line_spec(*, color: str = "metric", title: str | None = None, height: int = 260) -> dict:
    """Lines of ``value`` over ``step``, one per ``color`` (``metric`` for one run's train
    and val loss, ``run`` for a sweep's runs overlaid); gaps where values are missing. A
    value with no neighbour to join (between two missing ones, or a series of one point:
    rows flagged ``lone`` by :func:`lone_flags`) is drawn as a dot, or it would not show."""
    spec: dict = json.loads(_line_template(color, title, height))
    return spec


@functools.lru_cache(maxsize=64)
def _line_template(color: str, title: str | None, height: int) -> str:
    legend = alt.Legend(orient="bottom", columns=4, labelLimit=220, title=None)
    base = alt.Chart(alt.Data(name=SERIES)).encode(
        # labels that would overlap are left out, the end ones kept inside the chart
        x=alt.X("step:Q", title="step", axis=alt.Axis(labelOverlap=True, labelFlush=True)),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color(f"{color}:N", legend=legend),
        detail=alt.Detail("key:N"),
        tooltip=[
            alt.Tooltip("run:N"),
            alt.Tooltip("metric:N"),
            alt.Tooltip("step:Q"),
            alt.Tooltip("value:Q", format=".5g"),
        ],
    )
    lines = base.mark_line(strokeWidth=1.6, interpolate="linear")
    dots = base.mark_point(filled=True, size=24, opacity=1).transform_filter("datum.lone")
    chart = alt.layer(lines, dots).properties(width=WIDTH, height=height)
    if title:
        chart = chart.properties(title=title)
    return json.dumps(_dict(chart))


def lone_flags(values: list[float | None]) -> list[bool]:
    """For each value: set, with no set value on either side (a line cannot show it)."""
    n = len(values)
    return [
        v is not None
        and (i == 0 or values[i - 1] is None)
        and (i == n - 1 or values[i + 1] is None)
        for i, v in enumerate(values)
    ]


def waterfall_spec(units: list[dict[str, Any]], *, title: str | None = None) -> dict | None:
    """Evidence waterfall: each evidence unit's contribution (``label``: the treatment
    group's label, unique per chart) as a step from the running total; the last bar is
    E, the contributions' sum. Drawn across, a row per unit (the labels, long config
    differences, read along the y axis: no two overlap, none is dropped), top to bottom."""
    values = []
    total = 0.0
    for u in units:
        c = float(u["contribution"])
        values.append(
            {
                "label": u["label"],
                "start": total,
                "end": total + c,
                "contribution": c,
                "sign": "supports" if c >= 0 else "refutes",
            }
        )
        total += c
    if not values:
        return None
    values.append({"label": "E", "start": 0.0, "end": total, "contribution": total, "sign": "E"})
    order = [v["label"] for v in values]
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=360)),
            x=alt.X("start:Q", title="contribution to E (cumulative)"),
            x2="end:Q",
            color=alt.Color(
                "sign:N",
                scale=alt.Scale(
                    domain=["supports", "refutes", "E"],
                    range=["#2e9d5b", "#d1453b", "#5b6bbf"],
                ),
                legend=alt.Legend(orient="bottom", title=None),
            ),
            tooltip=["label:N", alt.Tooltip("contribution:Q", format="+.3f")],
        )
        .properties(width=WIDTH, height=max(60, 22 * len(values)))
    )
    if title:
        chart = chart.properties(title=title)
    return _dict(chart)


FRONT_COLORS = alt.Scale(domain=["front", "dominated"], range=["#e8710a", "#9aa0a6"])


def pareto_spec(
    points: list[dict[str, Any]],
    x: str,
    y: str,
    groups: list[dict[str, Any]] | None = None,
) -> dict | None:
    """Runs on two objectives (``points``: run, label, x, y, front), the front highlighted
    and joined; seed groups (``groups``: label, n, x, y, x_low, x_high, y_low, y_high,
    front) as diamonds at their means with CI whiskers on both objectives (a bound that
    is missing: the mean, a whisker of no length)."""
    if not points and not groups:
        return None
    spec: dict = json.loads(_pareto_template(x, y, bool(points), bool(groups)))
    spec["datasets"] = {
        name: rows for name, rows in (("points", points), ("groups", groups)) if rows
    }
    return spec


@functools.lru_cache(maxsize=64)
def _pareto_template(x: str, y: str, points: bool, groups: bool) -> str:
    """The spec without its data (named data sets ``points`` and ``groups``), as JSON:
    built and validated by Altair once per axis pair, not once per report."""
    layers: list[Any] = []
    x_enc = alt.X("x:Q", title=x, scale=alt.Scale(zero=False))
    y_enc = alt.Y("y:Q", title=y, scale=alt.Scale(zero=False))
    color = alt.Color("front:N", scale=FRONT_COLORS, legend=alt.Legend(orient="bottom", title=None))
    if points:
        base = alt.Chart(alt.Data(name="points"))
        layers.append(
            base.transform_filter(alt.datum.front == "front")
            .mark_line(color="#e8710a", strokeDash=[4, 3])
            .encode(x="x:Q", y="y:Q", order="x:Q")
        )
        layers.append(
            base.mark_circle(size=60).encode(
                x=x_enc,
                y=y_enc,
                color=color,
                tooltip=[
                    "run:N",
                    "label:N",
                    alt.Tooltip("x:Q", title=x, format=".4g"),
                    alt.Tooltip("y:Q", title=y, format=".4g"),
                ],
            )
        )
    if groups:
        gbase = alt.Chart(alt.Data(name="groups"))
        whisker = {"color": color, "opacity": alt.value(0.8)}
        layers.append(
            gbase.mark_errorbar(ticks=True).encode(
                x=alt.X("x_low:Q", title=x, scale=alt.Scale(zero=False)), x2="x_high:Q", y="y:Q",
                **whisker,
            )
        )  # fmt: skip
        layers.append(
            gbase.mark_errorbar(ticks=True).encode(
                y=alt.Y("y_low:Q", title=y, scale=alt.Scale(zero=False)), y2="y_high:Q", x="x:Q",
                **whisker,
            )
        )  # fmt: skip
        layers.append(
            gbase.mark_point(shape="diamond", size=130, filled=True, opacity=0.9).encode(
                x=x_enc,
                y=y_enc,
                color=color,
                tooltip=[
                    "label:N",
                    "n:Q",
                    alt.Tooltip("x:Q", title=f"{x} (mean)", format=".4g"),
                    alt.Tooltip("y:Q", title=f"{y} (mean)", format=".4g"),
                ],
            )
        )
    return json.dumps(_dict(alt.layer(*layers).properties(width=WIDTH, height=280)))


def interval_spec(groups: list[dict[str, Any]], metric: str, level: float = 0.95) -> dict | None:
    """Seed groups' means with their confidence intervals (at ``level``), one row per
    group label (``label``, ``n``, ``mean``, ``ci_low``, ``ci_high``)."""
    if not groups:
        return None
    spec: dict = json.loads(_interval_template(metric, level))
    spec["datasets"] = {"groups": groups}
    spec["height"] = max(60, 24 * len(groups))
    return spec


@functools.lru_cache(maxsize=64)
def _interval_template(metric: str, level: float) -> str:
    base = alt.Chart(alt.Data(name="groups"))
    pct = f"{100 * level:g}%"
    bars = base.mark_rule(strokeWidth=2).encode(
        y=alt.Y("label:N", title=None, sort=None, axis=alt.Axis(labelLimit=360)),
        x=alt.X("ci_low:Q", title=f"{metric} (mean, {pct} CI)", scale=alt.Scale(zero=False)),
        x2="ci_high:Q",
    )
    dots = base.mark_point(filled=True, size=60).encode(
        y=alt.Y("label:N", sort=None),
        x="mean:Q",
        tooltip=[
            "label:N",
            "n:Q",
            alt.Tooltip("mean:Q", format=".4g"),
            alt.Tooltip("ci_low:Q", title=f"{pct} CI low", format=".4g"),
            alt.Tooltip("ci_high:Q", title=f"{pct} CI high", format=".4g"),
        ],
    )
    return json.dumps(_dict((bars + dots).properties(width=WIDTH, height=60)))


def embed(
    spec: dict,
    *,
    runs: list[str] | None = None,
    metrics: list[str] | None = None,
    color: str | None = None,
) -> Html:
    """The HTML block that shows ``spec``; ``runs`` ("project/run_id") and ``metrics`` fill
    its ``series`` data from the runs' data files."""
    attrs = []
    if runs is not None:
        attrs.append(h(' data-runs="{}"', ",".join(runs)))
    if metrics is not None:
        attrs.append(h(' data-metrics="{}"', json.dumps(metrics)))
    if color is not None:
        attrs.append(h(' data-color="{}"', color))
    return h('<div class="hl-chart"{}>{}</div>', join(attrs), json_script(spec))


def _dict(chart: Any) -> dict:
    spec: dict = chart.to_dict()
    spec.pop("config", None)  # the page sets the theme (light or dark)
    return spec
