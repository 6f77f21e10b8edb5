"""The store layout. :class:`Store` and :class:`RunPaths` are the only code that knows
file names under the store root; the tracker, indexer, site and restore all use them.

::

    <root>/VERSION                                   the store's format version (missing: 1)
    <root>/<project>/project.yaml
    <root>/<project>/runs/<run_id>/{run.json, config.yaml, overrides.yaml, notes.yaml,
                                    metrics.zarr/, snapshot/, artifacts/, logs/}
    <root>/<project>/sweeps/<sweep_id>.json
    <root>/<project>/hypotheses/<id>.yaml
    <root>/<project>/dag.yaml                        parents set by hand (hpclab dag set-parent)
    <root>/<project>/objects/sha256/<ab>/<rest>     content-addressed artifact files
    <root>/<project>/.keys/<key> -> <run_id>         claims: Slurm task or launcher key -> run
    <root>/<project>/reruns/<id>/{code/, conf/config.yaml, multirun/, rerun.json}   hpclab rerun
    <root>/.catalog/                                 derived (hpclab index): deletable, rebuilt
        manifest.json                                the published version: table -> file
        tables/<table>.<generation>.parquet          small tables, a new file per version
        metrics/<project>/<run_id>.<generation>.parquet   one run's metrics
        indexer.lock                                 held by the one running indexer
    <root>/.site/                                    derived (hpclab site build): the website
        src/  html/                                  its MkDocs project and built HTML
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hpclab.errors import (
    ProjectNotFound,
    RunExists,
    RunNotFound,
    StoreError,
    StoreNotFound,
    did_you_mean,
)
from hpclab.store.atomic import read_json, write_bytes_atomic, write_json_atomic
from hpclab.store.ids import KEY_RE, is_valid_run_id, new_run_id
from hpclab.store.record import RunRecord, is_forward
from hpclab.store.sweep import SweepRecord

DEFAULT_STORE = "hpclab-store"
DEFAULT_PROJECT = "default"
PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
HYPOTHESIS_RE = PROJECT_RE
FORMAT_VERSION = 1
"""The store format this code writes and the newest it reads (``<root>/VERSION``); bump it
on a change older hpclab versions would misread."""
UNVERSIONED = 1  # the format of a store written before VERSION files existed
VERSION_FILE = "VERSION"  # <root>/VERSION
ZARR_META = "zarr.json"  # a Zarr v3 group's or array's metadata document


def zarr_meta(directory: str | os.PathLike[str]) -> Path:
    """The metadata document of a Zarr group or array directory (the metrics group's holds
    the commit record)."""
    return Path(directory) / ZARR_META


STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_study_name(name: str) -> str:
    """A study name is a file name: letters, digits, ``._-`` (no path, no leading dot)."""
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        raise StoreError(
            f"invalid study name {name!r} (letters, digits, '.', '_', '-'; at most 100)"
        )
    return name


# ``<name>.<generation>.parquet`` or ``seg-<generation>-<part>.parquet`` (Store.catalog_*)
_CATALOG_GENERATION = re.compile(r"^seg-(\d{8,})-|\.(\d{8,})\.parquet$")


@dataclass(frozen=True)
class RunPaths:
    """Every path inside one run directory."""

    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def run_json(self) -> Path:
        return self.dir / "run.json"

    @property
    def config_yaml(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def config_json(self) -> Path:
        """config.yaml as its writer parsed it, stamped with its size and mtime
        (:mod:`hpclab.store.config_twin`: what readers take while the stamp holds)."""
        return self.dir / "config.json"

    @property
    def overrides_yaml(self) -> Path:
        return self.dir / "overrides.yaml"

    @property
    def notes_yaml(self) -> Path:
        return self.dir / "notes.yaml"

    @property
    def metrics_zarr(self) -> Path:
        return self.dir / "metrics.zarr"

    @property
    def metrics_commit(self) -> Path:
        """The metrics group's metadata, holding the commit record (replaced every flush)."""
        return zarr_meta(self.metrics_zarr)

    def rank_metrics_zarr(self, rank: int) -> Path:
        """Metrics of one non-zero rank when per-rank logging is on."""
        return self.dir / "ranks" / str(rank) / "metrics.zarr"

    @property
    def nodes_dir(self) -> Path:
        """Per-node system samples of a multi-node run (``nodes/<node>/system.zarr``)."""
        return self.dir / "nodes"

    def node_system_zarr(self, node: str) -> Path:
        """The system samples of ``node``'s first process, when that process is not the
        run's rank 0 (rank 0's are in the run's own metrics)."""
        return self.nodes_dir / node / "system.zarr"

    @property
    def project_yaml(self) -> Path:
        """The run's project settings (``<root>/<project>/project.yaml``)."""
        return self.dir.parent.parent / "project.yaml"

    @property
    def store_version(self) -> Path:
        """The format version file of the run's store (``<root>/VERSION``)."""
        return self.dir.parent.parent.parent / VERSION_FILE

    @property
    def snapshot_dir(self) -> Path:
        return self.dir / "snapshot"

    @property
    def code_json(self) -> Path:
        """Git commit, branch, remotes, and what the code snapshot skipped."""
        return self.snapshot_dir / "code.json"

    @property
    def code_patch(self) -> Path:
        """``git diff HEAD --binary``: staged and unstaged changes."""
        return self.snapshot_dir / "uncommitted.patch"

    @property
    def untracked_archive(self) -> Path:
        """Untracked, non-ignored files (tar.gz)."""
        return self.snapshot_dir / "untracked.tar.gz"

    @property
    def source_archive(self) -> Path:
        """The whole source tree when the run was outside git (tar.gz)."""
        return self.snapshot_dir / "source.tar.gz"

    @property
    def code_manifest(self) -> Path:
        """Hash of every file of the tree the run saw, to verify a restore."""
        return self.snapshot_dir / "manifest.json"

    @property
    def environment_json(self) -> Path:
        return self.snapshot_dir / "environment.json"

    @property
    def requirements_txt(self) -> Path:
        return self.snapshot_dir / "requirements.txt"

    @property
    def datasets_json(self) -> Path:
        return self.snapshot_dir / "datasets.json"

    @property
    def resources_json(self) -> Path:
        """What the run's Slurm job used against what it asked for (``sacct`` over every
        step, :mod:`hpclab.launch.resources`), written once the job has ended."""
        return self.dir / "resources.json"

    @property
    def eval_dir(self) -> Path:
        """What :func:`hpclab.eval.evaluate` wrote about the run's predictions."""
        return self.dir / "eval"

    @property
    def eval_metrics_json(self) -> Path:
        """Each metric on the whole evaluation set, with its bootstrap CI."""
        return self.eval_dir / "metrics.json"

    @property
    def eval_slices_json(self) -> Path:
        """Each metric per slice value, its CI and its test against the rest."""
        return self.eval_dir / "slices.json"

    @property
    def eval_failures_json(self) -> Path:
        """The worst examples with their inputs (capped)."""
        return self.eval_dir / "failure_examples.json"

    @property
    def profile_dir(self) -> Path:
        """Latency profiles (:func:`hpclab.profile.latency`), one file a name."""
        return self.dir / "profile"

    def latency_json(self, name: str) -> Path:
        """The latency profile called ``name`` (``profile/<name>.json``)."""
        return self.profile_dir / f"{name}.json"

    @property
    def repro_json(self) -> Path:
        """In a rerun: how its metrics compare with the original's (``hpclab repro``)."""
        return self.dir / "repro.json"

    @property
    def artifacts_dir(self) -> Path:
        return self.dir / "artifacts"

    @property
    def artifacts_manifest(self) -> Path:
        return self.dir / "artifacts.json"

    @property
    def checkpoints_dir(self) -> Path:
        """Where a task saves state it restores after a requeue (``run.checkpoint_dir``)."""
        return self.dir / "checkpoints"

    @property
    def text_jsonl(self) -> Path:
        """Text the run logged (``run.log_text``, TensorBoard ``add_text``): one JSON
        object ``{tag, step, text, logged_at}`` a line (``logs/text.jsonl``)."""
        return self.logs_dir / "text.jsonl"

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def media_dir(self) -> Path:
        """Images, histograms and tables (:mod:`hpclab.tracking.media`)."""
        return self.dir / "media"

    @property
    def media_index(self) -> Path:
        return self.media_dir / "index.jsonl"

    @property
    def traceback_txt(self) -> Path:
        return self.logs_dir / "traceback.txt"

    @property
    def stdout_log(self) -> Path:
        """Rank 0's stdout, captured as it is produced (``logs/stdout.log``)."""
        return self.logs_dir / "stdout.log"

    @property
    def stderr_log(self) -> Path:
        """Rank 0's stderr, captured as it is produced (``logs/stderr.log``)."""
        return self.logs_dir / "stderr.log"

    def output_log(self, stream: str, rank: int = 0) -> Path:
        """The captured ``stream`` ("stdout" or "stderr") of ``rank``: ``logs/<stream>.log``
        for rank 0, ``logs/rank<r>.<stream>.log`` for the others."""
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        name = f"{stream}.log" if rank == 0 else f"rank{rank}.{stream}.log"
        return self.logs_dir / name

    def exists(self) -> bool:
        return self.run_json.is_file()


