"""The Hypotheses tab and the Reports: one report per sweep and per hypothesis, with the
configuration, loss curves, leaderboard, seed groups (means with their confidence
intervals, reproductions beside), significance against the baseline (the report's own
comparisons, Holm-corrected), the report's own Pareto front, hypothesis verdicts and
cost. Every number the method defines links to it (docs/statistics.md). Printable as they are;
``hpclab site report`` exports one as standalone HTML or PDF (:mod:`hpclab.site.report`).

Every section says so when the catalog has nothing for it yet (no hypotheses, a sweep
without seeds), rather than leaving a gap.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hpclab.catalog.verdicts import fmt_p
from hpclab.site import charts
from hpclab.site.cost import Cost, total
from hpclab.site.data import Key, SiteData, finite, loads
from hpclab.site.html import (
    MISSING,
    Html,
    badge,
    code,
    css_token,
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
    stats_link,
    table,
    text_block,
    visible,
    when,
)
from hpclab.site.page import Page
from hpclab.site.redact import redact_config_value, redact_value

MAX_CURVE_METRICS = 4
# A report stays light at any sweep size (a page interactive within a second): its loss
# charts overlay the best runs only (each run's series is a file the page fetches), its
# tables list a bounded number of rows and say how many more there are.
MAX_CURVE_RUNS = 10  # runs overlaid per loss chart: the best by the first key metric
MAX_MEMBERS = 8  # run links per seed-group cell (this report's runs first)
MAX_ROWS = 200  # rows of a report's run tables (leaderboard, configuration, linked runs)
MAX_HYPOTHESIS_SECTIONS = 20  # hypotheses shown in full on the Hypotheses page
MAX_INDEX_SWEEPS = 50  # sweeps per project listed open on the Reports index


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
    shown = data.hypotheses[:MAX_HYPOTHESIS_SECTIONS]
    if len(data.hypotheses) > len(shown):
        page.add(
            h(
                '<p class="hl-note">{} hypotheses: all in the table, the first {} in full '
                "below; each has its report.</p>",
                len(data.hypotheses),
                len(shown),
            ),
            _hypotheses_table(data, "reports/"),
        )
    for hyp in shown:
        _hypothesis_section(page, data, hyp, root, level=2, max_linked=MAX_MEMBERS * 4)
        report = page_href(hypothesis_report_path(hyp["project"], hyp["hypothesis_id"]))
        page.add(h("<p>{}</p>", link(report, "Report")))
    return page


def _hypotheses_table(data: SiteData, prefix: str) -> Html:
    """Every hypothesis in one row: its report, project, status and E."""
    items = []
    for hyp in data.hypotheses:
        st = data.hypothesis_status.get((hyp["project"], hyp["hypothesis_id"]), {})
        path = hypothesis_report_path(hyp["project"], hyp["hypothesis_id"])[len("reports/") :]
        items.append(
            [
                link(page_href(prefix + path), hyp.get("title") or hyp["hypothesis_id"]),
                e(hyp["project"]),
                badge(st.get("status") or "Proposed"),
                e(evidence_text(st, data.level(hyp["project"]))),
            ]
        )
    return table(["hypothesis", "project", "status", "evidence"], items)


def _hypothesis_section(
    page: Page,
    data: SiteData,
    hyp: dict[str, Any],
    root: str,
    *,
    level: int,
    max_linked: int = MAX_ROWS,
) -> None:
    project = hyp["project"]
    hk = (project, hyp["hypothesis_id"])
    st = data.hypothesis_status.get(hk, {})
    status = st.get("status") or hyp.get("status_override") or "Proposed"
    units = data.evidence.get(hk, [])
    page.heading(level, hyp.get("title") or hyp["hypothesis_id"])
    page.add(
        facts(
            [
                badge(status),
                code(f"{project}/{hyp['hypothesis_id']}"),
                h("{} linked runs", st.get("n_runs") or len(hyp.get("runs") or [])),
                h("{} pending", st.get("n_pending") or 0),
                h("baseline: {}", hyp.get("baseline") or "parent"),
            ]
        ),
        facts(
            [
                h("<b>{}</b>", evidence_text(st, data.level(project))),
                h(
                    "{} evidence units ({} better, {} worse)",
                    st.get("n_units") or len(units),
                    st.get("n_for") or 0,
                    st.get("n_against") or 0,
                ),
                h(
                    "supported above {}, refuted below {}",
                    num(st.get("supported_at")),
                    num(st.get("refuted_at")),
                ),
                stats_link(root, "evidence"),
            ]
        ),
    )
    if st.get("reason"):
        page.add(text_block(st["reason"], cls="hl-text hl-reason"))
    if hyp.get("description"):
        page.add(text_block(hyp["description"], cls="hl-text hl-description"))
    spec = charts.waterfall_spec(
        [
            {"label": label, "contribution": c}
            for label, u in zip(_unit_labels(units), units, strict=True)
            if (c := finite(u.get("contribution"))) is not None
        ]
    )
    if spec:
        page.add(charts.embed(spec))
        page.add(_units_table(data, project, units, root))
    else:
        page.add(
            empty(
                "No evidence yet: no linked seed group has completed samples with a value "
                "and a baseline group."
            )
        )
    page.add(_linked_runs(data, project, hyp.get("runs") or [], root, max_linked))


def evidence_text(st: dict[str, Any], level: float) -> str:
    """``E = +1.8 (95% CI 0.9 to 2.7)``; the interval left out when the catalog has none."""
    e_value = finite(st.get("evidence"))
    if e_value is None:
        return "E = –"
    low, high = finite(st.get("evidence_low")), finite(st.get("evidence_high"))
    if low is None or high is None:
        return f"E = {e_value:+.3g} (no interval: a unit has no standard error)"
    return f"E = {e_value:+.3g} ({pct(level)} CI {low:.3g} to {high:.3g})"


def _unit_labels(units: list[dict[str, Any]]) -> list[str]:
    """Each unit's chart label: the treatment group's label, with the metric and then the
    baseline added where two units would read alike (charts get text: visible())."""
    labels = [str(u.get("label") or "?") for u in units]
    if len(set(labels)) < len(labels):
        labels = [f"{lab} · {u['metric']}" for lab, u in zip(labels, units, strict=True)]
    if len(set(labels)) < len(labels):
        labels = [
            f"{lab} vs {u.get('baseline_label')}" for lab, u in zip(labels, units, strict=True)
        ]
    return [visible(lab) for lab in labels]


def _units_table(data: SiteData, project: str, units: list[dict[str, Any]], root: str) -> Html:
    level = data.level(project)
    body = []
    for u in units:
        body.append(
            [
                compared_cell(
                    u["metric"], u.get("label"), u.get("baseline_label"), u.get("n"),
                    u.get("n_baseline"),
                ),
                h(
                    '{}<br><small class="hl-note">/ scale {} ({}) = {}</small>',
                    with_ci(u.get("delta"), u.get("ci_low"), u.get("ci_high"), level, signed=True),
                    num(u.get("scale"), 3),
                    u.get("scale_kind"),
                    num(u.get("normalized_delta"), 3),
                ),
                tests_cell(u) + h("<br>Hedges' g={}", num(u.get("hedges_g"), 3)),
                verdict_cell(u.get("verdict")),
                h(
                    '{}<br><small class="hl-note" title="n × agreement × stability">'
                    "= {} × {} × {}</small>",
                    num(u.get("confidence"), 2),
                    num(u.get("n_confidence"), 2),
                    num(u.get("agreement"), 2),
                    num(u.get("stability"), 2),
                ),
                e(signed(u.get("contribution"))),
            ]
        )  # fmt: skip
    headers = [
        "metric: treatment vs baseline",
        f"delta (+ = better, {pct(level)} CI)",
        "tests",
        "verdict",
        "confidence",
        "contribution",
    ]
    return table(headers, body) + h(
        '<p class="hl-note">One unit per comparison of a treatment seed group (linked '
        "runs, one sample per seed) with its baseline group. Welch's t-test and the "
        "permutation test decide (Holm over the hypothesis's units); paired tests are "
        "shown beside when both groups have the same seeds. Hedges' g of treatment − "
        "baseline; delta / scale is the same g signed + = better. Confidence = n × "
        "agreement × stability. Contribution = weight × confidence × delta / scale, the "
        "weights summing to 1; E is the sum of the contributions. {} · {} · {}</p>",
        stats_link(root, "evidence", "evidence"),
        stats_link(root, "verdicts", "verdicts"),
        stats_link(root, "stability", "stability"),
    )


def compared_cell(metric: Any, a: Any, b: Any, n_a: Any, n_b: Any, basis: Any = None) -> Html:
    """``metric: a vs b`` over ``n_a vs n_b seeds`` (and the basis of the comparison)."""
    extra = h(" · {}", basis) if basis else Html("")
    return h(
        '{}: {} vs {}<br><small class="hl-note">{} vs {} seeds{}</small>',
        metric,
        label_cell(a),
        label_cell(b),
        num(n_a),
        num(n_b),
        extra,
    )


def _linked_runs(
    data: SiteData, project: str, runs: list[str], root: str, limit: int = MAX_ROWS
) -> Html:
    body = []
    for rid in runs[:limit]:
        key = (project, rid)
        r = data.by_key.get(key)
        sg = data.seed_groups.get(key)
        body.append(
            [
                run_link(project, rid, root, _label(data, key)),
                badge(r["status"] if r else "missing"),
                label_cell(sg.get("label")) if sg else MISSING,
                role_cell(data, project, sg, root),
            ]
        )
    if not body:
        return Html("")
    return table(["linked run", "status", "seed group", "role in its group"], body) + more_rows(
        len(runs), limit, "linked runs"
    )


def more_rows(n: int, limit: int, what: str) -> Html:
    """``the first 200 of 1,234 linked runs`` under a table cut at ``limit`` rows."""
    if n <= limit:
        return Html("")
    return h(
        '<p class="hl-note">The first {} of {} {}: the Runs page lists them all.</p>',
        limit,
        f"{n:,}",
        what,
    )


def role_cell(data: SiteData, project: str, sg: dict[str, Any] | None, root: str) -> Html:
    """sample, ``reproduction of <run>`` (linked), or pending."""
    if not sg:
        return MISSING
    if sg.get("role") == "reproduction" and sg.get("of_run"):
        of = sg["of_run"]
        return h("reproduction of {}", run_link(project, of, root, _label(data, (project, of))))
    return e(sg.get("role"))


def _label(data: SiteData, key: Key) -> str:
    """A run's name as a chart label (charts get text, not HTML: invisible characters
    are made visible here)."""
    r = data.by_key.get(key) or {}
    return visible(str(r.get("name") or key[1]))


# -- numbers in words --------------------------------------------------------------------
def pct(level: float) -> str:
    """``95%`` for 0.95."""
    return f"{100 * level:g}%"


def signed(value: Any, digits: int = 3) -> str:
    f = finite(value)
    return "–" if f is None else f"{f:+.{digits}g}"


def with_ci(
    value: Any, low: Any, high: Any, level: float, *, signed: bool = False, digits: int = 4
) -> str:
    """``0.412 (95% CI 0.398 to 0.431)``: the value and its interval as computed (an
    interval is asymmetric in general: never ``±``); ``signed``: a difference,
    ``+0.021 (95% CI 0.009 to 0.034)``, in 3 significant digits."""
    v = finite(value)
    if v is None:
        return "–"
    if signed:
        digits = min(digits, 3)
    text = f"{v:+.{digits}g}" if signed else f"{v:.{digits}g}"
    lo, hi = finite(low), finite(high)
    if lo is None or hi is None:
        return f"{text} (no CI: one sample a side)"
    return f"{text} ({pct(level)} CI {lo:.{digits}g} to {hi:.{digits}g})"


def tests_cell(row: dict[str, Any]) -> Html:
    """The deciding tests (Welch, permutation) with their p-values; the paired tests
    beside when the groups share their seeds."""
    deciding = [("Welch", row.get("p_welch")), ("permutation", row.get("p_permutation"))]
    parts = [f"{name} p={p_text(p)}" for name, p in deciding]
    out = e(", ".join(parts))
    if "p_holm" in row:
        out += h("<br>Holm p={}", p_text(row.get("p_holm")))
    if row.get("paired"):
        paired = [
            ("paired t", row.get("p_paired_t")),
            ("sign-flip", row.get("p_paired_permutation")),
        ]
        out += h(
            '<br><small class="hl-note">beside: {}</small>',
            ", ".join(f"{name} p={p_text(p)}" for name, p in paired),
        )
    return out


def p_text(p: Any) -> str:
    f = finite(p)
    return "n/a" if f is None else fmt_p(f)


def label_cell(label: Any) -> Html:
    """A seed group's label in a table (text that wraps at its spaces, never a hash)."""
    return h('<span class="hl-label">{}</span>', label if label is not None else "?")


