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
from hpclab.site.html import badge, block, duration, e, empty, num, run_link, table, when

MAX_CURVE_METRICS = 4
SIGNIFICANCE = 0.05


def sweep_report_path(project: str, sweep_id: str) -> str:
    return f"reports/{project}/{sweep_id}.md"


def hypothesis_report_path(project: str, hypothesis_id: str) -> str:
    return f"reports/{project}/hypothesis-{hypothesis_id}.md"


def hypotheses_page(data: SiteData) -> str:
    root = ""
    out = ["# Hypotheses\n"]
    if not data.hypotheses:
        out.append(
            block(
                empty(
                    "No hypotheses yet. Write one as <store>/<project>/hypotheses/<id>.yaml "
                    "(or hpclab hypothesis add) and index."
                )
            )
        )
        return "".join(out)
    for h in data.hypotheses:
        out.append(_hypothesis_section(data, h, root, level=2))
        link = hypothesis_report_path(h["project"], h["hypothesis_id"])
        out.append(f"\n[Report]({link})\n")
    return "".join(out)


def _hypothesis_section(data: SiteData, h: dict[str, Any], root: str, *, level: int) -> str:
    hk = (h["project"], h["hypothesis_id"])
    st = data.hypothesis_status.get(hk, {})
    status = st.get("status") or h.get("status_override") or "Proposed"
    out = [f"\n{'#' * level} {e(h.get('title') or h['hypothesis_id'])}\n"]
    facts = [
        badge(status),
        f"<code>{e(h['project'])}/{e(h['hypothesis_id'])}</code>",
        f"evidence {num(st.get('evidence'), 3)}",
        f"{st.get('n_runs') or len(h.get('runs') or [])} runs",
        f"{st.get('n_pending') or 0} pending",
        f"baseline: {e(h.get('baseline') or 'parent')}",
    ]
    out.append(block(f'<p class="hl-facts">{" · ".join(facts)}</p>'))
    if st.get("reason"):
        out.append(f"\n{e(st['reason'])}\n")
    if h.get("description"):
        out.append(f"\n{e(h['description'])}\n")
    per_run: dict[str, float] = {}
    for ev in data.evidence.get(hk, []):
        c = finite(ev.get("contribution"))
        if c is not None:
            per_run[ev["run_id"]] = per_run.get(ev["run_id"], 0.0) + c
    units = [
        {"label": _label(data, (h["project"], rid)), "contribution": c}
        for rid, c in per_run.items()
    ]
    spec = charts.waterfall_spec(units)
    if spec:
        out.append(block(charts.embed(spec)))
    else:
        out.append(block(empty("No evidence yet: no linked run has a value and a baseline.")))
    body = []
    for rid in h.get("runs") or []:
        key = (h["project"], rid)
        r = data.by_key.get(key)
        body.append(
            [
                run_link(h["project"], rid, root, _label(data, key)),
                badge(r["status"] if r else "missing"),
                num(per_run.get(rid), 3),
            ]
        )
    if body:
        out.append(block(table(["run", "status", "contribution"], body)))
    return "".join(out)


def _label(data: SiteData, key: Key) -> str:
    r = data.by_key.get(key) or {}
    return str(r.get("name") or key[1])


def reports_index(data: SiteData) -> str:
    out = [
        "# Reports\n",
        "\nOne report per sweep and per hypothesis: printable "
        "(the browser's Print), and exportable as standalone HTML or PDF with "
        "`hpclab site report ID --out report.pdf`.\n",
    ]
    if data.sweeps:
        body = []
        for s in data.sweeps:
            runs = [p["run_id"] for p in data.sweep_points.get((s["project"], s["sweep_id"]), [])]
            counts = Counter(
                data.by_key[(s["project"], r)]["status"]
                for r in runs
                if (s["project"], r) in data.by_key
            )
            path = sweep_report_path(s["project"], s["sweep_id"])[len("reports/") :].replace(
                ".md", ".html"
            )
            body.append(
                [
                    f'<a href="{e(path)}">{e(s["sweep_id"])}</a>',
                    e(s["project"]),
                    num(s["n_points"]),
                    " ".join(f"{badge(k)} {v}" for k, v in sorted(counts.items())),
                    when(s.get("created_at")),
                ]
            )
        out.append("\n## Sweeps\n")
        out.append(block(table(["sweep", "project", "points", "runs", "submitted"], body)))
    else:
        out.append(block(empty("No sweeps yet.")))
    out.append("\n## Hypotheses\n")
    if data.hypotheses:
        items = []
        for h in data.hypotheses:
            st = data.hypothesis_status.get((h["project"], h["hypothesis_id"]), {})
            path = hypothesis_report_path(h["project"], h["hypothesis_id"])[len("reports/") :]
            items.append(
                [
                    f'<a href="{e(path.replace(".md", ".html"))}">'
                    f"{e(h.get('title') or h['hypothesis_id'])}</a>",
                    e(h["project"]),
                    badge(st.get("status") or "Proposed"),
                ]
            )
        out.append(block(table(["hypothesis", "project", "status"], items)))
    else:
        out.append(block(empty("No hypotheses yet.")))
    return "".join(out)


