"""``<store>/<project>/project.yaml``: key metrics, naming and evidence settings.

::

    key_metrics:
      - {name: val/loss, direction: minimize, aggregation: last}
      - {name: val/acc, direction: maximize, aggregation: best}
    naming:
      regex: '^(?P<id>\\d+)_from_(?P<parent>\\d+)'
    evidence:
      supported: 0.5
      refuted: -0.5

A missing file means defaults (every metric minimized, aggregation ``last``); a malformed
one is a ConfigError naming the file and the field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpclab.errors import ConfigError
from hpclab.store.atomic import read_yaml

DIRECTIONS = ("minimize", "maximize")
AGGREGATIONS = ("last", "best", "mean")


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

    def direction(self, metric: str) -> str:
        """``minimize`` unless the project says otherwise (losses are the common case)."""
        for km in self.key_metrics:
            if km.name == metric:
                return km.direction
        return "maximize" if _looks_maximized(metric) else "minimize"

    def key(self, metric: str) -> KeyMetric | None:
        return next((km for km in self.key_metrics if km.name == metric), None)


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
    metrics = []
    for i, entry in enumerate(data.get("key_metrics") or []):
        where = f"{path}: key_metrics[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{where}: needs a 'name'")
        direction = entry.get("direction", "minimize")
        aggregation = entry.get("aggregation", "last")
        if direction not in DIRECTIONS:
            raise ConfigError(
                f"{where}.direction: {direction!r} is not one of {', '.join(DIRECTIONS)}"
            )
        if aggregation not in AGGREGATIONS:
            raise ConfigError(
                f"{where}.aggregation: {aggregation!r} is not one of {', '.join(AGGREGATIONS)}"
            )
        metrics.append(KeyMetric(entry["name"], direction, aggregation))
    naming = data.get("naming") or {}
    regex = naming.get("regex") if isinstance(naming, Mapping) else None
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as e:
            raise ConfigError(f"{path}: naming.regex: {e}") from None
    evidence = data.get("evidence") or {}
    if not isinstance(evidence, Mapping):
        raise ConfigError(f"{path}: evidence: expected a mapping")
    return ProjectConfig(tuple(metrics), regex, dict(evidence), dict(data))
