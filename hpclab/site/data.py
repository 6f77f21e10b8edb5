"""The catalog, read once per build into plain Python: what every page and data file is
generated from. One query per table (never one per run), so 1,000 runs cost a few
hundred milliseconds here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hpclab.catalog.alerts_log import log_signature, recent
from hpclab.catalog.connect import connect
from hpclab.site.redact import redact_value
from hpclab.store import Store
from hpclab.store.views import total_steps

Key = tuple[str, str]  # (project, run_id)
GroupKey = tuple[str, str]  # (project, group_id)
ScopeKey = tuple[str, str, str]  # (project, scope: project|sweep|hypothesis, scope_id)

MAX_KEY_METRICS = 4


_FETCH_ROWS = 8192  # rows converted to Python at a time (fetchall holds all as tuples too)


def rows(
    con: Any, query: str, params: Iterable[Any] = (), texts: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """A query's rows as dicts, equal strings one object: a run id, a feature path, a
    metric name or a status is held once, not in every row that names it (the site
    build's load of 10,000 runs: docs/scaling.md); ``texts`` shares them across queries."""
    cur = con.execute(query, list(params))
    names = [d[0] for d in cur.description]
    share = (texts if texts is not None else {}).setdefault
    out: list[dict[str, Any]] = []
    while block := cur.fetchmany(_FETCH_ROWS):
        out.extend(
            {n: share(v, v) if type(v) is str else v for n, v in zip(names, r, strict=True)}
            for r in block
        )
    return out


def iso(value: Any) -> str | None:
    """Timestamps as ISO text (UTC, no zone suffix, as the catalog stores them)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def finite(value: Any) -> float | None:
    """A float for display, None for null, NaN and inf (shown as missing)."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


@dataclass
class Metric:
    name: str
    direction: str  # minimize | maximize

    def better(self, new: float | None, old: float | None) -> bool | None:
        """Whether ``new`` improves on ``old`` (None when either is missing or equal)."""
        if new is None or old is None or new == old:
            return None
        return new < old if self.direction == "minimize" else new > old


@dataclass
class SiteData:
    """Every table the site shows, keyed for quick lookups."""

    store: Store
    runs: list[dict[str, Any]] = field(default_factory=list)
    by_key: dict[Key, dict[str, Any]] = field(default_factory=dict)
    summary: dict[Key, dict[str, dict[str, Any]]] = field(default_factory=dict)
    key_metrics: dict[str, list[Metric]] = field(default_factory=dict)
    features: dict[Key, dict[str, str]] = field(default_factory=dict)
    feature_nums: dict[Key, dict[str, float]] = field(default_factory=dict)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    sweep_points: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    artifacts: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    datasets: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    notes: dict[Key, dict[str, Any]] = field(default_factory=dict)
    children: dict[Key, list[str]] = field(default_factory=dict)
    edges: list[dict[str, Any]] = field(default_factory=list)
    feature_diffs: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    hypotheses: list[dict[str, Any]] = field(default_factory=list)
    hypothesis_status: dict[Key, dict[str, Any]] = field(default_factory=dict)
    evidence: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)  # by hypothesis
    run_hypotheses: dict[Key, list[Key]] = field(default_factory=dict)
    seed_groups: dict[Key, dict[str, Any]] = field(default_factory=dict)  # by run
    group_runs: dict[GroupKey, list[dict[str, Any]]] = field(default_factory=dict)  # by group
    seed_group_stats: dict[GroupKey, list[dict[str, Any]]] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    family_comparisons: dict[tuple[str, str], list[dict[str, Any]]] = field(
        default_factory=dict
    )  # (project, family: sweep:<id> or group:<id>) -> group_comparisons rows
    pareto: dict[ScopeKey, list[dict[str, Any]]] = field(default_factory=dict)
    levels: dict[str, float] = field(default_factory=dict)  # project -> statistics.level
    reproductions: dict[Key, dict[str, Any]] = field(default_factory=dict)
    resources: dict[Key, dict[str, Any]] = field(default_factory=dict)  # run_resources
    eval_metrics: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)  # issue 19
    eval_slices: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    latency: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)  # profiles
    search_trials: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    publish_code: dict[str, bool] = field(default_factory=dict)  # project.yaml site.publish_code
    alerts: list[dict[str, Any]] = field(default_factory=list)  # what hpclab watch sent
    alerts_state: tuple[tuple[str, int], ...] = ()  # (project, alerts.jsonl size)

    @property
    def projects(self) -> list[str]:
        return sorted({r["project"] for r in self.runs} | {s["project"] for s in self.sweeps})

    def metric_value(self, key: Key, metric: str) -> float | None:
        """The run's value of a metric: its key value (the project's aggregation) when it
        is a key metric, else its last value."""
        m = self.summary.get(key, {}).get(metric)
        if not m:
            return None
        kv = finite(m.get("key_value")) if m.get("is_key") else None
        return kv if kv is not None else finite(m.get("last"))

    def group_label(self, project: str, group_id: str | None) -> str:
        """A seed group's label (the catalog's words, never its hash); ``?`` when the
        group is not indexed."""
        members = self.group_runs.get((project, group_id or ""))
        return str(members[0].get("label") or "?") if members else "?"

    def level(self, project: str) -> float:
        """The confidence level of the project's intervals, as the catalog's rows say
        (project.yaml statistics.level); 0.95 before anything is indexed."""
        return self.levels.get(project, 0.95)

    def total_steps(self, key: Key) -> int | None:
        """The run's planned steps as the catalog's progress model read them (the runs
        table's ``total_steps``: :func:`hpclab.store.views.planned_steps`)."""
        value = (self.by_key.get(key) or {}).get("total_steps")
        return int(value) if value is not None else total_steps(self.feature_nums.get(key, {}))

    def signature(self) -> str:
        """What the pages depend on that changes while runs train: runs and their status,
        sweeps, hypotheses and their status. Equal signatures: the pages are current."""
        return _signature(
            ((r["project"], r["run_id"], r["status"]) for r in self.runs),
            ((s["project"], s["sweep_id"]) for s in self.sweeps),
            ((hk, st.get("status")) for hk, st in sorted(self.hypothesis_status.items())),
            ((h["project"], h["hypothesis_id"]) for h in self.hypotheses),
            self.alerts_state,
        )