def verdict_cell(verdict: Any) -> Html:
    """better / worse coloured; ``too few seeds`` and ``tests disagree`` as they are."""
    v = str(verdict or "–")
    cls = {"better": "hl-up", "worse": "hl-down"}.get(v, "hl-verdict-" + css_token(v))
    return h('<span class="hl-verdict {}">{}</span>', cls, v)


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
        page.heading(2, "Sweeps")
        by_project: dict[str, list[dict[str, Any]]] = {}
        for s in data.sweeps:  # newest first, as the catalog orders them
            by_project.setdefault(s["project"], []).append(s)
        for project, sweeps in sorted(by_project.items()):
            if len(by_project) > 1:
                page.heading(3, project)
            page.add(_sweeps_table(data, sweeps[:MAX_INDEX_SWEEPS]))
            older = sweeps[MAX_INDEX_SWEEPS:]
            if older:
                page.add(
                    h(
                        '<details class="hl-details"><summary>{} older sweeps of {}</summary>'
                        "{}</details>",
                        len(older),
                        project,
                        _sweeps_table(data, older),
                    )
                )
    else:
        page.add(empty("No sweeps yet."))
    from hpclab.site.search_pages import searches_section

    page.add(searches_section(data))  # hyperparameter searches, when there are any
    page.heading(2, "Hypotheses")
    if data.hypotheses:
        page.add(_hypotheses_table(data, ""))
        page.add(h('<p class="hl-note">{}</p>', stats_link("../", "evidence")))
    else:
        page.add(empty("No hypotheses yet."))
    return page


