"""``<store>/<project>/project.yaml``: key metrics, naming and evidence settings.

::

    key_metrics:
      - {name: val/loss, direction: minimize, aggregation: last}
      - {name: val/acc, direction: maximize, aggregation: best}
    naming:                       # parents from run names: 12_from_8_lr -> the run named 8_...
      regex: '^(?P<id>\\d+)(_from_(?P<parent>\\d+))?'
      id_group: id                # default
      parent_group: parent        # default
    evidence:                     # hypothesis status thresholds on the summed evidence
      supported: 1.0              # default 1.0
      refuted: -1.0               # default -1.0
    features:
      ignore: [hpclab]            # config paths left out of diffs and seed groups
      seeds: [seed]               # seed keys: a leaf name (seed, *.seed) or a dotted path /
                                  # glob (trainer.seed, data.*_seed); runs differing only
                                  # there form one seed group
    statistics:                   # how seed groups are compared (docs/statistics.md)
      alpha: 0.05                 # significance level (Holm-corrected per report)
      level: 0.95                 # confidence level of every interval
      min_seeds: 3                # fewer samples a side: "too few seeds", never significant
      stability_fraction: 0.1     # stability: noise over the last 10% of steps (>= 3 points)
      baseline: null              # a run id: labels are config diffs against its config
                                  # (default: the most common value of each config path)
    pareto:                       # objectives of the Pareto front (default: first key
      - {name: val/loss, direction: minimize}     # metric, and duration_s)
      - {name: duration_s, direction: minimize}   # a metric, a runs column or a feature
    site:
      publish_code: true          # false: no patch or code details on the website
                                  # (the store keeps them: restore still works)
    alerts:                       # what hpclab watch tells the lab (alert_rules.py)
      - {when: increases, metric: val/loss, for: 3}
    notify: {webhook: https://hooks.slack.com/services/...}
    secrets:                      # read by the tracker at snapshot time
      patterns: ['tok_[0-9a-f]{32}']   # more values to redact (regexes)
      files: ['*.secret']              # more files never to archive (globs)

A missing file means defaults (every metric minimized, aggregation ``last``); a malformed
one is a ConfigError naming the file and the field, and so is an unknown key (a typo),
at the top level or in any mapping above, with the valid names and the closest one.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpclab.catalog.alert_rules import Alerting, parse_alerting
from hpclab.catalog.dag import Naming
from hpclab.catalog.user_regex import PatternError, compile_pattern, group_names
from hpclab.errors import ConfigError, check_keys
from hpclab.store.atomic import read_yaml

DIRECTIONS = ("minimize", "maximize")
AGGREGATIONS = ("last", "best", "mean")
# The one list of what project.yaml may hold: a typo is an error naming the valid keys.
KEYS = (
    "key_metrics", "naming", "evidence", "statistics", "features", "pareto", "site", "secrets",
    "alerts", "notify",
)  # fmt: skip
NESTED_KEYS = {
    "naming": ("regex", "id_group", "parent_group"),
    "evidence": ("supported", "refuted"),
    "statistics": ("alpha", "level", "min_seeds", "stability_fraction", "baseline"),
    "features": ("ignore", "seeds"),
    "site": ("publish_code",),
}


@dataclass(frozen=True)
class KeyMetric:
    """A metric the project ranks runs by."""

    name: str
    direction: str = "minimize"
    aggregation: str = "last"


@dataclass(frozen=True)
class ProjectConfig:
    """The parsed ``project.yaml`` of one project."""

    key_metrics: tuple[KeyMetric, ...] = ()
    naming_regex: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    naming_id_group: str = "id"
    naming_parent_group: str = "parent"
    supported_at: float = 1.0
    refuted_at: float = -1.0
    feature_ignore: tuple[str, ...] = ("hpclab",)
    seed_keys: tuple[str, ...] = ("seed",)
    pareto: tuple[KeyMetric, ...] = ()
    publish_code: bool = True
    alpha: float = 0.05
    level: float = 0.95
    min_seeds: int = 3
    stability_fraction: float = 0.1
    baseline_run: str | None = None
    alerting: Alerting = field(default_factory=Alerting)  # alerts:, notify: (hpclab watch)

    def is_seed(self, path: str) -> bool:
        """A config path is a seed key: its leaf name is one (``seed`` matches ``seed`` and
        ``data.seed``), or it matches a dotted key / glob (``trainer.seed``, ``*.seed``)."""
        return is_seed_path(path, self.seed_keys)

    def direction(self, metric: str) -> str:
        """``minimize`` unless the project says otherwise (losses are the common case)."""
        for km in self.key_metrics:
            if km.name == metric:
                return km.direction
        return "maximize" if _looks_maximized(metric) else "minimize"

    def key(self, metric: str) -> KeyMetric | None:
        return next((km for km in self.key_metrics if km.name == metric), None)

    @property
    def naming(self) -> Naming | None:
        if self.naming_regex is None:
            return None
        return Naming(self.naming_regex, self.naming_id_group, self.naming_parent_group)


@functools.lru_cache(maxsize=65536)
def _looks_maximized(metric: str) -> bool:
    leaf = metric.rsplit("/", 1)[-1].lower()
    return leaf.startswith(("acc", "f1", "auc", "precision", "recall", "reward", "return", "score"))


def load_project_config(path: Path) -> ProjectConfig:
    """Parse ``project.yaml``; defaults when the file does not exist."""
    if not path.exists():
        return ProjectConfig()
    data = read_yaml(path) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    check_keys(data, KEYS, str(path))
    for name, keys in NESTED_KEYS.items():
        if isinstance(data.get(name), Mapping):
            check_keys(data[name], keys, f"{path}: {name}")
    metrics = [
        _metric_entry(e, f"{path}: key_metrics[{i}]")
        for i, e in enumerate(data.get("key_metrics") or [])
    ]
    naming = data.get("naming") or {}
    regex = naming.get("regex") if isinstance(naming, Mapping) else None
    if regex is not None:
        if not isinstance(regex, str):
            raise ConfigError(f"{path}: naming.regex: expected a string, got {regex!r}")
        try:  # the engine the DAG runs it with (a timeout: hpclab.catalog.user_regex)
            compile_pattern(regex)
        except PatternError as e:
            raise ConfigError(f"{path}: naming.regex: {e}") from None
    groups = {"naming_id_group": "id", "naming_parent_group": "parent"}
    for attr, default in list(groups.items()):
        key = attr.removeprefix("naming_")
        value = naming.get(key, default) if isinstance(naming, Mapping) else default
        if not isinstance(value, str) or not value.isidentifier():
            raise ConfigError(f"{path}: naming.{key}: expected a regex group name")
        if regex is not None and value not in group_names(regex):
            raise ConfigError(f"{path}: naming.regex has no group named {value!r} ({key})")
        groups[attr] = value
    evidence = data.get("evidence") or {}
    if not isinstance(evidence, Mapping):
        raise ConfigError(f"{path}: evidence: expected a mapping")
    supported = _number(evidence.get("supported", 1.0), f"{path}: evidence.supported")
    refuted = _number(evidence.get("refuted", -1.0), f"{path}: evidence.refuted")
    if supported < 0 or refuted > 0:
        raise ConfigError(f"{path}: evidence: supported must be >= 0 and refuted <= 0")
    features = data.get("features") or {}
    if not isinstance(features, Mapping):
        raise ConfigError(f"{path}: features: expected a mapping")
    ignore = _strings(features.get("ignore", ["hpclab"]), f"{path}: features.ignore")
    seeds = _strings(features.get("seeds", ["seed"]), f"{path}: features.seeds")
    pareto = [
        _metric_entry(e, f"{path}: pareto[{i}]", aggregation=False)
        for i, e in enumerate(data.get("pareto") or [])
    ]
    stats = _statistics(data.get("statistics"), f"{path}: statistics")
    site = data.get("site") or {}
    if not isinstance(site, Mapping):
        raise ConfigError(f"{path}: site: expected a mapping")
    publish_code = site.get("publish_code", True)
    if not isinstance(publish_code, bool):
        raise ConfigError(f"{path}: site.publish_code: expected true or false")
    from hpclab.tracking.secrets import SecretRules  # the tracker's rules: checked here too

    SecretRules.load(None, data, project_file=str(path))
    alerting = parse_alerting(data.get("alerts"), data.get("notify"), str(path))
    return ProjectConfig(
        tuple(metrics),
        regex,
        dict(evidence),
        dict(data),
        naming_id_group=groups["naming_id_group"],
        naming_parent_group=groups["naming_parent_group"],
        supported_at=supported,
        refuted_at=refuted,
        feature_ignore=ignore,
        seed_keys=seeds,
        pareto=tuple(pareto),
        publish_code=publish_code,
        alerting=alerting,
        **stats,
    )


def _statistics(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    out: dict[str, Any] = {}
    for key, low, high in (
        ("alpha", 0.0, 0.5),
        ("level", 0.5, 1.0),
        ("stability_fraction", 0.0, 1.0),
    ):
        if key in value:
            v = _number(value[key], f"{where}.{key}")
            if not low < v < high and not (key == "stability_fraction" and v == 1.0):
                raise ConfigError(f"{where}.{key}: {v:g} is not between {low:g} and {high:g}")
            out[key] = v
    if "min_seeds" in value:
        m = value["min_seeds"]
        if isinstance(m, bool) or not isinstance(m, int) or m < 2:
            raise ConfigError(f"{where}.min_seeds: expected a whole number >= 2, got {m!r}")
        out["min_seeds"] = m
    baseline = value.get("baseline")
    if baseline is not None:
        from hpclab.store.ids import is_valid_run_id

        if not isinstance(baseline, str) or not is_valid_run_id(baseline):
            raise ConfigError(f"{where}.baseline: {baseline!r} is not a run id")
        out["baseline_run"] = baseline
    return out


@functools.lru_cache(maxsize=65536)
def is_seed_path(path: str, keys: tuple[str, ...]) -> bool:
    """:meth:`ProjectConfig.is_seed` for seed keys ``keys``."""
    leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
    for k in keys:
        if "." not in k and not any(c in k for c in "*?["):
            if leaf == k:
                return True
        elif fnmatch.fnmatchcase(path, k):
            return True
    return False


def _metric_entry(entry: Any, where: str, *, aggregation: bool = True) -> KeyMetric:
    """``name`` or ``{name, direction, aggregation}`` (key metrics and Pareto objectives)."""
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise ConfigError(f"{where}: needs a 'name'")
    check_keys(
        entry, ("name", "direction", "aggregation") if aggregation else ("name", "direction"), where
    )
    direction = entry.get("direction", "minimize")
    if direction not in DIRECTIONS:
        raise ConfigError(f"{where}.direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
    how = entry.get("aggregation", "last") if aggregation else "last"
    if how not in AGGREGATIONS:
        raise ConfigError(f"{where}.aggregation: {how!r} is not one of {', '.join(AGGREGATIONS)}")
    return KeyMetric(entry["name"], direction, how)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(value)
