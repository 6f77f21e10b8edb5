"""What program ran a run, so a restored tree can run it again.

hpclab's own Hydra app (``python -m hpclab.launch``) is recognised by ``task._target_`` in
the run's config; any other Hydra app by its script, recorded in the sweep record's
``argv``, mapped from the original tree into the restored one. A run made by a plain
script with ``hpclab.Run`` has no recorded program.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpclab.store import SweepRecord

HPCLAB_APP = ("-m", "hpclab.launch")


@dataclass(frozen=True)
class Program:
    """The arguments after ``python`` that start the run's Hydra app."""

    argv: tuple[str, ...]

    @property
    def is_hpclab_app(self) -> bool:
        return self.argv == HPCLAB_APP


def find_program(
    config: Mapping[str, Any], sweep: SweepRecord | None, code: Mapping[str, Any],
    restored_top: Path,
) -> Program | None:  # fmt: skip
    """The run's program in the restored tree rooted at ``restored_top``, or None."""
    task = config.get("task")
    if isinstance(task, Mapping) and task.get("_target_"):
        return Program(HPCLAB_APP)
    argv = list(sweep.argv) if sweep is not None else []
    if not argv or not str(argv[0]).endswith(".py"):
        return None
    script = Path(str(argv[0]))
    if not script.is_absolute():
        script = Path((sweep.cwd if sweep is not None else None) or ".") / script
    git = code.get("git") or {}
    original_top = Path(str(git.get("toplevel") or code.get("code_dir") or "/"))
    try:
        rel = Path(os.path.normpath(script)).relative_to(os.path.normpath(original_top))
    except ValueError:
        return None
    restored = restored_top / rel
    return Program((str(restored),)) if restored.is_file() else None


def hydra_value(text: str) -> str:
    """``text`` quoted for Hydra's override grammar (paths with spaces or quotes)."""
    return "'" + text.replace("'", "\\'") + "'"


def shell_command(
    python: str, program: Program, code_dir: Path, conf_dir: Path, extra: list[str]
) -> str:
    """One shell line that runs ``program`` from ``code_dir`` with the stored config."""
    q = shlex.quote
    args = [python, *program.argv, "--config-path", str(conf_dir), "--config-name", "config"]
    return (
        f"cd {q(str(code_dir))} && PYTHONPATH={q(str(code_dir))}${{PYTHONPATH:+:$PYTHONPATH}} "
        + " ".join(q(a) for a in [*args, *extra])
    )
