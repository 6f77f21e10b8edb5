"""``.hpclabignore``: what a code snapshot leaves out, beyond ``.gitignore``.

One gitignore-like glob per line (``#`` starts a comment): matched on the basename, or on
the whole path relative to the file's directory when it contains a ``/``; a trailing
``/`` matches directories only. Lines ``secret: REGEX`` are not globs: they add a
redaction pattern (:class:`hpclab.tracking.secrets.SecretRules`).

Outside git, the default rules below apply too (there is no ``.gitignore`` to say what
is not code); inside git, only the file's own lines, in the repository's top directory
and in the run's code directory.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hpclab.store.layout import DEFAULT_STORE
from hpclab.tracking.secrets import IGNORE_FILE, SECRET_LINE_PREFIX

# A trailing "/" means directories only (a script named ``env`` is still code).
DEFAULT_IGNORES = (
    ".git/", "__pycache__/", "*.pyc", ".venv/", "venv/", "env/", "node_modules/",
    ".mypy_cache/", ".pytest_cache/", f"{DEFAULT_STORE}/", "outputs/", "multirun/",
    "*.egg-info/",
)  # fmt: skip


@dataclass(frozen=True)
class IgnoreRule:
    """One gitignore-like pattern: an fnmatch glob on the basename, or on the whole
    relative path when it contains a ``/``; a trailing ``/`` matches directories only."""

    pattern: str
    dir_only: bool = False
    anchored: bool = False

    @classmethod
    def parse(cls, line: str) -> IgnoreRule | None:
        line = line.strip()
        if not line or line.startswith("#") or line.startswith(SECRET_LINE_PREFIX):
            return None
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if line.startswith("**/"):
            line = line[3:]
        anchored = "/" in line
        return cls(line.lstrip("/"), dir_only, anchored) if line.strip("/") else None

    def matches(self, rel: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return fnmatch.fnmatchcase(rel if self.anchored else rel.rsplit("/", 1)[-1], self.pattern)


def file_rules(directory: Path) -> list[IgnoreRule]:
    """The rules of ``directory/.hpclabignore`` (none if there is no such file)."""
    ignore_file = directory / IGNORE_FILE
    if not ignore_file.is_file():
        return []
    lines = ignore_file.read_text(errors="replace").splitlines()
    return [r for r in map(IgnoreRule.parse, lines) if r is not None]


def load_ignore_rules(code_dir: Path) -> list[IgnoreRule]:
    """The default rules plus those in ``code_dir/.hpclabignore`` (if present)."""
    defaults = [r for r in map(IgnoreRule.parse, DEFAULT_IGNORES) if r is not None]
    return defaults + file_rules(code_dir)


@dataclass(frozen=True)
class ScopedRules:
    """Rules that apply to the paths under ``prefix`` (relative to the repository top;
    "" for all), matched relative to it."""

    prefix: str
    rules: Sequence[IgnoreRule]

    def ignores(self, rel: str) -> bool:
        """Whether the file ``rel`` (relative to the top) or a directory above it matches."""
        if self.prefix:
            if not rel.startswith(self.prefix + "/"):
                return False
            rel = rel[len(self.prefix) + 1 :]
        parts = rel.split("/")
        for i in range(1, len(parts)):
            if any(r.matches("/".join(parts[:i]), True) for r in self.rules):
                return True
        return any(r.matches(rel, False) for r in self.rules)


def git_ignores(top: Path, relpath: str) -> list[ScopedRules]:
    """The ``.hpclabignore`` rules of a repository's top and of its code directory
    ``relpath`` (relative to the top)."""
    out = [ScopedRules("", file_rules(top))]
    if relpath not in ("", "."):
        out.append(ScopedRules(relpath, file_rules(top / relpath)))
    return [s for s in out if s.rules]
