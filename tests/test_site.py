"""The lab website without a browser: downsampling, the build (pages, data files, MkDocs),
live updates that rewrite only changed runs' data, the CLI and the report export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import CliResult, hpclab_cli, poll
from site_fixtures import BENCH_RUNS, log_run, make_site_store

from hpclab.catalog.indexer import index_store
from hpclab.site.build import build
from hpclab.site.layout import SiteLayout
from hpclab.site.live import LiveSite
from hpclab.site.series import downsample, read_series_file, run_series
from hpclab.store import Store


def test_downsample_keeps_spikes_ends_and_nan() -> None:
    n = 100_000
    steps = np.arange(n, dtype=float)
    values = np.sin(steps / 5000.0)
    values[31_337] = 50.0  # one spike a stride would skip
    values[77_777] = -50.0
    values[40_000:40_010] = np.nan
    keep = downsample(steps, values, 1000)
    assert len(keep) <= 1000
    assert {0, n - 1, 31_337, 77_777} <= set(keep.tolist())
    assert (np.diff(keep) > 0).all()
    short = downsample(steps[:500], values[:500], 1000)
    assert short.tolist() == list(range(500))


@pytest.fixture
def site_store(weird_tmp_path: Path) -> Store:
    return make_site_store(weird_tmp_path / "store")


def test_build_writes_pages_and_data(site_store: Store, weird_tmp_path: Path) -> None:
    out = weird_tmp_path / "site out"
    report = build(site_store, out)
    layout = SiteLayout(out)
    assert report.runs == BENCH_RUNS + 2
    for page in ("index", "graph", "hypotheses", "board", "training", "runs/index", "runs/run"):
        assert (layout.html / f"{page}.html").is_file(), page
    assert len(list((layout.html / "reports" / "bench").glob("sweep-*.html"))) == 2
    assert (layout.html / "reports" / "bench" / "hypothesis-lr-matters.html").is_file()
    # offline: the Vega bundle is local, no page names a CDN or Google Fonts
    assert (layout.html / "assets" / "vendor" / "vega-bundle.js").stat().st_size > 500_000
    for page in layout.html.rglob("*.html"):
        text = page.read_text()
        for host in ("fonts.googleapis", "unpkg.com", "cdn.jsdelivr", "cdnjs"):
            assert host not in text, (page, host)

    lab = {r["run_id"]: r for r in _runs(site_store, "lab")}
    child = next(r for r, v in lab.items() if v["name"] == "lower-lr")
    series = read_series_file(layout.series_parquet("lab", child))
    val = series["metrics"]["val/loss"]
    assert val["step"] == [9, 19, 29, 39] and val["value"][1] is None  # NaN -> missing
    details = json.loads(layout.details_json("lab", child).read_text())
    assert {d["path"]: d["change"] for d in details["diff"]} == {"optim.lr": "changed"}
    assert details["notes"]["tags"] == ["PUBLISH"]
    assert any("hpclab restore" in c for c in details["restore"])

    overview = (layout.src / "docs" / "index.md").read_text()
    assert "▲" in overview  # the child improves on its parent's val/loss
    hyp = (layout.src / "docs" / "hypotheses.md").read_text()
    # one seed per group: "too few seeds" for every comparison, so never refuted
    assert "A larger learning rate lowers val/loss" in hyp and "hl-s-inconclusive" in hyp
    report = next((layout.html / "reports" / "bench").glob("sweep-*.html")).read_text()
    for section in ("Leaderboard", "Seed groups", "Pareto front", "Cost", "Loss curves"):
        anchor = section.lower().replace(" ", "-")
        assert f'<h2 id="{anchor}">{section}</h2>' in report  # a heading, and in the TOC:
        assert f'href="#{anchor}"' in report
    assert "run duration" in report  # cost source stated (no Slurm accounting for these)


def test_empty_store_builds_with_empty_states(tmp_path: Path) -> None:
    store = Store(tmp_path / "empty")
    store.root.mkdir()
    report = build(store)
    assert report.runs == 0
    html = (SiteLayout(store.site_dir).html / "hypotheses.html").read_text()
    assert "No hypotheses yet" in html


def test_live_update_rewrites_only_changed_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hpclab.site.data as site_data

    store = Store(tmp_path / "s")
    a = log_run(store, "a", {"train": {"steps": 100}}, None)
    b = log_run(store, "b", {"train": {"steps": 100}}, None)
    index_store(store)
    build(store)
    layout = SiteLayout(store.site_dir)
    live = LiveSite(store, min_rebuild=0.0)
    assert live.refresh(None) == []  # the build's data files are current: none rewritten
    before_b = layout.series_parquet("lab", b).stat().st_mtime_ns
    pages_before = (layout.html / "index.html").stat().st_mtime_ns

    import hpclab

    run = hpclab.init("lab", store=store.root, run_id=a)  # resume a, log more
    run.log({"train/loss": 0.01}, step=40)
    run.flush()
    assert live.refresh([("lab", a), ("lab", b)]) == [("lab", a)]
    assert layout.series_parquet("lab", b).stat().st_mtime_ns == before_b
    assert run_series(store, "lab", a)["step"] == 40
    doc = json.loads(layout.live_json.read_text())
    running = [r for r in doc["runs"] if r["run_id"] == a]
    assert running and running[0]["status"] == "running" and running[0]["total"] == 100
    # new points leave the pages alone, and do not load the whole catalog (seconds at
    # 10,000 runs): the signature is four queries, the details wait for details_every
    report = type("R", (), {"published": True})()
    loads: list[int] = []
    real_load = site_data.load
    monkeypatch.setattr(site_data, "load", lambda st: loads.append(1) or real_load(st))
    assert site_data.catalog_signature(store) == real_load(store).signature()
    live.details_every = 3600.0
    run.log({"train/loss": 0.005}, step=41)
    run.flush()
    live(report, [("lab", a)])
    assert (layout.html / "index.html").stat().st_mtime_ns == pages_before
    assert loads == [] and live.due() is not None, "a's details wait"
    live.details_every = 0.0
    live.catch_up()
    assert loads == [1] and live.due() is None
    index_store(store)  # the catalog now has run a as running
    live(report, [("lab", a)])
    assert (layout.html / "index.html").stat().st_mtime_ns != pages_before
    rows = json.loads(layout.runs_list_json.read_text())["rows"]  # the Runs list's, too
    assert [r[2] for r in rows if r[1] == a] == ["running"]
    run.finish()


def _runs(store: Store, project: str) -> list[dict]:
    from hpclab.site.data import load

    return [r for r in load(store).runs if r["project"] == project]


def _cli(*args: str, store: Path) -> CliResult:
    """``hpclab ARGS...`` (in this process) with the store from $HPCLAB_STORE."""
    return hpclab_cli(None, *args, env={"HPCLAB_STORE": str(store)})


def test_cli_build_and_report(site_store: Store, tmp_path: Path) -> None:
    r = _cli("site", "build", store=site_store.root)
    assert r.returncode == 0, r.stderr
    assert "hpclab site serve" in r.stdout
    sweep = sorted(p.stem for p in site_store.sweeps_dir("bench").glob("*.json"))[0]
    out = tmp_path / "report.html"
    r = _cli("site", "report", sweep, "--out", str(out), store=site_store.root)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.count("<svg") >= 2 and "<script" not in text  # standalone: SVG, no JS
    assert "Leaderboard" in text
    r = _cli("site", "report", "no-such-sweep", "--out", str(out), store=site_store.root)
    assert r.returncode == 1 and r.stderr.startswith("hpclab: error: no sweep or hypothesis")
    assert "Traceback" not in r.stderr


def test_report_refuses_a_bad_out_in_one_line(site_store: Store, tmp_path: Path) -> None:
    """A report path that cannot be written is named in one error line, before any work,
    and nothing is created: not a mistyped directory, not a file of another kind."""
    sweep = sorted(p.stem for p in site_store.sweeps_dir("bench").glob("*.json"))[0]
    (tmp_path / "a file").write_text("x")
    (tmp_path / "a dir.pdf").mkdir()
    bad = {
        tmp_path / "no such dir" / "r.pdf": "no such directory",
        tmp_path / "a file" / "r.html": "is not a directory",
        tmp_path / "r.txt": "written as .html or .pdf",
        tmp_path / "r": "written as .html or .pdf",
        tmp_path: "is a directory",
        tmp_path / "a dir.pdf": "is a directory",
    }
    before = sorted(tmp_path.rglob("*"))
    for out, reason in bad.items():
        r = _cli("site", "report", sweep, "--out", str(out), store=site_store.root)
        assert r.returncode == 1, (out, r.stdout, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"hpclab: error: {out}"), r.stderr
        assert reason in lines[0]
        assert r.stdout == ""
    assert sorted(tmp_path.rglob("*")) == before


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    from hpclab.errors import SiteError
    from hpclab.site.serve import make_server

    (tmp_path / "index.html").write_text("<html></html>")
    first = make_server(tmp_path, port=0)
    try:
        with pytest.raises(SiteError, match="in use"):
            make_server(tmp_path, port=first.server_address[1])
    finally:
        first.server_close()


@pytest.mark.slow
def test_a_wheel_install_builds_the_site(tmp_path: Path) -> None:
    """Outside the source tree (a plain ``pip install``), the template ships in the wheel."""
    repo = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"  # a copy, so the build's scratch dirs stay out of the checkout
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "tests")
    shutil.copytree(repo, src, symlinks=True, ignore=skip)
    # the method page is a link to docs/statistics.md: the wheel must carry its text
    assert (src / "site" / "statistics.md").is_symlink()
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    r = subprocess.run(
        [*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(wheels)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = wheels.glob("hpclab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert "hpclab/site/template/mkdocs.yml" in names
    with zipfile.ZipFile(wheel) as z:
        carried = z.read("hpclab/site/template/statistics.md").decode("utf-8")
    assert carried == (repo / "docs" / "statistics.md").read_text(encoding="utf-8")
    assert "hpclab/site/template/assets/hpclab/hpclab.js" in names
    assert "hpclab/site/vendor/vega-interpreter.js" in names
    assert "hydra_plugins/hpclab_launcher/launcher.py" in names  # Hydra's namespace, once
    assert not any("/hydra_plugins/" in n for n in names)
    target = tmp_path / "installed"
    r = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    store = tmp_path / "store"
    store.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "HPCLAB_STORE": str(store)}
    code = "import hpclab, sys; print(hpclab.__file__); sys.exit(hpclab.cli.main())"
    r = subprocess.run(
        [sys.executable, "-c", "import hpclab.cli; " + code, "site", "build"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith(str(target))  # the installed copy ran
    assert (store / ".site" / "html" / "index.html").is_file()
    method = (store / ".site" / "html" / "statistics.html").read_text(encoding="utf-8")
    assert all(f'id="{a}"' in method for a in ("seed-groups", "evidence", "pareto"))


@pytest.mark.slow
def test_report_cost_comes_from_slurm_accounting(tmp_path: Path, slurm_cluster: str) -> None:
    """A sweep on the dev cluster with 2 CPUs a task: the report's CPU hours are what sacct
    says the allocations held (AllocTRES cpu= x ElapsedRaw), not the runs' own durations."""
    from test_launch import launch, records, sweeps

    from hpclab.site.cost import accounting, total
    from hpclab.site.data import load

    store = tmp_path / "store"
    args = ["-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=2"]
    task = ["task._target_=launch_tasks.stepper", "train.steps=30", "+sleep=0.05"]
    out = launch([*args, *task, "seed=0,1"], store, tmp_path)
    assert out.returncode == 0, out.stderr
    (sweep,) = sweeps(store)
    poll(
        lambda: all(r.status.is_final for r in records(store, sweep)),
        timeout=240,
        interval=0.5,
        message="both array tasks to end",
    )
    job_ids = [p["job_id"] for p in sweep["points"]]

    def accounted() -> dict[str, tuple[int, int]]:
        """JobID -> (allocated CPUs, elapsed s), asked of sacct directly, once both ended."""
        text = subprocess.run(
            [
                "sacct",
                "-n",
                "-P",
                "-X",
                "-j",
                sweep["job_id"],
                "-o",
                "JobID,AllocCPUS,ElapsedRaw,State",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [line.split("|") for line in text.splitlines() if line.strip()]
        return {r[0]: (int(r[1]), int(r[2])) for r in rows if r[3] == "COMPLETED"}

    poll(lambda: set(accounted()) == set(job_ids), timeout=60, message="sacct to have both")
    expected = accounted()
    assert all(cpus == 2 for cpus, _ in expected.values())
    index_store(Store(store))
    data = load(Store(store))
    costs = accounting(data)
    by_job = {r["job_id"]: costs[(r["project"], r["run_id"])] for r in data.runs}
    for job_id, (cpus, elapsed) in expected.items():
        cost = by_job[job_id]
        assert cost.source == "sacct"
        assert cost.cpu_h == pytest.approx(cpus * elapsed / 3600.0)
        assert cost.gpu_h == 0.0 and cost.cpu_used_h is not None
    sum_h = sum(c * s for c, s in expected.values()) / 3600.0
    assert total(list(by_job.values())).cpu_h == pytest.approx(sum_h)
    report = tmp_path / "r.html"
    r = _cli("site", "report", sweep["id"], "--out", str(report), store=store)
    assert r.returncode == 0, r.stderr
    assert f"CPU hours <b>{sum_h:.3g}</b>" in report.read_text()
    assert "source: sacct" in report.read_text()
    # a reconciling pass reads each ended job's accounting over every step (resources.json,
    # run_resources): the same allocation, and the CPU its steps used (never 0 h for jobs
    # whose steps ran 30 steps of work), without asking sacct at build time
    index_store(Store(store), reconcile=True)
    data = load(Store(store))
    assert {r["job_id"] for r in data.resources.values()} == set(job_ids)
    from_catalog = accounting(data)
    for r in data.runs:
        cost, res = (
            from_catalog[(r["project"], r["run_id"])],
            data.resources[(r["project"], r["run_id"])],
        )
        assert cost.cpu_h == pytest.approx(by_job[r["job_id"]].cpu_h)
        assert cost.cpu_used_h == pytest.approx(res["cpu_used_s"] / 3600.0)
        assert res["cpu_used_s"] > 0 and cost.mem_asked_mb == res["req_mem_mb"]


def test_a_throttled_page_rebuild_runs_once_the_watcher_is_quiet(tmp_path: Path) -> None:
    """Two runs added within ``min_rebuild`` of each other: the second's page rebuild is put
    off, and the watcher runs it when due although nothing changes after (native mode,
    full passes an hour apart, so only the catch-up can bring the second run in)."""
    import threading

    from hpclab.catalog.watch import Watcher

    store = Store(tmp_path / "s")
    log_run(store, "first", {"train": {"steps": 40}}, None)
    index_store(store)
    build(store)
    runs_page = SiteLayout(store.site_dir).runs_list_json  # the Runs list's rows
    live = LiveSite(store, min_rebuild=3.0)
    watcher = Watcher(store, polling=False, full_every=3600, site_hook=live)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        poll(lambda: watcher._observer is not None and live._started, message="the watcher")
        second = log_run(store, "second", {"train": {"steps": 40}}, None)
        poll(lambda: second in runs_page.read_text(), message="the second run's rebuild")
        third = log_run(store, "third", {"train": {"steps": 40}}, None)  # within 3 s
        poll(lambda: live._pending or third in runs_page.read_text(), message="a put-off rebuild")
        poll(lambda: third in runs_page.read_text(), timeout=60, message="the put-off rebuild")
        assert live.due() is None
    finally:
        stop.set()
        thread.join(10)


def test_lone_values_are_flagged_for_dots() -> None:
    from hpclab.site.charts import lone_flags

    assert lone_flags([1.0, None, 2.0, 3.0, None, None, 4.0]) == [
        True,
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert lone_flags([5.0]) == [True] and lone_flags([]) == [] and lone_flags([None]) == [False]


def test_the_overview_shows_the_hyperparameters_that_differ(tmp_path: Path) -> None:
    import re

    from site_fixtures import make_site_store

    from hpclab.site.data import load
    from hpclab.site.pages import overview

    store = make_site_store(tmp_path / "store")
    data = load(store)
    body = str(overview(data).body)
    bench = body[body.index(">bench<") :]
    heads = re.findall(r"<th>(.*?)</th>", bench[: bench.index("</thead>")])
    # the bench sweeps vary lr and weight decay; the seed and hpclab's keys are not shown
    assert "optim.lr" in heads and "optim.weight_decay" in heads
    assert not any(h.endswith("seed") or h.startswith("hpclab.") for h in heads)
    assert heads.index("sweep") < heads.index("optim.lr") < heads.index("val/loss")
    # each row's value is its run's config
    first = data.runs[[r["project"] for r in data.runs].index("bench")]
    lr = json.loads(data.features[("bench", first["run_id"])]["optim.lr"])
    row = bench[bench.index(first["run_id"]) :]
    assert f"<code>{lr}</code>" in row[: row.index("</tr>")]


def test_catalog_rows_come_whole_in_blocks_and_share_equal_texts(
    site_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The site's load converts a query a block at a time (a 10,000-run catalog's tuples
    are never all held at once) and holds each distinct string once; the rows are those
    of one fetchall."""
    import duckdb

    import hpclab.site.data as data

    monkeypatch.setattr(data, "_FETCH_ROWS", 4)  # 10 rows: three blocks, the last short
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT i, CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END AS kind,"
        " CASE WHEN i = 3 THEN NULL ELSE i / 4 END AS x, ['a', 'b'] AS tags"
        " FROM range(10) r(i)"
    )
    con.execute("CREATE TABLE u AS SELECT 'odd' AS kind")
    cur = con.execute("SELECT * FROM t ORDER BY i")
    names = [d[0] for d in cur.description]
    expected = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert data.rows(con, "SELECT * FROM t ORDER BY i") == expected
    texts: dict[str, str] = {}
    shared = data.rows(con, "SELECT * FROM t ORDER BY i", texts=texts)
    assert shared == expected and shared[3]["x"] is None
    assert shared[1]["kind"] is shared[9]["kind"] == "odd"
    (u,) = data.rows(con, "SELECT * FROM u", texts=texts)
    assert u["kind"] is shared[1]["kind"]  # across the queries of one load
    assert shared[0]["tags"] is not shared[2]["tags"]  # lists stay each row's own

    d = data.load(site_store)
    for key in d.features:  # the features rows' run ids are the runs rows' objects
        assert key[1] is d.by_key[key]["run_id"]
