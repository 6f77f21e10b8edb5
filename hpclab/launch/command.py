"""``hpclab run -- CMD``: track any command as a run, without editing it.

The parent (this module, in the ``hpclab`` process) plans the run (record, config parsed
from the command line and ``--config FILE``, the full command), captures the child's
stdout/stderr into the run's ``logs/``, forwards SIGINT/SIGTERM to it, and sets the final
status from its exit code. A Python child is attached to the run by
``_autorun/sitecustomize.py`` (``PYTHONPATH``): inside it an :class:`hpclab.Run` resumes
the planned run, takes the code/environment snapshot, patches TensorBoard's
``SummaryWriter`` and is ``hpclab.current_run()``; the parent then writes no metrics. For
any other command the parent owns the run itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from hpclab.errors import ConfigError
from hpclab.store import RunPaths, RunRecord, RunStatus, Store
from hpclab.store.atomic import write_yaml_atomic
from hpclab.store.layout import PROJECT_RE
from hpclab.store.record import utcnow_iso

AUTORUN_DIR = Path(__file__).resolve().parent / "_autorun"
_FORWARDED = ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2")


@dataclass
class CommandRun:
    """What ``hpclab run`` was asked to do."""

    command: list[str]
    project: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    config_file: str | None = None
    cwd: Path = field(default_factory=Path.cwd)


# -- config from the command line ----------------------------------------------------------
def parse_value(text: str) -> Any:
    """A command-line value typed: int, float, true/false, null; else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def config_from_argv(args: Sequence[str]) -> dict[str, Any]:
    """``--key value``, ``--key=value``, ``key=value`` and bare ``--flag`` (True) tokens as a
    config dict; dotted keys nest (``optim.lr=0.1``). Positional arguments are skipped."""
    config: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token.startswith("-") and not _is_number(token):
            key = token.lstrip("-")
            if not key:
                continue
            if "=" in key:
                key, value = key.split("=", 1)
                _set(config, key, parse_value(value))
            elif i < len(args) and (not args[i].startswith("-") or _is_number(args[i])):
                _set(config, key, parse_value(args[i]))
                i += 1
            else:
                _set(config, key, True)
        elif "=" in token and re.match(r"^[A-Za-z_][\w.\-]*=", token):
            key, value = token.split("=", 1)
            _set(config, key, parse_value(value))
    return config


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML or JSON config file as a dict; a missing or malformed file is a ConfigError."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"--config {p}: cannot read ({e.strerror or e})") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"--config {p}: not valid {p.suffix[1:] or 'YAML'}: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {p}: top level must be a mapping, not {type(data).__name__}")
    return data


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, nested mappings merged key by key."""
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        return
    node = config
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


# -- what the command is -------------------------------------------------------------------
def is_python(command: Sequence[str]) -> bool:
    """Whether the command starts a Python interpreter (``python``, ``python3.11``, a path
    to one), so that the child can attach to the run itself."""
    return bool(command) and re.fullmatch(r"python[\d.]*", Path(command[0]).name) is not None


def script_args(command: Sequence[str]) -> tuple[str | None, list[str]]:
    """The script (or ``-m`` module) a command runs, and the arguments after it."""
    if not is_python(command):
        return (Path(command[0]).name if command else None), list(command[1:])
    rest = list(command[1:])
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok == "-m" and i + 1 < len(rest):
            return rest[i + 1], rest[i + 2 :]
        if tok == "-c":
            return None, rest[i + 2 :]
        if not tok.startswith("-"):
            return tok, rest[i + 1 :]
        i += 1
    return None, []


def default_project(command: Sequence[str], cwd: Path) -> str:
    """``$HPCLAB_PROJECT``, else the script's stem (``train.py`` -> ``train``, ``-m pkg.mod``
    -> ``mod``), else the working directory's name; made a valid project name."""
    env = os.environ.get("HPCLAB_PROJECT")
    if env:
        return env
    script, _ = script_args(command)
    if not script:
        stem = ""
    elif script.endswith(".py") or "/" in script:
        stem = Path(script).stem
    else:  # a module (``-m pkg.mod``) or a program name
        stem = script.rsplit(".", 1)[-1]
    for candidate in (stem, cwd.name):
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", candidate).strip("-._")
        if name and PROJECT_RE.match(name):
            return name
    return "default"


# -- the parent ----------------------------------------------------------------------------
def plan_command_run(store: Store, spec: CommandRun) -> tuple[str, RunPaths]:
    """Create the run as ``planned``: record, config.yaml and overrides.yaml."""
    if not spec.command:
        raise ConfigError("hpclab run: no command given (usage: hpclab run -- python train.py)")
    project = spec.project or default_project(spec.command, spec.cwd)
    _, args = script_args(spec.command)
    config: dict[str, Any] = {}
    if spec.config_file:
        config = load_config_file(spec.config_file)
    config = merge(config, config_from_argv(args))
    paths = store.create_run_dir(project)
    write_yaml_atomic(paths.config_yaml, config)
    write_yaml_atomic(paths.overrides_yaml, list(args))
    record = RunRecord(
        id=paths.id,
        project=project,
        status=RunStatus.PLANNED,
        name=spec.name,
        tags=sorted(set(spec.tags)),
        cwd=str(spec.cwd),
        argv=list(spec.command),
    )
    record.extra["command"] = list(spec.command)
    store.write_record(paths, record)
    return project, paths


