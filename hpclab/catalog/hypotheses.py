"""Hypotheses: research claims kept as files, ``<store>/<project>/hypotheses/<id>.yaml``::

    title: AdamW beats SGD on val/loss
    description: same budget, lr tuned per optimizer
    author: alice
    metrics:                       # target metrics (direction/aggregation: project.yaml's,
      - {name: val/loss, direction: minimize, weight: 2}   # else by name; weight 1)
      - val/acc
    baseline: parent               # parent | root | best | a run id
    runs: [20261122-101500-ab12]   # linked explicitly
    select:                        # and/or by selectors (any may match; keys in one AND)
      - {sweep: sweep-20261122-101200-cd34}
      - {features: {optim.name: adamw}, tag: PUBLISH}
    status: null                   # a manual override: Supported, Refuted, ...

The file is the truth (the catalog is derived); a malformed file is a HypothesisError
naming the file and the field, and so is an unknown key (a typo) at the top level, in a
metric or in a selector, with the valid names and the closest one.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from hpclab.catalog.project_config import AGGREGATIONS, DIRECTIONS
from hpclab.errors import HypothesisError, check_keys
from hpclab.store import Store
from hpclab.store.atomic import read_yaml, write_bytes_atomic, write_yaml_atomic
from hpclab.store.ids import is_valid_run_id
from hpclab.store.record import utcnow_iso

log = logging.getLogger(__name__)
STATUSES = ("Proposed", "Testing", "Supported", "Refuted", "Inconclusive")
BASELINES = ("parent", "root", "best")
SELECTOR_KEYS = ("sweep", "features", "tag")
KEYS = ("title", "description", "author", "metrics", "baseline", "runs", "select", "status",
        "created_at", "updated_at")  # fmt: skip
TARGET_KEYS = ("name", "direction", "weight", "aggregation")


@dataclass(frozen=True)
class Target:
    """A target metric; None fields mean: the project's setting."""

    name: str
    direction: str | None = None
    weight: float = 1.0
    aggregation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.direction:
            out["direction"] = self.direction
        if self.weight != 1.0:
            out["weight"] = self.weight
        if self.aggregation:
            out["aggregation"] = self.aggregation
        return out


@dataclass(frozen=True)
class Selector:
    """Links the runs matching every condition given."""

    sweep: str | None = None
    features: Mapping[str, Any] = field(default_factory=dict)
    tag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.sweep:
            out["sweep"] = self.sweep
        if self.features:
            out["features"] = dict(self.features)
        if self.tag:
            out["tag"] = self.tag
        return out


@dataclass(frozen=True)
class Hypothesis:
    id: str
    title: str
    targets: tuple[Target, ...]
    baseline: str = "parent"
    description: str = ""
    author: str | None = None
    runs: tuple[str, ...] = ()
    select: tuple[Selector, ...] = ()
    status: str | None = None  # manual override
    created_at: str | None = None
    updated_at: str | None = None
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "author": self.author,
            "metrics": [t.to_dict() for t in self.targets],
            "baseline": self.baseline,
            "runs": list(self.runs),
            "select": [s.to_dict() for s in self.select],
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def parse_hypothesis(hid: str, data: Any, where: str) -> Hypothesis:
    """Validate one hypothesis mapping; errors name ``where`` and the field."""
    if not isinstance(data, Mapping):
        raise HypothesisError(f"{where}: expected a mapping")
    check_keys(data, KEYS, where, HypothesisError)
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise HypothesisError(f"{where}: title: required (one line, the claim)")
    targets = tuple(
        _target(m, f"{where}: metrics[{i}]") for i, m in enumerate(_seq(data, "metrics", where))
    )
    if not targets:
        raise HypothesisError(f"{where}: metrics: name at least one target metric")
    baseline = data.get("baseline", "parent")
    if not isinstance(baseline, str) or not (baseline in BASELINES or is_valid_run_id(baseline)):
        raise HypothesisError(
            f"{where}: baseline: {baseline!r} is not one of {', '.join(BASELINES)} or a run id"
        )
    runs = tuple(str(r) for r in _seq(data, "runs", where))
    for r in runs:
        if not is_valid_run_id(r):
            raise HypothesisError(f"{where}: runs: {r!r} is not a run id")
    select = tuple(
        _selector(s, f"{where}: select[{i}]") for i, s in enumerate(_seq(data, "select", where))
    )
    status = data.get("status")
    if status is not None and status not in STATUSES:
        raise HypothesisError(f"{where}: status: {status!r} is not one of {', '.join(STATUSES)}")
    for key in ("description", "author"):
        if data.get(key) is not None and not isinstance(data.get(key), str):
            raise HypothesisError(f"{where}: {key}: expected text")
    return Hypothesis(
        id=hid,
        title=title.strip(),
        targets=targets,
        baseline=baseline,
        description=str(data.get("description") or ""),
        author=data.get("author"),
        runs=runs,
        select=select,
        status=status,
        created_at=_text(data.get("created_at")),
        updated_at=_text(data.get("updated_at")),
    )


def read_hypothesis(store: Store, project: str, hid: str) -> Hypothesis:
    path = store.hypothesis_yaml(project, hid)
    if not path.exists():
        raise HypothesisError(f"hypothesis {hid!r} not found ({path})")
    try:
        data = read_yaml(path)
    except Exception as e:
        raise HypothesisError(f"{path}: {e}") from None
    h = parse_hypothesis(hid, data, str(path))
    return _with_file(h, str(path))


