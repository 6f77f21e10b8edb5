#!/usr/bin/env python
"""Cold index of stores of the same points, alternating, in fresh processes: the ratio.

    python scripts/make_bench_store.py /tmp/n1k --runs 1000 --steps 10000 --metrics 4
    python scripts/make_bench_store.py /tmp/n10k --runs 10000 --steps 1000 --metrics 4 --sweeps 100
    python scripts/bench_cold.py /tmp/n1k /tmp/n10k --repeats 2
    git worktree add /tmp/old <commit>   # then the same, against that commit's code:
    python scripts/bench_cold.py /tmp/n1k /tmp/n10k --baseline /tmp/old

Each measurement deletes ``<store>/.catalog`` and runs ``Indexer(Store(root)).index()`` in
a new process (its worker processes included): wall time, CPU time (user + system, the
process and its workers, from ``getrusage``) and peak RSS of each. Stores and variants
alternate, so a machine whose speed drifts (a shared VM) moves both sides alike; CPU time
moves less than wall time. ``--baseline PATH`` also runs each store with PATH first on
``PYTHONPATH`` (a checkout of another commit). Prints a Markdown table and the ratio of
the last store's to the first's (min of the wall times, and of the CPU times).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

_ONE = """
import json, resource, shutil, sys, time
from pathlib import Path
from hpclab.catalog.indexer import Indexer
from hpclab.store import Store
root = Path(sys.argv[1])
shutil.rmtree(root / ".catalog", ignore_errors=True)
start = time.perf_counter()
with Indexer(Store(root)) as ix:
    report = ix.index()
wall = time.perf_counter() - start
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "wall": wall,
    "cpu": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
    "rss_mb": me.ru_maxrss / 1024, "workers_rss_mb": kids.ru_maxrss / 1024,
    "runs": report.indexed, "errors": report.errors,
}))
"""


def measure(store: Path, pythonpath: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    out = subprocess.run(  # -P: not the working directory first on sys.path (a checkout)
        [sys.executable, "-P", "-c", _ONE, str(store)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"bench_cold: {store}: the index failed: {out.stderr.strip().splitlines()[-1:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def span(values: list[float], unit: str) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.1f} {unit}" if round(lo, 1) == round(hi, 1) else f"{lo:.1f}–{hi:.1f} {unit}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", type=Path, nargs="+", help="stores, the reference first")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline", help="a checkout to compare with (put on PYTHONPATH)")
    args = parser.parse_args()
    for store in args.stores:
        if not (store / "VERSION").is_file():
            parser.error(f"{store}: not an hpclab store (no VERSION file)")
    variants: list[tuple[str, str | None]] = [("this tree", None)]
    if args.baseline:
        variants.insert(0, (f"baseline {args.baseline}", args.baseline))
    results: dict[tuple[str, Path], list[dict[str, float]]] = {}
    for rep in range(args.repeats):
        for store in args.stores:
            for name, path in variants:
                r = measure(store, path)
                results.setdefault((name, store), []).append(r)
                print(
                    f"# {rep + 1}/{args.repeats} {name} {store}: {r['wall']:.2f} s, "
                    f"{r['cpu']:.1f} s CPU, {r['runs']:.0f} runs",
                    file=sys.stderr,
                )
    print("| code | store | cold index | CPU | peak RSS (indexer / a worker) |")
    print("| --- | --- | --- | --- | --- |")
    for name, _ in variants:
        for store in args.stores:
            rs = results[(name, store)]
            wall, cpu = span([r["wall"] for r in rs], "s"), span([r["cpu"] for r in rs], "s")
            print(
                f"| {name} | {store} ({rs[0]['runs']:.0f} runs) | {wall} | {cpu}"
                f" | {max(r['rss_mb'] for r in rs):.0f} MB"
                f" / {max(r['workers_rss_mb'] for r in rs):.0f} MB |"
            )
    if len(args.stores) > 1:
        first, last = args.stores[0], args.stores[-1]
        for name, _ in variants:
            a, b = results[(name, first)], results[(name, last)]
            wall = min(r["wall"] for r in b) / min(r["wall"] for r in a)
            cpu = min(r["cpu"] for r in b) / min(r["cpu"] for r in a)
            print(f"\n{name}: {last} / {first} = {wall:.2f}x in wall time, {cpu:.2f}x in CPU time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
