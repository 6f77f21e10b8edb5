"""The everyday commands start fast: they import only what they use (issue 16).

Each command runs in a fresh interpreter through the console script's ``main``; what it
imported is read from ``sys.modules`` after it returns. The heavy libraries are the
analysis stack: a listing or a status line must not pay for them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_catalog import make_run

HEAVY = ("duckdb", "scipy", "numpy", "networkx", "deepdiff", "pandas", "altair", "zarr")

_PROBE = """
import json, sys
from hpclab.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("\\n" + json.dumps({{"code": code, "heavy": heavy}}))
"""


def imported(store: Path, *args: str) -> tuple[int, list[str], str]:
    """Run ``hpclab --store STORE ARGS`` in a fresh process: its exit code, the heavy
    modules it imported and its output."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), "--store", str(store), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    last = json.loads(out.stdout.strip().splitlines()[-1])
    return last["code"], last["heavy"], out.stdout


@pytest.fixture
def two_runs(store_root: Path) -> Path:
    make_run(store_root, "r1", 5)
    make_run(store_root, "r2", 3, finish=False)  # still running: status has a line for it
    return store_root


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (("--help",), ()),
        (("runs", "--help"), ()),
        (("status",), ("numpy", "zarr")),  # a running run's rate reads its last points
        (("index", "--help"), ()),
    ],
)
def test_light_commands_import_no_analysis_library(
    two_runs: Path, args: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    code, heavy, out = imported(two_runs, *args)
    assert code in (0, None), out
    assert [m for m in heavy if m not in allowed] == []


def test_runs_list_uses_the_catalog_without_the_knowledge_stack(two_runs: Path) -> None:
    code, heavy, out = imported(two_runs, "runs", "list")
    assert code in (0, None), out
    assert "r1" in out and "r2" in out
    # the catalog is DuckDB over Parquet; the DAG, diffs and statistics load only when a
    # pass recomputes the knowledge layer, which a listing of an indexed store does not
    code, heavy, out = imported(two_runs, "runs", "list")
    assert "r1" in out
    assert [m for m in heavy if m in ("scipy", "networkx", "deepdiff", "altair")] == []


def test_runs_show_reads_the_run_not_the_catalog(two_runs: Path) -> None:
    code, heavy, out = imported(two_runs, "runs", "show", "r1")
    assert code in (0, None), out
    assert "train/loss" in out
    assert [m for m in heavy if m in ("duckdb", "scipy", "networkx", "deepdiff")] == []
