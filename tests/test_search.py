"""Hyperparameter search (``hydra/sweeper=optuna``): a researcher's own Hydra app in a git
repo, searched through the hpclab launchers, its Optuna study in the project's journal,
values read back from the runs, resume after the driver is killed, budget, pruning, a
multi-objective front, and array jobs on the dev Slurm cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import hpclab_cli, hpclab_subprocess, poll

from hpclab.errors import SearchError
from hpclab.search.driver import NOT_RUN_ATTR, RUN_ATTR, SearchDriver
from hpclab.search.objective import Allocation
from hpclab.search.space import parse_space
from hpclab.search.study import StudyInfo, load_study
from hpclab.store import RunStatus, Store
from hpclab.store.atomic import write_json_atomic

APP = """
import os, pathlib, time
import hydra
import hpclab
import hpclab.search

@hydra.main(version_base=None, config_path=".", config_name="cfg")
def main(cfg):
    gate = os.environ.get("GATE")
    if gate:  # the resume test holds the first batch until the driver is killed
        deadline = time.monotonic() + 120
        while not pathlib.Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    if cfg.x > cfg.fail_above:
        raise RuntimeError("diverged")
    run = hpclab.current_run()
    for step in range(5):
        loss = (cfg.x - 0.3) ** 2 + (0.1 if cfg.kind == "b" else 0.0) + 1.0 / (step + 1)
        run.log({"val/loss": loss}, step=step)
        if cfg.explicit:
            hpclab.search.report(loss, step)
    return (cfg.x - 0.3) ** 2 + (0.1 if cfg.kind == "b" else 0.0)

if __name__ == "__main__":
    main()