def _sweeps_table(data: SiteData, sweeps: list[dict[str, Any]]) -> Html:
    """One row per sweep: its report, project, points, runs by status, submission."""
    body = []
    for s in sweeps:
        points = data.sweep_points.get((s["project"], s["sweep_id"]), [])
        counts = Counter(
            r["status"] for p in points if (r := data.by_key.get((s["project"], p["run_id"])))
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
    return table(["sweep", "project", "points", "runs", "submitted"], body)


@dataclass(frozen=True)
class Scope:
    """What one report's statistics are restricted to: its seed groups, the comparisons
    of its family (a sweep's ``sweep:<id>``) or its evidence units, and its Pareto rows."""

    kind: str  # sweep | hypothesis
    scope_id: str
    groups: list[str]
    comparisons: list[dict[str, Any]]
    evidence: bool  # comparisons are evidence rows (delta + = better)


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
        for p in points[:MAX_ROWS]
    ]
    page.add(table(["point", "run", "status", "overrides"], body))
    page.add(more_rows(len(points), MAX_ROWS, "points"))
    page.add(_common_config(data, keys))
    comparisons = data.family_comparisons.get((project, f"sweep:{sweep_id}"), [])
    groups = _groups_of(data, keys)
    for c in comparisons:  # the baselines its comparisons use (a parent sweep's group)
        if c["group_b"] not in groups:
            groups.append(c["group_b"])
    scope = Scope("sweep", sweep_id, groups, comparisons, evidence=False)
    _report_body(page, data, project, keys, costs, root, scope)
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
    units = data.evidence.get((project, hyp["hypothesis_id"]), [])
    groups = _groups_of(data, keys)
    for u in units:  # the baseline groups the units compare with are part of the report
        for gid in (u.get("group_id"), u.get("baseline_group")):
            if gid and gid not in groups:
                groups.append(gid)
    scope = Scope("hypothesis", hyp["hypothesis_id"], groups, units, evidence=True)
    _report_body(page, data, project, keys, costs, root, scope)
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
    page: Page,
    data: SiteData,
    project: str,
    keys: list[Key],
    costs: dict[Key, Cost],
    root: str,
    scope: Scope,
) -> None:
    metrics = data.key_metrics.get(project, [])
    ranked = _ranked(data, project, keys)
    charted = ranked[:MAX_CURVE_RUNS]
    runs = [f"{p}/{r}" for p, r in charted]
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
        if len(charted) < len(keys):
            by = f" by {metrics[0].name}" if metrics else ""
            page.add(
                h(
                    '<p class="hl-note">The {} best of {} runs{}, overlaid; the leaderboard '
                    "ranks them all, the seed groups below give their means.</p>",
                    len(charted),
                    len(keys),
                    by,
                )
            )
        for m in curve_metrics:
            page.heading(3, m, cls="hl-chart-title", in_toc=False)
            page.add(charts.embed(charts.line_spec(color="run"), runs=runs, metrics=[m]))
    else:
        page.add(empty("No metrics logged yet."))
    page.heading(2, "Leaderboard").add(_leaderboard(data, project, ranked, root))
    page.heading(2, "Seed groups").add(_seed_groups(data, project, scope.groups, root, keys))
    page.heading(2, "Significance against the baseline").add(
        _significance(data, project, scope, root)
    )
    page.heading(2, "Pareto front").add(_pareto(data, project, scope, root))
    page.heading(2, "Hypothesis verdicts").add(_verdicts(data, project, keys, root))
    page.heading(2, "Cost").add(_cost(costs, keys))


