"""Unified diffs as ``git diff`` writes them, split into file sections and numbered lines.

The secret scanner redacts a patch section by section (so a huge patch is never held in
memory whole) and ``hpclab restore`` puts redacted context lines back from the commit;
both need the same reading of a patch:

* a **section** starts at a ``diff --git`` line; its header runs to the first hunk
  (mode, ``index``, ``---``/``+++`` lines) and is never changed;
* a **hunk** starts at ``@@ -a,b +c,d @@ heading``; its lines are counted from the
  header, so a content line that happens to read ``diff --git`` stays content;
* a **binary** section (``GIT binary patch``) holds base85 hunks, forward then reverse.

Lines are ``str`` decoded with ``surrogateescape``, so any bytes round-trip; they keep
their ``\\n``. Nothing here knows about secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r",
            '"': '"', "\\": "\\"}  # fmt: skip


def decode(data: bytes) -> str:
    """Bytes of a patch or file as text that encodes back to the same bytes."""
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@dataclass
class PatchLine:
    """One line of a hunk: ``kind`` is ``" "`` (context), ``"+"``, ``"-"``, ``"\\\\"`` (no
    newline at end of file) or ``"?"`` (a stray line git would not write); ``old``/``new``
    are 1-based line numbers in the old and new file (None on the side it is not in)."""

    kind: str
    content: str  # without the kind character and without the line ending
    ending: str
    old: int | None
    new: int | None

    def render(self) -> str:
        prefix = "" if self.kind == "?" else self.kind
        return prefix + self.content + self.ending


@dataclass
class Hunk:
    """``@@ -old_start,… +new_start,… @@ heading`` and its lines."""

    old_start: int
    new_start: int
    head: str  # the "@@ ... @@" part
    heading: str  # what follows it (a copy of an old-file line chosen by git), may be ""
    ending: str
    lines: list[PatchLine] = field(default_factory=list)

    def render(self) -> str:
        return self.head + self.heading + self.ending + "".join(ln.render() for ln in self.lines)


@dataclass
class Section:
    """One file of a patch: header lines, then text hunks or a binary patch."""

    header: list[str] = field(default_factory=list)
    hunks: list[Hunk] = field(default_factory=list)
    binary: list[str] | None = None  # "GIT binary patch" and the lines after it

    @property
    def path(self) -> str:
        """The file's path (the new name; the old one for a deletion); "" if unknown."""
        old = new = None
        for line in self.header:
            if line.startswith("+++ "):
                new = _strip(unquote(line[4:].rstrip("\n").rstrip("\t")), "b/")
            elif line.startswith("--- "):
                old = _strip(unquote(line[4:].rstrip("\n").rstrip("\t")), "a/")
        if new or old:
            return new or old or ""
        return _git_header_path(self.header[0]) if self.header else ""

    @property
    def old_path(self) -> str:
        """The path in the old tree (where restore finds the context lines)."""
        for line in self.header:
            if line.startswith("--- "):
                old = _strip(unquote(line[4:].rstrip("\n").rstrip("\t")), "a/")
                return old or self.path
        return self.path

    @property
    def is_deletion(self) -> bool:
        return any(line.startswith("deleted file mode ") for line in self.header)

    def render(self) -> str:
        body = "".join(h.render() for h in self.hunks) + "".join(self.binary or [])
        return "".join(self.header) + body


def iter_sections(lines: Iterable[str]) -> Iterator[Section]:
    """The sections of a patch given as lines (each with its ``\\n``), in order. Text
    before the first ``diff --git`` comes as a section with only a header."""
    section = Section()
    hunk: Hunk | None = None
    old_left = new_left = 0
    old_no = new_no = 0
    for raw in lines:
        if hunk is not None and (old_left > 0 or new_left > 0 or raw.startswith("\\")):
            content, ending = _split_ending(raw)
            kind = raw[:1]
            if kind == "\\":
                hunk.lines.append(PatchLine("\\", content[1:], ending, None, None))
                continue
            if kind in (" ", "-", "+"):
                old = old_no if kind != "+" else None
                new = new_no if kind != "-" else None
                old_no += kind != "+"
                new_no += kind != "-"
                old_left -= kind != "+"
                new_left -= kind != "-"
                hunk.lines.append(PatchLine(kind, content[1:], ending, old, new))
                continue
            old_left = new_left = 0  # malformed: the hunk ends early
        if raw.startswith("diff --git "):
            if section.header or section.hunks or section.binary is not None:
                yield section
            section, hunk = Section(header=[raw]), None
        elif section.binary is not None:
            section.binary.append(raw)
        elif (m := _HUNK_RE.match(raw)) is not None:
            content, ending = _split_ending(raw)
            end = content.index("@@", 2) + 2
            hunk = Hunk(int(m[1]), int(m[3]), content[:end], content[end:], ending)
            section.hunks.append(hunk)
            old_left = 1 if m[2] is None else int(m[2])
            new_left = 1 if m[4] is None else int(m[4])
            old_no, new_no = int(m[1]), int(m[3])
        elif hunk is None and raw.startswith("GIT binary patch"):
            section.binary = [raw]
        elif hunk is not None:
            # after a hunk's counted lines: not something git writes; keep it (scanned)
            content, ending = _split_ending(raw)
            hunk.lines.append(PatchLine("?", content, ending, None, None))
        else:
            section.header.append(raw)
    if section.header or section.hunks or section.binary is not None:
        yield section


def split_lines(text: str) -> list[str]:
    """``text`` cut after every ``\\n`` (only there: git counts lines that way)."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def forward_binary(binary: list[str]) -> list[str]:
    """A ``GIT binary patch`` without its reverse hunk. The reverse hunk holds the old
    content, which the commit has; ``git apply`` needs only the forward one."""
    out: list[str] = []
    for line in binary:
        out.append(line)
        if line.strip() == "" and len(out) > 2:  # the blank line that ends the first hunk
            break
    return out


def _split_ending(raw: str) -> tuple[str, str]:
    return (raw[:-1], "\n") if raw.endswith("\n") else (raw, "")


def unquote(name: str) -> str:
    """A path as git prints it, C-quoted when it holds special characters."""
    if not (name.startswith('"') and name.endswith('"') and len(name) >= 2):
        return name
    out = bytearray()
    raw = name[1:-1]
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt in "01234567":
                out.append(int(raw[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out += encode(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out += encode(c)
        i += 1
    return os.fsdecode(bytes(out))


def _strip(name: str, prefix: str) -> str | None:
    if name == "/dev/null":
        return None
    return name[len(prefix) :] if name.startswith(prefix) else name


def _git_header_path(line: str) -> str:
    """The path in ``diff --git a/X b/X`` (both names are equal without renames)."""
    rest = line[len("diff --git ") :].rstrip("\n")
    if rest.endswith('"') and ' "b/' in rest:
        return _strip(unquote(rest[rest.rindex(' "b/') + 1 :]), "b/") or ""
    half = (len(rest) - 1) // 2
    return _strip(rest[half + 1 :], "b/") or ""