"""


def _objective(config: dict[str, object]) -> float:
    x = float(config["x"])  # type: ignore[arg-type]
    return (x - 0.3) ** 2 + (0.1 if config["kind"] == "b" else 0.0)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    d = tmp_path / "my search app"
    d.mkdir()
    (d / "train.py").write_text(APP)
    (d / "cfg.yaml").write_text("x: 0.0\nkind: a\nfail_above: 100.0\nexplicit: true\n")
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "."],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "app"],
    ):
        subprocess.run(cmd, cwd=d, check=True)
    return d


def _search(
    app: Path, store: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "train.py", "-m", "hydra/sweeper=optuna", *args],
        cwd=app,
        env={**os.environ, "HPCLAB_STORE": str(store), "HPCLAB_PROJECT": "srch", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def _runs(store: Path) -> dict[str, object]:
    """The runs whose record is written (a run directory is made just before it)."""
    s = Store(store)
    return {p.id: s.read_record(p) for _, p in s.iter_runs("srch") if p.run_json.exists()}


def _config(store: Path, run_id: str) -> dict[str, object]:
    import yaml

    paths = Store(store).run_paths("srch", run_id)
    return yaml.safe_load(paths.config_yaml.read_text())  # type: ignore[no-any-return]


# -- the search space ---------------------------------------------------------------------
def test_the_search_space_is_hydras_sweep_syntax_as_optuna_distributions() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = parse_space(
        ["optim.lr=tag(log, interval(1e-5, 1e-2))", "batch=choice(32,64)", "layers=range(2,8)",
         "x=interval(0, 1.5)", "name=my run"]
    )  # fmt: skip
    d = space.distributions
    assert d["optim.lr"] == FloatDistribution(1e-5, 1e-2, log=True)
    assert d["batch"] == CategoricalDistribution((32, 64))
    assert d["layers"] == IntDistribution(2, 7)  # Hydra's range excludes its stop
    assert d["x"] == FloatDistribution(0.0, 1.5)
    assert space.fixed == {"name": "my\\ run"}
    assert space.overrides({"optim.lr": 1e-3, "batch": 64, "layers": 3, "x": 0.5}) == [
        "optim.lr=0.001", "batch=64", "layers=3", "x=0.5", "name=my\\ run",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["x=1.0"], "no parameter to search"),
        (["x=tag(log, interval(0, 1))"], "must be positive"),
        (["x=interval(2, 1)"], "is empty"),
        (["x=interval(0,"], "search space"),
    ],
)
def test_a_bad_search_space_is_one_line_naming_it(args: list[str], words: str) -> None:
    with pytest.raises(SearchError, match=words):
        parse_space(args)


# -- searching through the local launcher ----------------------------------------------
def test_a_search_runs_batches_through_the_launcher_and_reads_values_from_the_runs(
    app: Path, tmp_path: Path
) -> None:
    store, gate = tmp_path / "store", tmp_path / "gate"
    cmd = [
        sys.executable, "train.py", "-m", "hydra/sweeper=optuna", "hydra/launcher=hpclab_local",
        "x=interval(-1, 1)", "kind=choice(a,b)", "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_jobs=3", "hydra.sweeper.study_name=s1", "hydra.sweeper.sampler.seed=0",
    ]  # fmt: skip
    env = {
        **os.environ, "HPCLAB_STORE": str(store), "HPCLAB_PROJECT": "srch", "GATE": str(gate),
        "HPCLAB_SNAPSHOT_CODE": "1",
    }  # fmt: skip
    driver = subprocess.Popen(cmd, cwd=app, env=env, stderr=subprocess.PIPE, text=True)
    try:
        poll(lambda: len(_runs(store)) == 3, timeout=120, message="the first batch queued")
        # an edit made while the study runs: the later batches still run the code the
        # study started with
        (app / "train.py").write_text(APP.replace("0.3) ** 2", "0.9) ** 2"))
        gate.write_text("go")
        _, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err[-3000:]
    assert "study s1: 6 completed, 0 failed, 0 pruned" in err
    runs = _runs(store)
    assert len(runs) == 6 and all(r.status is RunStatus.COMPLETED for r in runs.values())
    study = load_study(Store(store), "srch", "s1")
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    for t in trials:  # each trial's value is its own run's, from that run's config
        cfg = _config(store, t.user_attrs[RUN_ATTR])
        assert (cfg["x"], cfg["kind"]) == (pytest.approx(t.params["x"]), t.params["kind"])
        assert t.value == pytest.approx(_objective(cfg))  # the unedited objective, all six
    assert study.best_trial.value == min(_objective(_config(store, r)) for r in runs)
    # two batches, two array sweeps, both marked as the study's; one code snapshot for all
    s = Store(store)
    sweeps = [s.read_sweep("srch", i) for i in s.sweep_ids("srch")]
    assert len(sweeps) == 2 and all(sw.extra["search"] == {"study": "s1"} for sw in sweeps)
    codes = {json.loads(s.run_paths("srch", r).code_json.read_text())["code_id"] for r in runs}
    assert len(codes) == 1
    # the CLI: list and show, the best marked
    shown = hpclab_cli(store, "search", "show", "s1")
    assert shown.returncode == 0, shown.stderr
    best = study.best_trial
    starred = [line for line in shown.stdout.splitlines() if line.startswith("*")]
    assert len(starred) == 1 and best.user_attrs[RUN_ATTR] in starred[0]
    listed = hpclab_cli(store, "search", "list")
    assert "s1" in listed.stdout and "6/6" in listed.stdout


def test_a_failed_trial_is_a_result_and_a_metric_can_be_the_objective(
    app: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    out = _search(
        app, store, "hydra/launcher=hpclab_local", "x=choice(0.2,0.5,3.0)", "fail_above=1.0",
        "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=3", "hydra.sweeper.study_name=m",
        "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
        "hydra.sweeper.objective=val/loss", "hydra.sweeper.max_failure_rate=1.0",
    )  # fmt: skip
    trials = load_study(Store(store), "srch", "m").get_trials()
    by_x = {t.params["x"]: t for t in trials}
    assert set(by_x) == {0.2, 0.5, 3.0}
    assert by_x[3.0].state.name == "FAIL"  # the task raised: its run failed, the search went on
    runs = _runs(store)
    assert runs[by_x[3.0].user_attrs[RUN_ATTR]].status is RunStatus.FAILED
    for x in (0.2, 0.5):  # the last val/loss logged (step 4), not the return value
        assert by_x[x].value == pytest.approx((x - 0.3) ** 2 + 1.0 / 5)
    assert "1 failed" in out.stderr


def test_a_study_that_exists_is_not_started_again_and_bad_input_is_one_line(
    app: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    base = ["hydra/launcher=hpclab_local", "x=interval(0, 1)", "hydra.sweeper.study_name=once"]
    _search(app, store, *base, "hydra.sweeper.n_trials=1", "hydra.sweeper.n_jobs=1")
    again = _search(app, store, *base, "hydra.sweeper.n_trials=1", check=False)
    assert again.returncode != 0 and "hpclab search resume once" in again.stderr
    assert "Traceback" not in again.stderr
    assert len(_runs(store)) == 1  # nothing ran the second time
    for args, words in [
        (["x=interval(0, 1)", "hydra.sweeper.study_name=b"], "hpclab launcher"),
        (["hydra/launcher=hpclab_local", "x=interval(0,1)", "hydra.sweeper.direction=up"],
         "not minimize or maximize"),
        (["hydra/launcher=hpclab_local", "x=interval(0,1)", "hydra.sweeper.study_name=../x"],
         "invalid study name"),
    ]:  # fmt: skip
        bad = _search(app, store, *args, check=False)
        assert bad.returncode != 0 and words in bad.stderr, bad.stderr[-2000:]
        assert "Traceback" not in bad.stderr
    missing = hpclab_cli(store, "search", "show", "nope")
    assert missing.returncode == 1 and "no study 'nope'" in missing.stderr
    assert "once" in missing.stderr  # the studies there are named


def test_resume_collects_the_trials_a_killed_driver_left_running(app: Path, tmp_path: Path) -> None:
    store, gate = tmp_path / "store", tmp_path / "gate"
    cmd = [
        sys.executable, "train.py", "-m", "hydra/sweeper=optuna", "hydra/launcher=hpclab_local",
        "x=interval(-1, 1)", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.study_name=r", "hydra.sweeper.sampler.seed=1",
    ]  # fmt: skip
    env = {**os.environ, "HPCLAB_STORE": str(store), "HPCLAB_PROJECT": "srch", "GATE": str(gate)}
    driver = subprocess.Popen(cmd, cwd=app, env=env, stderr=subprocess.PIPE, text=True)
    try:
        # the first batch's two runs are running (held at the gate): kill the driver only
        poll(
            lambda: (
                len(_runs(store)) == 2
                and all(r.status is RunStatus.RUNNING for r in _runs(store).values())
            ),
            timeout=120,
            message="the first batch running",
        )
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    first = set(_runs(store))
    states = [t.state.name for t in load_study(Store(store), "srch", "r").get_trials()]
    assert states == ["RUNNING", "RUNNING"]
    gate.write_text("go")  # the orphaned jobs finish on their own, with no driver
    poll(
        lambda: all(r.status is RunStatus.COMPLETED for r in _runs(store).values()),
        timeout=120,
        message="the orphaned runs finishing",
    )
    resumed = hpclab_subprocess(
        store, "search", "resume", "r", env={**os.environ, "GATE": str(gate)}
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = load_study(Store(store), "srch", "r").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert {t.user_attrs[RUN_ATTR] for t in trials[:2]} == first  # collected, not rerun
    for t in trials:
        assert t.value == pytest.approx(_objective(_config(store, t.user_attrs[RUN_ATTR])))
    assert len(_runs(store)) == 4


def test_pruned_trials_end_completed_and_marked(app: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = _search(
        app, store, "hydra/launcher=hpclab_local", "x=choice(0.3,0.35,2.0,3.0)",
        "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=1", "hydra.sweeper.study_name=p",
        "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
        "hydra.sweeper.sampler.seed=11",  # the good two first: the bad two are pruned
        "+hydra.sweeper.pruner._target_=optuna.pruners.MedianPruner",
        "+hydra.sweeper.pruner.n_startup_trials=2",
    )  # fmt: skip
    trials = load_study(Store(store), "srch", "p").get_trials()
    runs = _runs(store)
    completed = [t for t in trials if t.state.name == "COMPLETE"]
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert len(completed) >= 2 and pruned, [(t.params, t.state.name) for t in trials]
    for t in pruned:  # pruned where its value was worse than the completed trials' median
        run = runs[t.user_attrs[RUN_ATTR]]
        assert run.status is RunStatus.COMPLETED  # not a failure
        step = int(run.summary["search/pruned_at"])
        earlier = sorted(c.intermediate_values[step] for c in completed if c.number < t.number)
        median = (
            earlier[len(earlier) // 2]
            if len(earlier) % 2
            else sum(earlier[len(earlier) // 2 - 1 : len(earlier) // 2 + 1]) / 2
        )
        assert t.intermediate_values[step] > median
    assert f"{len(pruned)} pruned" in out.stderr


def test_a_logged_objective_metric_is_reported_for_pruning_by_itself(
    app: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    _search(
        app, store, "hydra/launcher=hpclab_local", "x=choice(0.3,0.35,2.0,3.0)",
        "explicit=false", "hydra.sweeper.objective=val/loss",
        "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=1", "hydra.sweeper.study_name=auto",
        "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
        "hydra.sweeper.sampler.seed=11",  # the good two first: the bad two are pruned
        "+hydra.sweeper.pruner._target_=optuna.pruners.MedianPruner",
        "+hydra.sweeper.pruner.n_startup_trials=2",
    )  # fmt: skip
    trials = load_study(Store(store), "srch", "auto").get_trials()
    for t in trials:  # the values the task logged, reported with no call of its own
        assert t.intermediate_values, t.number
        x = t.params["x"]
        for step, v in t.intermediate_values.items():
            assert v == pytest.approx((x - 0.3) ** 2 + 1.0 / (step + 1))
    # the two far from the optimum, after the two near it: worse than their median at once
    assert {t.params["x"] for t in trials if t.state.name == "PRUNED"} == {2.0, 3.0}


def test_a_multi_objective_study_marks_its_pareto_front(app: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _search(
        app, store, "hydra/launcher=hpclab_local", "x=interval(-1, 1)", "kind=choice(a,b)",
        "hydra.sweeper.n_trials=5", "hydra.sweeper.n_jobs=5", "hydra.sweeper.study_name=mo",
        "hydra.sweeper.sampler.seed=3", "hydra.sweeper.direction=[minimize,minimize]",
        "hydra.sweeper.objective=[return,cpu_hours]",
    )  # fmt: skip
    trials = load_study(Store(store), "srch", "mo").get_trials()
    values = {t.number: t.values for t in trials}
    assert all(len(v) == 2 and v[1] > 0 for v in values.values())

    def dominated(a: list[float]) -> bool:
        return any(
            b != a and all(y <= x for x, y in zip(a, b, strict=True)) for b in values.values()
        )

    front = {n for n, v in values.items() if not dominated(v)}
    shown = hpclab_cli(store, "search", "show", "mo", "--json")
    doc = json.loads(shown.stdout)
    assert {t["number"] for t in doc["trials"] if t["on_front"]} == front
    assert doc["study"]["objectives"] == ["return", "cpu_hours"]
    # the catalog has the trials too (hpclab sql, the site)
    assert hpclab_cli(store, "index", "--no-scheduler").returncode == 0
    from hpclab.catalog import connect

    rows = (
        connect(Store(store))
        .execute("SELECT number, values, on_front, run_id FROM search_trials WHERE study = 'mo'")
        .fetchall()
    )
    assert {n for n, _, front, _ in rows if front} == front
    assert {n: list(v) for n, v, _, _ in rows} == {n: list(v) for n, v in values.items()}
    assert {r for *_, r in rows} == {t.user_attrs[RUN_ATTR] for t in trials}


def _finished_runs(store: Store, batches: list[int], *, minutes: int) -> Any:
    """A batch launcher at the driver's contract: real run records of runs that each took
    ``minutes`` and returned their x; each batch's size goes into ``batches``."""

    def launch(
        overrides: list[list[str]], envs: list[dict[str, object]], planned: object
    ) -> list[str]:
        batches.append(len(overrides))
        ids = []
        for ov in overrides:
            paths = store.create_run_dir("srch")
            x = float(ov[0].split("=")[1])
            write_json_atomic(paths.run_json, {
                "id": paths.id, "project": "srch", "status": "completed",
                "created_at": "2026-01-01T00:00:00+00:00",
                "started_at": "2026-01-01T00:00:00+00:00",
                "ended_at": f"2026-01-01T00:{minutes:02d}:00+00:00",
                "returned": {"result": x}, "summary": {"result": x},
            })  # fmt: skip
            ids.append(paths.id)
        planned(ids)  # type: ignore[operator]  (the contract: run ids before the wait)
        return ids

    return launch