def sweep_report(data: SiteData, sweep: dict[str, Any], costs: dict[Key, Cost]) -> str:
    project, sweep_id = sweep["project"], sweep["sweep_id"]
    root = "../../"
    points = data.sweep_points.get((project, sweep_id), [])
    keys = [(project, p["run_id"]) for p in points if (project, p["run_id"]) in data.by_key]
    out = [f"# Sweep {e(sweep_id)}\n"]
    facts = [
        f"project <code>{e(project)}</code>",
        f"{sweep['n_points']} points",
        f"launcher {e(sweep.get('launcher'))}",
        f"job {e(sweep.get('job_id') or '–')}",
        f"submitted {when(sweep.get('created_at'))}",
    ]
    out.append(block(f'<p class="hl-facts">{" · ".join(facts)}</p>'))
    out.append(block(f'<pre class="hl-command"><code>{e(sweep.get("command"))}</code></pre>'))
    out.append(_print_button())
    out.append("\n## Configuration\n")
    body = [
        [
            num(p["point"]),
            run_link(project, p["run_id"], root),
            badge(data.by_key.get((project, p["run_id"]), {}).get("status", "missing")),
            f"<code>{e(p['overrides'])}</code>",
        ]
        for p in points
    ]
    out.append(block(table(["point", "run", "status", "overrides"], body)))
    out.append(_common_config(data, keys))
    out.append(_report_body(data, project, keys, costs, root))
    return "".join(out)


def hypothesis_report(data: SiteData, h: dict[str, Any], costs: dict[Key, Cost]) -> str:
    project = h["project"]
    root = "../../"
    keys = [(project, r) for r in h.get("runs") or [] if (project, r) in data.by_key]
    out = [f"# Hypothesis {e(h['hypothesis_id'])}\n", _print_button()]
    out.append(_hypothesis_section(data, h, root, level=2))
    targets = loads(h.get("targets"))
    if targets:
        out.append(
            block(
                f'<pre class="hl-command"><code>targets: {e(targets)}\n'
                f"selectors: {e(loads(h.get('selectors')))}</code></pre>"
            )
        )
    out.append(_report_body(data, project, keys, costs, root))
    return "".join(out)


def _print_button() -> str:
    return block(
        '<p class="hl-noprint"><button class="md-button hl-print" onclick="window.print()">'
        "Print</button></p>"
    )


def _common_config(data: SiteData, keys: list[Key]) -> str:
    if not keys:
        return ""
    feats = [data.features.get(k, {}) for k in keys]
    common = {p: v for p, v in feats[0].items() if all(f.get(p) == v for f in feats[1:])}
    if not common:
        return ""
    body = [[f"<code>{e(p)}</code>", f"<code>{e(v)}</code>"] for p, v in sorted(common.items())]
    return block(
        f'<details class="hl-details"><summary>Config shared by every point '
        f"({len(common)} values)</summary>"
        f"{table(['path', 'value'], body)}</details>"
    )


def _report_body(
    data: SiteData, project: str, keys: list[Key], costs: dict[Key, Cost], root: str
) -> str:
    out = []
    metrics = data.key_metrics.get(project, [])
    runs = [f"{p}/{r}" for p, r in keys]
    curve_metrics = [m.name for m in metrics if "loss" in m.name] or [m.name for m in metrics]
    names = sorted({n for k in keys for n in data.summary.get(k, {})})
    curve_metrics = sorted(set(curve_metrics) | {n for n in names if "loss" in n})[
        :MAX_CURVE_METRICS
    ]
    out.append("\n## Loss curves\n")
    if runs and curve_metrics:
        for m in curve_metrics:
            out.append(
                block(
                    f'<h3 class="hl-chart-title">{e(m)}</h3>'
                    + charts.embed(charts.line_spec(color="run"), runs=runs, metrics=[m])
                )
            )
    else:
        out.append(block(empty("No metrics logged yet.")))
    out.append("\n## Leaderboard\n")
    out.append(_leaderboard(data, project, keys, root))
    out.append("\n## Seed groups\n")
    out.append(_seed_groups(data, project, keys))
    out.append("\n## Significance against the baseline\n")
    out.append(_significance(data, project, keys))
    out.append("\n## Pareto front\n")
    out.append(_pareto(data, project, keys, root))
    out.append("\n## Hypothesis verdicts\n")
    out.append(_verdicts(data, project, keys))
    out.append("\n## Cost\n")
    out.append(_cost(costs, keys))
    return "".join(out)


