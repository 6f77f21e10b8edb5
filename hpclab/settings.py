"""Tracking settings: one dataclass is the single source of truth for names, types,
defaults and the ``HPCLAB_*`` environment variables that override them.

An unknown setting is an error that lists the valid ones, as submitit does for Slurm
parameters.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hpclab.errors import ConfigError


@dataclass(frozen=True)
class TrackingSettings:
    """How a run records. Each field can be set by ``HPCLAB_<FIELD>`` in the environment."""

    flush_interval: float = 1.0
    """Seconds between background flushes of buffered metrics to the store."""
    buffer_size: int = 100_000
    """Buffered points that trigger an early background flush."""
    max_buffer: int = 20_000_000
    """Points kept in memory while the filesystem is stuck; more are dropped and counted."""
    chunk_rows: int = 4096
    """Rows per Zarr chunk of a metric array, at most: a run with planned steps (its
    config's ``train.steps`` or ``run.total_steps``) gets the smallest power of two that
    holds them, from 1,024 up (``hpclab.tracking.metrics.fitted_chunk_rows``)."""
    heartbeat_interval: float = 30.0
    """Seconds between heartbeats written to run.json while the run is alive."""
    snapshot_code: bool = True
    """Record git commit, uncommitted diff and untracked files (or a source archive)."""
    isolate_code: bool = True
    """Sweeps: snapshot the working tree once at submission and run every task from that
    copy (``<project>/code/<id>/tree``); off: tasks run in place and snapshot at start."""
    snapshot_env: bool = True
    """Record python, packages, GPU, Slurm and (redacted) environment variables."""
    max_file_bytes: int = 1_000_000
    """Untracked or source files larger than this are left out of the code snapshot."""
    max_snapshot_bytes: int = 50_000_000
    """Total size limit of the code snapshot."""
    sync_tensorboard: bool = True
    """Route SummaryWriter.add_scalar/add_scalars (torch, tensorboardX) into the run."""
    tensorboard_events: bool = True
    """Keep writing TensorBoard event files when syncing (False: only hpclab records)."""
    handle_signals: bool = True
    """Flush on SIGTERM/SIGUSR1/SIGUSR2 (Slurm's warnings) and record how the run ended."""
    capture_output: str = "auto"
    """Tee the task's stdout/stderr into the run's ``logs/`` (``on``, ``off`` or ``auto``:
    on when an hpclab launcher, ``hpclab run`` or Slurm started the process, i.e.
    ``HPCLAB_RUN_ID`` or ``SLURM_JOB_ID`` is set; off in an interactive session)."""
    capture_max_bytes: int = 100_000_000
    """Size cap of each captured log file; past it a note line, then the terminal only."""
    system_interval: float = 15.0
    """Seconds between samples of CPU, memory, I/O and GPUs into ``system/...`` (0: off)."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_sources(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> TrackingSettings:
        """Defaults, then ``HPCLAB_*`` variables, then explicit ``overrides`` (None ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for name in types:
            raw = environ.get(f"HPCLAB_{name.upper()}")
            if raw is not None:
                values[name] = _parse(name, types[name], raw, source=f"$HPCLAB_{name.upper()}")
        for name, value in (overrides or {}).items():
            if name not in types:
                valid = ", ".join(cls.names())
                raise ConfigError(f"unknown tracking setting {name!r}; valid settings: {valid}")
            if value is not None:
                values[name] = _parse(name, types[name], value, source=name)
        return cls(**values)


ZERO_TURNS_OFF = {"system_interval"}  # settings where 0 means "off"


def _parse(name: str, type_name: Any, value: Any, *, source: str) -> Any:
    type_name = str(type_name)
    try:
        if type_name == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if type_name == "int":
            if isinstance(value, bool):
                raise ValueError
            out_i = int(value)
            if out_i <= 0:
                raise ValueError
            return out_i
        if type_name == "float":
            out_f = float(value)
            if not (out_f > 0 or (out_f == 0 and name in ZERO_TURNS_OFF)):
                raise ValueError
            return out_f
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: invalid value {value!r} for {name} ({type_name}, positive)"
        ) from None
    return value  # pragma: no cover


#: Every ``HPCLAB_*`` environment variable hpclab (its scripts and tests) reads, beside
#: the :class:`TrackingSettings` fields; anything else starting ``HPCLAB_`` is a typo.
ENV_VARS: dict[str, str] = {
    "HPCLAB_STORE": "store root (default ./hpclab-store)",
    "HPCLAB_PROJECT": "project of a run",
    "HPCLAB_RUN_ID": "run id a launcher gives its job",
    "HPCLAB_CONF": "Hydra config tree of python -m hpclab.launch",
    "HPCLAB_CHROMIUM": "Chromium binary for PDF reports",
    "HPCLAB_DUCKDB_CACHE": "where scripts/vendor_duckdb.sh keeps DuckDB-WASM for the SQL tab",
    "HPCLAB_CAPTURE_OUTPUT": "off: do not tee stdout/stderr into the run's logs",
    "HPCLAB_ISOLATE_CODE": "false: tasks run in place, not from the sweep's code snapshot",
    "HPCLAB_CODE_TREE": "code snapshot a task runs from (set by the launcher)",
    "HPCLAB_AUTORUN": "set by hpclab run for its Python child",
    "HPCLAB_AUTORUN_CODE_DIR": "set by hpclab run for its Python child",
    "HPCLAB_CLUSTER_DIR": "state directory of the dev Slurm cluster",
    "HPCLAB_ROOT": "source tree (scripts/)",
    "HPCLAB_VENV": "virtualenv of scripts/",
    "HPCLAB_TEST_ARTIFACTS": "where tests keep their artifacts",
    **{f"HPCLAB_{n.upper()}": "tracking setting" for n in TrackingSettings.names()},
}


def unknown_env_vars(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning line per ``HPCLAB_*`` variable in ``environ`` that hpclab does not
    read, naming it and its closest known name. A warning, not an error: variables leak
    in from other tools and shells."""
    from hpclab.errors import did_you_mean

    environ = os.environ if environ is None else environ
    return [
        f"unknown environment variable {name} (ignored){did_you_mean(name, ENV_VARS, 0.8)}"
        for name in sorted(environ)
        if name.startswith("HPCLAB_") and name not in ENV_VARS
    ]
