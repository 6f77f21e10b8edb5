"""``hpclab.Run``: the tracking API used inside a training job.

::

    with hpclab.Run(project="mnist", config=cfg, tags=["baseline"]) as run:
        for step in range(n):
            run.log({"train/loss": loss, "lr": lr}, step=step)

A run writes everything beside itself in the store (``Store``/``RunPaths``): its record
with status and heartbeat, its resolved config, a code and environment snapshot taken at
start, metrics in Zarr, artifacts and dataset fingerprints.
"""

from __future__ import annotations

import atexit
import getpass
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from hpclab.errors import ConfigError, HpclabError, RunExists, RunNotFound, StoreError
from hpclab.settings import TrackingSettings
from hpclab.store import DEFAULT_PROJECT, RunPaths, RunRecord, RunStatus, Store
from hpclab.store.atomic import write_yaml_atomic
from hpclab.store.config_twin import write_config
from hpclab.store.documents import ArtifactEntry, ArtifactReference, DatasetEntry
from hpclab.store.layout import check_project_name
from hpclab.store.record import utcnow_iso
from hpclab.store.views import total_steps as config_total_steps
from hpclab.tracking import context
from hpclab.tracking.metrics import MetricWriter, fitted_chunk_rows
from hpclab.tracking.output import OutputCapture, append_traceback, capture_wanted
from hpclab.tracking.worker import Worker

_HANDLED_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")
current_run = context.current_run  # the public name (hpclab.current_run)


