"""The Hypotheses tab and the Reports: one report per sweep and per hypothesis, with the
configuration, loss curves, leaderboard, seed groups (mean ± 95% CI), significance
against the baseline, Pareto front, hypothesis verdicts and cost. Printable as they are;
``hpclab site report`` exports one as standalone HTML or PDF (:mod:`hpclab.site.report`).

Every section says so when the catalog has nothing for it yet (no hypotheses, a sweep
without seeds), rather than leaving a gap.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hpclab.site import charts
from hpclab.site.cost import Cost, total
from hpclab.site.data import Key, SiteData, finite, loads
from hpclab.site.html import (
    Html,
    badge,
    code,
    duration,
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
    text_block,
    visible,
    when,
)
from hpclab.site.page import Page
from hpclab.site.redact import redact_config_value, redact_value

MAX_CURVE_METRICS = 4
SIGNIFICANCE = 0.05


def sweep_report_path(project: str, sweep_id: str) -> str:
    return f"reports/{project}/{sweep_id}.md"


def hypothesis_report_path(project: str, hypothesis_id: str) -> str:
    return f"reports/{project}/hypothesis-{hypothesis_id}.md"


def hypotheses_page(data: SiteData) -> Page:
    root = ""
    page = Page("Hypotheses").heading(1, "Hypotheses", in_toc=False)
    if not data.hypotheses:
        return page.add(
            h(
                '<p class="hl-empty">No hypotheses yet. Write one as {} (or {}) and index.</p>',
                code("<store>/<project>/hypotheses/<id>.yaml"),
                code("hpclab hypothesis add"),
            )
        )
    for hyp in data.hypotheses:
        _hypothesis_section(page, data, hyp, root, level=2)
        report = page_href(hypothesis_report_path(hyp["project"], hyp["hypothesis_id"]))
        page.add(h("<p>{}</p>", link(report, "Report")))
    return page


def _hypothesis_section(
    page: Page, data: SiteData, hyp: dict[str, Any], root: str, *, level: int
) -> None:
    hk = (hyp["project"], hyp["hypothesis_id"])
    st = data.hypothesis_status.get(hk, {})
    status = st.get("status") or hyp.get("status_override") or "Proposed"
    page.heading(level, hyp.get("title") or hyp["hypothesis_id"])
    page.add(
        facts(
            [
                badge(status),
                code(f"{hyp['project']}/{hyp['hypothesis_id']}"),
                h("evidence {}", num(st.get("evidence"), 3)),
                h("{} runs", st.get("n_runs") or len(hyp.get("runs") or [])),
                h("{} pending", st.get("n_pending") or 0),
                h("baseline: {}", hyp.get("baseline") or "parent"),
            ]
        )
    )
    if st.get("reason"):
        page.add(text_block(st["reason"]))
    if hyp.get("description"):
        page.add(text_block(hyp["description"], cls="hl-text hl-description"))
    per_run: dict[str, float] = {}
    for ev in data.evidence.get(hk, []):
        c = finite(ev.get("contribution"))
        if c is not None:
            per_run[ev["run_id"]] = per_run.get(ev["run_id"], 0.0) + c
    units = [
        {"label": _label(data, (hyp["project"], rid)), "contribution": c}
        for rid, c in per_run.items()
    ]
    spec = charts.waterfall_spec(units)
    if spec:
        page.add(charts.embed(spec))
    else:
        page.add(empty("No evidence yet: no linked run has a value and a baseline."))
    body = []
    for rid in hyp.get("runs") or []:
        key = (hyp["project"], rid)
        r = data.by_key.get(key)
        body.append(
            [
                run_link(hyp["project"], rid, root, _label(data, key)),
                badge(r["status"] if r else "missing"),
                num(per_run.get(rid), 3),
            ]
        )
    if body:
        page.add(table(["run", "status", "contribution"], body))


def _label(data: SiteData, key: Key) -> str:
    """A run's name as a chart label (charts get text, not HTML: invisible characters
    are made visible here)."""
    r = data.by_key.get(key) or {}
    return visible(str(r.get("name") or key[1]))


def reports_index(data: SiteData) -> Page:
    page = Page("Reports").heading(1, "Reports", in_toc=False)
    page.add(
        h(
            "<p>One report per sweep and per hypothesis: printable (the browser's Print), "
            "and exportable as standalone HTML or PDF with {}.</p>",
            code("hpclab site report ID --out report.pdf"),
        )
    )
    if data.sweeps:
        body = []
        for s in data.sweeps:
            runs = [p["run_id"] for p in data.sweep_points.get((s["project"], s["sweep_id"]), [])]
            counts = Counter(
                data.by_key[(s["project"], r)]["status"]
                for r in runs
                if (s["project"], r) in data.by_key
            )
            path = sweep_report_path(s["project"], s["sweep_id"])[len("reports/") :]
            body.append(
                [
                    link(page_href(path), s["sweep_id"]),
                    e(s["project"]),
                    num(s["n_points"]),
                    join((h("{} {}", badge(k), v) for k, v in sorted(counts.items())), " "),
                    when(s.get("created_at")),
                ]
            )
        page.heading(2, "Sweeps")
        page.add(table(["sweep", "project", "points", "runs", "submitted"], body))
    else:
        page.add(empty("No sweeps yet."))
    page.heading(2, "Hypotheses")
    if data.hypotheses:
        items = []
        for hyp in data.hypotheses:
            st = data.hypothesis_status.get((hyp["project"], hyp["hypothesis_id"]), {})
            path = hypothesis_report_path(hyp["project"], hyp["hypothesis_id"])[len("reports/") :]
            items.append(
                [
                    link(page_href(path), hyp.get("title") or hyp["hypothesis_id"]),
                    e(hyp["project"]),
                    badge(st.get("status") or "Proposed"),
                ]
            )
        page.add(table(["hypothesis", "project", "status"], items))
    else:
        page.add(empty("No hypotheses yet."))
    return page


def sweep_report(data: SiteData, sweep: dict[str, Any], costs: dict[Key, Cost]) -> Page:
    project, sweep_id = sweep["project"], sweep["sweep_id"]
    root = "../../"
    points = data.sweep_points.get((project, sweep_id), [])
    keys = [(project, p["run_id"]) for p in points if (project, p["run_id"]) in data.by_key]
    page = Page(f"Sweep {sweep_id}").heading(1, f"Sweep {sweep_id}", in_toc=False)
    page.add(
        facts(
            [
                h("project {}", code(project)),
                h("{} points", sweep["n_points"]),
                h("launcher {}", sweep.get("launcher")),
                h("job {}", sweep.get("job_id") or "–"),
                h("submitted {}", when(sweep.get("created_at"))),
            ]
        ),
        h('<pre class="hl-command"><code>{}</code></pre>', redact_value(sweep.get("command"))),
        _print_button(),
    )
    page.heading(2, "Configuration")
    body = [
        [
            num(p["point"]),
            run_link(project, p["run_id"], root),
            badge(data.by_key.get((project, p["run_id"]), {}).get("status", "missing")),
            code(redact_value(p["overrides"])),
        ]
        for p in points
    ]
    page.add(table(["point", "run", "status", "overrides"], body))
    page.add(_common_config(data, keys))
    _report_body(page, data, project, keys, costs, root)
    return page


def hypothesis_report(data: SiteData, hyp: dict[str, Any], costs: dict[Key, Cost]) -> Page:
    project = hyp["project"]
    root = "../../"
    keys = [(project, r) for r in hyp.get("runs") or [] if (project, r) in data.by_key]
    title = f"Hypothesis {hyp['hypothesis_id']}"
    page = Page(title).heading(1, title, in_toc=False).add(_print_button())
    _hypothesis_section(page, data, hyp, root, level=2)
    targets = loads(hyp.get("targets"))
    if targets:
        page.add(
            h(
                '<pre class="hl-command"><code>targets: {}\nselectors: {}</code></pre>',
                targets,
                loads(hyp.get("selectors")),
            )
        )
    _report_body(page, data, project, keys, costs, root)
    return page


def _print_button() -> Html:
    # hpclab.js gives .hl-print its click handler: the page's CSP forbids inline ones
    return Html(
        '<p class="hl-noprint"><button type="button" class="md-button hl-print">Print</button></p>'
    )


def _common_config(data: SiteData, keys: list[Key]) -> Html:
    if not keys:
        return Html("")
    feats = [data.features.get(k, {}) for k in keys]
    common = {p: v for p, v in feats[0].items() if all(f.get(p) == v for f in feats[1:])}
    if not common:
        return Html("")
    body = [[code(p), code(redact_config_value(p, v))] for p, v in sorted(common.items())]
    return h(
        '<details class="hl-details"><summary>Config shared by every point '
        "({} values)</summary>{}</details>",
        len(common),
        table(["path", "value"], body),
    )


def _report_body(
    page: Page, data: SiteData, project: str, keys: list[Key], costs: dict[Key, Cost], root: str
) -> None:
    metrics = data.key_metrics.get(project, [])
    runs = [f"{p}/{r}" for p, r in keys]
    curve_metrics = [m.name for m in metrics if "loss" in m.name] or [m.name for m in metrics]
    # a metric only returned by the task (metric_summary.source) has no curve
    logged = {
        n for k in keys for n, m in data.summary.get(k, {}).items() if m.get("source") != "return"
    }
    curve_metrics = sorted((set(curve_metrics) | {n for n in logged if "loss" in n}) & logged)[
        :MAX_CURVE_METRICS
    ]
    page.heading(2, "Loss curves")
    if runs and curve_metrics:
        for m in curve_metrics:
            page.heading(3, m, cls="hl-chart-title", in_toc=False)
            page.add(charts.embed(charts.line_spec(color="run"), runs=runs, metrics=[m]))
    else:
        page.add(empty("No metrics logged yet."))
    page.heading(2, "Leaderboard").add(_leaderboard(data, project, keys, root))
    page.heading(2, "Seed groups").add(_seed_groups(data, project, keys))
    page.heading(2, "Significance against the baseline").add(_significance(data, project, keys))
    page.heading(2, "Pareto front").add(_pareto(data, project, keys, root))
    page.heading(2, "Hypothesis verdicts").add(_verdicts(data, project, keys))
    page.heading(2, "Cost").add(_cost(costs, keys))


def _leaderboard(data: SiteData, project: str, keys: list[Key], root: str) -> Html:
    metrics = data.key_metrics.get(project, [])
    if not keys:
        return empty("No runs.")
    if metrics:
        m = metrics[0]
        sign = 1.0 if m.direction == "minimize" else -1.0

        def order(k: Key) -> tuple[int, float]:
            v = data.metric_value(k, m.name)
            return (1, 0.0) if v is None else (0, sign * v)

        keys = sorted(keys, key=order)
    body = []
    for rank, k in enumerate(keys, 1):
        r = data.by_key[k]
        body.append(
            [
                num(rank),
                run_link(project, k[1], root, r.get("name") or k[1]),
                badge(r["status"]),
                *[num(data.metric_value(k, m.name)) for m in metrics],
                duration(r.get("duration_s")),
            ]
        )
    headers = [
        "#",
        "run",
        "status",
        *[f"{m.name} {'↓' if m.direction == 'minimize' else '↑'}" for m in metrics],
        "duration",
    ]
    return table(headers, body)


def _groups_of(data: SiteData, keys: list[Key]) -> dict[str, list[Key]]:
    groups: dict[str, list[Key]] = {}
    for k in keys:
        sg = data.seed_groups.get(k)
        if sg:
            groups.setdefault(sg["group_id"], []).append(k)
    return groups


def _seed_groups(data: SiteData, project: str, keys: list[Key]) -> Html:
    groups = _groups_of(data, keys)
    if not groups:
        return empty("No seed groups: these runs have no seed-only repeats indexed (yet).")
    body = []
    chart_rows = []
    first = data.key_metrics.get(project, [])
    for gid, members in groups.items():
        label = visible(data.seed_groups[members[0]].get("label") or gid[:8])
        for st in data.seed_group_stats.get((project, gid), []):
            body.append(
                [
                    e(label),
                    e(st["metric"]),
                    num(st["n"]),
                    h("{} ± {}", num(st["mean"]), num(_half(st))),
                    h("[{}, {}]", num(st["ci_low"]), num(st["ci_high"])),
                    num(st["std"]),
                ]
            )
            if first and st["metric"] == first[0].name and finite(st["mean"]) is not None:
                chart_rows.append(
                    {
                        "label": label,
                        "n": st["n"],
                        "mean": finite(st["mean"]),
                        "ci_low": finite(st["ci_low"])
                        if finite(st["ci_low"]) is not None
                        else finite(st["mean"]),
                        "ci_high": finite(st["ci_high"])
                        if finite(st["ci_high"]) is not None
                        else finite(st["mean"]),
                    }
                )
    out = table(["group", "metric", "n", "mean ± CI", "95% CI", "std"], body)
    spec = charts.interval_spec(chart_rows, first[0].name) if first else None
    return out + charts.embed(spec) if spec else out


def _half(st: dict[str, Any]) -> float | None:
    lo, hi = finite(st.get("ci_low")), finite(st.get("ci_high"))
    return None if lo is None or hi is None else (hi - lo) / 2


def _significance(data: SiteData, project: str, keys: list[Key]) -> Html:
    groups = set(_groups_of(data, keys))
    labels = {sg["group_id"]: sg.get("label") for sg in data.seed_groups.values()}
    rows_ = [c for c in data.comparisons if c["project"] == project and c["group_a"] in groups]
    if not rows_:
        return empty(
            "No comparisons: needs seed groups and a baseline group (parent or best of the sweep)."
        )
    body = []
    for c in rows_:
        p = finite(c.get("p_welch"))
        significant = p is not None and p < SIGNIFICANCE
        body.append(
            [
                e(c["metric"]),
                e(labels.get(c["group_a"]) or c["group_a"][:8]),
                e(labels.get(c["group_b"]) or c["group_b"][:8]),
                e(c["basis"]),
                num(c["diff"]),
                h("[{}, {}]", num(c["ci_low"]), num(c["ci_high"])),
                num(c["p_welch"], 3),
                num(c["p_permutation"], 3),
                Html('<span class="hl-up">significant</span>')
                if significant
                else e("not significant"),
            ]
        )
    return table(
        [
            "metric",
            "group",
            "baseline",
            "basis",
            "diff",
            "95% CI",
            "p (Welch)",
            "p (perm.)",
            f"at {SIGNIFICANCE}",
        ],
        body,
    )


def _pareto(data: SiteData, project: str, keys: list[Key], root: str) -> Html:
    rows_ = [(k, data.pareto[k]) for k in keys if k in data.pareto]
    if not rows_:
        return empty("No Pareto ranks indexed for these runs.")
    objectives = list(rows_[0][1].get("objectives") or [])
    points = []
    body = []
    for k, pa in sorted(rows_, key=lambda kv: kv[1].get("rank") or 0):
        values = list(pa.get("values") or [])
        if len(values) >= 2 and finite(values[0]) is not None and finite(values[1]) is not None:
            points.append(
                {
                    "run": _label(data, k),
                    "x": values[0],
                    "y": values[1],
                    "front": "front" if pa.get("on_front") else "dominated",
                }
            )
        if pa.get("on_front"):
            body.append([run_link(project, k[1], root, _label(data, k)), *[num(v) for v in values]])
    out = Html("")
    if len(objectives) >= 2:
        spec = charts.pareto_spec(points, objectives[0], objectives[1])
        if spec:
            out += charts.embed(spec)
    return out + table(["run on the front", *objectives], body)


def _verdicts(data: SiteData, project: str, keys: list[Key]) -> Html:
    ids = {k[1] for k in keys}
    hs = [
        hyp
        for hyp in data.hypotheses
        if hyp["project"] == project and ids & set(hyp.get("runs") or [])
    ]
    if not hs:
        return empty("No hypothesis uses these runs.")
    body = []
    for hyp in hs:
        st = data.hypothesis_status.get((project, hyp["hypothesis_id"]), {})
        body.append(
            [
                e(hyp.get("title") or hyp["hypothesis_id"]),
                badge(st.get("status") or "Proposed"),
                num(st.get("evidence"), 3),
                e(st.get("reason")),
            ]
        )
    return table(["hypothesis", "status", "evidence", "why"], body)


def hours(h: float) -> str:
    """Hours for a reader: ``1234.57``, ``3.50``, ``0.00417`` (a short test sweep is not 0)."""
    return f"{h:.2f}" if h >= 1 or h == 0 else f"{h:.3g}"


def _cost(costs: dict[Key, Cost], keys: list[Key]) -> Html:
    mine = [costs[k] for k in keys if k in costs]
    t = total(mine)
    used = Html("")
    if t.cpu_used_h is not None:
        share = f" ({100 * t.cpu_used_h / t.cpu_h:.0f}% of allocated)" if t.cpu_h > 0 else ""
        used = h(" · CPU used <b>{}</b> h{}", hours(t.cpu_used_h), share)
    return h(
        '<p class="hl-facts">CPU hours <b>{}</b> · GPU hours <b>{}</b>{} · {} runs · '
        "source: {}</p>"
        '<p class="hl-note">sacct: Slurm accounting, allocated CPUs and GPUs (AllocTRES) '
        "× elapsed, as the cluster charges them; CPU used is TotalCPU. run duration: "
        "wall-clock hours from the run's start to its end or last heartbeat, on one CPU "
        "(local runs, or when accounting cannot be asked).</p>",
        hours(t.cpu_h),
        hours(t.gpu_h),
        used,
        len(mine),
        t.sources,
    )