ALERTS_SHOWN = 20  # the Overview's most recent alerts
_RUNS_ORDER = "ORDER BY created_at DESC, run_id DESC"
_SWEEPS_ORDER = "ORDER BY created_at DESC, project, sweep_id"


def _signature(
    runs: Any, sweeps: Any, hypothesis_status: Any, hypotheses: Any, alerts: Any = ()
) -> str:
    import hashlib

    h = hashlib.sha256()
    for project, run_id, status in runs:
        h.update(f"{project}/{run_id}={status};".encode())
    for project, sweep_id in sweeps:
        h.update(f"sweep {project}/{sweep_id};".encode())
    for hk, status in hypothesis_status:
        h.update(f"hyp {hk}={status};".encode())
    for project, hypothesis_id in hypotheses:
        h.update(f"hyp {project}/{hypothesis_id};".encode())
    for project, size in alerts:
        h.update(f"alerts {project}={size};".encode())
    return h.hexdigest()[:16]


def catalog_signature(store: Store) -> str:
    """:meth:`SiteData.signature` of the published catalog, from four small queries
    instead of a full :func:`load` (seconds at 10,000 runs): whether the pages must be
    rebuilt, asked after every pass of ``hpclab watch --site``."""
    con = connect(store)
    try:
        runs = con.execute(f"SELECT project, run_id, status FROM runs {_RUNS_ORDER}").fetchall()
        return _signature(
            runs,
            con.execute(f"SELECT project, sweep_id FROM sweeps {_SWEEPS_ORDER}").fetchall(),
            (
                ((p, h), status)
                for p, h, status in con.execute(
                    "SELECT project, hypothesis_id, status FROM hypothesis_status "
                    "ORDER BY project, hypothesis_id"
                ).fetchall()
            ),
            con.execute(
                "SELECT project, hypothesis_id FROM hypotheses ORDER BY project, hypothesis_id"
            ).fetchall(),
            log_signature(store, sorted({p for p, _, _ in runs})),
        )
    finally:
        con.close()


