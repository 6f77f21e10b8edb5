"""Redacted secrets, seen from a restore.

The snapshot replaced secrets by markers (``[redacted: github-token]``) and listed them
in ``code.json`` (``redactions``: path, line, rule, source). A restore

* brings back the **context and removed lines** of the patch: they are lines of the
  commit, so they are read from it (``git apply`` needs them to match exactly);
* cannot bring back **added lines** of the patch nor lines of **archived files** (the
  untracked files, or the source archive): those secrets were never stored. They are
  listed per file (:func:`lost_lines`, :func:`describe`) for the user to fill in.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hpclab.errors import RestoreError
from hpclab.restore.gitsource import git
from hpclab.tracking import patchtext
from hpclab.tracking.secret_rules import MARKER_RE

LOST_SOURCES = ("added", "file")


def lost_lines(info: Mapping[str, Any], *, patch_applied: bool) -> dict[str, list[tuple[int, str]]]:
    """path -> sorted (line, rule) of the restored tree's lines that hold a marker instead of
    the secret (from ``code.json``); a patch that was not applied put none there."""
    out: dict[str, set[tuple[int, str]]] = {}
    for entry in info.get("redactions") or []:
        source = str(entry.get("source", "file"))
        if source not in LOST_SOURCES or (source == "added" and not patch_applied):
            continue
        out.setdefault(str(entry["path"]), set()).add((int(entry["line"]), str(entry["rule"])))
    return {path: sorted(found) for path, found in sorted(out.items())}


def describe(path: str, lines: list[tuple[int, str]]) -> str:
    """``hpclab: restore: 3 line(s) in train.py were redacted at snapshot time
    (github-token at line 12, private-key at lines 20-46): fill them in by hand``."""
    by_rule: dict[str, list[int]] = {}
    for number, rule in lines:
        by_rule.setdefault(rule, []).append(number)
    parts = []
    for rule, numbers in by_rule.items():
        ranges = _ranges(sorted(set(numbers)))
        word = "lines" if len(ranges) > 1 or "-" in ranges[0] else "line"
        parts.append(f"{rule} at {word} {', '.join(ranges)}")
    n = len({number for number, _ in lines})
    return (
        f"hpclab: restore: {n} line(s) in {path} were redacted at snapshot time "
        f"({', '.join(parts)}): fill them in by hand"
    )


def _ranges(numbers: list[int]) -> list[str]:
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return [f"{a}" if a == b else f"{a}-{b}" for a, b in out]


@contextlib.contextmanager
def applicable_patch(patch: Path, repo: Path) -> Iterator[Path]:
    """``patch`` with its redacted context and removed lines read back from ``repo``'s
    checked-out commit (the patch itself when it has none), for ``git apply``."""
    data = patch.read_bytes()
    if b"[redacted: " not in data:
        yield patch
        return
    out: list[str] = []
    for section in patchtext.iter_sections(patchtext.split_lines(patchtext.decode(data))):
        _restore_context(section, repo, patch)
        out.append(section.render())
    tmp = Path(tempfile.mkdtemp(prefix="hpclab-restore-"))
    try:
        fixed = tmp / patch.name
        fixed.write_bytes(patchtext.encode("".join(out)))
        yield fixed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _restore_context(section: patchtext.Section, repo: Path, patch: Path) -> None:
    base: list[str] | None = None
    for hunk in section.hunks:
        for ln in hunk.lines:
            if ln.kind not in (" ", "-") or ln.old is None or not MARKER_RE.search(ln.content):
                continue
            if base is None:
                base = _commit_lines(repo, section.old_path, patch)
            original = base[ln.old - 1].rstrip("\n") if 0 < ln.old <= len(base) else None
            if original is None or not _fits(ln.content, original):
                raise RestoreError(
                    f"{patch}: line {ln.old} of {section.old_path} was redacted and the "
                    "commit's line there does not fit it: the patch cannot be applied"
                )
            ln.content = original


def _commit_lines(repo: Path, rel: str, patch: Path) -> list[str]:
    proc = git(["cat-file", "blob", f"HEAD:{rel}"], repo)
    if proc.returncode != 0:
        raise RestoreError(f"{patch}: {rel} is not in the checked-out commit")
    return patchtext.split_lines(patchtext.decode(proc.stdout))


def _fits(redacted: str, original: str) -> bool:
    """Whether ``original`` is ``redacted`` with each marker standing for some text."""
    parts = MARKER_RE.split(redacted)
    return re.fullmatch(".+?".join(map(re.escape, parts)), original, re.DOTALL) is not None