@dataclass(frozen=True)
class CodePaths(RunPaths):
    """One content-addressed code snapshot of a project (``<project>/code/<code_id>/``):
    the working tree at a sweep's submission, which every task of the sweep runs from.

    ``snapshot/`` holds the same files as a run's snapshot (each run of the sweep links
    them); ``tree/`` is that snapshot restored, the directory the tasks import from and
    work in; ``ready.json`` is written last (the tree is complete and verified).
    """

    @property
    def tree(self) -> Path:
        return self.dir / "tree"

    @property
    def ready_json(self) -> Path:
        """Written last: the tree is restored and verified against the manifest."""
        return self.dir / "ready.json"


@dataclass(frozen=True)
class RerunPaths:
    """The working directory of one ``hpclab rerun``, on the store's (shared) filesystem so
    compute nodes can read it: the restored tree the job runs in, the config it submits,
    and Hydra's sweep directory (submitit's logs)."""

    dir: Path

    @property
    def code_dir(self) -> Path:
        """The run's source tree, restored from its snapshot."""
        return self.dir / "code"

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    @property
    def config_yaml(self) -> Path:
        """The original's resolved config (plus launcher settings), submitted as is."""
        return self.conf_dir / "config.yaml"

    @property
    def sweep_dir(self) -> Path:
        return self.dir / "multirun"

    @property
    def rerun_json(self) -> Path:
        """Original run id, new run id, sweep, launcher and command of this rerun."""
        return self.dir / "rerun.json"