def load(store: Store) -> SiteData:
    """Read the published catalog."""
    con = connect(store)
    try:
        data = _load(con, store)
    finally:
        con.close()
    data.publish_code = {p: _publishes_code(store, p) for p in data.projects}
    data.alerts = recent(store, data.projects, ALERTS_SHOWN)
    data.alerts_state = log_signature(store, sorted({r["project"] for r in data.runs}))
    return data


def _publishes_code(store: Store, project: str) -> bool:
    """``site.publish_code`` of the project; False when project.yaml cannot be read (the
    indexer reports why): code stays off the site unless the project allows it."""
    from hpclab.catalog.project_config import load_project_config
    from hpclab.errors import HpclabError

    try:
        return load_project_config(store.project_yaml(project)).publish_code
    except (HpclabError, OSError):
        return False


def _load(con: Any, store: Store) -> SiteData:
    d = SiteData(store=store)
    texts: dict[str, str] = {}  # one object for each distinct string of the whole load

    def q(query: str) -> list[dict[str, Any]]:
        return rows(con, query, texts=texts)

    d.runs = q(f"SELECT * FROM runs {_RUNS_ORDER}")
    d.by_key = {(r["project"], r["run_id"]): r for r in d.runs}
    names_by_project: dict[str, dict[str, str]] = defaultdict(dict)
    keys_by_project: dict[str, dict[str, str]] = defaultdict(dict)
    for m in q(
        "SELECT project, run_id, name, last, best, mean, min, max, n, last_step, direction,"
        " key_value, is_key, source FROM metric_summary",
    ):
        key = (m["project"], m["run_id"])
        d.summary.setdefault(key, {})[m["name"]] = m
        if not m["name"].startswith("system/"):  # system samples are never key metrics
            names_by_project[m["project"]][m["name"]] = m["direction"] or "minimize"
        if m["is_key"]:
            keys_by_project[m["project"]][m["name"]] = m["direction"] or "minimize"
    for project, names in names_by_project.items():
        chosen = keys_by_project.get(project) or {
            n: dr for n, dr in sorted(names.items(), key=_metric_order)[:MAX_KEY_METRICS]
        }
        d.key_metrics[project] = [Metric(n, dr) for n, dr in chosen.items()]
    for f in q("SELECT project, run_id, path, value, value_num FROM features"):
        key = (f["project"], f["run_id"])
        d.features.setdefault(key, {})[f["path"]] = f["value"]
        if f["value_num"] is not None:
            d.feature_nums.setdefault(key, {})[f["path"]] = f["value_num"]
    d.sweeps = q(f"SELECT * FROM sweeps {_SWEEPS_ORDER}")
    for p in q("SELECT * FROM sweep_points ORDER BY point"):
        d.sweep_points.setdefault((p["project"], p["sweep_id"]), []).append(p)
    for a in q("SELECT * FROM artifacts ORDER BY path"):
        d.artifacts.setdefault((a["project"], a["run_id"]), []).append(a)
    for s in q("SELECT * FROM datasets ORDER BY name"):
        d.datasets.setdefault((s["project"], s["run_id"]), []).append(s)
    for n in q("SELECT * FROM notes"):
        d.notes[(n["project"], n["run_id"])] = n
    for res in q("SELECT * FROM run_resources"):
        d.resources[(res["project"], res["run_id"])] = res
    for em in q("SELECT * FROM eval_metrics ORDER BY metric"):
        d.eval_metrics.setdefault((em["project"], em["run_id"]), []).append(em)
    for es in q("SELECT * FROM eval_slices ORDER BY slice, slice_value, metric"):
        d.eval_slices.setdefault((es["project"], es["run_id"]), []).append(es)
    for lt in q("SELECT * FROM latency ORDER BY name"):
        d.latency.setdefault((lt["project"], lt["run_id"]), []).append(lt)
    for t in q("SELECT * FROM search_trials ORDER BY project, study, number"):
        d.search_trials.setdefault((t["project"], t["study"]), []).append(t)
    d.edges = q("SELECT * FROM dag_edges")
    if not d.edges:  # before the DAG is indexed: the runs' own parent column
        d.edges = [
            {
                "project": r["project"],
                "parent_id": r["parent"],
                "child_id": r["run_id"],
                "rule": r["parent_rule"] or "explicit",
                "detail": None,
            }
            for r in d.runs
            if r.get("parent")
        ]
    for e in d.edges:
        d.children.setdefault((e["project"], e["parent_id"]), []).append(e["child_id"])
    for fd in q("SELECT * FROM feature_diffs ORDER BY path"):
        d.feature_diffs.setdefault((fd["project"], fd["run_id"]), []).append(fd)
    d.hypotheses = q("SELECT * FROM hypotheses ORDER BY project, hypothesis_id")
    for hs in q("SELECT * FROM hypothesis_status"):
        d.hypothesis_status[(hs["project"], hs["hypothesis_id"])] = hs
    for ev in q("SELECT * FROM evidence ORDER BY metric, label, baseline_label"):
        _redact_labels(ev, "label", "baseline_label")
        hk = (ev["project"], ev["hypothesis_id"])
        d.evidence.setdefault(hk, []).append(ev)
    for h in d.hypotheses:
        hk = (h["project"], h["hypothesis_id"])
        for run_id in h.get("runs") or []:
            d.run_hypotheses.setdefault((h["project"], run_id), []).append(hk)
    for hk, units in d.evidence.items():  # a baseline group's samples take part too
        for ev in units:
            for run_id in [*(ev.get("runs") or []), *(ev.get("baseline_runs") or [])]:
                mine = d.run_hypotheses.setdefault((hk[0], run_id), [])
                if hk not in mine:
                    mine.append(hk)
    for sg in q(
        "SELECT sg.* FROM seed_groups sg LEFT JOIN runs r USING (project, run_id) "
        "ORDER BY r.created_at, sg.run_id",
    ):  # a group's runs by creation: its samples before their reproductions
        _redact_labels(sg, "label")
        d.seed_groups[(sg["project"], sg["run_id"])] = sg
        d.group_runs.setdefault((sg["project"], sg["group_id"]), []).append(sg)
    for st in q("SELECT * FROM seed_group_stats ORDER BY metric"):
        _redact_labels(st, "label")
        d.seed_group_stats.setdefault((st["project"], st["group_id"]), []).append(st)
    d.comparisons = q("SELECT * FROM group_comparisons ORDER BY family, metric, label_a, label_b")
    for st in (x for rows_ in d.seed_group_stats.values() for x in rows_):
        if finite(st.get("level")) is not None:
            d.levels.setdefault(st["project"], float(st["level"]))
    for c in d.comparisons:
        if finite(c.get("level")) is not None:
            d.levels.setdefault(c["project"], float(c["level"]))
        _redact_labels(c, "label_a", "label_b")
        d.family_comparisons.setdefault((c["project"], c["family"]), []).append(c)
    for pa in q("SELECT * FROM pareto ORDER BY kind, rank, label, run_id"):
        _redact_labels(pa, "label")
        d.pareto.setdefault((pa["project"], pa["scope"], pa["scope_id"] or ""), []).append(pa)
    for rp in q("SELECT * FROM reproductions"):
        d.reproductions[(rp["project"], rp["run_id"])] = rp
    return d


