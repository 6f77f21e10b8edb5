"""Hydra's own launcher test suite (``hydra.test_utils.launcher_common_tests``) against
hpclab's launchers, as hydra-submitit-launcher runs it against its own: ``hpclab_local``
here, and ``hpclab_slurm`` as real array jobs on the dev Slurm cluster.

Every point is also a tracked hpclab run, in the isolated store ($HPCLAB_STORE from
conftest's ``isolated_env``); the suite checks what Hydra sees (returns, configs, output
directories).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hydra.test_utils.launcher_common_tests import LauncherTestSuite

from hpclab.store import RunStatus, Store

LOCAL = ["hydra.launcher.timeout_min=2"]
# wait: the suite reads every point's result (detached, the Slurm default, returns at
# submission); one CPU each: the dev node has two, shared with other test jobs. The time
# limit is 10 minutes: with 2, submitit's USR2 (90 s before the limit: 30 s in) hit one job on a
# loaded CI machine while the points, which finish in seconds, waited for a CPU
SLURM = [
    "hydra.launcher.wait=true",
    "hydra.launcher.timeout_min=10",
    "hydra.launcher.cpus_per_task=1",
]


@pytest.mark.parametrize("launcher_name, overrides", [("hpclab_local", LOCAL)])
class TestHpclabLocalLauncher(LauncherTestSuite):
    pass


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.parametrize("launcher_name, overrides", [("hpclab_slurm", SLURM)])
class TestHpclabSlurmLauncher(LauncherTestSuite):
    pass


@pytest.mark.usefixtures("hydra_restore_singletons")
@pytest.mark.parametrize(
    "launcher_name, overrides, kind",
    [
        ("hpclab_local", LOCAL, "local"),
        pytest.param(
            "hpclab_slurm", SLURM, "slurm",
            marks=pytest.mark.slow,
        ),
    ],
)  # fmt: skip
def test_the_suites_sweeps_are_tracked_runs(
    hydra_sweep_runner: Any,
    launcher_name: str,
    overrides: list[str],
    kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """The suite's own sweep (``+a=0,1`` over Hydra's test configs) went through hpclab's
    launcher, not Hydra's basic one: one sweep record and a completed run per point."""
    if kind == "slurm":
        request.getfixturevalue("slurm_cluster")
    sweep = hydra_sweep_runner(
        calling_file=None,
        calling_module="hydra.test_utils.a_module",
        task_function=None,
        config_path="configs",
        config_name="compose",
        overrides=[f"hydra/launcher={launcher_name}", *overrides, "+a=0,1"],
        temp_dir=tmp_path / "sweep",
    )
    with sweep:
        assert [r.return_value for r in sweep.returns[0]] == [100, 100]
    store = Store(Path(os.environ["HPCLAB_STORE"]))
    (record,) = [json.loads(p.read_text()) for p in store.sweeps_dir("a_module").glob("*.json")]
    assert record["launcher"] == kind
    assert [p["overrides"] for p in record["points"]] == [["+a=0"], ["+a=1"]]
    for point in record["points"]:
        run = store.read_record(store.run_paths("a_module", point["run_id"]))
        assert run.status is RunStatus.COMPLETED and run.sweep_id == record["id"]