class Store:
    """A store root on a (shared) filesystem, holding projects, runs and sweeps."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self._versioned = False
        self._runs_dirs: dict[str, Path] = {}  # project -> its runs/ (name checked once)
        self.check_version()

    @classmethod
    def resolve(cls, store: str | os.PathLike[str] | None = None) -> Store:
        """``store`` if given, else ``$HPCLAB_STORE``, else ``./hpclab-store``."""
        return cls(store or os.environ.get("HPCLAB_STORE") or DEFAULT_STORE)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- format version -----------------------------------------------------------
    @property
    def version_file(self) -> Path:
        return self.root / VERSION_FILE

    def format_version(self) -> int:
        """The store's format version; a store without a VERSION file (or not created
        yet) is version 1."""
        path = self.version_file
        try:
            text = path.read_text()
        except (FileNotFoundError, NotADirectoryError):
            return UNVERSIONED
        except OSError as e:
            raise StoreError(f"{path}: cannot read the store's format version ({e})") from None
        try:
            return int(text.strip())
        except ValueError:
            raise StoreError(f"{path}: not a store format version: {text[:40]!r}") from None

    def check_version(self) -> None:
        """Refuse a store written by a newer hpclab in a format this one does not know."""
        version = self.format_version()
        if version > FORMAT_VERSION:
            raise StoreError(
                f"store {self.root} has format version {version}; this hpclab reads up to "
                f"{FORMAT_VERSION}: upgrade hpclab"
            )

    def ensure_version(self) -> None:
        """Write ``VERSION`` into a store that has none (a new store, or one from before
        VERSION files). Every writer writes the same content, so racing is harmless."""
        if self._versioned:
            return
        if not self.version_file.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(self.version_file, f"{FORMAT_VERSION}\n".encode(), fsync=False)
        self._versioned = True

    # -- projects ---------------------------------------------------------------
    def project_dir(self, project: str) -> Path:
        check_project_name(project)
        return self.root / project

    def project_yaml(self, project: str) -> Path:
        return self.project_dir(project) / "project.yaml"

    def alerts_log(self, project: str) -> Path:
        """What ``hpclab watch`` alerted on in ``project``: one JSON object a line,
        appended (``hpclab.catalog.alerts_log``)."""
        return self.project_dir(project) / "alerts.jsonl"

    def runs_dir(self, project: str) -> Path:
        found = self._runs_dirs.get(project)
        if found is None:  # the catalog asks for it once per run: 10,000 times a pass
            found = self._runs_dirs[project] = self.project_dir(project) / "runs"
        return found

    def sweeps_dir(self, project: str) -> Path:
        return self.project_dir(project) / "sweeps"

    def sweep_json(self, project: str, sweep_id: str) -> Path:
        return self.sweeps_dir(project) / f"{sweep_id}.json"

    def sweep_ids(self, project: str) -> list[str]:
        """Ids of the sweep files of ``project``, oldest first (ids sort by creation time)."""
        d = self.sweeps_dir(project)
        if not d.is_dir():
            return []
        return sorted(p.name[: -len(".json")] for p in d.glob("*.json"))

    def read_sweep(self, project: str, sweep_id: str) -> SweepRecord:
        """Parse a sweep file; a missing or malformed one is a StoreError naming it (and the
        field)."""
        path = self.sweep_json(project, sweep_id)
        if not path.exists():
            raise StoreError(
                f"sweep {sweep_id!r} not found in project {project!r} of store {self.root}"
            )
        return SweepRecord.from_dict(read_json(path), path)

    def iter_sweeps(
        self, project: str, errors: Callable[[Path, StoreError], None] | None = None
    ) -> Iterator[SweepRecord]:
        """Every readable sweep of ``project``, oldest first. A malformed file is skipped and
        passed to ``errors``; an empty one is a sweep id being claimed, skipped silently."""
        for sweep_id in self.sweep_ids(project):
            path = self.sweep_json(project, sweep_id)
            try:
                yield self.read_sweep(project, sweep_id)
            except StoreError as e:
                try:
                    claimed = path.stat().st_size == 0
                except OSError:  # deleted meanwhile
                    continue
                if errors is not None and not claimed:
                    errors(path, e)

    def hypotheses_dir(self, project: str) -> Path:
        return self.project_dir(project) / "hypotheses"

    def hypothesis_yaml(self, project: str, hypothesis_id: str) -> Path:
        if not HYPOTHESIS_RE.match(hypothesis_id):
            raise StoreError(
                f"invalid hypothesis id {hypothesis_id!r}: use letters, digits, '.', '_' and '-'"
            )
        return self.hypotheses_dir(project) / f"{hypothesis_id}.yaml"

    def dag_yaml(self, project: str) -> Path:
        """Parents set by hand: edits of the experiment DAG after the fact."""
        return self.project_dir(project) / "dag.yaml"

    def objects_dir(self, project: str) -> Path:
        return self.project_dir(project) / "objects" / "sha256"

    def object_path(self, project: str, sha256: str) -> Path:
        return self.objects_dir(project) / sha256[:2] / sha256[2:]

    def code_objects_dir(self, project: str) -> Path:
        """Content-addressed code snapshots of sweeps (:class:`CodePaths`)."""
        return self.project_dir(project) / "code"

    def code_paths(self, project: str, code_id: str) -> CodePaths:
        if not re.fullmatch(r"[0-9a-f]{16,64}|\.tmp-[A-Za-z0-9_-]+", code_id):
            raise StoreError(f"invalid code id {code_id!r}")
        return CodePaths(self.code_objects_dir(project) / code_id)

    def keys_dir(self, project: str) -> Path:
        return self.project_dir(project) / ".keys"

    def reruns_dir(self, project: str) -> Path:
        """Working directories of ``hpclab rerun`` (deletable once those runs ended)."""
        return self.project_dir(project) / "reruns"

    def rerun_paths(self, project: str, name: str) -> RerunPaths:
        if not is_valid_run_id(name):
            raise StoreError(f"invalid rerun directory name {name!r}")
        return RerunPaths(self.reruns_dir(project) / name)

    def search_dir(self, project: str) -> Path:
        """Hyperparameter searches (``hydra/sweeper=optuna``): one Optuna journal and one
        description per study."""
        return self.project_dir(project) / "search"

    def study_journal(self, project: str, study: str) -> Path:
        """The study's Optuna JournalStorage file (appended under a file lock: safe on a
        shared filesystem, no database server)."""
        return self.search_dir(project) / f"{check_study_name(study)}.journal"

    def study_json(self, project: str, study: str) -> Path:
        """How the study was started (command, directory, settings): what ``hpclab search
        resume`` runs again."""
        return self.search_dir(project) / f"{check_study_name(study)}.json"

    def study_names(self, project: str) -> list[str]:
        d = self.search_dir(project)
        if not d.is_dir():
            return []
        return sorted(p.stem for p in d.glob("*.json") if STUDY_NAME.fullmatch(p.stem))

    def projects(self) -> list[str]:
        """Projects in the store (directories holding a ``runs/`` folder), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if (p / "runs").is_dir() and PROJECT_RE.match(p.name)
        )

    def is_store(self) -> bool:
        """Whether the root is an hpclab store: a ``VERSION`` file (written on first
        write), a project holding ``runs/`` (stores from before VERSION files), or an empty
        directory (made for a store, nothing written yet)."""
        if not self.root.is_dir():
            return False
        if self.version_file.exists() or self.projects():
            return True
        return not any(self.root.iterdir())

    def require(self) -> Store:
        """This store, or :class:`StoreNotFound` naming the root (and a sibling store its
        name is a typo of): for read commands, which must not create a store."""
        if self.is_store():
            return self
        what = "does not exist" if not self.root.exists() else "is not an hpclab store"
        siblings: list[str] = []
        if self.root.parent.is_dir():
            siblings = [
                p.name
                for p in self.root.parent.iterdir()
                if p != self.root and p.is_dir() and (p / VERSION_FILE).exists()
            ]
        raise StoreNotFound(
            f"store {self.root} {what} (no {VERSION_FILE} file, no project with runs/): check "
            f"--store or $HPCLAB_STORE{did_you_mean(self.root.name, siblings)}"
        )

    def has_project(self, project: str) -> bool:
        """Whether ``project`` exists: its directory holds runs, sweeps, hypotheses or a
        project.yaml."""
        d = self.project_dir(project)
        return any((d / n).exists() for n in ("runs", "sweeps", "hypotheses", "project.yaml"))

    def require_project(self, project: str) -> None:
        """:class:`ProjectNotFound` unless ``project`` exists, listing the projects."""
        if self.has_project(project):
            return
        names = self.projects()
        raise ProjectNotFound(
            f"no project {project!r} in store {self.root} "
            f"(projects: {', '.join(names) or 'none'}){did_you_mean(project, names)}"
        )

    # -- catalog (derived from everything above; deleting it loses nothing) ----------------
    @property
    def catalog_dir(self) -> Path:
        return self.root / ".catalog"

    @property
    def catalog_manifest(self) -> Path:
        """The published version of the catalog: which file holds each table."""
        return self.catalog_dir / "manifest.json"

    def catalog_table(self, table: str, generation: int) -> Path:
        return self.catalog_dir / "tables" / f"{table}.{generation:08d}.parquet"

    def catalog_metrics_dir(self) -> Path:
        return self.catalog_dir / "metrics"

    def catalog_metrics(self, project: str, run_id: str, generation: int) -> Path:
        return self.catalog_metrics_dir() / project / f"{run_id}.{generation:08d}.parquet"

    def catalog_delta(self, table: str, generation: int) -> Path:
        """The rows of the runs changed since ``table``'s base file (or ``keys``: which)."""
        return self.catalog_dir / "tables" / f"{table}.delta.{generation:08d}.parquet"

    def catalog_segment(self, project: str, generation: int, part: str) -> Path:
        """A file of many runs' metrics (what a cold pass writes, a batch at a time)."""
        return self.catalog_metrics_dir() / project / f"seg-{generation:08d}-{part}.parquet"

    @property
    def catalog_lock(self) -> Path:
        return self.catalog_dir / "indexer.lock"

    @property
    def catalog_generation(self) -> Path:
        """The highest generation an indexer has taken (written before its files are)."""
        return self.catalog_dir / "generation"

    @staticmethod
    def catalog_file_generation(path: Path) -> int | None:
        """The generation in the name of a catalog file (a table, delta, metrics file or
        segment, as the methods above name them); None for any other name."""
        found = _CATALOG_GENERATION.search(path.name)
        return int(found.group(1) or found.group(2)) if found else None

    @property
    def site_dir(self) -> Path:
        """Default home of the lab website (``hpclab site build``): derived, deletable."""
        return self.root / ".site"

    # -- runs ---------------------------------------------------------------------
    def run_paths(self, project: str, run_id: str) -> RunPaths:
        if not is_valid_run_id(run_id):
            raise StoreError(f"invalid run id {run_id!r}")
        return RunPaths(self.runs_dir(project) / run_id)

    def run_ids(self, project: str) -> list[str]:
        """Ids of the runs of ``project``, oldest first (ids sort by creation time)."""
        d = self.runs_dir(project)
        if not d.is_dir():
            return []
        return sorted(e.name for e in os.scandir(d) if e.is_dir() and is_valid_run_id(e.name))

    def iter_runs(self, project: str | None = None) -> Iterator[tuple[str, RunPaths]]:
        """(project, paths) of every run, of one project or all."""
        for p in [project] if project else self.projects():
            for run_id in self.run_ids(p):
                yield p, self.run_paths(p, run_id)

    def create_run_dir(self, project: str, run_id: str | None = None) -> RunPaths:
        """Atomically create a new, empty run directory and return its paths.

        With ``run_id=None`` a fresh id is drawn until ``mkdir`` succeeds, so any number of
        processes on any number of nodes get distinct ids with no coordination.
        """
        runs = self.runs_dir(project)
        runs.mkdir(parents=True, exist_ok=True)
        self.ensure_version()
        for _ in range(1000):
            rid = new_run_id() if run_id is None else run_id
            paths = self.run_paths(project, rid)
            try:
                os.mkdir(paths.dir)
            except FileExistsError:
                if run_id is not None:
                    raise RunExists(
                        f"run {run_id!r} already exists in project {project!r}"
                    ) from None
                continue
            return paths
        raise StoreError(f"could not allocate a run id under {runs}")  # pragma: no cover

    def claim_key(self, project: str, key: str, run_id: str) -> str:
        """Bind ``key`` to ``run_id`` unless it is bound already; return the bound run id.

        The claim is a symlink, created atomically: of many processes claiming one key,
        exactly one wins and all of them learn the winner.
        """
        link = self._key_path(project, key)
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(run_id, link)
            return run_id
        except FileExistsError:
            return os.readlink(link)

    def rebind_key(self, project: str, key: str, run_id: str) -> None:
        """Point ``key`` at ``run_id`` (atomic replace), e.g. a new run in the same job."""
        link = self._key_path(project, key)
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(run_id, tmp)
        os.replace(tmp, link)

    def lookup_key(self, project: str, key: str) -> str | None:
        """The run id bound to ``key``, or None."""
        try:
            return os.readlink(self._key_path(project, key))
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EINVAL):
                return None
            raise

    def _key_path(self, project: str, key: str) -> Path:
        if not KEY_RE.match(key):
            raise StoreError(f"invalid run key {key!r}")
        return self.keys_dir(project) / key

    def find_run(self, run_id: str, project: str | None = None) -> tuple[str, RunPaths]:
        """Locate a run by id (in ``project`` or any project); :class:`RunNotFound` if absent."""
        if is_valid_run_id(run_id):
            for p in [project] if project else self.projects():
                paths = self.run_paths(p, run_id)
                if paths.exists():
                    return p, paths
        where = f"project {project!r} of " if project else ""
        raise RunNotFound(f"run {run_id!r} not found in {where}store {self.root}")

    # -- records ------------------------------------------------------------------
    def read_record(self, paths: RunPaths) -> RunRecord:
        """Parse ``run.json``; a missing or malformed file is a StoreError naming it."""
        try:
            data = read_json(paths.run_json)
        except FileNotFoundError:
            raise RunNotFound(f"{paths.run_json}: no such run record") from None
        try:
            return RunRecord.from_dict(data)
        except (TypeError, ValueError, KeyError) as e:
            raise StoreError(f"{paths.run_json}: malformed run record ({e})") from None

    def write_record(self, paths: RunPaths, record: RunRecord, *, fsync: bool = True) -> None:
        """Replace ``run.json`` atomically (``fsync=False`` for bulk writes that can be redone)."""
        self.ensure_version()
        write_json_atomic(paths.run_json, record.to_dict(), fsync=fsync)

    def advance_status(
        self, paths: RunPaths, record: RunRecord, *, fsync: bool = True
    ) -> RunRecord:
        """Write ``record`` unless the stored status is already further along.

        For writers that are not the run's owner (the login node marking a run queued
        after the job already started): returns the record that is on disk afterwards.
        """
        try:
            current = self.read_record(paths)
        except RunNotFound:
            current = None
        if current is not None and not is_forward(current.status, record.status):
            return current
        self.write_record(paths, record, fsync=fsync)
        return record


def check_project_name(project: str) -> None:
    """Project names become directory names: letters, digits, ``._-``."""
    if not isinstance(project, str) or not PROJECT_RE.match(project):
        raise StoreError(f"invalid project name {project!r}: use letters, digits, '.', '_' and '-'")