def _ranked(data: SiteData, project: str, keys: list[Key]) -> list[Key]:
    """The runs best first by the project's first key metric (runs without a value
    last, in their order); as they are when the project has no metric."""
    metrics = data.key_metrics.get(project, [])
    if not metrics:
        return list(keys)
    m = metrics[0]
    sign = 1.0 if m.direction == "minimize" else -1.0

    def order(k: Key) -> tuple[int, float]:
        v = data.metric_value(k, m.name)
        return (1, 0.0) if v is None else (0, sign * v)

    return sorted(keys, key=order)


def _leaderboard(data: SiteData, project: str, keys: list[Key], root: str) -> Html:
    """``keys`` ranked (:func:`_ranked`): the first MAX_ROWS of them."""
    metrics = data.key_metrics.get(project, [])
    if not keys:
        return empty("No runs.")
    body = []
    for rank, k in enumerate(keys[:MAX_ROWS], 1):
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
    return table(headers, body) + more_rows(len(keys), MAX_ROWS, "runs")


def _groups_of(data: SiteData, keys: list[Key]) -> list[str]:
    """The seed groups of these runs, in the runs' order."""
    out: list[str] = []
    for k in keys:
        sg = data.seed_groups.get(k)
        if sg and sg["group_id"] not in out:
            out.append(sg["group_id"])
    return out


