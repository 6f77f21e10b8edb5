"""The Runs table's optional columns: every run's config values and summary metrics, in
``data/runs-config.json``, one array per column, rows in the order of
``data/runs-list.json`` (:func:`hpclab.site.pages.runs_list_doc`). The page
(site/assets/hpclab/runs-table.js) reads both files, shows the columns the user picks
(by default the config paths that vary and the key metrics), filters by expressions over
them, sorts, and exports the view.

Columnar, so that 10,000 runs stay a small file (docs/scaling.md): a column of at most
:data:`MAX_DISTINCT` distinct values is a dictionary and one small integer per run
(``{"key", "dict", "codes"}``, ``-1`` where the run has no value); a numeric column with
more is the values themselves (``{"key", "values"}``); a text column with more (paths,
timestamps) is left out and named in ``omitted``. Config values are published as the
site may show them (:func:`~hpclab.site.redact.redact_config_value`: a key naming a
credential, or a value shaped like one, is a marker); paths under the project's
``features.ignore`` (``hpclab.*`` by default) are not columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from hpclab.catalog.diffs import under
from hpclab.site.data import Key, SiteData
from hpclab.site.redact import redact_config_value

MAX_DISTINCT = 200  # a text column with more distinct values is left out
MAX_TEXT = 200  # characters of a text value shown (longer ones end in "…")
MAX_METRICS = 40  # summary-metric columns beyond the key metrics (the most widely logged)
MAX_CONFIG = 400  # config columns (those most runs have first)

Scalar = str | int | float | bool | None


def runs_config_doc(data: SiteData, listed: Sequence[str] = ()) -> dict[str, Any]:
    """``{"n", "config": [column...], "metrics": [column...], "omitted": [path...]}`` for
    the runs of ``data.runs`` in their order (the Runs list's); ``listed``: the metrics
    the list has already (:func:`hpclab.site.pages.list_metrics`), not repeated here."""
    ignore = _ignored(data)
    keys: list[Key] = [(r["project"], r["run_id"]) for r in data.runs]
    cache: dict[tuple[str, str], Scalar] = {}
    counts: dict[str, int] = {}
    for key in keys:
        for path in data.features.get(key, {}):
            if not under(path, ignore.get(key[0], ("hpclab",))):
                counts[path] = counts.get(path, 0) + 1
    paths = sorted(counts, key=lambda p: (-counts[p], p))[:MAX_CONFIG]
    config, omitted = [], []
    for path in sorted(paths):
        values = []
        for key in keys:
            text = data.features.get(key, {}).get(path)
            values.append(None if text is None else _published(cache, path, text))
        column = _column(path, values)
        if column is None:
            omitted.append(path)
        else:
            config.append(column)
    key_names = set(listed)
    seen: dict[str, int] = {}
    for key in keys:
        for name in data.summary.get(key, {}):
            if name not in key_names:
                seen[name] = seen.get(name, 0) + 1
    names = sorted(seen, key=lambda n: (n.startswith("system/"), -seen[n], n))[:MAX_METRICS]
    metrics = []
    for name in sorted(names):
        column = _column(name, [_sig(data.metric_value(key, name)) for key in keys])
        if column is not None:
            metrics.append(column)
    return {"n": len(keys), "config": config, "metrics": metrics, "omitted": omitted}


def _ignored(data: SiteData) -> dict[str, tuple[str, ...]]:
    """Each project's ``features.ignore`` (the default when its project.yaml is unreadable:
    the indexer reports that)."""
    from hpclab.catalog.project_config import load_project_config
    from hpclab.errors import HpclabError

    out: dict[str, tuple[str, ...]] = {}
    for project in data.projects:
        try:
            out[project] = load_project_config(data.store.project_yaml(project)).feature_ignore
        except (HpclabError, OSError):
            out[project] = ("hpclab",)
    return out


def _published(cache: dict[tuple[str, str], Scalar], path: str, text: str) -> Scalar:
    """A config value (the catalog's JSON text) as the page may show and compare it:
    numbers and booleans as themselves, anything else as redacted text."""
    try:
        return cache[(path, text)]
    except KeyError:
        pass
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    shown: Scalar
    if value is None:
        shown = None
    elif isinstance(value, bool | int | float) and redact_config_value(path, value) == str(value):
        # a number cannot hold a secret's shape; a key naming a credential still hides it
        shown = value if not isinstance(value, float) or math.isfinite(value) else str(value)
    else:
        raw = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        text_ = str(redact_config_value(path, raw))
        shown = text_ if len(text_) <= MAX_TEXT else text_[: MAX_TEXT - 1] + "…"
    cache[(path, text)] = shown
    return shown


def _column(key: str, values: list[Scalar]) -> dict[str, Any] | None:
    """One column, as a dictionary and codes when it has few distinct values, else as
    its values when they are numbers; None for many distinct text values."""
    distinct: dict[tuple[str, Scalar], int] = {}
    for v in values:
        if v is not None:
            distinct.setdefault((type(v).__name__, v), len(distinct))
    if not distinct:
        return None
    if len(distinct) <= MAX_DISTINCT:
        codes = [-1 if v is None else distinct[(type(v).__name__, v)] for v in values]
        return {"key": key, "dict": [v for _, v in distinct], "codes": codes}
    if all(isinstance(v, int | float) and not isinstance(v, bool) for _, v in distinct):
        return {"key": key, "values": values}
    return None


def _sig(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")
