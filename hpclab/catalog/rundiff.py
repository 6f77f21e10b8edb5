"""``hpclab runs diff A B``: how two runs differ, in config and in code.

Config: deepdiff of the two resolved ``config.yaml`` (the project's ``features.ignore``
paths left out). Code: the commits, the files whose content differs between the trees the
runs saw (from the snapshots' manifests of file hashes), and a unified diff of their
stored uncommitted patches.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from hpclab.catalog.diffs import DiffRow, diff_configs, under
from hpclab.catalog.project_config import load_project_config
from hpclab.store import RunPaths, Store
from hpclab.store.atomic import read_json, read_yaml


@dataclass
class RunDiff:
    a: str
    b: str
    config: list[DiffRow]
    commits: tuple[str | None, str | None]
    files: list[tuple[str, str]] = field(default_factory=list)  # (path, added|removed|changed)
    patch_diff: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def diff_runs(store: Store, a: str, b: str, project: str | None = None) -> RunDiff:
    """Compare run ``a`` (old) with run ``b`` (new)."""
    pa, paths_a = store.find_run(a, project)
    pb, paths_b = store.find_run(b, project)
    ignore = load_project_config(store.project_yaml(pb)).feature_ignore
    config = [
        row for row in diff_configs(_config(paths_a), _config(paths_b)) if not under(row[0], ignore)
    ]
    code_a, code_b = _json(paths_a.code_json), _json(paths_b.code_json)
    out = RunDiff(a, b, config, (_commit(code_a), _commit(code_b)))
    if not code_a or not code_b:
        out.notes.append(
            "no code snapshot for "
            + " and ".join(r for r, c in ((a, code_a), (b, code_b)) if not c)
        )
    man_a = _json(paths_a.code_manifest).get("files") or {}
    man_b = _json(paths_b.code_manifest).get("files") or {}
    if man_a and man_b:
        for path in sorted(set(man_a) | set(man_b)):
            if path not in man_a:
                out.files.append((path, "added"))
            elif path not in man_b:
                out.files.append((path, "removed"))
            elif man_a[path] != man_b[path]:
                out.files.append((path, "changed"))
    patch_a, patch_b = _text(paths_a.code_patch), _text(paths_b.code_patch)
    if patch_a != patch_b:
        out.patch_diff = list(
            difflib.unified_diff(
                patch_a.splitlines(keepends=True),
                patch_b.splitlines(keepends=True),
                f"{a}/uncommitted.patch",
                f"{b}/uncommitted.patch",
            )
        )
    return out


def _config(paths: RunPaths) -> Any:
    return (read_yaml(paths.config_yaml) if paths.config_yaml.exists() else {}) or {}


def _commit(code: dict[str, Any]) -> str | None:
    git = code.get("git")
    return git.get("commit") if isinstance(git, dict) else None


def _json(path: Any) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = read_json(path)
    return data if isinstance(data, dict) else {}


def _text(path: Any) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