def child_environment(store: Store, project: str, paths: RunPaths, cwd: Path) -> dict[str, str]:
    """The child's environment: the run's identity, and the autorun ``sitecustomize``."""
    env = dict(os.environ)
    env["HPCLAB_RUN_ID"] = paths.id
    env["HPCLAB_STORE"] = str(Path(store.root).absolute())
    env["HPCLAB_PROJECT"] = project
    env["HPCLAB_AUTORUN"] = "1"
    env["HPCLAB_AUTORUN_CODE_DIR"] = str(cwd)
    env["HPCLAB_CAPTURE_OUTPUT"] = "off"  # the parent captures the child's output
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(AUTORUN_DIR), env.get("PYTHONPATH", "")) if p
    )
    return env


def run_command(store: Store, spec: CommandRun) -> tuple[RunPaths, int]:
    """Run ``spec.command`` as a tracked run; returns its paths and the exit code to exit with."""
    from hpclab.tracking.output import OutputCapture

    project, paths = plan_command_run(store, spec)
    print(f"hpclab: run {paths.id} (project {project})", file=sys.stderr, flush=True)
    python = is_python(spec.command)
    owner = None
    if not python:
        import hpclab

        owner = hpclab.Run(
            project=project,
            store=store,
            run_id=paths.id,
            code_dir=spec.cwd,
            settings={"handle_signals": False, "capture_output": "off"},
        )
    env = child_environment(store, project, paths, spec.cwd)
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    capture = OutputCapture.start(paths.stdout_log, paths.stderr_log)
    received: list[str] = []
    try:
        code = _run_child(spec, env, received)
    finally:
        capture.stop()
    status = finalise(store, paths, code, received, owner)
    print(f"hpclab: run {paths.id} {status.value} (exit code {code})", file=sys.stderr)
    return paths, code if code >= 0 else 128 - code


def _run_child(spec: CommandRun, env: dict[str, str], received: list[str]) -> int:
    # In a terminal, Ctrl-C reaches the child's process group already: forwarding it too
    # would interrupt the child twice. Otherwise (Slurm, kill PID) the parent forwards.
    same_group = sys.stdin is not None and sys.stdin.isatty()
    try:
        proc = subprocess.Popen(spec.command, cwd=spec.cwd, env=env)
    except OSError as e:
        raise ConfigError(
            f"hpclab run: cannot start {spec.command[0]!r}: {e.strerror or e}"
        ) from None
    previous: dict[int, Any] = {}

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        if not (same_group and signum == signal.SIGINT):
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

    for name in _FORWARDED:
        signum = getattr(signal, name)
        previous[signum] = signal.signal(signum, forward)
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # pragma: no cover - handlers are installed
                continue
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def finalise(
    store: Store, paths: RunPaths, code: int, received: Sequence[str], owner: Any = None
) -> RunStatus:
    """Record the final status from the exit code, unless the child recorded a truer one
    (its own failure with a traceback, or a signal it handled)."""
    if owner is not None:
        owner.finish(_status_for(code, received))
    record = store.read_record(paths)
    child_final = record.status.is_final and owner is None
    if not child_final or (record.status is RunStatus.COMPLETED and code != 0):
        record.status = _status_for(code, received)
        now = utcnow_iso()
        record.ended_at = now
        record.heartbeat_at = now
        if record.status is not RunStatus.COMPLETED:
            record.error = {"type": "ExitCode", "message": _describe(code), "exit_code": code}
    elif record.error is not None:
        record.error.setdefault("exit_code", code)
    record.extra["exit_code"] = code
    record.extra["command"] = record.extra.get("command") or list(record.argv)
    if received:
        record.last_signal = received[-1]
    store.write_record(paths, record)
    return record.status


def _status_for(code: int, received: Sequence[str]) -> RunStatus:
    if code == 0:
        return RunStatus.COMPLETED
    if "SIGINT" in received or code in (-signal.SIGINT, 130):
        return RunStatus.CANCELLED
    if "SIGTERM" in received or code == -signal.SIGTERM:
        return RunStatus.PREEMPTED if "SLURM_JOB_ID" in os.environ else RunStatus.CANCELLED
    return RunStatus.FAILED


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# -- the child -----------------------------------------------------------------------------
_child_run: Any = None


def attach_child() -> None:
    """In the Python child: open the planned run (``HPCLAB_RUN_ID``) as this process's run."""
    global _child_run
    try:
        import hpclab

        _child_run = hpclab.Run(
            run_id=os.environ["HPCLAB_RUN_ID"],
            store=os.environ.get("HPCLAB_STORE"),
            project=os.environ.get("HPCLAB_PROJECT"),
            code_dir=os.environ.get("HPCLAB_AUTORUN_CODE_DIR") or None,
        )
    except Exception as e:  # tracking must never stop the user's program
        print(f"hpclab: warning: this process is not tracked: {e}", file=sys.stderr)
