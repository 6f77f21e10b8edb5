"""hpclab rerun / repro / env build: the restored code runs again through the real
launchers (local processes, and the dev Slurm cluster), and metrics are compared."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import git, hpclab_cli, poll

import hpclab
from hpclab.errors import RestoreError
from hpclab.restore.repro import compare_runs
from hpclab.restore.rerun import rerun
from hpclab.store import RunStatus, Store
from hpclab.tracking.metrics import read_metrics

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

STEPPER = """
OFFSET = {offset}


def stepper(cfg, run):
    loss = 0.0
    for step in range(int(cfg["train"]["steps"])):
        loss = float(cfg["optim"]["lr"]) * 1000.0 / (step + 1) + int(cfg["seed"]) + OFFSET
        run.log({{"train/loss": loss}}, step=step)
    return {{"train/loss": loss}}
"""

EXAMPLE = """
from hpclab.examples.train import train as example_train


def train(cfg, run):
    return example_train(cfg, run)
"""


@pytest.fixture(autouse=True)
def snapshots_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCLAB_SNAPSHOT_CODE", "1")


def project_repo(base: Path, module: str, committed: str, working: str) -> Path:
    """A repository whose task module has uncommitted changes when the run starts."""
    repo = base / "my project"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / f"{module}.py").write_text(committed)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    (repo / f"{module}.py").write_text(working)
    return repo


def launch(repo: Path, store: Path, *args: str) -> str:
    """Launch one point with python -m hpclab.launch from ``repo``; its run id."""
    env = {**os.environ, "HPCLAB_STORE": str(store)}
    out = subprocess.run(
        [sys.executable, "-m", "hpclab.launch", "-m", *args], cwd=repo, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    (run_id,) = [r for r in Store(store).run_ids("example")][-1:]
    return run_id


def losses(store: Path, run_id: str) -> list[float]:
    paths = Store(store).run_paths("example", run_id)
    return read_metrics(paths.metrics_zarr)["train/loss"].value.tolist()


def test_rerun_runs_the_restored_code_as_a_child(weird_tmp_path: Path) -> None:
    repo = project_repo(weird_tmp_path, "mytask", STEPPER.format(offset=0),
                        STEPPER.format(offset=100))  # fmt: skip
    store = weird_tmp_path / "store"
    args = ["hydra/launcher=local", "task._target_=mytask.stepper", "train.steps=10", "seed=2"]
    original = launch(repo, store, *args)
    seen = losses(store, original)
    assert seen[-1] == pytest.approx(0.001 * 1000 / 10 + 2 + 100)
    # the repository moves on: committed over, and dirty again
    (repo / "mytask.py").write_text(STEPPER.format(offset=7))
    git(repo, "commit", "-qam", "two")
    (repo / "mytask.py").write_text(STEPPER.format(offset=-5))

    out = hpclab_cli(store, "rerun", original, "--json", cwd=weird_tmp_path)

    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["of"] == original and result["status"] == "completed"
    assert result["launcher"] == "local" and result["verified"] is True
    new = result["run_id"]
    assert losses(store, new) == seen, "the restored code ran, not the repository's"
    s = Store(store)
    record = s.read_record(s.run_paths("example", new))
    assert record.parent == original, "a child of the original in the DAG"
    assert s.read_record(s.run_paths("example", original)).status is RunStatus.COMPLETED
    assert json.loads(Path(result["dir"], "rerun.json").read_text())["run_id"] == new

    same = hpclab_cli(store, "repro", original, "--against", new)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.startswith(f"reproduced: run {new} vs original {original}")

    # the command restore prints runs the restored code here (as a child too); with
    # another seed, repro says it drifted and by how much
    restored = hpclab_cli(store, "restore", original, "--into", str(weird_tmp_path / "t"))
    assert restored.returncode == 0, restored.stderr
    command = restored.stdout.split("run it again here:\n", 1)[1].splitlines()[0].strip()
    again = subprocess.run(
        ["bash", "-c", command + " seed=3"], capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    here = s.run_ids("example")[-1]
    assert s.read_record(s.run_paths("example", here)).parent == original
    assert losses(store, here) == pytest.approx([v + 1 for v in seen])
    drift = hpclab_cli(store, "repro", original, "--against", here, "--json")
    assert drift.returncode == 1, drift.stderr[-3000:]
    doc = json.loads(drift.stdout)
    assert doc["verdict"] == "drifted" and doc["max_abs_diff"] == pytest.approx(1.0)
    assert doc["worst_metric"] == "train/loss" and doc["n_compared"] == 11
    assert json.loads(s.run_paths("example", here).repro_json.read_text()) == doc


@pytest.mark.slow
def test_rerun_on_slurm_reproduces_the_example_with_its_seed(
    weird_tmp_path: Path, slurm_cluster: str
) -> None:
    repo = project_repo(weird_tmp_path, "exp", "raise SystemExit('not this')\n", EXAMPLE)
    store = weird_tmp_path / "store"
    original = launch(repo, store, "hydra/launcher=local", "task._target_=exp.train",
                      "train.steps=30", "train.threads=1", "seed=7")  # fmt: skip
    (repo / "exp.py").write_text("raise SystemExit('changed since')\n")

    out = hpclab_cli(store, "repro", original, "--launcher", "slurm", "--json")

    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "reproduced" and doc["n_mismatched"] == 0
    assert {m["name"] for m in doc["metrics"]} == {"train/loss", "val/loss"}
    assert doc["n_compared"] == 30 + 2 + 2  # per step, val every 25 and last, 2 finals
    s = Store(store)
    record = s.read_record(s.run_paths("example", doc["run_id"]))
    assert record.scheduler["kind"] == "slurm" and record.parent == original
    assert record.status is RunStatus.COMPLETED
    assert losses(store, doc["run_id"]) == losses(store, original)

    # detached (no --wait): the command returns once the job is queued; the job later runs
    # the restored tree, which stays in the store's reruns/ until then
    out = hpclab_cli(store, "rerun", original, "--launcher", "slurm", "--json")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    detached = json.loads(out.stdout)
    assert detached["status"] in {"planned", "queued", "running"} and detached["job_id"]
    paths = s.run_paths("example", detached["run_id"])
    poll(
        lambda: s.read_record(paths).status.is_final,
        timeout=240,
        interval=0.5,
        message="the detached rerun to end",
    )
    assert s.read_record(paths).status is RunStatus.COMPLETED
    assert s.read_record(paths).parent == original
    assert losses(store, detached["run_id"]) == losses(store, original)


def test_rerun_refuses_what_it_cannot_run_faithfully(weird_tmp_path: Path) -> None:
    repo = project_repo(weird_tmp_path, "mytask", STEPPER.format(offset=0),
                        STEPPER.format(offset=1))  # fmt: skip
    store = weird_tmp_path / "store"
    with hpclab.Run(project="example", store=store, code_dir=repo, config={"seed": 1}) as run:
        pass
    with pytest.raises(RestoreError, match="was not made by a Hydra app"):
        rerun(Store(store), run.id)
    shutil.rmtree(repo)  # the commit is gone: the restored tree cannot match the run's
    out = hpclab_cli(store, "rerun", run.id)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"hpclab: error: the restored tree of run {run.id} differs from the run's (NOT verified"
        )
    )
    assert "pass --allow-unverified" in out.stderr


def run_with(store: Path, series: dict[str, list[tuple[int, float]]], summary: dict[str, Any],
             fail: bool = False) -> Any:  # fmt: skip
    settings = {"snapshot_code": False, "snapshot_env": False}
    run = hpclab.init(project="example", store=store, settings=settings)
    for name, points in series.items():
        for step, value in points:
            run.log({name: value}, step=step)
    run.summary.update(summary)
    run.finish(status="failed" if fail else "completed")
    return run.paths


def test_comparison_rules(weird_tmp_path: Path) -> None:
    store = weird_tmp_path / "store"
    nan, inf = float("nan"), float("inf")
    base = {"a": [(0, 1.0), (1, nan), (2, inf)], "b": [(0, 0.0), (5, 2.0)]}
    orig = run_with(store, base, {"acc": 0.5})
    same = run_with(store, {"a": [(0, 1.0 + 1e-9), (1, nan), (2, inf)],
                            "b": [(0, 0.0), (5, 2.0)]}, {"acc": 0.5})  # fmt: skip
    s = Store(store)

    ok = compare_runs(s, orig, same)
    assert ok["verdict"] == "reproduced" and ok["n_mismatched"] == 0
    assert ok["n_compared"] == 3 + 2 + 3, "every point, and the final values (NaN, inf kept)"
    assert ok["max_abs_diff"] == pytest.approx(1e-9) and ok["worst_metric"] == "a"

    other = run_with(store, {"a": [(0, 1.1), (1, 3.0), (2, inf)], "b": [(0, 0.0)],
                             "extra": [(0, 1.0)]}, {"acc": 0.5})  # fmt: skip
    bad = compare_runs(s, orig, other, rtol=0.0, atol=0.2)
    assert bad["verdict"] == "drifted" and bad["n_mismatched"] == 2  # a at step 1, final b
    assert bad["max_abs_diff"] is None, "NaN against a number differs without bound"
    assert (bad["worst_metric"], bad["worst_step"]) == ("a", 1)
    by_name = {(m["kind"], m["name"]): m for m in bad["metrics"]}
    assert by_name[("series", "b")]["only_in_original"] == 1
    assert by_name[("series", "extra")]["missing_in"] == "original"
    assert "extra missing in the original" in bad["reason"]

    failed = run_with(store, base, {"acc": 0.5}, fail=True)
    ended = compare_runs(s, orig, failed)
    assert ended["verdict"] == "drifted" and ended["rerun_status"] == "failed"
    assert ended["reason"].startswith("the rerun ended failed, the original completed")


TINY_PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "hpclab-tiny-pkg"
version = "0.1.0"
"""


