"""Where a task's code comes from: the sweep's code copy, entered before the task loads.

At submission the working tree is snapshotted once and restored into the store
(:mod:`hpclab.restore.isolation`); every task of the sweep enters that copy before it
unpickles anything: its working directory and every ``sys.path`` (and ``PYTHONPATH``)
entry that pointed into the working tree are moved to the copy, so ``import model`` and
``open("conf/x.yaml")`` see the code as it was when the sweep was submitted, whatever was
edited while the array waited in the queue. (The ``__main__`` script's function itself is
pickled by value at submission, from the same moment.)
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CodeTree:
    """A sweep's restored working tree and how the login node's paths map into it."""

    code_id: str
    tree: str  # the copy (absolute): <store>/<project>/code/<code_id>/tree
    root: str  # the working tree it was taken from (git top level, or the code directory)
    cwd: str  # the login node's working directory at submission (absolute)
    sys_path: tuple[str, ...] = ()  # the login node's sys.path entries inside ``root``

    @classmethod
    def at_submission(cls, code_id: str, tree: Path, root: Path) -> CodeTree:
        """The mapping for this process (the login node), now."""
        cwd = os.getcwd()
        inside = []
        for entry in sys.path:
            full = os.path.abspath(entry or cwd)
            if _under(full, str(root)) and full not in inside:
                inside.append(full)
        return cls(code_id, str(tree), str(root), cwd, tuple(inside))

    def map(self, path: str) -> str | None:
        """``path`` (absolute) inside the working tree -> the same path in the copy."""
        full = os.path.abspath(path)
        if _under(full, self.tree) or not _under(full, self.root):
            return None
        rel = os.path.relpath(full, self.root)
        return self.tree if rel == "." else os.path.join(self.tree, rel)

    def map_dir(self, path: str) -> str | None:
        """Like :meth:`map`, for a directory the process imports from or works in: only
        when the copy has it. A directory that is not code (a ``.venv`` inside the
        repository, git-ignored and so not in the snapshot; the interpreter's own
        prefix) keeps its place: the copy holds the code, not the environment."""
        full = os.path.abspath(path)
        if any(_under(full, p) for p in _environment_dirs()):
            return None
        mapped = self.map(full)
        return mapped if mapped is not None and os.path.isdir(mapped) else None

    def enter(self) -> None:
        """Make this process run from the copy: working directory, ``sys.path``,
        ``PYTHONPATH`` (for the task's own subprocesses and DataLoader workers)."""
        os.chdir(self.map_dir(self.cwd) or self.tree)
        mapped = [self.map_dir(p) or p for p in self.sys_path]
        rest = []
        for entry in sys.path:
            new = self.map_dir(entry) if entry else None
            rest.append(new or entry)
        sys.path[:] = list(dict.fromkeys([*mapped, *rest]))
        if os.environ.get("PYTHONPATH"):
            parts = os.environ["PYTHONPATH"].split(os.pathsep)
            os.environ["PYTHONPATH"] = os.pathsep.join(
                (self.map_dir(p) or p) if p else p for p in parts
            )
        os.environ["HPCLAB_CODE_TREE"] = self.tree

    def imported_outside(self) -> list[str]:
        """Modules this process loaded from the working tree instead of the copy (an
        editable install's import hook, a module imported before :meth:`enter`)."""
        out = []
        env = _environment_dirs()  # a .venv inside the repository is not code
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if not isinstance(file, str) or self.map(file) is None:
                continue
            if not any(_under(os.path.abspath(file), d) for d in env):
                out.append(name)
        return sorted(out)


def _environment_dirs() -> list[str]:
    """The interpreter's and the environment's own directories (never code to isolate)."""
    import site

    dirs = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    with contextlib.suppress(AttributeError):
        dirs.update(site.getsitepackages())
    return [os.path.abspath(d) for d in dirs if d]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