class Run:
    """A tracked run. Starting it (constructing it) creates or resumes its directory.

    Args:
        project: project name (default ``$HPCLAB_PROJECT`` or ``"default"``).
        config: the run's configuration: a dict, an OmegaConf config, a dataclass or an
            ``argparse.Namespace``; stored resolved in ``config.yaml``.
        name: a human name (``"12_from_8_lr_sweep"``); ids stay unique regardless.
        parent: run id of the run this one derives from (the experiment DAG).
        tags: labels for filtering.
        store: store root (default ``$HPCLAB_STORE`` or ``./hpclab-store``).
        run_id: open this run (resume it when it exists, create it with this id when not);
            default ``$HPCLAB_RUN_ID``. Launchers set it for every job they submit.
        resume: ``"auto"`` (resume the run of this Slurm job after a requeue, or an explicit
            ``run_id``), ``"never"`` (always a new run; an existing ``run_id`` is an error).
        overrides: the command-line overrides that produced ``config`` (``overrides.yaml``).
        sweep_id: the sweep this run is a point of.
        code_dir: the source tree to snapshot (default: the current directory).
        rank: this process's rank (default: detected); only rank 0 records unless
            ``per_rank`` is set, in which case rank r logs into ``ranks/<r>/metrics.zarr``.
        settings: tracking settings by name (see :class:`TrackingSettings`); the keyword
            arguments ``flush_interval`` etc. are shortcuts for the same.
    """

    def __init__(
        self,
        project: str | None = None,
        config: Any = None,
        name: str | None = None,
        parent: str | None = None,
        tags: Iterable[str] | None = None,
        *,
        store: str | os.PathLike[str] | Store | None = None,
        run_id: str | None = None,
        resume: str = "auto",
        overrides: Iterable[str] | None = None,
        sweep_id: str | None = None,
        code_dir: str | os.PathLike[str] | None = None,
        rank: int | None = None,
        per_rank: bool = False,
        settings: Mapping[str, Any] | None = None,
        flush_interval: float | None = None,
        buffer_size: int | None = None,
        heartbeat_interval: float | None = None,
        sync_tensorboard: bool | None = None,
    ) -> None:
        if resume not in ("auto", "never"):
            raise ConfigError(f"resume must be 'auto' or 'never', not {resume!r}")
        shortcuts = {
            "flush_interval": flush_interval,
            "buffer_size": buffer_size,
            "heartbeat_interval": heartbeat_interval,
            "sync_tensorboard": sync_tensorboard,
        }
        # a shortcut left at None must not undo the same setting given in ``settings``
        given = {k: v for k, v in shortcuts.items() if v is not None}
        self.settings = TrackingSettings.from_sources({**_settings_mapping(settings), **given})
        self.store = store if isinstance(store, Store) else Store.resolve(store)
        self.project = project or os.environ.get("HPCLAB_PROJECT") or DEFAULT_PROJECT
        check_project_name(self.project)
        detected_rank, world = context.detect_rank()
        self.rank = detected_rank if rank is None else rank
        self.world_size = world
        self.finished = False
        self.resumed = False
        self.summary: dict[str, Any] = {}
        self.returned: dict[str, float] = {}  # the task's return value (hpclab.launch.task)
        self._total_steps: int | None = None
        self._pid = os.getpid()
        self._writer: MetricWriter | None = None
        self._worker: Worker | None = None
        self.system_sampler: Any = None  # hpclab.tracking.system.SystemSampler, when on
        self._media_log: Any = None  # hpclab.tracking.media.MediaLog, on first use
        self._record: RunRecord | None = None
        self._record_lock = threading.RLock()
        self._prev_handlers: dict[int, Any] = {}
        self._finishing = False
        self._held_signals: list[int] = []
        self._tb_patch: Any = None
        self._exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | None = (
            None
        )
        self._preempt_callbacks: list[Callable[[Run], None]] = []
        self._capture: OutputCapture | None = None
        self.enabled = self.rank == 0 or per_rank
        explicit_id = run_id or os.environ.get("HPCLAB_RUN_ID")
        key = context.run_key()
        self.paths: RunPaths | None = None
        self._node_sampling: Any = None  # hpclab.tracking.system.NodeSampling
        if not self.enabled:
            self.id = explicit_id
            self._start_node_sampling(explicit_id, key)
            return
        self._created = False  # this call made the run directory (removed if start fails)
        try:
            if self.rank == 0:
                self.paths = self._open_or_create(explicit_id, key, resume)
            else:
                self.paths = self._attach(explicit_id, key)
        except OSError as e:
            raise StoreError(f"cannot open a run in {self.store.root}: {e}") from e
        self.id = self.paths.id
        try:
            self._start(config, name, parent, tags, overrides, sweep_id, key, code_dir)
        except BaseException as e:
            self._abandon_start(e)
            if isinstance(e, OSError):  # a full or read-only disk: no traceback
                raise StoreError(f"run {self.id}: could not start in {self.paths.dir}: {e}") from e
            raise

    def _abandon_start(self, error: BaseException) -> None:
        """A run that could not start is failed, not "running" until its heartbeat ages; one
        whose ``run.json`` could not even be written leaves no directory behind."""
        assert self.paths is not None
        try:
            self.finish(RunStatus.FAILED, error=error, timeout=1.0)
        except HpclabError:
            pass  # the start's own error is the one to raise
        if self._created and not self.paths.run_json.exists():
            import shutil

            shutil.rmtree(self.paths.dir, ignore_errors=True)

    # -- identity ---------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        """The run directory (``<store>/<project>/runs/<id>``)."""
        if self.paths is None:
            raise HpclabError("this rank does not record (rank != 0 and per_rank=False)")
        return self.paths.dir

    @property
    def status(self) -> RunStatus | None:
        return self._record.status if self._record else None

    @property
    def step(self) -> int:
        """The highest step logged so far (-1 before any)."""
        return self._writer.step if self._writer else -1

    @property
    def total_steps(self) -> int | None:
        """Planned steps: progress and ETA in ``hpclab status`` and on the site.

        Set it once known (``run.total_steps = trainer.max_steps``); it is written to
        ``run.json`` with the next heartbeat or record write. None, or a value below 1
        (Lightning's ``max_steps=-1``: no limit), clears it.
        """
        return self._record.total_steps if self._record is not None else self._total_steps

    @total_steps.setter
    def total_steps(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value != int(value)
        ):
            raise ConfigError(f"run.total_steps: expected a whole number or None, got {value!r}")
        steps = int(value) if value is not None and value >= 1 else None
        with self._record_lock:
            self._total_steps = steps
            if self._record is not None:
                self._record.total_steps = steps
            if self._writer is not None:  # arrays created from now on fit the plan
                self._writer.chunk_rows = fitted_chunk_rows(steps, self.settings.chunk_rows)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, project={self.project!r}, status={self.status})"

    # -- opening --------------------------------------------------------------------------
    def _open_or_create(self, explicit_id: str | None, key: str | None, resume: str) -> RunPaths:
        store, project = self.store, self.project
        if explicit_id:
            try:
                _, paths = store.find_run(explicit_id, project)
            except RunNotFound:
                paths = store.create_run_dir(project, explicit_id)
                self._created = True
                if key:
                    store.rebind_key(project, key, paths.id)
                return paths
            if resume == "never":
                raise RunExists(f"run {explicit_id!r} exists and resume='never'")
            self.resumed = True
            return paths
        if key and resume == "auto":
            existing = store.lookup_key(project, key)
            if existing and self._should_resume(existing):
                self.resumed = True
                return store.run_paths(project, existing)
        paths = store.create_run_dir(project)
        self._created = True
        if key:
            store.rebind_key(project, key, paths.id)
        return paths

    def _should_resume(self, run_id: str) -> bool:
        """Resume the run bound to this job's key after a requeue, or while it is not over.

        A second ``init`` in the same job after the first run finished starts a new run.
        """
        try:
            record = self.store.read_record(self.store.run_paths(self.project, run_id))
        except HpclabError:
            return False
        restarts = context.scheduler_info().get("restart_count", 0)
        if restarts > int(record.scheduler.get("restart_count", 0) or 0):
            return True
        return not record.status.is_final

    def _attach(self, explicit_id: str | None, key: str | None, timeout: float = 120.0) -> RunPaths:
        """A non-zero rank with per-rank logging joins the run that rank 0 creates."""
        if not explicit_id and not key:
            raise ConfigError(
                "per-rank logging on a non-zero rank needs a shared run id: set HPCLAB_RUN_ID, "
                "or run under Slurm or torchrun"
            )
        deadline = time.monotonic() + timeout
        while True:
            run_id = explicit_id or self.store.lookup_key(self.project, key or "")
            if run_id:
                paths = self.store.run_paths(self.project, run_id)
                if paths.exists():
                    return paths
            if time.monotonic() > deadline:
                raise RunNotFound(f"rank {self.rank}: rank 0 did not create run {run_id or key!r}")
            time.sleep(0.2)

    def _start(
        self,
        config: Any,
        name: str | None,
        parent: str | None,
        tags: Iterable[str] | None,
        overrides: Iterable[str] | None,
        sweep_id: str | None,
        key: str | None,
        code_dir: str | os.PathLike[str] | None,
    ) -> None:
        assert self.paths is not None
        paths = self.paths
        self._start_capture(paths)
        config_doc = config_to_dict(config) if config is not None else None
        chunk_rows = fitted_chunk_rows(
            self._total_steps or config_total_steps(config_doc), self.settings.chunk_rows
        )
        if self.rank != 0:
            self._writer = MetricWriter(
                paths.rank_metrics_zarr(self.rank),
                buffer_size=self.settings.buffer_size,
                max_buffer=self.settings.max_buffer,
                chunk_rows=chunk_rows,
                flush_interval=self.settings.flush_interval,
            )
            self._start_background(beat=lambda: None)
            self._register()
            return
        for d in (paths.snapshot_dir, paths.artifacts_dir, paths.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._record = self._initial_record(name, parent, tags, sweep_id, key)
        if config_doc is not None and (not self.resumed or not paths.config_yaml.exists()):
            write_config(paths, config_doc)  # config.yaml and its parse (config_twin)
        if overrides is not None and (not self.resumed or not paths.overrides_yaml.exists()):
            write_yaml_atomic(paths.overrides_yaml, [str(o) for o in overrides])
        self._write_record(authoritative=True)  # starting or resuming: the run's own word
        self._snapshot(Path(code_dir) if code_dir else Path.cwd())
        self._writer = MetricWriter(
            paths.metrics_zarr,
            buffer_size=self.settings.buffer_size,
            max_buffer=self.settings.max_buffer,
            chunk_rows=chunk_rows,
            flush_interval=self.settings.flush_interval,
        )
        self._start_background(beat=self._heartbeat)
        self._register()

    def _initial_record(
        self,
        name: str | None,
        parent: str | None,
        tags: Iterable[str] | None,
        sweep_id: str | None,
        key: str | None,
    ) -> RunRecord:
        assert self.paths is not None
        now = utcnow_iso()
        sched = context.scheduler_info()
        previous: RunRecord | None = None
        if self.paths.run_json.exists():
            previous = self.store.read_record(self.paths)
        record = previous or RunRecord(id=self.paths.id, project=self.project, created_at=now)
        not_started = previous is not None and previous.status in (
            RunStatus.PLANNED,
            RunStatus.QUEUED,
        )
        if not_started:
            # a launcher's planned/queued run starting for the first time is not a resume
            self.resumed = False
        elif previous is not None and (self.resumed or previous.status.is_final):
            record.attempt += 1
            record.history.append(
                {
                    "event": "resumed",
                    "at": now,
                    "previous_status": previous.status.value,
                    "host": socket.gethostname(),
                    "scheduler": sched,
                }
            )
            record.error = None
            record.ended_at = None
        record.status = RunStatus.RUNNING
        record.started_at = record.started_at if previous and previous.started_at else now
        if not_started:
            record.history.append({"event": "started", "at": now, "host": socket.gethostname()})
        record.heartbeat_at = now
        record.heartbeat_interval = self.settings.heartbeat_interval
        record.host, record.pid = socket.gethostname(), os.getpid()
        record.user = _username()
        record.cwd, record.argv = os.getcwd(), list(sys.argv)
        record.scheduler = sched
        record.world_size = self.world_size
        record.key = key or record.key
        record.name = name if name is not None else record.name
        record.parent = parent if parent is not None else record.parent
        record.sweep_id = sweep_id if sweep_id is not None else record.sweep_id
        if tags is not None:
            record.tags = sorted(set(record.tags) | {str(t) for t in tags})
        return record

    def _snapshot(self, code_dir: Path) -> None:
        """Code and environment, taken at start so a half-finished run is restorable.

        A resumed run keeps the snapshot of its first attempt (the code it started with).
        """
        assert self.paths is not None
        paths = self.paths
        if self.settings.snapshot_code and not paths.code_json.exists():
            from hpclab.tracking.snapshot import take_code_snapshot

            take_code_snapshot(
                paths,
                code_dir,
                max_file_bytes=self.settings.max_file_bytes,
                max_total_bytes=self.settings.max_snapshot_bytes,
            )
        if self.settings.snapshot_env and not paths.environment_json.exists():
            from hpclab.tracking.environment import capture_environment

            capture_environment(paths)

    def _start_node_sampling(self, explicit_id: str | None, key: str | None) -> None:
        """A node's first process that does not record the run (rank != 0, no
        ``per_rank``) still samples its node, into ``nodes/<node>/system.zarr`` of the run
        rank 0 creates (waited for on a thread: ``init`` returns at once); nothing where
        sampling is off or no run id is shared."""
        from hpclab.tracking import system

        if self.settings.system_interval <= 0 or not system.samples_node(self.rank):
            return
        if not explicit_id and not key:
            return  # no way to find rank 0's run: nothing to attach the samples to

        def attach() -> None:
            try:
                paths = self._attach(explicit_id, key)
                sampling = system.NodeSampling(
                    paths.node_system_zarr(system.node_name()), self.settings
                )
            except Exception as e:  # the training goes on without this node's samples
                print(f"hpclab: warning: no system metrics for this node ({e})", file=sys.stderr)
                return
            with self._record_lock:
                if self.finished:
                    sampling.stop()
                    return
                self.id = paths.id
                self._node_sampling = sampling

        threading.Thread(target=attach, name="hpclab-node-attach", daemon=True).start()
        _register_exit_hook(self._atexit)

    def _start_background(self, beat: Any) -> None:
        assert self._writer is not None
        sample, prime = self._system_sampler()
        self._worker = Worker(
            flush=self._background_flush,
            beat=beat,
            flush_interval=self.settings.flush_interval,
            heartbeat_interval=self.settings.heartbeat_interval,
            wake=self._writer.wake,
            sample_interval=self.settings.system_interval,
            sample=sample,
            prime=prime,
        )
        self._worker.start()

    def _system_sampler(self) -> tuple[Callable[[], None] | None, Callable[[], None] | None]:
        """What the background thread calls every ``system_interval`` seconds (``sample``:
        the process, node and GPUs into ``system/...``) and once at its start (``prime``:
        the counters the first sample's rates start from); None, None when off."""
        if self.settings.system_interval <= 0 or self._writer is None:
            return None, None
        from hpclab.tracking.system import SystemSampler, samples_node

        try:  # the GPUs are their node's first process's (counted once per node)
            sampler = SystemSampler(read_gpus=samples_node(self.rank))
        except Exception as e:  # psutil missing or refused: the run goes on without
            print(f"hpclab: warning: no system metrics ({e})", file=sys.stderr)
            return None, None
        writer = self._writer
        self.system_sampler = sampler

        def sample() -> None:
            writer.log_samples(sampler.sample())

        def prime() -> None:
            sampler.sample()

        return sample, prime

    def _register(self) -> None:
        context.register_run(self)
        _register_exit_hook(self._atexit)
        _install_excepthook()
        if self.settings.handle_signals:
            self._install_signal_handlers()
        from hpclab.tracking import loggers

        loggers.watch()  # which trainers/loggers run, for the no-metrics warning
        if self.settings.sync_tensorboard:
            from hpclab.tracking import tensorboard

            self._tb_patch = tensorboard.patch(keep_events=self.settings.tensorboard_events)

    # -- logging ------------------------------------------------------------------------
    def log(
        self, data: Mapping[str, Any], step: int | None = None, *, wall_time: float | None = None
    ) -> int:
        """Record one value per metric at ``step`` (default: the last step + 1).

        Returns the step used. Costs well under a microsecond per value: the values are
        buffered and written by a background thread. A step not greater than a metric's
        last step is dropped for that metric (see :mod:`hpclab.tracking.metrics`).
        ``wall_time`` (epoch seconds) stamps the values with when they were logged
        elsewhere (``hpclab import``); by default, now.
        """
        if self._writer is None:
            return -1 if step is None else int(step)
        if wall_time is None:
            return self._writer.log(data, step)
        return self._writer.log(data, step, wall_time=wall_time)

    def flush(self, timeout: float | None = None) -> bool:
        """Write every buffered point to the store now; True when all are on disk."""
        if self._writer is None:
            return True
        return self._writer.flush(timeout)

    def log_artifacts(
        self,
        path: str | os.PathLike[str],
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        name: str | None = None,
    ) -> list[ArtifactEntry]:
        """Store files (content-addressed, deduplicated across runs) as the run's artifacts."""
        if self.paths is None or self.rank != 0:
            return []
        from hpclab.tracking.artifacts import log_artifacts

        return log_artifacts(
            self.store,
            self.project,
            self.paths,
            Path(path),
            include=include,
            exclude=exclude,
            name=name,
        )

    def track_dataset(
        self, path: str | os.PathLike[str], name: str | None = None, hash: bool = True
    ) -> DatasetEntry:
        """Fingerprint a dataset (sha256 per file, size, detected schema) into the snapshot."""
        from hpclab.tracking.datasets import fingerprint_dataset, record_dataset

        entry = fingerprint_dataset(Path(path), name=name, hash=hash)
        if self.paths is not None and self.rank == 0:
            record_dataset(self.paths, entry)
        return entry

    # -- config, text and references (integrations) --------------------------------------
    def update_config(self, values: Any, key: str | None = None) -> None:
        """Merge ``values`` (a mapping, OmegaConf config, dataclass or Namespace) into the
        run's ``config.yaml``, atomically.

        With ``key`` (what the integrations do: ``hparams``, ``training_args``,
        ``model_config``) the values land under that top-level key, whether or not the run
        already has a config, so their feature paths (``hparams.lr``) do not depend on how
        the run was started. Nested mappings merge; a later value for a leaf replaces the
        earlier one. Other ranks do nothing.
        """
        if self.paths is None or self.rank != 0:
            return
        from hpclab.store.atomic import read_yaml

        new = config_to_dict(values)
        if not isinstance(new, dict):
            raise ConfigError(f"update_config needs a mapping, not {type(values).__name__}")
        with self._record_lock:
            current = read_yaml(self.paths.config_yaml) if self.paths.config_yaml.exists() else {}
            if not isinstance(current, dict):
                raise ConfigError(f"{self.paths.config_yaml}: expected a mapping at the top")
            write_config(self.paths, _deep_merge(current, {key: new} if key else new))

    # -- media ----------------------------------------------------------------------------
    def _media(self) -> Any:
        """The run's media log (rank 0), or None on the other ranks."""
        if self.paths is None or self.rank != 0:
            return None
        if self._media_log is None:
            from hpclab.tracking.media import MediaLog

            self._media_log = MediaLog(self.paths.media_dir)
        return self._media_log

    def _media_step(self, step: int | None) -> int:
        if step is None:
            return max(0, self._writer.step) if self._writer is not None else 0
        from hpclab.tracking.metrics import coerce_step

        return coerce_step(step)

    def log_image(self, name: str, image: Any, step: int | None = None) -> None:
        """Record an image at ``step`` (default: the run's current step): a NumPy array or
        tensor (``HxW``, ``HxWx3``, ``HxWx4``, ``CxHxW``; uint8 or floats in [0, 1]), a PIL
        image, or a path to a PNG/JPEG/WebP file. Stored once per content
        (``media/images/<sha256>.png``); past the limits a MediaError says which."""
        media = self._media()
        if media is not None:
            media.image(name, image, self._media_step(step))

    def log_histogram(
        self, name: str, values: Any, step: int | None = None, bins: int = 64
    ) -> None:
        """Record the distribution of ``values`` (array, tensor, list) at ``step`` as
        ``bins`` equal-width bins over its finite range (``media/histograms.zarr``)."""
        media = self._media()
        if media is not None:
            media.histogram(name, values, self._media_step(step), bins=bins)

    def log_table(self, name: str, rows: Any, step: int | None = None) -> None:
        """Record a table at ``step``: a list of dicts, a list of lists, a dict of columns
        or a DataFrame (``media/tables/<sha256>.parquet``)."""
        media = self._media()
        if media is not None:
            media.table(name, rows, self._media_step(step))

    def log_text(self, tag: str, text: str, step: int | None = None) -> None:
        """Record a piece of text (a prompt, a sample, notes) in ``logs/text.jsonl``."""
        if self.paths is None or self.rank != 0:
            return
        import json

        line = {"tag": str(tag), "step": step, "text": str(text), "logged_at": utcnow_iso()}
        with self._record_lock:
            self.paths.logs_dir.mkdir(parents=True, exist_ok=True)
            with open(self.paths.text_jsonl, "a", encoding="utf-8") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")

    def log_artifact_reference(
        self, path: str | os.PathLike[str], name: str | None = None, hash: bool = True
    ) -> ArtifactReference | None:
        """Record the file ``path`` as an artifact without copying it (a checkpoint that
        stays where the trainer wrote it): its size, sha256 (unless ``hash=False``) and
        absolute path go into ``artifacts.json`` with ``kind: "reference"``."""
        if self.paths is None or self.rank != 0:
            return None
        from hpclab.tracking.artifacts import log_artifact_reference

        return log_artifact_reference(self.paths, Path(path), name=name, hash=hash)

    def prune_artifact_references(self, prefix: str = "") -> list[str]:
        """Forget referenced artifacts under ``prefix`` whose file was deleted since."""
        if self.paths is None or self.rank != 0:
            return []
        from hpclab.tracking.artifacts import prune_references

        return prune_references(self.paths, prefix)

    # -- preemption -----------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        """A directory in the run for the task's own checkpoints (created on first use).

        After a requeue the same run resumes (``run.resumed`` is True, ``run.step`` is the
        last logged step), so a task restores from here and continues.
        """
        assert self.paths is not None, "this rank does not record"
        self.paths.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        return self.paths.checkpoints_dir

    def on_preempt(self, callback: Callable[[Run], None]) -> None:
        """Call ``callback(run)`` when the job is about to be stopped and requeued (Slurm's
        signal before the time limit, or a preemption), to save the task's state."""
        self._preempt_callbacks.append(callback)

    def preempt(self) -> None:
        """The job will be requeued: run the ``on_preempt`` callbacks, flush, and record
        the run as ``preempted`` (the requeued job resumes it). Launchers call this."""
        for callback in self._preempt_callbacks:
            callback(self)
        self.finish(RunStatus.PREEMPTED)

    # -- ending -------------------------------------------------------------------------
    def finish(
        self,
        status: RunStatus | str = RunStatus.COMPLETED,
        *,
        error: BaseException | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Flush everything and record the final status. Idempotent.

        A store that keeps failing is retried for up to ``timeout`` seconds (30 at most).
        If metric points still cannot be stored, the run is recorded ``failed`` (unless
        another final status was asked for) with the reason, and a :class:`StoreError`
        names what was lost; so does a ``run.json`` that cannot be written. The signal
        handlers stay in place until the end: a signal arriving meanwhile is held and
        delivered once the run is recorded, so it cannot kill the process mid-flush.
        """
        if self.finished or os.getpid() != self._pid:
            return
        self.finished = True
        with self._record_lock:
            sampling, self._node_sampling = self._node_sampling, None
        if sampling is not None and not sampling.stop(min(timeout, 30.0)):
            print("hpclab: warning: this node's last system samples not stored", file=sys.stderr)
        self._finishing = True
        status = RunStatus(status)
        problems: list[str] = []
        try:
            if self._tb_patch is not None:
                self._tb_patch.release()
            if self._worker is not None:
                self._worker.stop()
            if self._writer is not None:
                lost = self._final_flush(min(timeout, 30.0))
                if lost is not None:
                    problems.append(lost)
                    if status is RunStatus.COMPLETED:
                        status = RunStatus.FAILED
                    if error is None:
                        error = StoreError(lost)
            if self._record is not None:
                written = self._final_record(status, error)
                if written is not None:
                    problems.append(written)
        finally:
            self._stop_capture(error)
            self._finishing = False
            self._restore_signal_handlers()
            self._deliver_held_signals()
        if problems:
            raise StoreError(f"run {self.id}: " + "; ".join(problems))

    def _final_flush(self, timeout: float) -> str | None:
        """Store every buffered point, retrying a failing store until ``timeout``; None
        when all are stored, else what was lost and why."""
        assert self._writer is not None
        writer = self._writer
        deadline = time.monotonic() + timeout
        delay = 0.05
        while not writer.flush(max(0.0, deadline - time.monotonic())):
            if time.monotonic() + delay > deadline:
                err = writer.last_error
                why = f": {err}" if err is not None else " (another flush held the writer)"
                return f"{writer.buffered()} metric point(s) not stored in {writer.path}{why}"
            time.sleep(delay)  # a backoff between retries, not a synchronisation
            delay = min(2 * delay, 2.0)
        return None

    def _final_record(self, status: RunStatus, error: BaseException | None) -> str | None:
        """Write the final ``run.json``; None, or why it could not be written."""
        assert self.paths is not None and self._record is not None
        with self._record_lock:
            record = self._record
            record.status = status
            record.ended_at = utcnow_iso()
            record.heartbeat_at = record.ended_at
            if error is not None:
                tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
                record.error = {
                    "type": type(error).__name__,
                    "message": str(error)[:2000],
                    "traceback": tb,
                }
                try:
                    self.paths.traceback_txt.write_text(tb)
                except OSError:
                    pass  # the record carries the traceback too
            try:
                self._write_record(authoritative=True)
            except (OSError, HpclabError) as e:
                return f"{self.paths.run_json} not written ({e})"
            self._warn_if_no_metrics(status)
        return None

    def _deliver_held_signals(self) -> None:
        """Signals that arrived while finishing, delivered now to whatever handles them."""
        held, self._held_signals = self._held_signals, []
        for signum in dict.fromkeys(held):
            os.kill(os.getpid(), signum)

    def _start_capture(self, paths: RunPaths) -> None:
        """Tee stdout/stderr into ``logs/`` when the ``capture_output`` setting says so."""
        if not capture_wanted(self.settings.capture_output):
            return
        self._capture = OutputCapture.start(
            paths.output_log("stdout", self.rank),
            paths.output_log("stderr", self.rank),
            max_bytes=self.settings.capture_max_bytes,
        )

    def _stop_capture(self, error: BaseException | None) -> None:
        """Stop the tee; a failed run's traceback goes into its stderr log (Python prints
        it to the terminal only after the run has finished)."""
        capture, self._capture = self._capture, None
        if capture is None:
            return
        capture.stop()
        if error is not None and self.paths is not None:
            append_traceback(self.paths.output_log("stderr", self.rank), error)

    def _warn_if_no_metrics(self, status: RunStatus) -> None:
        """A completed run with no metrics most likely logged them somewhere hpclab does
        not read: say so once, naming the loggers seen in this process."""
        if status is not RunStatus.COMPLETED or self.rank != 0 or self._writer is None:
            return
        if self._writer.last_values() or self.summary or self.returned:
            return
        from hpclab.tracking.loggers import no_metrics_warning

        print(f"hpclab: warning: {no_metrics_warning(self.id or '?')}", file=sys.stderr)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.finish(RunStatus.COMPLETED)
        elif isinstance(exc, KeyboardInterrupt):
            self.finish(RunStatus.CANCELLED, error=exc)
        elif isinstance(exc, SystemExit) and exc.code in (0, None):
            self.finish(RunStatus.COMPLETED)
        else:
            self.finish(RunStatus.FAILED, error=exc)

    # -- record and heartbeat ---------------------------------------------------------------
    def _write_record(self, *, authoritative: bool = False) -> None:
        """Write ``run.json`` from memory, keeping what other writers added meanwhile.

        ``hpclab status``/``cancel`` write scheduler state and a final status into the same
        file; a heartbeat must not erase them. Only the run's own start and end writes
        (``authoritative``) replace a final status on disk.
        """
        assert self.paths is not None and self._record is not None
        with self._record_lock:
            record = self._record
            try:
                disk = self.store.read_record(self.paths)
            except HpclabError:
                disk = None
            if disk is not None:
                record.keep_others(disk)
                if not authoritative and disk.status.is_final and not record.status.is_final:
                    record.status = disk.status
            if self._writer is not None:
                last = self._writer.last_values()
                record.summary = {
                    **{k: _finite_or_none(v) for k, v in last.items()},
                    **self.summary,
                }
                record.metrics_dropped = self._writer.dropped()
                record.step = self._writer.step
            if self.returned:
                record.returned = dict(self.returned)
                record.summary = {**record.summary, **self.returned, **self.summary}
            self.store.write_record(self.paths, record)

    def _heartbeat(self) -> None:
        if self.finished or self._record is None:
            return
        with self._record_lock:
            self._record.heartbeat_at = utcnow_iso()
            self._write_record()

    def _background_flush(self) -> bool:
        assert self._writer is not None
        ok = self._writer.flush()
        if not ok and self._writer.last_error is not None:
            raise self._writer.last_error
        return ok

    # -- process events -------------------------------------------------------------------
    def _atexit(self) -> None:
        if self.finished:
            return
        exc = self._exc_info
        try:
            if exc is not None and not isinstance(exc[1], (SystemExit,)):
                status = (
                    RunStatus.CANCELLED
                    if isinstance(exc[1], KeyboardInterrupt)
                    else RunStatus.FAILED
                )
                self.finish(status, error=exc[1])
            else:
                self.finish(RunStatus.COMPLETED)
        except HpclabError as e:  # at exit: one line, not a traceback
            print(f"hpclab: error: {e}", file=sys.stderr)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python only delivers signals to the main thread's handlers
        for name in _HANDLED_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                self._prev_handlers[signum] = signal.signal(signum, self._on_signal)
            except (ValueError, OSError):
                pass

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, prev in self._prev_handlers.items():
            try:
                if signal.getsignal(signum) == self._on_signal:
                    signal.signal(signum, prev if prev is not None else signal.SIG_DFL)
            except (ValueError, OSError):
                pass
        self._prev_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Flush on Slurm's signals; on a SIGTERM nobody else handles, end the run first.

        Under Slurm a SIGTERM means cancel, time limit or preemption; the run is marked
        ``preempted`` (a requeue resumes it; the indexer takes the final word from sacct).
        Elsewhere it is ``cancelled``.
        """
        if self._finishing:  # finish() flushes and records; deliver it after that
            self._held_signals.append(signum)
            return
        prev = self._prev_handlers.get(signum)
        if self._writer is not None:
            self._writer.flush(timeout=10.0)
        if signum == signal.SIGTERM and prev in (signal.SIG_DFL, None):
            status = RunStatus.PREEMPTED if "SLURM_JOB_ID" in os.environ else RunStatus.CANCELLED
            if self._record is not None:
                self._record.signal = "SIGTERM"
            try:
                self.finish(status, timeout=10.0)
            except HpclabError as e:  # the process ends on this signal either way
                print(f"hpclab: error: {e}", file=sys.stderr)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self._record is not None:
            self._record.last_signal = signal.Signals(signum).name
            self._heartbeat()
        if callable(prev):
            prev(signum, frame)


def init(
    project: str | None = None,
    config: Any = None,
    name: str | None = None,
    parent: str | None = None,
    tags: Iterable[str] | None = None,
    **kwargs: Any,
) -> Run:
    """Start a run (same arguments as :class:`Run`); finish it with ``run.finish()``,
    or let it finish at exit (completed, or failed on an uncaught exception)."""
    return Run(project, config, name, parent, tags, **kwargs)


# -- helpers --------------------------------------------------------------------------------
def _settings_mapping(settings: Any) -> dict[str, Any]:
    """``settings=`` as a dict of names: a mapping, a :class:`TrackingSettings`, or None."""
    if settings is None:
        return {}
    if isinstance(settings, TrackingSettings):
        import dataclasses

        return dataclasses.asdict(settings)
    if not isinstance(settings, Mapping):
        raise ConfigError(
            f"settings must be a mapping of setting name to value, not {type(settings).__name__}"
        )
    return dict(settings)


def config_to_dict(config: Any) -> Any:
    """Plain YAML-safe data from a dict, OmegaConf config, dataclass or Namespace."""
    mod = type(config).__module__
    if mod.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(config, resolve=True)
    import dataclasses

    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return _plain(dataclasses.asdict(config))
    if hasattr(config, "__dict__") and type(config).__name__ == "Namespace":
        return _plain(vars(config))
    if isinstance(config, Mapping):
        return _plain(dict(config))
    raise ConfigError(
        "config must be a mapping, OmegaConf config, dataclass or Namespace, "
        f"not {type(config).__name__}"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return str(value)


def _deep_merge(base: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in new.items():
        old = out.get(k)
        out[k] = _deep_merge(old, v) if isinstance(old, dict) and isinstance(v, Mapping) else v
    return out


def _finite_or_none(value: float) -> float | str:
    # JSON has no NaN/inf; keep them readable rather than invalid JSON.
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return value


def _username() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None


def _register_exit_hook(fn: Any) -> None:
    """Run ``fn`` when the main thread ends, before the interpreter tears down thread pools.

    Zarr writes through ``asyncio.to_thread``; by the time ``atexit`` handlers run, the
    thread pools refuse new work, so a final flush from ``atexit`` would silently fail.
    ``threading``'s own exit hooks run earlier, last-registered first: registering after
    zarr (and concurrent.futures) are imported puts ours ahead of their shutdown.
    """
    import concurrent.futures.thread  # noqa: F401

    import zarr  # noqa: F401

    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - CPython has had it since 3.9
        atexit.register(fn)
        return
    try:
        register(fn)
    except RuntimeError:  # already shutting down
        atexit.register(fn)


_hook_installed = False


def _install_excepthook() -> None:
    """Remember an uncaught exception so the exit handler marks active runs failed."""
    global _hook_installed
    if _hook_installed:
        return
    _hook_installed = True
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        for run in context.active_runs():
            if not run.finished:
                run._exc_info = (exc_type, exc, tb)
        previous(exc_type, exc, tb)

    sys.excepthook = hook