def _seed_groups(
    data: SiteData, project: str, group_ids: list[str], root: str, keys: list[Key]
) -> Html:
    if not group_ids:
        return empty("No seed groups: these runs are not indexed as seed groups (yet).")
    level = data.level(project)
    here = {k[1] for k in keys}
    members_body = []
    for gid in group_ids:
        members = data.group_runs.get((project, gid), [])
        by_role: dict[str, list[dict[str, Any]]] = {"sample": [], "reproduction": [], "pending": []}
        for sg in members:
            by_role.setdefault(sg.get("role") or "pending", []).append(sg)
        size = members[0].get("size") if members else 0
        members_body.append(
            [
                label_cell(data.group_label(project, gid)),
                num(size),
                _members(data, project, by_role["sample"], here, root) or MISSING,
                _members(data, project, by_role["reproduction"], here, root) or e("none"),
                _members(data, project, by_role["pending"], here, root) or e("none"),
            ]
        )
    out = table(
        ["group", "n (samples)", "samples (one run per seed)", "reproductions", "pending"],
        members_body,
    )
    stats_body = []
    charted: dict[str, list[dict[str, Any]]] = {}
    for gid in group_ids:
        label = data.group_label(project, gid)
        for st in data.seed_group_stats.get((project, gid), []):
            row_level = finite(st.get("level")) or level
            stats_body.append(
                [
                    label_cell(label),
                    e(st["metric"]),
                    num(st["n"]),
                    e(with_ci(st.get("mean"), st.get("ci_low"), st.get("ci_high"), row_level)),
                    num(st.get("std")),
                    e(st.get("ci_method")),
                ]
            )
            mean = finite(st.get("mean"))
            if mean is None:
                continue
            lo, hi = finite(st.get("ci_low")), finite(st.get("ci_high"))
            charted.setdefault(st["metric"], []).append(
                {
                    "label": visible(label),
                    "n": st["n"],
                    "mean": mean,
                    "ci_low": mean if lo is None else lo,
                    "ci_high": mean if hi is None else hi,
                }
            )
    out += h(
        '<p class="hl-note">A seed group: completed runs with the same config except the '
        "seed, the same code and the same data; one sample per seed, reruns and repros "
        "are reproductions (shown, never counted). Labels are config diffs. {} · {} · {}</p>",
        stats_link(root, "seed-groups", "seed groups"),
        stats_link(root, "labels", "labels"),
        stats_link(root, "intervals-and-tests", "intervals"),
    )
    if stats_body:
        out += table(
            ["group", "metric", "n", f"mean ({pct(level)} CI)", "std", "CI method"], stats_body
        )
    shown = [m.name for m in data.key_metrics.get(project, []) if m.name in charted]
    for metric in (shown or sorted(charted))[:MAX_CURVE_METRICS]:
        spec = charts.interval_spec(charted[metric], metric, level)
        if spec:
            out += h('<p class="hl-chart-title">{}</p>', metric) + charts.embed(spec)
    return out


