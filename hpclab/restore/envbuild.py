"""``hpclab env build``: a virtual environment from a run's stored environment spec.

The spec is ``snapshot/requirements.txt`` (every installed distribution, ``name==version``)
and the interpreter version in ``environment.json``. The list is the whole environment,
so pip installs it with ``--no-deps``: exactly those versions, nothing resolved anew.
Offline clusters use a wheelhouse (``--no-index --find-links DIR``); others an index URL.
Packages that were installed from source (the project itself, editable installs) are
left out with ``exclude``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hpclab.errors import RestoreError
from hpclab.restore.metadir import mark_restored
from hpclab.restore.tree import prepare_target, python_version
from hpclab.store import Store

ALWAYS_EXCLUDED = ("pip",)  # the venv's own, if any, comes from ensurepip
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass
class EnvBuild:
    """A built environment: where, with which interpreter, and what was installed."""

    path: Path
    python: str  # the venv's interpreter
    python_version: str
    recorded_version: str | None
    installed: list[str]
    excluded: list[str]


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def interpreter_version(python: str) -> str:
    """``3.11.7``: the version of the interpreter ``python`` (a path or a name on PATH)."""
    try:
        proc = subprocess.run(
            [python, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except OSError as e:
        raise RestoreError(f"cannot run interpreter {python!r}: {e.strerror or e}") from None
    if proc.returncode != 0:
        raise RestoreError(f"interpreter {python!r} failed: {proc.stderr.strip()[-200:]}")
    return proc.stdout.strip()


def build_env(
    store: Store,
    run_id: str,
    into: str | Path,
    *,
    project: str | None = None,
    python: str | None = None,
    wheelhouse: str | Path | None = None,
    index_url: str | None = None,
    exclude: Sequence[str] = (),
    allow_python_mismatch: bool = False,
    force: bool = False,
    with_pip: bool = False,
) -> EnvBuild:
    """Create a virtualenv at ``into`` with the run's recorded packages.

    The interpreter (``python``, default this one) must have the run's major.minor
    version unless ``allow_python_mismatch``; a different patch release is accepted.
    ``with_pip`` gives the venv its own pip (else this interpreter's pip installs into it).
    """
    _, paths = store.find_run(run_id, project)
    if not paths.requirements_txt.exists():
        raise RestoreError(
            f"run {paths.id} has no environment spec ({paths.requirements_txt} is missing: "
            "the run had snapshot_env off, or never started)"
        )
    python = python or sys.executable
    have = interpreter_version(python)
    recorded = python_version(paths)
    if recorded and have.split(".")[:2] != recorded.split(".")[:2] and not allow_python_mismatch:
        raise RestoreError(
            f"run {paths.id} ran on Python {recorded}, but {python} is Python {have}: pass "
            f"--python with a Python {'.'.join(recorded.split('.')[:2])} interpreter (or "
            "--allow-python-mismatch)"
        )
    target = Path(into).expanduser().absolute()
    prepare_target(target, force, protected=[Path.home(), Path.cwd(), store.root])
    skip = {canonical(n) for n in (*ALWAYS_EXCLUDED, *exclude)}
    wanted: list[str] = []
    excluded: list[str] = []
    for line in paths.requirements_txt.read_text().splitlines():
        m = _NAME_RE.match(line)
        if not m:
            continue
        (excluded if canonical(m.group(1)) in skip else wanted).append(line.strip())
    # this interpreter's pip installs into the venv (pip --python): no ensurepip, which
    # costs seconds, unless the venv should have its own pip or this pip is too old
    host_pip = not with_pip and _pip_supports_python_option()
    venv_args = [python, "-m", "venv", *(["--without-pip"] if host_pip else []), str(target)]
    venv = subprocess.run(venv_args, capture_output=True, text=True, check=False)
    if venv.returncode != 0:
        raise RestoreError(f"{python} -m venv {target} failed: {_last(venv.stderr)}")
    mark_restored(target)  # ours: --force may replace it (a failed install, say)
    env_python = str(target / "bin" / "python")
    if wanted:
        pip = [sys.executable, "-m", "pip", "--python", env_python] if host_pip else [
            env_python, "-m", "pip"]  # fmt: skip
        _pip_install(pip, wanted, wheelhouse, index_url)
    return EnvBuild(target, env_python, have, recorded, wanted, excluded)


def _pip_supports_python_option() -> bool:
    """Whether this interpreter's pip has ``--python`` (pip 22.3 and later)."""
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("pip").split(".")[:2])
    except Exception:
        return False
    return (major, minor) >= (22, 3)


def _pip_install(
    pip: list[str], requirements: list[str], wheelhouse: str | Path | None, index_url: str | None
) -> None:
    args = [*pip, "install", "--no-deps", "--disable-pip-version-check", "--no-input"]
    if wheelhouse is not None:
        args += ["--no-index", "--find-links", str(Path(wheelhouse).expanduser().absolute())]
    if index_url:
        args += ["--index-url", index_url]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(r + "\n" for r in requirements))
    try:
        proc = subprocess.run([*args, "-r", f.name], capture_output=True, text=True, check=False)
    finally:
        Path(f.name).unlink()
    if proc.returncode != 0:
        raise RestoreError(
            f"pip install failed ({_last(proc.stderr or proc.stdout)}); a package installed "
            "from source (editable, the project itself) can be left out with --exclude NAME"
        )


def _last(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["no output"])[0 if errors else -1]
