"""``.hpclabignore``: what a code snapshot leaves out, beyond ``.gitignore``.

One pattern per line with ``.gitignore``'s own semantics (matched by pathspec's
:class:`~pathspec.GitIgnoreSpec`): ``#`` starts a comment; a pattern without a ``/``
(other than a trailing one) matches at any depth, one with a ``/`` is relative to the
file's directory; ``*`` and ``?`` never cross a ``/`` while ``**`` does (``a/**/b``
also matches ``a/b``); a trailing ``/`` matches directories only; ``!pattern``
re-includes what an earlier line left out (the last matching line decides), except
inside a directory that is itself left out, as in git. Lines ``secret: REGEX`` are not
patterns: they add a redaction pattern (:class:`hpclab.tracking.secrets.SecretRules`).

Outside git, the default rules below apply too (there is no ``.gitignore`` to say what
is not code); inside git, only the file's own lines, in the repository's top directory
and in the run's code directory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from hpclab.store.layout import DEFAULT_STORE
from hpclab.tracking.secrets import IGNORE_FILE, SECRET_LINE_PREFIX

log = logging.getLogger(__name__)

# A trailing "/" means directories only (a script named ``env`` is still code).
DEFAULT_IGNORES = (
    ".git/", "__pycache__/", "*.pyc", ".venv/", "venv/", "env/", "node_modules/",
    ".mypy_cache/", ".pytest_cache/", f"{DEFAULT_STORE}/", "outputs/", "multirun/",
    "*.egg-info/",
)  # fmt: skip


class IgnoreRules:
    """Ordered gitignore patterns; the last one matching a path decides (``!`` re-includes).

    ``source`` names where the lines come from, for the warning about a line that is not a
    valid pattern (such a line is skipped: a snapshot is not failed over it).
    """

    def __init__(self, lines: Iterable[str] = (), *, source: str = "") -> None:
        kept: list[str] = []
        for n, raw in enumerate(lines, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith(SECRET_LINE_PREFIX):
                continue
            try:
                GitIgnoreSpec.from_lines([line])
            except ValueError as e:
                log.warning("%s: line %d: %r is not a valid pattern, skipped (%s)",
                            source or "ignore rules", n, line, e)  # fmt: skip
                continue
            kept.append(line)
        self.lines: tuple[str, ...] = tuple(kept)
        self._spec = GitIgnoreSpec.from_lines(kept)

    def __add__(self, other: IgnoreRules) -> IgnoreRules:
        return IgnoreRules(self.lines + other.lines)

    def __bool__(self) -> bool:
        return any(p.include is not None for p in self._spec.patterns)

    def __repr__(self) -> str:
        return f"IgnoreRules({list(self.lines)!r})"

    def matches(self, rel: str, is_dir: bool) -> bool:
        """Whether the path ``rel`` itself (a directory when ``is_dir``) is left out; the
        directories above it are not looked at (see :meth:`ignores`)."""
        return bool(self._spec.check_file(rel + "/" if is_dir else rel).include)

    def ignores(self, rel: str) -> bool:
        """Whether the file ``rel`` or a directory above it is left out."""
        parts = rel.split("/")
        for i in range(1, len(parts)):
            if self.matches("/".join(parts[:i]), True):
                return True
        return self.matches(rel, False)


def file_rules(directory: Path) -> IgnoreRules:
    """The rules of ``directory/.hpclabignore`` (none if there is no such file)."""
    ignore_file = directory / IGNORE_FILE
    if not ignore_file.is_file():
        return IgnoreRules()
    lines = ignore_file.read_text(errors="replace").splitlines()
    return IgnoreRules(lines, source=str(ignore_file))


def load_ignore_rules(code_dir: Path) -> IgnoreRules:
    """The default rules plus those in ``code_dir/.hpclabignore`` (if present), which
    come last and so can re-include (``!venv/``) what a default leaves out."""
    return IgnoreRules(DEFAULT_IGNORES) + file_rules(code_dir)


@dataclass(frozen=True)
class ScopedRules:
    """Rules that apply to the paths under ``prefix`` (relative to the repository top;
    "" for all), matched relative to it."""

    prefix: str
    rules: IgnoreRules

    def ignores(self, rel: str) -> bool:
        """Whether the file ``rel`` (relative to the top) or a directory above it matches."""
        if self.prefix:
            if not rel.startswith(self.prefix + "/"):
                return False
            rel = rel[len(self.prefix) + 1 :]
        return self.rules.ignores(rel)


def git_ignores(top: Path, relpath: str) -> list[ScopedRules]:
    """The ``.hpclabignore`` rules of a repository's top and of its code directory
    ``relpath`` (relative to the top)."""
    out = [ScopedRules("", file_rules(top))]
    if relpath not in ("", "."):
        out.append(ScopedRules(relpath, file_rules(top / relpath)))
    return [s for s in out if s.rules]