def _members(
    data: SiteData, project: str, members: list[dict[str, Any]], here: set[str], root: str
) -> Html:
    """Up to MAX_MEMBERS run links, this report's runs first, then ``and N more``: a
    group gathers its config's runs from every sweep of the project."""
    ordered = [sg for sg in members if sg["run_id"] in here]
    ordered += [sg for sg in members if sg["run_id"] not in here]
    cells = []
    for sg in ordered[:MAX_MEMBERS]:
        rid = sg["run_id"]
        cell = run_link(project, rid, root, _label(data, (project, rid)))
        if sg.get("role") == "reproduction":
            cell = h("{} (of {})", cell, role_of(data, project, sg, root))
        cells.append(cell)
    out = join(cells, ", ")
    rest = len(ordered) - MAX_MEMBERS
    if rest > 0:
        out += h(' <span class="hl-note">and {} more</span>', rest)
    return out


def role_of(data: SiteData, project: str, sg: dict[str, Any], root: str) -> Html:
    of = sg.get("of_run")
    return run_link(project, of, root, _label(data, (project, of))) if of else MISSING


def _significance(data: SiteData, project: str, scope: Scope, root: str) -> Html:
    rows_ = scope.comparisons
    if not rows_:
        return empty(
            "No comparisons: needs seed groups with samples and a baseline group (the "
            "parents' group, or the best group of the sweep)."
        )
    level = data.level(project)
    body = []
    reasons = []
    for c in rows_:
        basis: Any
        if scope.evidence:
            a, b = c.get("label"), c.get("baseline_label")
            n_a, n_b = c.get("n"), c.get("n_baseline")
            diff, basis = c.get("delta"), "evidence unit"
            reason: Any = _evidence_reason(c, finite(c.get("level")) or level)
        else:
            a, b = c.get("label_a"), c.get("label_b")
            n_a, n_b = c.get("n_a"), c.get("n_b")
            diff, basis, reason = c.get("diff"), c.get("basis"), c.get("reason")
        row_level = finite(c.get("level")) or level
        body.append(
            [
                compared_cell(c["metric"], a, b, n_a, n_b, basis),
                e(with_ci(diff, c.get("ci_low"), c.get("ci_high"), row_level, signed=True)),
                tests_cell(c),
                verdict_cell(c.get("verdict")),
            ]
        )
        reasons.append(
            h("<li>{} vs {} ({}): {}</li>", label_cell(a), label_cell(b), c["metric"], reason)
        )
    alpha = _alpha(data, project, scope)
    what = "delta (+ = better" if scope.evidence else "diff (a − b"
    note = h(
        '<p class="hl-note">Significant only when Welch\'s t-test and the permutation test '
        "both reject at alpha = {} after Holm's correction over the {} comparisons of this "
        "report; fewer than the project's minimum seeds a side (or a permutation test that "
        "cannot reach alpha at these sizes) is <i>too few seeds</i>, never significant. {} "
        "· {}</p>",
        num(alpha),
        len(rows_),
        stats_link(root, "comparisons", "comparisons"),
        stats_link(root, "verdicts", "verdicts"),
    )
    headers = [
        "metric: treatment vs baseline" if scope.evidence else "metric: a vs b",
        f"{what}, {pct(level)} CI)",
        "tests",
        "verdict",
    ]
    why = h(
        '<p class="hl-note">Each verdict in words:</p><ul class="hl-reasons">{}</ul>', join(reasons)
    )
    return table(headers, body) + why + note


