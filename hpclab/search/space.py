"""A search space from Hydra's sweep syntax, as Optuna distributions.

The same syntax as hydra-optuna-sweeper (``optim.lr='tag(log, interval(1e-5, 1e-2))'``,
``batch=choice(32,64)``, ``layers=range(2,8)``), mapped to Optuna's current distributions
(``FloatDistribution``/``IntDistribution``/``CategoricalDistribution``): that plugin pins
``optuna<3``, which has no JournalStorage. Anything that is not a sweep is a fixed value,
passed to every trial as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hpclab.errors import SearchError


@dataclass
class SearchSpace:
    distributions: dict[str, Any] = field(default_factory=dict)  # key -> Optuna distribution
    fixed: dict[str, str] = field(default_factory=dict)  # key -> override value text

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """A trial's command-line overrides: its sampled values, then the fixed ones."""
        out = [f"{k}={_override_text(v)}" for k, v in params.items()]
        return out + [f"{k}={v}" for k, v in self.fixed.items()]


def parse_space(arguments: Iterable[str]) -> SearchSpace:
    """The search space of ``arguments`` (``key=value`` overrides, sweeps among them)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    space = SearchSpace()
    args = list(arguments)
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as e:
        raise SearchError(f"search space: {_one_line(e)}") from None
    for override in parsed:
        key = override.get_key_element()
        if not override.is_sweep_override():
            space.fixed[key] = override.get_value_element_as_str()
            continue
        space.distributions[key] = _distribution(key, override)
        space.fixed.pop(key, None)
    if not space.distributions:
        raise SearchError(
            "search space: no parameter to search (give one as a sweep, e.g. "
            "'optim.lr=tag(log, interval(1e-5, 1e-2))' or 'batch=choice(32,64)')"
        )
    return space


def _distribution(key: str, override: Any) -> Any:
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        bad = [c for c in choices if not isinstance(c, (str, int, float, bool, type(None)))]
        if bad:
            raise SearchError(
                f"search space: {key}: a choice must be a plain value, not {bad[0]!r}"
            )
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        start, stop, step = value.start, value.stop, value.step
        if any(isinstance(v, float) for v in (start, stop, step)):
            n = int(round((stop - start) / step))
            if n < 1:
                raise SearchError(f"search space: {key}: empty range({start}, {stop}, {step})")
            return FloatDistribution(start, start + (n - 1) * step, step=step)
        if int(stop) - int(start) < 1:
            raise SearchError(f"search space: {key}: empty range({start}, {stop})")
        # Hydra's range excludes its stop, Optuna's high is included
        return IntDistribution(int(start), int(stop) - int(step), step=int(step))
    if override.is_interval_sweep():
        start, end = value.start, value.end
        log = "log" in value.tags
        if start >= end:
            raise SearchError(f"search space: {key}: interval({start}, {end}) is empty")
        if log and start <= 0:
            raise SearchError(f"search space: {key}: a log interval must be positive, not {start}")
        if isinstance(start, int) and isinstance(end, int) or "int" in value.tags:
            return IntDistribution(int(start), int(end), log=log)
        return FloatDistribution(float(start), float(end), log=log)
    raise SearchError(
        f"search space: {key}: {override.input_line!r} is not a sweep Optuna can sample"
    )


def _override_text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        from hydra.core.override_parser.types import Override

        return Override._get_value_element_as_str(value)  # escaped as Hydra parses it
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
