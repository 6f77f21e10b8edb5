#!/usr/bin/env python
"""A lab's scale, end to end (issue 16): every step of the pipeline on one store.

    python scripts/make_bench_store.py /tmp/b10k --runs 10000 --steps 1000 --metrics 4 \\
        --sweeps 100
    python scripts/bench_scale.py /tmp/b10k [--copy /tmp/b10k-work] [--site /tmp/b10k-site] \\
        [--reference /tmp/b1k]   # make_bench_store.py /tmp/b1k --runs 1000 --steps 10000

Each step runs as the user runs it, in a fresh process (``/usr/bin/time`` gives its peak
RSS): a cold ``hpclab index`` (the catalog deleted), the same with nothing changed, one
run changed and re-indexed by a targeted pass (what ``hpclab watch`` does: published,
in ms), three typical queries on a new connection (best run per sweep, one run's curve,
runs where a config value matches: connect included, duckdb's import excluded), the
start of ``hpclab --help`` / ``runs list`` / ``runs show`` / ``status``, and ``hpclab
site build`` with the bytes of its data against the store's compressed metric bytes.
The store is written to (a catalog, one changed run): pass ``--copy`` to work on a copy.
Prints one Markdown table (the README's and docs/scaling.md's figures).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HPCLAB = [str(Path(sys.executable).with_name("hpclab"))]  # the console script


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, output) of ``cmd`` in a fresh process."""
    t = time.perf_counter()
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
    rss_kb = int(out.stderr.strip().splitlines()[-1])
    return wall, rss_kb / 1024, out.stdout + out.stderr


def du(paths: list[Path]) -> int:
    total = 0
    for root in paths:
        for dirpath, _, files in os.walk(root):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_size
                except FileNotFoundError:
                    pass
    return total


def queries(store_root: Path, project: str, repeats: int) -> dict[str, float]:
    """Median ms of each typical query on a new connection (connect included)."""
    import duckdb  # noqa: F401  (imported once: the import is not the query's cost)

    from hpclab.catalog.connect import connect
    from hpclab.store import Store

    store = Store(store_root)
    con = connect(store)
    metric = con.execute("SELECT min(name) FROM metric_summary").fetchone()[0]
    run_id = con.execute("SELECT max(run_id) FROM runs").fetchone()[0]
    path, value = con.execute(
        "SELECT path, value FROM features WHERE run_id = ? AND path LIKE '%lr%' LIMIT 1",
        [run_id],
    ).fetchone()
    sql = {
        "best run per sweep": (
            "SELECT r.sweep_id, s.run_id, s.last FROM metric_summary s "
            "JOIN runs r USING (project, run_id) WHERE s.name = ? "
            "QUALIFY row_number() OVER (PARTITION BY r.sweep_id ORDER BY s.last) = 1",
            [metric],
        ),
        "one run's curve": (
            "SELECT step, value FROM metrics WHERE project = ? AND run_id = ? AND name = ? "
            "ORDER BY step",
            [project, run_id, metric],
        ),
        "config value matches": (
            "SELECT project, run_id FROM features WHERE path = ? AND value = ?",
            [path, value],
        ),
    }
    out = {}
    for name, (q, params) in sql.items():
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            connect(store).execute(q, params).fetchall()
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times) * 1000
    return out


def cold_index(root: Path, repeats: int) -> tuple[float, float]:
    """Best wall seconds and its peak RSS of ``hpclab index`` with the catalog deleted.
    ``sync`` first: the dirty pages of a fresh copy (or of the last catalog) written back
    during the pass cost it seconds (a copy of 1.8 GB: 24 s against 15 s)."""
    best: tuple[float, float] | None = None
    for _ in range(repeats):
        from hpclab.store import Store

        shutil.rmtree(Store(root).catalog_dir, ignore_errors=True)
        subprocess.run(["sync"], check=True)
        wall, rss, _ = timed([*HPCLAB, "--store", str(root), "index"])
        best = (wall, rss) if best is None or wall < best[0] else best
    assert best is not None
    return best