def test_env_build_offline_from_a_wheelhouse(weird_tmp_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "tiny"
    (src / "hpclab_tiny_pkg").mkdir(parents=True)
    (src / "pyproject.toml").write_text(TINY_PYPROJECT)
    (src / "hpclab_tiny_pkg" / "__init__.py").write_text("VALUE = 42\n")
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(wheels), str(src)], capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    store = weird_tmp_path / "store"
    run = hpclab.init(project="p", store=store, settings={"snapshot_code": False})
    run.finish()
    run.paths.requirements_txt.write_text("hpclab-tiny-pkg==0.1.0\npip==1.0\n")
    venv = weird_tmp_path / "the venv"

    out = hpclab_cli(store, "env", "build", run.id, "--into", str(venv), "--wheelhouse",
                     str(wheels))  # fmt: skip

    assert out.returncode == 0, out.stderr
    assert "1 package(s) installed, left out: pip==1.0" in out.stdout
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import hpclab_tiny_pkg, sys; print(hpclab_tiny_pkg.VALUE)"],
                           capture_output=True, text=True)  # fmt: skip
    assert check.stdout.strip() == "42", check.stderr

    # a package the wheelhouse lacks: pip's own reason, in one line
    run.paths.requirements_txt.write_text("hpclab-tiny-pkg==0.2.0\n")
    missing = hpclab_cli(store, "env", "build", run.id, "--into", str(venv), "--force",
                         "--wheelhouse", str(wheels))  # fmt: skip
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "pip install failed (ERROR: " in missing.stderr and "hpclab-tiny-pkg" in missing.stderr

    # another Python minor version than the run's: refused, saying which and what to do
    env = json.loads(run.paths.environment_json.read_text())
    env["python"]["version_info"] = [3, 9, 18]
    run.paths.environment_json.write_text(json.dumps(env))
    have = ".".join(map(str, sys.version_info[:3]))
    other = hpclab_cli(store, "env", "build", run.id, "--into", str(weird_tmp_path / "v2"))
    assert other.returncode == 1
    assert other.stderr.strip() == (
        f"hpclab: error: run {run.id} ran on Python 3.9.18, but {sys.executable} is Python "
        f"{have}: pass --python with a Python 3.9 interpreter (or --allow-python-mismatch)"
    )
    assert not (weird_tmp_path / "v2").exists()


