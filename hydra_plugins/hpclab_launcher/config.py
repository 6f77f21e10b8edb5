"""Config dataclasses of hpclab's Hydra launchers, registered in Hydra's ConfigStore as
``hydra/launcher=hpclab_local`` and ``hydra/launcher=hpclab_slurm``.

They extend hydra-submitit-launcher's configs, so every submitit/Slurm parameter is set
the same way (``hydra.launcher.partition=gpu``, ``hydra.launcher.timeout_min=240``,
``hydra.launcher.additional_parameters={mail-type:END}``, ``hydra.launcher.setup=[...]``),
plus hpclab's own: where runs are stored, whether to wait, preflight.

This module is imported during Hydra's plugin discovery: it must stay cheap (no torch,
no submitit, no zarr).
"""

from dataclasses import dataclass, field
from typing import Any, List, Optional  # noqa: UP035 - OmegaConf needs typing.List

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf

# The callback that tracks a run without -m (run_mode.py), pulled in by each launcher
# config's defaults list.
RUN_MODE_CALLBACK = "hydra_plugins.hpclab_launcher.run_mode.HpclabRunModeCallback"
_RUN_MODE_DEFAULTS = [{"/hydra/hpclab": "run_mode"}]

# Names of the hpclab-only launcher fields; everything else goes to submitit.
HPCLAB_FIELDS = ("wait", "preflight", "preflight_only", "project", "store", "isolate_code")


@dataclass
class HpclabSlurmConf(SlurmQueueConf):
    """``hydra/launcher=hpclab_slurm``: the sweep is one Slurm array job."""

    defaults: List[Any] = field(default_factory=lambda: list(_RUN_MODE_DEFAULTS))  # noqa: UP006
    _target_: str = "hydra_plugins.hpclab_launcher.launcher.HpclabSlurmLauncher"
    # A time limit requeues the job (submitit's checkpointing) and the requeued task
    # resumes the same run; hydra-submitit's default of 0 would just stop it.
    max_num_timeout: int = 3
    signal_delay_s: int = 90
    # Detached: the login-node command submits and returns. True: wait for every job.
    wait: bool = False
    # Compose and check every point before anything queues.
    preflight: bool = True
    # Only preflight (``hpclab preflight``): check, report, submit nothing.
    preflight_only: bool = False
    # Store root and project; default: the app's ``hpclab.store``/``hpclab.project``,
    # then $HPCLAB_STORE/$HPCLAB_PROJECT, then ./hpclab-store and the job name.
    project: Optional[str] = None  # noqa: UP045 - OmegaConf needs typing.Optional
    store: Optional[str] = None  # noqa: UP045
    # Run every task from a copy of the code taken at submission (edits made while the
    # array waits cannot reach it); false: run in the working tree. None: the setting
    # isolate_code ($HPCLAB_ISOLATE_CODE, default true).
    isolate_code: Optional[bool] = None  # noqa: UP045


@dataclass
class HpclabLocalConf(LocalQueueConf):
    """``hydra/launcher=hpclab_local``: points run as parallel processes on this machine."""

    defaults: List[Any] = field(default_factory=lambda: list(_RUN_MODE_DEFAULTS))  # noqa: UP006
    _target_: str = "hydra_plugins.hpclab_launcher.launcher.HpclabLocalLauncher"
    wait: bool = True
    preflight: bool = True
    preflight_only: bool = False
    project: Optional[str] = None  # noqa: UP045
    store: Optional[str] = None  # noqa: UP045
    isolate_code: Optional[bool] = None  # noqa: UP045


ConfigStore.instance().store(
    group="hydra/launcher", name="hpclab_slurm", node=HpclabSlurmConf(), provider="hpclab"
)
ConfigStore.instance().store(
    group="hydra/launcher", name="hpclab_local", node=HpclabLocalConf(), provider="hpclab"
)
# Run mode (no -m) never calls a launcher: selecting an hpclab launcher also adds the
# callback that tracks a run-mode job as a one-point sweep (hydra_plugins/.../run_mode.py).
ConfigStore.instance().store(
    group="hydra/hpclab",
    name="run_mode",
    node={"hydra": {"callbacks": {"hpclab_run_mode": {"_target_": RUN_MODE_CALLBACK}}}},
    package="_global_",
    provider="hpclab",
)