def _redact_labels(row: dict[str, Any], *columns: str) -> None:
    """A label names the config values a group differs in: one may be a secret."""
    for c in columns:
        row[c] = redact_value(row.get(c))


def _metric_order(item: tuple[str, str]) -> tuple[int, str]:
    """Without key metrics in project.yaml, show losses first (val before train)."""
    name = item[0]
    rank = 0 if "val" in name and "loss" in name else 1 if "loss" in name else 2
    return rank, name


def config_diff(data: SiteData, key: Key) -> list[dict[str, Any]]:
    """The run's config against its parent's: the indexer's feature_diffs when it wrote
    them, else computed here from the two runs' features."""
    if key in data.feature_diffs:
        return [
            {k: fd[k] for k in ("path", "change", "old", "new")} for fd in data.feature_diffs[key]
        ]
    parent = data.by_key.get(key, {}).get("parent")
    if not parent:
        return []
    mine = data.features.get(key, {})
    theirs = data.features.get((key[0], parent), {})
    out = []
    for path in sorted(set(mine) | set(theirs)):
        old, new = theirs.get(path), mine.get(path)
        if old == new:
            continue
        change = "added" if old is None else "removed" if new is None else "changed"
        out.append({"path": path, "change": change, "old": old, "new": new})
    return out


def loads(text: Any) -> Any:
    """JSON text from the catalog (selectors, targets), or the text itself if it is not."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
