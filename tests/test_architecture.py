"""The house rules that can be checked by a program: the layering of DESIGN.md
(``cli > site | restore > catalog > launch > tracking > store``) and no import cycle
inside a package, as contracts in pyproject.toml checked by import-linter."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_import_contracts_are_kept() -> None:
    r = subprocess.run(
        ["lint-imports", "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    kept = [line for line in r.stdout.splitlines() if line.rstrip().endswith("KEPT")]
    assert len(kept) == 2, r.stdout[-3000:]  # both contracts were checked, not skipped


def test_the_layering_contract_fails_on_an_upward_import(tmp_path: Path) -> None:
    """The contract is live: a copy of the package in which the store imports the site
    breaks it."""
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter not installed")
    shutil.copytree(REPO / "hpclab", tmp_path / "hpclab", symlinks=True)
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    ids = tmp_path / "hpclab" / "store" / "ids.py"
    ids.write_text(ids.read_text() + "\nimport hpclab.site.html  # noqa\n")
    r = subprocess.run(
        [lint, "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert r.returncode != 0 and "hpclab.store.ids -> hpclab.site.html" in r.stdout, r.stdout