def changed_run(store_root: Path, project: str, repeats: int) -> float:
    """Median ms of a targeted pass (the watcher's) over one run that logged 100 steps."""
    from hpclab.catalog.indexer import Indexer
    from hpclab.store import Store
    from hpclab.tracking.metrics import MetricWriter, read_commit

    store = Store(store_root)
    run_id = store.run_ids(project)[0]
    paths = store.run_paths(project, run_id)
    names = sorted(read_commit(paths.metrics_zarr)["series"])
    times = []
    with Indexer(store) as ix:
        ix.index()
        for _ in range(repeats):
            writer = MetricWriter(paths.metrics_zarr)
            start = writer.step + 1
            for s in range(start, start + 100):
                writer.log({n: 0.5 for n in names}, step=s)
            writer.flush()
            t = time.perf_counter()
            report = ix.index([(project, run_id)], knowledge=False)
            times.append(time.perf_counter() - t)
            assert report.indexed == 1 and report.published, report
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--copy", type=Path, help="work on a copy made here (cp -a)")
    parser.add_argument("--site", type=Path, help="build the site here (default: a temp dir)")
    parser.add_argument("--project", default="bench")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-site", action="store_true")
    parser.add_argument(
        "--reference",
        type=Path,
        help="a store of the same points in fewer runs (make_bench_store.py --runs 1000 "
        "--steps 10000): its cold index too, and the ratio",
    )
    parser.add_argument("--repeats-cold", type=int, default=2, help="cold indexes (the best)")
    args = parser.parse_args()

    root = args.store
    if args.copy:
        shutil.rmtree(args.copy, ignore_errors=True)
        subprocess.run(["cp", "-a", str(root), str(args.copy)], check=True)
        root = args.copy
    from hpclab.store import Store

    store = Store(root)
    n_runs = len(store.run_ids(args.project))
    rows: list[tuple[str, str]] = []

    wall, rss = cold_index(root, args.repeats_cold)
    rows.append(("cold `hpclab index`", f"{wall:.1f} s, {rss:,.0f} MB peak RSS"))
    if args.reference:
        ref, _ = cold_index(args.reference, args.repeats_cold)
        n_ref = len(Store(args.reference).run_ids(args.project))
        rows.append(
            (
                f"cold index of the reference ({n_ref:,} runs, {args.reference})",
                f"{ref:.1f} s: {n_runs:,} runs take {wall / ref:.2f}x",
            )
        )
    wall, rss, out = timed([*HPCLAB, "--store", str(root), "index"])
    passed = re.search(r"in ([\d.]+) s", out)
    rows.append(
        (
            "`hpclab index`, nothing changed",
            f"{wall:.2f} s ({passed[1] if passed else '?'} s the pass), {rss:,.0f} MB",
        )
    )
    ms = changed_run(root, args.project, args.repeats)
    rows.append(("one run changed, targeted pass + publish (watch)", f"{ms:.0f} ms"))
    for name, q in queries(root, args.project, args.repeats).items():
        rows.append((f"query: {name} (connect included)", f"{q:.0f} ms"))
    run_id = store.run_ids(args.project)[-1]
    for argv in (["--help"], ["runs", "list"], ["runs", "show", run_id], ["status"]):
        walls = [timed([*HPCLAB, "--store", str(root), *argv])[0] for _ in range(3)]
        rows.append((f"`hpclab {' '.join(argv[:2])}` start to exit", f"{min(walls):.2f} s"))
    if not args.no_site:
        site = args.site or Path(f"/tmp/bench-scale-site-{os.getpid()}")
        shutil.rmtree(site, ignore_errors=True)
        wall, rss, _ = timed([*HPCLAB, "--store", str(root), "site", "build", "--out", str(site)])
        data = du([site / "html" / "data"])
        metric_bytes = du(
            [store.run_paths(args.project, r).metrics_zarr for r in store.run_ids(args.project)]
        )
        rows.append(("`hpclab site build`", f"{wall:.1f} s, {rss:,.0f} MB peak RSS"))
        rows.append(
            (
                "site data / store's metric bytes",
                f"{data / 1e9:.2f} GB / {metric_bytes / 1e9:.2f} GB = {data / metric_bytes:.2f}x",
            )
        )
    print(f"\n{n_runs:,} runs ({root})\n")
    print("| step | measured |\n| --- | --- |")
    for step, value in rows:
        print(f"| {step} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