def _leaderboard(data: SiteData, project: str, keys: list[Key], root: str) -> str:
    metrics = data.key_metrics.get(project, [])
    if not keys:
        return block(empty("No runs."))
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
                str(rank),
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
        *[f"{e(m.name)} {'↓' if m.direction == 'minimize' else '↑'}" for m in metrics],
        "duration",
    ]
    return block(table(headers, body))


def _groups_of(data: SiteData, keys: list[Key]) -> dict[str, list[Key]]:
    groups: dict[str, list[Key]] = {}
    for k in keys:
        sg = data.seed_groups.get(k)
        if sg:
            groups.setdefault(sg["group_id"], []).append(k)
    return groups


def _seed_groups(data: SiteData, project: str, keys: list[Key]) -> str:
    groups = _groups_of(data, keys)
    if not groups:
        return block(empty("No seed groups: these runs have no seed-only repeats indexed (yet)."))
    body = []
    chart_rows = []
    first = data.key_metrics.get(project, [])
    for gid, members in groups.items():
        label = data.seed_groups[members[0]].get("label") or gid[:8]
        for st in data.seed_group_stats.get((project, gid), []):
            body.append(
                [
                    e(label),
                    e(st["metric"]),
                    num(st["n"]),
                    f"{num(st['mean'])} ± {num(_half(st))}",
                    f"[{num(st['ci_low'])}, {num(st['ci_high'])}]",
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
    out = block(table(["group", "metric", "n", "mean ± CI", "95% CI", "std"], body))
    spec = charts.interval_spec(chart_rows, first[0].name) if first else None
    return out + (block(charts.embed(spec)) if spec else "")


def _half(st: dict[str, Any]) -> float | None:
    lo, hi = finite(st.get("ci_low")), finite(st.get("ci_high"))
    return None if lo is None or hi is None else (hi - lo) / 2


def _significance(data: SiteData, project: str, keys: list[Key]) -> str:
    groups = set(_groups_of(data, keys))
    labels = {sg["group_id"]: sg.get("label") for sg in data.seed_groups.values()}
    rows_ = [c for c in data.comparisons if c["project"] == project and c["group_a"] in groups]
    if not rows_:
        return block(
            empty(
                "No comparisons: needs seed groups and a baseline group "
                "(parent or best of the sweep)."
            )
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
                f"[{num(c['ci_low'])}, {num(c['ci_high'])}]",
                num(c["p_welch"], 3),
                num(c["p_permutation"], 3),
                '<span class="hl-up">significant</span>' if significant else "not significant",
            ]
        )
    return block(
        table(
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
    )


def _pareto(data: SiteData, project: str, keys: list[Key], root: str) -> str:
    rows_ = [(k, data.pareto[k]) for k in keys if k in data.pareto]
    if not rows_:
        return block(empty("No Pareto ranks indexed for these runs."))
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
    out = ""
    if len(objectives) >= 2:
        spec = charts.pareto_spec(points, objectives[0], objectives[1])
        if spec:
            out += block(charts.embed(spec))
    out += block(table(["run on the front", *[e(o) for o in objectives]], body))
    return out


def _verdicts(data: SiteData, project: str, keys: list[Key]) -> str:
    ids = {k[1] for k in keys}
    hs = [h for h in data.hypotheses if h["project"] == project and ids & set(h.get("runs") or [])]
    if not hs:
        return block(empty("No hypothesis uses these runs."))
    body = []
    for h in hs:
        st = data.hypothesis_status.get((project, h["hypothesis_id"]), {})
        body.append(
            [
                e(h.get("title") or h["hypothesis_id"]),
                badge(st.get("status") or "Proposed"),
                num(st.get("evidence"), 3),
                e(st.get("reason")),
            ]
        )
    return block(table(["hypothesis", "status", "evidence", "why"], body))


def hours(h: float) -> str:
    """Hours for a reader: ``1234.57``, ``3.50``, ``0.00417`` (a short test sweep is not 0)."""
    return f"{h:.2f}" if h >= 1 or h == 0 else f"{h:.3g}"


def _cost(costs: dict[Key, Cost], keys: list[Key]) -> str:
    mine = [costs[k] for k in keys if k in costs]
    t = total(mine)
    used = ""
    if t.cpu_used_h is not None:
        share = f" ({100 * t.cpu_used_h / t.cpu_h:.0f}% of allocated)" if t.cpu_h > 0 else ""
        used = f" · CPU used <b>{hours(t.cpu_used_h)}</b> h{share}"
    return block(
        f'<p class="hl-facts">CPU hours <b>{hours(t.cpu_h)}</b> · GPU hours <b>{hours(t.gpu_h)}</b>'
        f"{used} · {len(mine)} runs · source: {e(t.sources)}</p>"
        '<p class="hl-note">sacct: Slurm accounting, allocated CPUs and GPUs (AllocTRES) '
        "× elapsed, as the cluster charges them; CPU used is TotalCPU. run duration: "
        "wall-clock hours from the run's start to its end or last heartbeat, on one CPU "
        "(local runs, or when accounting cannot be asked).</p>"
    )