def _alpha(data: SiteData, project: str, scope: Scope) -> float | None:
    if scope.evidence:
        st = data.hypothesis_status.get((project, scope.scope_id), {})
        return finite(st.get("alpha"))
    return next((a for c in scope.comparisons if (a := finite(c.get("alpha"))) is not None), None)


def _evidence_reason(u: dict[str, Any], level: float) -> str:
    """An evidence unit's verdict in words, from its row (the catalog keeps no reason
    per unit: the hypothesis's reason names the strongest)."""
    words = [
        with_ci(u.get("delta"), u.get("ci_low"), u.get("ci_high"), level, signed=True),
        f"{u.get('n')} vs {u.get('n_baseline')} seeds",
        f"Welch p={p_text(u.get('p_welch'))}",
        f"permutation p={p_text(u.get('p_permutation'))}",
    ]
    if u.get("paired"):
        words += [
            f"paired t p={p_text(u.get('p_paired_t'))}",
            f"sign-flip p={p_text(u.get('p_paired_permutation'))}",
        ]
    words.append(f"Holm p={p_text(u.get('p_holm'))}")
    return f"{u.get('verdict')}: " + ", ".join(words)


def _pareto(data: SiteData, project: str, scope: Scope, root: str) -> Html:
    rows_ = data.pareto.get((project, scope.kind, scope.scope_id), [])
    link_ = stats_link(root, "pareto")
    if not rows_:
        return empty("No Pareto front: no completed run in this report has every objective.") + h(
            '<p class="hl-note">{}</p>', link_
        )
    objectives = [str(o) for o in rows_[0].get("objectives") or []]
    level = data.level(project)
    runs = [r for r in rows_ if r.get("kind") == "run"]
    groups = [r for r in rows_ if r.get("kind") == "group"]
    points, group_points = [], []
    for r in runs:
        values = [finite(v) for v in r.get("values") or []]
        if len(values) >= 2 and values[0] is not None and values[1] is not None:
            points.append(
                {
                    "run": _label(data, (project, r["run_id"])),
                    "label": visible(str(r.get("label") or "")),
                    "x": values[0],
                    "y": values[1],
                    "front": "front" if r.get("on_front") else "dominated",
                }
            )
    for g in groups:
        values = [finite(v) for v in g.get("values") or []]
        lows = [finite(v) for v in g.get("ci_low") or []]
        highs = [finite(v) for v in g.get("ci_high") or []]
        if len(values) < 2 or values[0] is None or values[1] is None:
            continue
        x, y = values[0], values[1]
        lo = (lows + [None, None])[:2]
        hi = (highs + [None, None])[:2]
        group_points.append(
            {
                "label": visible(str(g.get("label") or "")),
                "n": g.get("n"),
                "x": x,
                "y": y,
                "x_low": x if lo[0] is None else lo[0],
                "x_high": x if hi[0] is None else hi[0],
                "y_low": y if lo[1] is None else lo[1],
                "y_high": y if hi[1] is None else hi[1],
                "front": "front" if g.get("on_front") else "dominated",
            }
        )
    out = Html("")
    if len(objectives) >= 2:
        spec = charts.pareto_spec(points, objectives[0], objectives[1], group_points)
        if spec:
            out += charts.embed(spec)
    front_runs = [
        [
            run_link(project, r["run_id"], root, _label(data, (project, r["run_id"]))),
            label_cell(r.get("label")),
            *[num(v) for v in r.get("values") or []],
        ]
        for r in runs
        if r.get("on_front")
    ]
    out += table(["run on the front", "its seed group", *objectives], front_runs)
    front_groups = [
        [
            label_cell(g.get("label")),
            num(g.get("n")),
            *[
                e(with_ci(v, lo, hi, level))
                for v, lo, hi in zip(
                    g.get("values") or [],
                    _padded(g.get("ci_low"), len(objectives)),
                    _padded(g.get("ci_high"), len(objectives)),
                    strict=False,
                )
            ],
        ]
        for g in groups
        if g.get("on_front")
    ]
    if front_groups:
        out += table(
            ["seed group on the front", "n", *[f"{o} (mean, {pct(level)} CI)" for o in objectives]],
            front_groups,
        )
    return out + h(
        '<p class="hl-note">Fronts are computed within this report ({} runs, {} seed '
        "groups): runs elsewhere in the project do not dominate them. Diamonds: seed "
        "groups' means with CI whiskers. {}</p>",
        len(runs),
        len(groups),
        link_,
    )


