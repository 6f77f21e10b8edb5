"""Queries behind ``hpclab runs list/top/compare``: plain SQL on the catalog."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from hpclab.errors import CatalogError, ConfigError
from hpclab.store import Store

_BOUND = re.compile(
    r"^\s*(?P<metric>[^<>=!]+?)\s*(?P<op><=|>=|<|>|=|!=)\s*(?P<value>[-+0-9.eE]+|nan|inf)\s*$"
)


def fresh(store: Store) -> Any:
    """A connection to the catalog, brought up to date first unless an indexer
    (``hpclab watch``) is running, in which case it is current already."""
    from hpclab.catalog.connect import connect
    from hpclab.catalog.indexer import Indexer

    if store.root.is_dir():
        try:
            with Indexer(store) as ix:
                ix.index()
        except CatalogError:
            pass  # a watcher holds the lock and keeps the catalog current
    return connect(store)


@dataclass(frozen=True)
class Bound:
    metric: str
    op: str
    value: float


def parse_bound(text: str) -> Bound:
    """``val/loss<0.1`` -> Bound; a malformed bound is a ConfigError quoting it."""
    m = _BOUND.match(text)
    if not m:
        raise ConfigError(f"--where {text!r}: expected METRIC<VALUE (operators < <= > >= = !=)")
    return Bound(m["metric"], m["op"], float(m["value"]))


def list_runs(
    con: Any,
    *,
    project: str | None = None,
    sweep: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    text: str | None = None,
    where: list[Bound] | None = None,
) -> list[dict[str, Any]]:
    """Runs matching every filter, oldest first, with their step and key metrics."""
    sql = [
        "SELECT project, run_id, status, name, sweep_id, step, tags, "
        "strftime(started_at, '%Y-%m-%d %H:%M:%S') AS started FROM runs r WHERE true"
    ]
    params: list[Any] = []
    for column, value in (("project", project), ("sweep_id", sweep), ("status", status)):
        if value is not None:
            sql.append(f"AND {column} = ?")
            params.append(value)
    if tag is not None:
        sql.append("AND list_contains(tags, ?)")
        params.append(tag)
    if text is not None:
        sql.append(
            "AND (contains(lower(coalesce(name, '')), lower(?)) OR contains(run_id, ?) "
            "OR EXISTS (SELECT 1 FROM notes n WHERE n.project = r.project "
            "AND n.run_id = r.run_id AND contains(lower(n.text), lower(?))))"
        )
        params += [text, text, text]
    for b in where or []:
        sql.append(
            f"AND EXISTS (SELECT 1 FROM metric_summary s WHERE s.project = r.project AND "
            f"s.run_id = r.run_id AND s.name = ? AND s.last {b.op} ?)"
        )
        params += [b.metric, b.value]
    sql.append("ORDER BY run_id")
    cur = con.execute(" ".join(sql), params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def top(
    con: Any,
    metric: str,
    *,
    project: str | None = None,
    sweep: str | None = None,
    limit: int = 10,
    aggregation: str = "last",
) -> list[dict[str, Any]]:
    """The best runs by ``metric`` (``last``, ``best`` or ``mean``), in its direction."""
    if aggregation not in ("last", "best", "mean"):
        raise ConfigError(f"--by {aggregation!r}: one of last, best, mean")
    known = con.execute("SELECT count(*) FROM metric_summary WHERE name = ?", [metric]).fetchone()[
        0
    ]
    if not known:
        names = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT name FROM metric_summary ORDER BY name LIMIT 20"
            ).fetchall()
        ]
        raise ConfigError(f"no run has metric {metric!r}; metrics: {', '.join(names) or '(none)'}")
    sql = (
        f"SELECT s.project, s.run_id, r.name, r.sweep_id, r.status, s.{aggregation} AS value, "
        "s.last_step AS step, s.direction "
        "FROM metric_summary s JOIN runs r USING (project, run_id) "
        "WHERE s.name = ? AND NOT isnan(s.{agg})"
    ).replace("{agg}", aggregation)
    params: list[Any] = [metric]
    if project:
        sql += " AND s.project = ?"
        params.append(project)
    if sweep:
        sql += " AND r.sweep_id = ?"
        params.append(sweep)
    sql += (
        f" ORDER BY CASE WHEN s.direction = 'maximize' THEN -s.{aggregation} "
        f"ELSE s.{aggregation} END LIMIT ?"
    )
    params.append(limit)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def compare(con: Any, run_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(metrics side by side: one row per metric with each run's last value, config
    differences: one row per config path whose value differs between the runs)."""
    found = {
        r[0]
        for r in con.execute(
            "SELECT run_id FROM runs WHERE list_contains(?, run_id)", [run_ids]
        ).fetchall()
    }
    missing = [r for r in run_ids if r not in found]
    if missing:
        raise CatalogError(f"run(s) not in the catalog: {', '.join(missing)} (hpclab index?)")
    metrics: dict[str, dict[str, Any]] = {}
    for run_id, name, last in con.execute(
        "SELECT run_id, name, last FROM metric_summary WHERE list_contains(?, run_id)", [run_ids]
    ).fetchall():
        metrics.setdefault(name, {"metric": name})[run_id] = last
    config: dict[str, dict[str, Any]] = {}
    for run_id, path, value in con.execute(
        "SELECT run_id, path, value FROM features WHERE list_contains(?, run_id)", [run_ids]
    ).fetchall():
        config.setdefault(path, {"path": path})[run_id] = value
    diffs = [row for row in config.values() if len({row.get(r) for r in run_ids}) > 1]
    return [metrics[k] for k in sorted(metrics)], [
        diffs_row for diffs_row in sorted(diffs, key=lambda r: r["path"])
    ]


