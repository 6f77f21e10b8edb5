"""What a Slurm job used against what it asked for (issue 18): ``sacct`` over every step
folded into one job (the allocation line's TotalCPU can be 0 while its steps used 20 s
each; MaxRSS is only on step lines), written as ``resources.json`` beside the run once the
job ended, indexed as ``run_resources``, and a warning in ``hpclab status`` for a run
that used under a quarter of what it asked for. The parser is checked on sacct text
captured from the dev cluster and on the forms of other Slurm versions; the whole path
on a real job of the dev cluster, against an independent ``sacct`` call."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import hpclab_cli, poll, screenshot
from site_fixtures import served_site
from slurm_fixtures import job_name, sbatch, slurm_cluster  # noqa: F401

from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import index_store
from hpclab.launch.resources import advice, needs_usage, record_usage
from hpclab.launch.scheduler.slurm_cli import SlurmCLI
from hpclab.launch.scheduler.usage import SACCT_USAGE_FIELDS, parse_sacct_usage, size_mb
from hpclab.site.chromium import Chromium, find_chromium
from hpclab.site.layout import run_href
from hpclab.store import RunRecord, RunStatus, Store
from hpclab.store.record import utcnow_iso

# sacct -n -P -j 286,287 -o <SACCT_USAGE_FIELDS> on the dev cluster (Slurm 22.05): 286 ran
# 3 s in its batch step and 0.5 s in a step; 287 held 300 MB for 12 s in step 0
DEV_CLUSTER = """\
286|COMPLETED|0:0|4|1|1|hpclabnode|00:03.742|billing=1,cpu=1,node=1|billing=1,cpu=1,mem=500M,node=1|500M|||
286.batch|COMPLETED|0:0|4|1|1|hpclabnode|00:03.281|cpu=1,mem=0,node=1||||energy=0|
286.0|COMPLETED|0:0|1|1|1|hpclabnode|00:00.460|cpu=1,mem=0,node=1||||energy=0|
287|COMPLETED|0:0|12|1|1|hpclabnode|00:12.245|billing=1,cpu=1,node=1|billing=1,cpu=1,mem=1G,node=1|1G|||
287.batch|COMPLETED|0:0|12|1|1|hpclabnode|00:00.011|cpu=1,mem=0,node=1|||12176K|cpu=00:00:00,energy=0,fs/disk=30435,mem=12176K,pages=1,vmem=221220K|cpu=00:00:00,energy=0,fs/disk=30435,mem=12176K,pages=1,vmem=221220K
287.0|COMPLETED|0:0|12|1|1|hpclabnode|00:12.234|cpu=1,mem=0,node=1|||306380K|cpu=00:00:09,energy=0,fs/disk=1685831,mem=306380K,pages=12,vmem=309540K|cpu=00:00:09,energy=0,fs/disk=1685831,mem=306380K,pages=12,vmem=309540K
"""
# a GPU job on a site that accounts gres/gpuutil and gpumem, whose allocation line says
# TotalCPU 00:00:00 (the case of the issue) while its two steps used 20 s each; an
# array task, a range of tasks that never ran, a cancelled job with the uid, and the
# per-node ReqMem of older Slurm
OTHER_FORMS = """\
900|COMPLETED|0:0|100|1|8|gpu01|00:00:00|billing=8,cpu=8,gres/gpu=2,mem=64G,node=1|billing=8,cpu=8,gres/gpu=2,mem=64G,node=1|64G|||
900.batch|COMPLETED|0:0|100|1|8|gpu01|00:20.000|cpu=8,gres/gpu=2,mem=64G,node=1|||2G|cpu=00:00:20,gres/gpumem=30000M,gres/gpuutil=150,mem=2G|cpu=00:00:20,mem=2G
900.0|COMPLETED|0:0|90|1|8|gpu01|00:20.000|cpu=8,gres/gpu=2,mem=64G,node=1|||1500M|cpu=00:00:20,gres/gpumem=20000M,gres/gpuutil=120,mem=1500M|cpu=00:00:20,mem=1500M
910_2|CANCELLED by 0|0:15|60|2|4|n[1-2]|01:00.000|cpu=4,node=2|cpu=4,node=2|4Gn|||
910_2.batch|CANCELLED|0:15|60|1|2|n1|00:30.000|cpu=2,mem=0,node=1|||100M|cpu=00:00:30,mem=100M|cpu=00:00:30,mem=100M
910_[3-5]|PENDING|0:0|0|1|4|None assigned|00:00:00|||4Gn|||
"""


def test_dev_cluster_sacct_is_folded_over_the_steps() -> None:
    assert DEV_CLUSTER.splitlines()[0].count("|") == len(SACCT_USAGE_FIELDS) - 1
    jobs = parse_sacct_usage(DEV_CLUSTER)
    assert set(jobs) == {"286", "287"}
    a, b = jobs["286"], jobs["287"]
    assert a.cpu_used_s == pytest.approx(3.742) and a.max_rss_mb is None
    assert a.req_mem_mb == 500 and a.alloc_cpus == 1 and a.elapsed_s == 4
    assert a.cpu_efficiency == pytest.approx(3.742 / 4) and a.mem_efficiency is None
    assert b.max_rss_mb == pytest.approx(306380 / 1024)  # the larger step's MaxRSS
    assert b.req_mem_mb == 1024 and b.mem_efficiency == pytest.approx(306380 / 1024 / 1024)
    assert b.cpu_hours == pytest.approx(12 / 3600) and b.gpu_hours == 0


def test_other_slurm_forms() -> None:
    jobs = parse_sacct_usage(OTHER_FORMS)
    assert set(jobs) == {"900", "910_2"}  # the range that never ran used nothing
    gpu = jobs["900"]
    assert gpu.cpu_used_s == 40  # the steps' 20 s each, not the allocation's 0
    assert gpu.alloc_cpus == 8 and gpu.alloc_gpus == 2 and gpu.alloc_mem_mb == 65536
    assert gpu.req_mem_mb == 65536 and gpu.max_rss_mb == 2048
    assert gpu.gpu_util_pct == 150 and gpu.gpu_mem_mb == 30000
    assert gpu.gpu_hours == pytest.approx(2 * 100 / 3600)
    assert gpu.cpu_efficiency == pytest.approx(40 / 800)
    line = advice(gpu.to_json())
    assert line == (
        "used 2.0 GB of 64.0 GB memory (3%): ask for 3 GB, not 64.0 GB; used 5% of 8 CPUs: "
        "ask for 1"
    )
    task = jobs["910_2"]
    assert task.state == "CANCELLED" and task.exit_code == "0:15"
    assert task.req_mem_mb == 8192  # 4G per node, 2 nodes
    assert task.cpu_used_s == 60 and task.max_rss_mb == 100
    assert advice(task.to_json()) == (
        "used 100 MB of 8.0 GB memory (1%): ask for 200 MB, not 8.0 GB"
    )


def test_sizes() -> None:
    assert size_mb("306380K") == pytest.approx(299.199, abs=1e-3)
    assert size_mb("4Gc", cpus=4) == 16384 and size_mb("2.5G") == 2560
    assert size_mb("1048576") == 1  # bytes
    assert size_mb("") is None and size_mb("n/a") is None and size_mb("lots") is None


def _ended_slurm_run(store: Store, job_id: str, status: RunStatus = RunStatus.COMPLETED) -> str:
    paths = store.create_run_dir("lab")
    record = RunRecord(id=paths.id, project="lab", status=status)
    record.scheduler = {"kind": "slurm", "job_id": job_id}
    record.started_at, record.ended_at = utcnow_iso(time.time() - 20), utcnow_iso()
    store.write_record(paths, record)
    return paths.id


def test_accounting_is_written_once_it_is_final(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    rid = _ended_slurm_run(store, "287")
    running = _ended_slurm_run(store, "288", RunStatus.RUNNING)
    asked: list[list[str]] = []
    answers = {"287": DEV_CLUSTER.replace("287|COMPLETED", "287|COMPLETING")}

    def sacct(argv: list[str]) -> str:
        asked.append(argv)
        return answers["287"]

    cli = SlurmCLI(runner=sacct)
    assert needs_usage(store, "lab", running) is None  # not ended: not asked
    assert record_usage(store, [("lab", rid), ("lab", running)], cli) == [("lab", rid)]
    assert len(asked) == 1 and "-X" not in asked[0] and asked[0][asked[0].index("-j") + 1] == "287"
    doc = json.loads(store.run_paths("lab", rid).resources_json.read_text())
    assert doc["final"] is False and doc["state"] == "COMPLETING"  # accounting lags
    assert needs_usage(store, "lab", rid) is not None  # asked again
    answers["287"] = DEV_CLUSTER
    assert record_usage(store, [("lab", rid)], cli) == [("lab", rid)]
    doc = json.loads(store.run_paths("lab", rid).resources_json.read_text())
    assert doc["final"] is True and doc["max_rss_mb"] == pytest.approx(306380 / 1024)
    assert needs_usage(store, "lab", rid) is None
    assert record_usage(store, [("lab", rid)], cli) == [] and len(asked) == 2  # never again


def test_a_restarted_indexer_does_not_ask_accounting_about_an_accounted_run(
    tmp_path: Path,
) -> None:
    """A fresh ``hpclab index`` loads the catalog's rows without their details: the
    accounting pass must still see the final resources.json of an ended run (it asked
    sacct again about every ended Slurm run and rewrote each one's file)."""
    from hpclab.catalog.indexer import Indexer, accounting_runs

    store = Store(tmp_path / "store")
    done = _ended_slurm_run(store, "287")
    lagging = _ended_slurm_run(store, "286")
    cli = SlurmCLI(runner=lambda argv: DEV_CLUSTER)
    assert record_usage(store, [("lab", done)], cli) == [("lab", done)]
    with Indexer(store) as indexer:
        indexer.index()
        assert accounting_runs(indexer) == [("lab", lagging)]
    with Indexer(store) as indexer:  # a restart: rows loaded from the catalog
        indexer.index()
        assert accounting_runs(indexer) == [("lab", lagging)]
        rows = indexer.entries[("lab", done)].rows
        assert rows is not None and rows.resources is not None
        assert rows.resources["job_id"] == "287" and rows.resources["state"] == "COMPLETED"


@pytest.mark.usefixtures("slurm_cluster")
def test_a_real_job_gets_its_efficiency_from_accounting(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    script = (
        "import time, hpclab\n"
        f"run = hpclab.init('lab', {{'x': 1}}, store={str(store.root)!r})\n"
        "held = b'x' * 300_000_000\n"  # 300 MB resident, of the 2 GB asked for
        "t = time.time()\n"
        "while time.time() - t < 11: pass\n"  # one CPU busy: sampled every 5 s
        "run.log({'loss': 1.0}, step=0)\n"
        "run.finish()\n"
    )
    (tmp_path / "job.py").write_text(script)
    jid = sbatch(
        "-J", job_name(), "--mem=2G", "-c", "1", "--wrap", f"{sys.executable} {tmp_path}/job.py"
    )

    def indexed() -> dict | None:
        index_store(store, reconcile=True)
        cur = connect(store).execute("SELECT * FROM run_resources WHERE job_id = ?", [jid])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        final = [r for r in rows if r["state"] == "COMPLETED"]
        return final[0] if final else None

    row = poll(indexed, timeout=90, interval=1.0, message=f"job {jid} in run_resources")
    # an independent reading of the same accounting: sacct's own step lines
    out = subprocess.run(
        ["sacct", "-n", "-P", "-j", jid, "-o", "JobID,MaxRSS,TotalCPU,ElapsedRaw"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = [line.split("|") for line in out.splitlines() if line.strip()]
    rss_k = max(int(r[1].rstrip("K")) for r in lines if r[1].endswith("K"))
    steps_cpu = sum(_seconds(r[2]) for r in lines if "." in r[0])
    total_cpu = max(_seconds(lines[0][2]), steps_cpu)
    assert row["max_rss_mb"] == pytest.approx(rss_k / 1024)
    assert 280 < row["max_rss_mb"] < 600  # the 300 MB it held (and the interpreter)
    assert row["cpu_used_s"] == pytest.approx(total_cpu)
    assert row["elapsed_s"] == float(lines[0][3])
    assert row["req_mem_mb"] == 2048 and row["alloc_cpus"] == 1
    assert row["mem_efficiency"] == pytest.approx(rss_k / 1024 / 2048)
    assert row["cpu_efficiency"] == pytest.approx(total_cpu / float(lines[0][3]))
    # hpclab status on the run says how much to ask for next time
    status = hpclab_cli(store.root, "status", row["run_id"], "--project", "lab")
    assert status.returncode == 0, status.stderr
    warning = [line for line in status.stdout.splitlines() if line.startswith("warning:")]
    assert warning == [
        f"warning: {row['run_id']} used {row['max_rss_mb']:.0f} MB of 2.0 GB memory "
        f"({row['mem_efficiency']:.0%}): ask for "
        f"{-(-int(row['max_rss_mb'] * 1.25) // 100) * 100} MB, not 2.0 GB"
    ]


def _seconds(text: str) -> float:
    parts = [float(p) for p in text.split(":")]
    return sum(v * 60**i for i, v in enumerate(reversed(parts)))


def test_a_malformed_resources_file_gives_nulls_not_a_failed_pass(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    good, bad, odd = (_ended_slurm_run(store, j) for j in ("501", "502", "503"))
    doc = {"job_id": "501", "state": "COMPLETED", "source": "sacct", "max_rss_mb": 300.0,
           "alloc_cpus": 2, "checked_at": utcnow_iso()}  # fmt: skip
    store.run_paths("lab", good).resources_json.write_text(json.dumps(doc))
    broken = {**doc, "job_id": "502", "alloc_cpus": "x", "max_rss_mb": "lots",
              "nodes": 2**70, "checked_at": "yesterday"}  # fmt: skip
    store.run_paths("lab", bad).resources_json.write_text(json.dumps(broken))
    store.run_paths("lab", odd).resources_json.write_text("[1, 2]")
    report = index_store(store)
    assert report.errors == 0 and report.indexed == 3
    rows = (
        connect(store)
        .execute(
            "SELECT run_id, job_id, alloc_cpus, max_rss_mb, nodes, checked_at IS NULL"
            " FROM run_resources ORDER BY job_id"
        )
        .fetchall()
    )
    assert rows == [(good, "501", 2, 300.0, None, False), (bad, "502", None, None, None, True)]


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_the_run_page_shows_the_efficiency_card(tmp_path: Path) -> None:
    """The run page's Resources card: asked, used and the efficiency of CPU and memory,
    and the advice when the run used under a quarter of its memory."""
    store = Store(tmp_path / "store")
    rid = _ended_slurm_run(store, "287")
    text = DEV_CLUSTER.replace("mem=1G,node=1|1G", "mem=2G,node=1|2G")  # asked for 2 GB
    cli = SlurmCLI(runner=lambda argv: text)
    assert record_usage(store, [("lab", rid)], cli) == [("lab", rid)]
    with served_site(store, tmp_path / "site") as base, Chromium() as browser:
        page = browser.new_page()
        page.goto(base + run_href("lab", rid))
        page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'", timeout=30)
        cells = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-resources tbody tr'),"
            " tr => Array.from(tr.cells, c => c.textContent))"
        )
        assert cells[0][:4] == ["CPU", "1 allocated", cells[0][2], "102%"]
        assert cells[1][:4] == ["memory", "2.0 GB asked", "299 MB peak (MaxRSS)", "15%"]
        advice_text = page.evaluate("document.querySelector('.hl-advice p:last-child').textContent")
        assert advice_text == "used 299 MB of 2.0 GB memory (15%): ask for 400 MB, not 2.0 GB"
        page.evaluate(
            "window.scrollTo(0, document.querySelector('table.hl-resources')"
            ".getBoundingClientRect().top + window.scrollY - 260)"
        )
        screenshot(page, "site/site-resources.png", full_page=False)
        assert page.errors == [], page.errors
        page.close()


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_the_compare_page_sets_the_runs_efficiency_side_by_side(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    small, big = _ended_slurm_run(store, "287"), _ended_slurm_run(store, "288")
    local = store.create_run_dir("lab")
    store.write_record(local, RunRecord(id=local.id, project="lab", status=RunStatus.COMPLETED))
    texts = {
        "287": DEV_CLUSTER,
        "288": DEV_CLUSTER.replace("287", "288").replace("mem=1G,node=1|1G", "mem=2G,node=1|2G"),
    }
    cli = SlurmCLI(runner=lambda argv: texts[argv[argv.index("-j") + 1]])
    assert sorted(
        record_usage(store, [("lab", small)], cli) + record_usage(store, [("lab", big)], cli)
    ) == sorted([("lab", small), ("lab", big)])
    docs = {
        r: json.loads(store.run_paths("lab", r).resources_json.read_text()) for r in (small, big)
    }
    with served_site(store, tmp_path / "site") as base, Chromium() as browser:
        page = browser.new_page()
        page.goto(f"{base}runs/compare.html?r=lab/{small},lab/{big},lab/{local.id}")
        page.wait_for("document.getElementById('hl-compare').dataset.rendered === '1'", timeout=30)
        rows = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-compare-efficiency tbody tr'),"
            " tr => Array.from(tr.cells, c => c.textContent))"
        )
        assert [r[1] for r in rows[:2]] == ["287", "288"]
        for row, rid in zip(rows[:2], (small, big), strict=True):  # each job's own accounting
            assert row[5] == f"{round(100 * docs[rid]['mem_efficiency'])}%"
        assert rows[1][4].endswith("/ 2.0 GB") and rows[1][8].startswith("used 299 MB of 2.0 GB")
        assert rows[2][8].startswith("no accounting")  # the local run
        assert page.errors == [], page.errors
        page.close()


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_the_efficiency_card_shows_gpu_hours_used_and_where_they_came_from(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    rid = _ended_slurm_run(store, "287")
    cli = SlurmCLI(runner=lambda argv: DEV_CLUSTER)
    assert record_usage(store, [("lab", rid)], cli) == [("lab", rid)]
    path = store.run_paths("lab", rid).resources_json
    doc = json.loads(path.read_text())
    doc |= {"alloc_gpus": 2, "gpu_hours": 1.0, "gpu_hours_used": 0.25,
            "gpu_used_source": "samples"}  # fmt: skip
    path.write_text(json.dumps(doc))
    with served_site(store, tmp_path / "site") as base, Chromium() as browser:
        page = browser.new_page()
        page.goto(base + run_href("lab", rid))
        page.wait_for("document.getElementById('hl-run').dataset.rendered === '1'", timeout=30)
        gpu = page.evaluate(
            "Array.from(document.querySelectorAll('table.hl-resources tbody tr'),"
            " tr => Array.from(tr.cells, c => c.textContent)).find(r => r[0] === 'GPU')"
        )
        assert gpu[1] == "2 allocated"
        assert "GPU-h used (from the run's GPU samples)" in gpu[2]
        assert gpu[3] == "25%"
        assert page.errors == [], page.errors
        page.close()
