"""``hydra/sweeper=hpclab``: Hydra's basic sweeper, minus its per-point validation when an
hpclab launcher runs the sweep (the launcher composes every point itself, much faster).

Hydra's ``Sweeper.validate_batch_is_legal`` composes each point from scratch before the
launcher sees the batch: ~0.1-0.2 s a point, minutes for a 1,000-point sweep.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore


class HpclabSweeper(BasicSweeper):
    """Hydra's basic sweeper (same grid, order, job numbers and batching)."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        launcher = getattr(self, "launcher", None)
        if getattr(launcher, "composes_points", False):
            return  # an hpclab launcher composes every point before submitting anything
        super().validate_batch_is_legal(batch)


@dataclass
class HpclabSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.hpclab_launcher.sweeper.HpclabSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="hpclab", node=HpclabSweeperConf, provider="hpclab"
)