# -- the budget, at the driver's contract (a batch runs, then its runs are read) --------
def test_the_budget_stops_proposing_trials_before_it_would_be_exceeded(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.ensure_version()
    info = StudyInfo(
        name="b", project="srch", directions=["minimize"], objectives=["return"],
        n_trials=10, n_jobs=2, budget={"cpu_hours": 0.35},
    )  # fmt: skip
    hours_per_trial = 0.1
    batches: list[int] = []

    launch = _finished_runs(store, batches, minutes=int(hours_per_trial * 60))

    driver = SearchDriver(
        store, info, parse_space(["x=interval(0, 1)"]), alloc=Allocation(cpus=1, timeout_h=0.1)
    )
    report = driver.run(launch)
    # 2 (0.2 h used), then 1 (0.3 h), then another 0.1 h would make 0.4 > 0.35: stop
    assert batches == [2, 1]
    assert report.completed == 3 and report.stopped is not None
    assert "0.3 of 0.35 cpu hours used" in report.stopped


def test_before_any_trial_ends_each_trial_is_held_to_its_preflight_estimate(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    store.ensure_version()
    info = StudyInfo(
        name="est", project="srch", directions=["minimize"], objectives=["return"],
        n_trials=10, n_jobs=5, budget={"cpu_hours": 0.35},
    )  # fmt: skip
    batches: list[int] = []
    asked: list[int] = []

    def estimate(overrides: list[list[str]]) -> list[float | None]:
        asked.append(len(overrides))
        return [180.0] * len(overrides)  # 180 s on 2 CPUs: 0.1 cpu hours each

    launch = _finished_runs(store, batches, minutes=3)

    driver = SearchDriver(
        store,
        info,
        parse_space(["x=interval(0, 1)"]),
        alloc=Allocation(cpus=2, timeout_h=1.0),  # the time limit alone would allow none
        estimate=estimate,
    )
    report = driver.run(launch)
    # 0.1 h a trial: 3 fit in 0.35 (0.3), the 4th would make 0.4; the 2 asked beyond
    # are never launched, and do not count as failures
    assert asked == [5] and batches == [3]
    assert report.completed == 3 and report.failed == 0
    assert report.stopped == (
        "budget: 3 trial(s) estimated at 0.3 of 0.35 cpu hours, the next at 0.1 (preflight)"
    )
    trials = load_study(store, "srch", "est").get_trials()
    not_run = [t for t in trials if NOT_RUN_ATTR in t.user_attrs]
    assert len(not_run) == 2 and all(RUN_ATTR not in t.user_attrs for t in not_run)
    shown = json.loads(hpclab_cli(store.root, "search", "show", "est", "--json").stdout)
    assert sorted(t["state"] for t in shown["trials"]) == ["COMPLETE"] * 3 + ["NOT_RUN"] * 2


ESTIM = """
from hpclab.launch.estimate import ModelSize

def run(cfg):
    return None

def estimate_model(cfg):
    # 60 training FLOPs a sample: with hardware.tflops=1e-12 (1 FLOP/s), 60 s a step
    return ModelSize(params=10, activation_bytes_per_sample=0, flops_per_sample=60.0 * cfg["width"])
"""


def test_a_search_app_is_held_to_preflight_s_step_time_estimate(app: Path, tmp_path: Path) -> None:
    (app / "estim.py").write_text(ESTIM)
    with (app / "cfg.yaml").open("a") as f:
        f.write(
            "width: 1\ntask:\n  _target_: estim.run\ntrain:\n  steps: 10\n  batch_size: 1\n"
            "hardware:\n  tflops: 1.0e-12\n  efficiency: 1.0\n"
        )
    store = tmp_path / "store"
    # 10 steps x 60 s = 600 s on one CPU: 0.167 h a trial; 2 fit in 0.4 (the time limit,
    # 1 h, would allow none)
    out = _search(
        app, store, "hydra/launcher=hpclab_local", "x=interval(0, 1)",
        "hydra.sweeper.study_name=est", "hydra.sweeper.n_jobs=4",
        "+hpclab.budget.cpu_hours=0.4", "hydra.launcher.timeout_min=60",
        "hydra.launcher.cpus_per_task=1",
    )  # fmt: skip
    assert (
        "stopped: budget: 2 trial(s) estimated at 0.333 of 0.4 cpu hours, the next at 0.167 "
        "(preflight)" in out.stderr
    )
    assert len(_runs(store)) == 2


def test_a_budget_in_the_app_config_is_read(app: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    # no trial has run yet: the estimate is the time limit on one CPU (1 min = 0.0167 h)
    out = _search(
        app, store, "hydra/launcher=hpclab_local", "x=interval(0, 1)",
        "hydra.sweeper.study_name=tight", "+hpclab.budget.cpu_hours=0.01",
        "hydra.launcher.timeout_min=1", "hydra.launcher.cpus_per_task=1",
    )  # fmt: skip
    assert "stopped: budget: 0 of 0.01 cpu hours used" in out.stderr
    assert _runs(store) == {}


# -- array jobs on the dev cluster -----------------------------------------------------------
@pytest.mark.slow
def test_a_search_on_slurm_runs_each_batch_as_an_array_job(
    app: Path, tmp_path: Path, slurm_cluster: str
) -> None:
    store = tmp_path / "store"
    _search(
        app, store, "hydra/launcher=hpclab_slurm", "x=interval(-1, 1)",
        "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "hydra.sweeper.study_name=sl",
        "hydra.sweeper.sampler.seed=0", "hydra.launcher.timeout_min=5",
        "hydra.launcher.cpus_per_task=1",
    )  # fmt: skip
    s = Store(store)
    sweeps = [s.read_sweep("srch", i) for i in s.sweep_ids("srch")]
    assert len(sweeps) == 2
    runs = _runs(store)
    arrays = {r.scheduler.get("array_job_id") for r in runs.values()}
    assert len(arrays) == 2 and None not in arrays  # one array job per batch
    trials = load_study(s, "srch", "sl").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    for t in trials:
        assert t.value == pytest.approx(_objective(_config(store, t.user_attrs[RUN_ATTR])))


# -- the site ------------------------------------------------------------------------------
@pytest.mark.skipif(
    __import__("hpclab.site.chromium", fromlist=["find_chromium"]).find_chromium() is None,
    reason="Chromium is not installed",
)
def test_the_site_reports_each_study_with_its_front(app: Path, tmp_path: Path) -> None:
    from site_fixtures import served_site

    from hpclab.site.chromium import Chromium

    store = tmp_path / "store"
    _search(
        app, store, "hydra/launcher=hpclab_local", "x=interval(-1, 1)", "kind=choice(a,b)",
        "hydra.sweeper.n_trials=5", "hydra.sweeper.n_jobs=5", "hydra.sweeper.study_name=cost",
        "hydra.sweeper.sampler.seed=3", "hydra.sweeper.direction=[minimize,minimize]",
        "hydra.sweeper.objective=[return,cpu_hours]",
    )  # fmt: skip
    front = {
        t.number
        for t in load_study(Store(store), "srch", "cost").best_trials  # Optuna's own front
    }
    with served_site(Store(store), tmp_path / "site") as base, Chromium() as browser:
        page = browser.new_page()
        page.goto(base + "reports/index.html")
        links = page.evaluate("Array.from(document.querySelectorAll('a'), a => a.textContent)")
        assert "cost" in links
        page.goto(base + "reports/srch/search-cost.html")
        page.wait_for("document.body && document.body.dataset.hlReady === '1'", timeout=20)
        page.wait_for(
            "Array.from(document.querySelectorAll('.hl-chart > div')).length > 0 && "
            "Array.from(document.querySelectorAll('.hl-chart > div'))"
            ".every(e => e.dataset.rendered === '1')",
            timeout=20,
        )
        starred = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-table tbody tr'))"
            ".map(tr => tr.cells[0].textContent)"
            ".filter(t => t.startsWith('★')).map(t => Number(t.slice(2)))"
        )
        assert set(starred) == front
        assert page.evaluate("document.querySelectorAll('.hl-chart svg, .hl-chart canvas').length")
        assert not page.errors, page.errors
