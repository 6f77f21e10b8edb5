"""Plain helpers shared by test modules: ``from helpers import poll``.

Fixtures live in ``conftest.py``, which pytest loads by itself; test modules import
functions from here and never import ``conftest``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACTS = os.environ.get("HPCLAB_TEST_ARTIFACTS")  # read at import: isolated_env clears it


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path | None:
    """A screenshot of ``page`` as ``$HPCLAB_TEST_ARTIFACTS/name`` (docs/img's pictures),
    or none without that variable: nothing asserts on them, and a full-page capture costs
    0.5-1 s (a minute of the suite)."""
    if not ARTIFACTS:
        return None
    path = Path(ARTIFACTS) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return page.screenshot(path, full_page=full_page)  # type: ignore[no-any-return]


def poll(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Return predicate()'s first truthy value, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def python_script(
    code: str, *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.Popen[str]:
    """Start ``python -c code`` with the test environment (plus ``env``)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=full_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


@dataclass(frozen=True)
class CliResult:
    """What an ``hpclab`` command left behind: its exit code and its two streams (the
    fields of :class:`subprocess.CompletedProcess`, so either kind of call reads alike)."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _argv(store: Path | None, args: tuple[str, ...]) -> list[str]:
    return (["--store", str(store)] if store is not None else []) + list(args)


def hpclab_cli(
    store: Path | None,
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """``hpclab [--store STORE] ARGS...`` run in this process through Click's CliRunner.

    The command goes through the console script's own ``main`` (so a domain error is the
    same one ``hpclab: error:`` line and exit code); ``env`` is set for the call on top of
    the test's (already isolated) environment, and ``cwd`` is the working directory for
    the call. An exception that is not an exit is raised again, traceback and all: a test
    never mistakes a crash for a clean exit 1, as it could not in a subprocess either.
    Use :func:`hpclab_subprocess` where a command needs a fresh process.
    """
    from click.testing import CliRunner

    from hpclab.cli import cli

    here = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(
            cli, _argv(store, args), prog_name="hpclab", env=env, catch_exceptions=False
        )
    finally:
        os.chdir(here)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def hpclab_subprocess(
    store: Path | None,
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 400,
) -> subprocess.CompletedProcess[str]:
    """``python -m hpclab [--store STORE] ARGS...`` in a fresh process, output captured.

    For what the in-process :func:`hpclab_cli` cannot show: the entry point itself, and
    commands whose output bypasses ``sys.stdout`` (a child process or a library writing
    to file descriptor 1)."""
    return subprocess.run(
        [sys.executable, "-m", "hpclab", *_argv(store, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def git_env() -> dict[str, str]:
    """The environment for ``git`` in a test repository: a fixed identity, no user or
    system configuration."""
    return {
        **os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    }  # fmt: skip


def git(repo: Path, *args: str) -> str:
    """``git ARGS...`` in ``repo`` (with :func:`git_env`); its stripped stdout."""
    return subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=repo, env=git_env(), check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def write(path: Path, data: bytes | str, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` (making its parents), optionally with file ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)
    return path