def compare_groups(
    con: Any,
    run_ids: list[str],
    *,
    project: str | None = None,
    alpha: float = 0.05,
    min_seeds: int = 3,
    level: float = 0.95,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The seed groups of ``run_ids``: per group and compared metric n (samples: one
    completed run per seed), mean, std and bootstrap CI; then each other group against
    the first run's group: difference of means with its CI, the tests and the verdict
    (Holm-corrected over this comparison's rows; docs/statistics.md). Empty when no group
    has two samples (nothing to say beyond the values)."""
    from hpclab.catalog.knowledge import compare_groups as compare_values
    from hpclab.catalog.stats import mean_ci
    from hpclab.catalog.verdicts import judge_family

    order: list[str] = []
    labels: dict[str, str] = {}
    for gid, label in con.execute(
        "SELECT group_id, label FROM seed_groups WHERE list_contains(?, run_id) "
        "AND (? IS NULL OR project = ?) ORDER BY list_position(?, run_id)",
        [run_ids, project, project, run_ids],
    ).fetchall():
        if gid not in order:
            order.append(gid)
            labels[gid] = label or "(no label)"
    values: dict[tuple[str, str], dict[str, float]] = {}
    directions: dict[str, str] = {}
    samples: dict[str, set[str]] = {}
    repros: dict[str, set[str]] = {}
    for gid, run_id, role, seed, metric, direction, value in con.execute(
        """
        WITH m AS (
            SELECT s.*, bool_or(s.is_key) OVER (PARTITION BY s.project) AS has_keys
            FROM metric_summary s
        )
        SELECT g.group_id, g.run_id, g.role, g.seed, m.name, m.direction,
               CASE WHEN m.is_key THEN m.key_value ELSE m.last END
        FROM seed_groups g
        JOIN m USING (project, run_id)
        WHERE g.role IN ('sample', 'reproduction') AND list_contains(?, g.group_id)
          AND (? IS NULL OR g.project = ?)
          AND (m.is_key OR (NOT m.has_keys AND m.name LIKE '%loss'))
        ORDER BY g.run_id
        """,
        [order, project, project],
    ).fetchall():
        if role == "reproduction":
            repros.setdefault(gid, set()).add(run_id)
            continue
        samples.setdefault(gid, set()).add(run_id)
        directions[metric] = direction or "minimize"
        if value is not None and math.isfinite(value):
            values.setdefault((gid, metric), {})[seed] = float(value)
    if not any(len(m) >= 2 for m in samples.values()):
        return [], []
    groups, planned = [], []
    for gid in order:
        for (g, metric), by_seed in sorted(values.items()):
            if g != gid:
                continue
            vals = list(by_seed.values())
            ci = mean_ci(vals, level=level)
            groups.append(
                {
                    "group": labels[gid],
                    "samples": len(samples.get(gid, ())),
                    "reproductions": len(repros.get(gid, ())),
                    "metric": metric,
                    "n": ci.n,
                    "mean": f"{ci.mean:.6g}",
                    "std": "" if ci.std is None else f"{ci.std:.3g}",
                    "ci": "" if ci.low is None else f"{ci.low:.6g} to {ci.high:.6g}",
                }
            )
            base = values.get((order[0], metric))
            if gid != order[0] and base:
                pairs = None
                if by_seed.keys() == base.keys() and len(base) >= 2:
                    pairs = [(by_seed[k], base[k]) for k in sorted(base)]
                planned.append(
                    (gid, metric, compare_values(vals, list(base.values()), pairs, level))
                )
    judged = judge_family(
        [(c, directions[m], 1.0 if directions[m] == "maximize" else -1.0) for _, m, c in planned],
        alpha=alpha,
        min_seeds=min_seeds,
    )
    comparisons = [
        {
            "group": labels[gid],
            "b": labels[order[0]],
            "metric": metric,
            "diff": f"{c.diff:+.4g}",
            "ci": "" if c.low is None else f"{c.low:+.4g} to {c.high:+.4g}",
            "p_welch": "" if c.p_welch is None else f"{c.p_welch:.3g}",
            "p_permutation": "" if c.p_permutation is None else f"{c.p_permutation:.3g}",
            "verdict": j.verdict,
        }
        for (gid, metric, c), j in zip(planned, judged, strict=True)
    ]
    return groups, comparisons