HYDRA_APP = """
import hydra

import hpclab


@hydra.main(version_base=None, config_path=".", config_name="cfg")
def main(cfg):
    run = hpclab.current_run()
    for i in range(3):
        run.log({"loss": cfg.lr * (3 - i) + OFFSET}, step=i)
    return {"final": cfg.lr}


OFFSET = %s

if __name__ == "__main__":
    main()
"""


def test_any_hydra_app_is_rerun_from_its_restored_script(weird_tmp_path: Path) -> None:
    repo = project_repo(weird_tmp_path, "train", HYDRA_APP % 0, HYDRA_APP % 10)
    (repo / "cfg.yaml").write_text("lr: 0.1\n")
    store = weird_tmp_path / "store"
    env = {**os.environ, "HPCLAB_STORE": str(store), "HPCLAB_PROJECT": "legacy"}
    out = subprocess.run(
        [sys.executable, "train.py", "-m", "hydra/launcher=hpclab_local", "lr=0.5"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    (original,) = Store(store).run_ids("legacy")
    (repo / "train.py").write_text(HYDRA_APP % 99)

    repro = hpclab_cli(store, "repro", original, "--json")

    assert repro.returncode == 0, repro.stderr[-3000:]
    doc = json.loads(repro.stdout)
    assert doc["verdict"] == "reproduced" and doc["n_compared"] == 3 + 2  # loss, final x2
    rerun_paths = Store(store).run_paths("legacy", doc["run_id"])
    assert json.loads(rerun_paths.repro_json.read_text()) == doc
    values = read_metrics(rerun_paths.metrics_zarr)["loss"].value.tolist()
    assert values == pytest.approx([11.5, 11.0, 10.5]), "the restored script ran"


def test_system_samples_are_not_results(weird_tmp_path: Path) -> None:
    """Two runs of the same work measure the machine differently: their system/ series
    (and final values) are left out of the comparison, the results still compared."""
    store = weird_tmp_path / "store"
    paths = []
    for cpu in (12.0, 97.0):
        settings = {"snapshot_code": False, "snapshot_env": False, "system_interval": 0}
        run = hpclab.init(project="example", store=store, settings=settings)
        run.log({"loss": 0.5}, step=0)
        assert run._writer is not None
        run._writer.log_samples({"system/cpu_percent": cpu, "system/rss_mb": cpu * 10})
        if cpu > 50:
            run._writer.log_samples({"system/cpu_percent": cpu})  # one sample more
        run.finish()
        paths.append(run.paths)
    record = compare_runs(Store(store), paths[0], paths[1], rtol=0.0, atol=0.0)
    assert record["verdict"] == "reproduced", record["reason"]
    names = {m["name"] for m in record["metrics"]}
    assert "loss" in names and not any(n.startswith("system/") for n in names)