def _padded(values: Any, n: int) -> list[Any]:
    out = list(values or [])
    return (out + [None] * n)[:n]


def _verdicts(data: SiteData, project: str, keys: list[Key], root: str) -> Html:
    ids = {k[1] for k in keys}
    hs = [
        hyp
        for hyp in data.hypotheses
        if hyp["project"] == project and ids & set(hyp.get("runs") or [])
    ]
    if not hs:
        return empty("No hypothesis uses these runs.")
    level = data.level(project)
    body = []
    for hyp in hs:
        st = data.hypothesis_status.get((project, hyp["hypothesis_id"]), {})
        body.append(
            [
                e(hyp.get("title") or hyp["hypothesis_id"]),
                badge(st.get("status") or "Proposed"),
                e(evidence_text(st, level)),
                text_block(st.get("reason"), cls="hl-text hl-reason"),
            ]
        )
    return table(["hypothesis", "status", "evidence", "why"], body) + h(
        '<p class="hl-note">E: the weighted mean of the hypothesis\'s evidence units, with '
        "its interval. {}</p>",
        stats_link(root, "evidence"),
    )


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
    memory = Html("")
    if t.mem_efficiency is not None:
        memory = h(
            " · memory used <b>{}%</b> of what was asked (median of {} runs)",
            f"{100 * t.mem_efficiency:.0f}",
            t.mem_runs,
        )
    gpu = Html("")
    if t.gpu_used_h is not None:
        gpu_share = f", {100 * t.gpu_used_h / t.gpu_h:.0f}% of allocated" if t.gpu_h > 0 else ""
        gpu = h(
            " · GPU used <b>{}</b> h ({} runs{}; from {})",
            hours(t.gpu_used_h),
            t.gpu_used_runs,
            gpu_share,
            t.gpu_used_sources,
        )
    return h(
        '<p class="hl-facts">CPU hours <b>{}</b> · GPU hours <b>{}</b>{}{}{} · {} runs · '
        "source: {}</p>"
        '<p class="hl-note">sacct: Slurm accounting over every step of each job, allocated '
        "CPUs and GPUs (AllocTRES) × elapsed, as the cluster charges them; CPU used is "
        "TotalCPU summed over the steps; memory used is each run's peak resident memory "
        "(the largest step's MaxRSS) over the memory it requested; GPU used is accounting's "
        "gres/gpuutil / 100 × elapsed (tres) or, where the site does not track it, the "
        "integral of the run's GPU utilisation samples over time on every node (samples). "
        "run duration: "
        "wall-clock hours from the run's start to its end or last heartbeat, on one CPU "
        "(local runs, or when accounting cannot be asked).</p>",
        hours(t.cpu_h),
        hours(t.gpu_h),
        used,
        memory,
        gpu,
        len(mine),
        t.sources,
    )
