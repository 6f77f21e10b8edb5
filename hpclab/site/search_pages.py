"""Reports of hyperparameter searches (``hydra/sweeper=optuna``): one page per study,
from the catalog's ``search_trials``.

A study's page shows its trials (state, values, parameters, run, pruned step), the value
of each trial in order with the best so far (one objective), or the two objectives
against each other with the Pareto front joined (several: quality against cost).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hpclab.site import charts
from hpclab.site.data import SiteData
from hpclab.site.html import (
    Html,
    badge,
    code,
    e,
    empty,
    facts,
    h,
    join,
    link,
    num,
    page_href,
    run_link,
    table,
)
from hpclab.site.page import Page
from hpclab.site.redact import redact_config_value

StudyKey = tuple[str, str]
MAX_TRIALS_SHOWN = 500  # rows of a study's trials table (the catalog has them all)


def study_report_path(project: str, study: str) -> str:
    return f"reports/{project}/search-{study}.md"


def searches_section(data: SiteData) -> Html:
    """The Reports index's list of studies (empty when there are none)."""
    if not data.search_trials:
        return Html("")
    body = []
    for (project, study), trials in sorted(data.search_trials.items()):
        states = Counter(t["state"] for t in trials)
        best = [t for t in trials if t.get("on_front")]
        path = study_report_path(project, study)[len("reports/") :]
        body.append(
            [
                link(page_href(path), study),
                e(project),
                num(len(trials)),
                join((h("{} {}", badge(k.lower()), v) for k, v in sorted(states.items())), " "),
                _values(best[0]) if len(best) == 1 else h("{} on the front", len(best)),
            ]
        )
    return h(
        "<h2>Searches</h2>{}",
        table(["study", "project", "trials", "states", "best"], body),
    )


def study_report(data: SiteData, key: StudyKey) -> Page:
    project, study = key
    trials = data.search_trials.get(key, [])
    root = "../../"
    page = Page(f"Study {study}").heading(1, f"Study {study}", in_toc=False)
    objectives = list(trials[0].get("objectives") or []) if trials else []
    directions = list(trials[0].get("directions") or []) if trials else []
    states = Counter(t["state"] for t in trials)
    page.add(
        facts(
            [
                h("project {}", code(project)),
                h("{} trials", len(trials)),
                join((h("{} {}", badge(k.lower()), v) for k, v in sorted(states.items())), " "),
                join(
                    (
                        h("{} ({})", code(o), d)
                        for o, d in zip(objectives, directions, strict=False)
                    ),
                    ", ",
                ),
            ]
        )
    )
    page.add(
        h(
            '<p class="hl-note">Each trial is a run; its value is read from the run: {} is '
            "the task's return value, a metric name its final value in the run's summary, "
            "cpu_hours/gpu_hours its accounting (else its duration times what it asked "
            "for). Optuna's study: {}.</p>",
            code("return"),
            code(f"{project}/search/{study}.journal"),
        )
    )
    if not trials:
        return page.add(empty("No trials yet."))
    spec = _chart(trials, objectives, directions)
    if spec is not None:
        page.heading(2, "Trials" if len(objectives) < 2 else "Pareto front")
        page.add(charts.embed(spec))
    page.heading(2, "All trials")
    body = []
    for t in trials[:MAX_TRIALS_SHOWN]:
        body.append(
            [
                h("{}{}", "★ " if t.get("on_front") else "", t["number"]),
                badge(str(t["state"]).lower()),
                _values(t),
                _params(t),
                run_link(project, t["run_id"], root) if t.get("run_id") else Html("—"),
                num(t.get("pruned_at")) if t.get("pruned_at") is not None else Html(""),
            ]
        )
    page.add(
        table(
            ["trial", "state", ", ".join(objectives) or "value", "parameters", "run", "pruned at"],
            body,
            sort=["num", "text", "text", "text", "text", "num"],
        )
    )
    if len(trials) > MAX_TRIALS_SHOWN:
        page.add(
            h(
                '<p class="hl-note">{} more trials: {}</p>',
                len(trials) - MAX_TRIALS_SHOWN,
                code(f"hpclab sql \"SELECT * FROM search_trials WHERE study = '{study}'\""),
            )
        )
    return page


def _chart(
    trials: list[dict[str, Any]], objectives: list[str], directions: list[str]
) -> dict[str, Any] | None:
    done = [t for t in trials if t.get("values")]
    if not done:
        return None
    if len(objectives) >= 2:
        points = [
            {
                "run": t.get("run_id") or "",
                "label": f"trial {t['number']}",
                "x": t["values"][0],
                "y": t["values"][1],
                "front": "front" if t.get("on_front") else "dominated",
            }
            for t in done
        ]
        return charts.pareto_spec(points, objectives[0], objectives[1])
    maximize = bool(directions) and directions[0] == "maximize"
    best: float | None = None
    points = []
    for t in done:
        v = float(t["values"][0])
        best = v if best is None else (max(best, v) if maximize else min(best, v))
        points.append(
            {"trial": t["number"], "value": v, "best": best, "run": t.get("run_id") or ""}
        )
    return _progress_spec(points, objectives[0] if objectives else "value")


def _progress_spec(points: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Each trial's value in order (dots) and the best so far (a step line)."""
    import altair as alt

    base = alt.Chart(alt.Data(values=points))
    dots = base.mark_circle(size=50, color="#1a73e8").encode(
        x=alt.X("trial:Q", title="trial"),
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        tooltip=["trial:Q", alt.Tooltip("value:Q", format=".4g"), "run:N"],
    )
    line = base.mark_line(interpolate="step-after", color="#e8710a").encode(x="trial:Q", y="best:Q")
    spec: dict[str, Any] = (
        alt.layer(line, dots).properties(width=charts.WIDTH, height=260).to_dict()
    )
    spec.pop("config", None)  # the page sets the theme
    return spec


def _values(t: dict[str, Any]) -> Html:
    values = t.get("values")
    if not values:
        return Html("—")
    return join((num(v) for v in values), ", ")


def _params(t: dict[str, Any]) -> Html:
    try:
        params = json.loads(t.get("params") or "{}")
    except ValueError:
        params = {}
    shown = [h("{}={}", k, _short(redact_config_value(k, v))) for k, v in sorted(params.items())]
    return join(shown, " ")


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