def load_hypotheses(store: Store, project: str, *, skip_bad: bool = False) -> list[Hypothesis]:
    """Every hypothesis of a project. A malformed file raises, or with ``skip_bad`` is
    logged as a warning and skipped."""
    d = store.hypotheses_dir(project)
    out = []
    for path in sorted(d.glob("*.yaml")) if d.is_dir() else []:
        try:
            out.append(read_hypothesis(store, project, path.stem))
        except Exception as e:
            if not skip_bad:
                raise
            log.warning("%s", f"{path}: skipped, {e}" if str(path) not in str(e) else str(e))
    return out


def write_hypothesis(store: Store, project: str, h: Hypothesis, *, replace: bool) -> Hypothesis:
    """Write a hypothesis file (validated first). Refuses to replace one unless asked."""
    path = store.hypothesis_yaml(project, h.id)
    if path.exists() and not replace:
        raise HypothesisError(
            f"hypothesis {h.id!r} exists ({path}); edit the file or pick another id"
        )
    now = utcnow_iso()
    data = h.to_dict()
    data["created_at"] = h.created_at or now
    data["updated_at"] = now
    parse_hypothesis(h.id, data, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_yaml_atomic(path, data)
    return read_hypothesis(store, project, h.id)


def set_status(store: Store, project: str, hid: str, status: str | None) -> Hypothesis:
    """Set (or, with None, clear) a hypothesis's manual status override.

    Only the file's top-level ``status:`` and ``updated_at:`` lines change, so the author's
    comments and layout stay; the result is validated before it replaces the file."""
    if status is not None and status not in STATUSES:
        raise HypothesisError(f"status {status!r}: use one of {', '.join(STATUSES)} or auto")
    current = read_hypothesis(store, project, hid)  # exists and is valid
    path = store.hypothesis_yaml(project, hid)
    text = path.read_text(encoding="utf-8")
    for key, value in (("status", status), ("updated_at", utcnow_iso())):
        line = f"{key}: {json.dumps(value)}"  # JSON scalars are YAML: null, "Supported"
        text, n = re.subn(rf"(?m)^{key}:[^\n]*$", line.replace("\\", "\\\\"), text, count=1)
        if n == 0:
            text = text.rstrip("\n") + f"\n{line}\n"
    try:
        parsed = parse_hypothesis(hid, yaml.safe_load(text), str(path))
    except (yaml.YAMLError, HypothesisError) as e:  # a multi-line status: leave the file be
        raise HypothesisError(f"{path}: cannot set status in place ({e}); edit the file") from None
    if parsed.status != status:
        raise HypothesisError(f"{path}: cannot set status in place; edit the file")
    write_bytes_atomic(path, text.encode("utf-8"))
    return _with_file(parsed, current.file or str(path))


@dataclass(frozen=True)
class RunFacts:
    """What selectors look at."""

    run_id: str
    sweep_id: str | None
    tags: Sequence[str]
    features: Mapping[str, tuple[str, float | None]]  # path -> (JSON, number)


def linked_runs(h: Hypothesis, runs: Iterable[RunFacts]) -> list[str]:
    """The runs a hypothesis is about: its explicit runs plus every selector match."""
    out = {r for r in h.runs}
    for run in runs:
        if any(_matches(s, run) for s in h.select):
            out.add(run.run_id)
    return sorted(out)


def _matches(s: Selector, run: RunFacts) -> bool:
    if s.sweep is not None and run.sweep_id != s.sweep:
        return False
    if s.tag is not None and s.tag not in run.tags:
        return False
    for path, wanted in s.features.items():
        have = run.features.get(path)
        if have is None or not _equal(wanted, *have):
            return False
    return bool(s.sweep or s.tag or s.features)


def _equal(wanted: Any, text: str, number: float | None) -> bool:
    if number is not None:  # YAML reads 1e-3 as text; Hydra writes 0.001
        try:
            w = float(wanted)
        except (TypeError, ValueError):
            return False
        return math.isclose(w, number, rel_tol=1e-12, abs_tol=0.0)
    return json.dumps(wanted, sort_keys=True, default=str) == text


def _target(entry: Any, where: str) -> Target:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise HypothesisError(f"{where}: needs a 'name'")
    check_keys(entry, TARGET_KEYS, where, HypothesisError)
    direction = entry.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise HypothesisError(
            f"{where}.direction: {direction!r} is not one of {', '.join(DIRECTIONS)}"
        )
    aggregation = entry.get("aggregation")
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise HypothesisError(
            f"{where}.aggregation: {aggregation!r} is not one of {', '.join(AGGREGATIONS)}"
        )
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise HypothesisError(f"{where}.weight: expected a positive number, got {weight!r}")
    return Target(entry["name"], direction, float(weight), aggregation)


def _selector(entry: Any, where: str) -> Selector:
    if not isinstance(entry, Mapping) or not entry:
        raise HypothesisError(f"{where}: expected a mapping with {', '.join(SELECTOR_KEYS)}")
    check_keys(entry, SELECTOR_KEYS, where, HypothesisError)
    features = entry.get("features") or {}
    if not isinstance(features, Mapping):
        raise HypothesisError(f"{where}.features: expected a mapping of config path to value")
    sweep, tag = entry.get("sweep"), entry.get("tag")
    for key, value in (("sweep", sweep), ("tag", tag)):
        if value is not None and not isinstance(value, str):
            raise HypothesisError(f"{where}.{key}: expected text")
    return Selector(sweep, {str(k): v for k, v in features.items()}, tag)


def _seq(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise HypothesisError(f"{where}: {key}: expected a list")
    return value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _with_file(h: Hypothesis, file: str) -> Hypothesis:
    from dataclasses import replace

    return replace(h, file=file)
