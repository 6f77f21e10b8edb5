"""docs/architecture.md stays true: the files it names exist, it covers every package of
the layering contract, the names its how-tos tell you to use exist, and the README links
it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
# `path/with/a/slash.py` or `dir/` in backticks; relative to the repository or to hpclab/
PATH_RE = re.compile(r"`((?:[\w.-]+/)+(?:[\w.-]+\.(?:py|md|toml|yaml|js)|\*\.yaml)?)`")


def test_every_path_it_names_exists() -> None:
    text = DOC.read_text()
    paths = {m.group(1) for m in PATH_RE.finditer(text)}
    assert len(paths) > 30, paths  # the pattern still finds them
    missing = []
    for p in sorted(paths):
        if p.startswith("<"):
            continue
        roots = (REPO, REPO / "hpclab")
        if not any(list(root.glob(p)) or (root / p).exists() for root in roots):
            missing.append(p)
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_it_covers_every_layer_and_the_plugin() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    text = DOC.read_text()
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    packages = [p.strip() for layer in layers for p in layer.split("|")]
    for package in packages:
        assert f"| `{package.replace('.', '/')}` |" in text, package
    assert "| `hydra_plugins/hpclab_launcher` |" in text
    assert " > ".join(layers).replace("hpclab.", "") in text  # the contract, as stated


@pytest.mark.parametrize(
    "module,name",
    [
        ("hpclab.launch.scheduler", "register_scheduler"),
        ("hpclab.launch.scheduler", "get_scheduler"),
        ("hpclab.launch.scheduler.base", "Scheduler"),
        ("hpclab.launch.scheduler.base", "UNKNOWN_ENDED"),
        ("hpclab.store.record", "SLURM_STATES"),
        ("hpclab.site.registry", "PageSpec"),
        ("hpclab.site.registry", "PAGES"),
        ("hpclab.site.registry", "register_page"),
        ("hpclab.site.registry", "ChildPage"),
        ("hpclab.site.data", "SiteData"),
        ("hpclab.catalog.project_config", "AGGREGATIONS"),
        ("hpclab.catalog.run_metrics", "Agg"),
        ("hpclab.catalog.run_metrics", "FORMAT"),
        ("hpclab.catalog.indexer", "_summary_row"),
        ("hpclab.catalog.knowledge", "_aggregate"),
        ("hpclab.cli", "cli"),
    ],
)
def test_the_names_it_tells_you_to_use_exist(module: str, name: str) -> None:
    assert re.search(rf"\b{name}\b", DOC.read_text()), name
    assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


def test_the_readme_links_it_and_the_changelog() -> None:
    readme = (REPO / "README.md").read_text()
    assert "(docs/architecture.md)" in readme and "(CHANGELOG.md)" in readme
    assert (REPO / "CHANGELOG.md").is_file()
