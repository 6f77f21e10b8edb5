"""The shapes of the JSON documents in a run directory, for type checking their writers
and readers (``run.json`` is :class:`~hpclab.store.record.RunRecord`, a sweep file
:class:`~hpclab.store.sweep.SweepRecord`).

They describe what hpclab writes; a reader of a file from the store still validates it
(files are user-editable and may be from another version). Keys marked ``NotRequired``
are in a ``total=False`` class: some writers or versions leave them out.
"""

from __future__ import annotations

from typing import Any, TypedDict


# -- snapshot/code.json -----------------------------------------------------------------
class GitInfo(TypedDict):
    """The repository a run's code came from."""

    toplevel: str
    relpath: str
    commit: str | None
    branch: str | None
    detached: bool
    remotes: dict[str, str]
    is_dirty: bool
    object_format: str
    submodules: dict[str, str]


class _CodeSourceRequired(TypedDict):
    kind: str  # git | source
    git: GitInfo | None
    archive: str | None  # file name of the untracked (git) or whole-tree (source) archive
    manifest: str


class CodeSource(_CodeSourceRequired, total=False):
    """The part of ``code.json`` that says where the code came from and which files hold it."""

    patch: str | None  # file name of the uncommitted diff (git only)


class _CodeInfoRequired(CodeSource):
    format: int
    taken_at: str
    code_dir: str
    limits: dict[str, int]
    archived_files: int
    stored_bytes: int
    skipped: list[dict[str, Any]]
    redactions: list[dict[str, Any]]


class CodeIsolation(TypedDict, total=False):
    """``code.json`` ``isolation``: where the run's code came from.

    ``mode`` ``sweep``: snapshotted once at submission, and the task ran from that copy
    (``tree``, under ``<project>/code/<code_id>/``); ``in-place``: the task ran in the
    working tree and snapshotted it when it started; ``code_changed_since_submit`` says
    whether that differs from the working tree at submission (``submitted_code_id``).
    """

    mode: str  # "sweep" | "in-place"
    code_id: str  # content hash of the manifest (hpclab.tracking.snapshot.manifest_id)
    submitted_code_id: str
    submitted_at: str
    tree: str
    code_changed_since_submit: bool


class CodeInfo(_CodeInfoRequired, total=False):
    """``snapshot/code.json``: what the code snapshot holds and what it left out."""

    skipped_not_listed: int
    redactions_not_listed: int
    code_id: str  # the tree's content hash (hpclab.tracking.snapshot.manifest_id)
    isolation: CodeIsolation


# -- artifacts.json -------------------------------------------------------------------
class ArtifactEntry(TypedDict):
    """One logged artifact file: its path under ``artifacts/`` and its content."""

    path: str
    sha256: str
    size: int
    logged_at: str


class ArtifactReference(TypedDict):
    """An artifact recorded where it lies, not copied (``run.log_artifact_reference``:
    checkpoints from the integrations); ``sha256`` is None when it was not hashed."""

    path: str
    sha256: str | None
    size: int
    logged_at: str
    kind: str  # "reference"
    source: str  # absolute path of the file


ArtifactsManifest = list[ArtifactEntry | ArtifactReference]
"""``artifacts.json``: every artifact file of the run."""


# -- snapshot/datasets.json -----------------------------------------------------------
class _DatasetFileRequired(TypedDict):
    path: str
    size: int
    sha256: str | None  # None when the dataset was recorded without hashing


class DatasetFile(_DatasetFileRequired, total=False):
    schema: dict[str, Any] | None


class DatasetEntry(TypedDict):
    """A dataset's fingerprint (``hpclab.Run.log_dataset``)."""

    name: str
    path: str
    kind: str  # file | directory
    size: int
    n_files: int
    sha256: str | None
    schema: dict[str, Any] | None
    files: list[DatasetFile]


DatasetsDocument = list[DatasetEntry]
"""``snapshot/datasets.json``: every dataset the run recorded, in first-recorded order."""


# -- repro.json -----------------------------------------------------------------------
class ReproRecord(TypedDict):
    """``repro.json`` of a rerun: how its metrics compare with the original's."""

    format: int
    of: str
    run_id: str
    project: str
    verdict: str  # reproduced | drifted
    reason: str
    rtol: float
    atol: float
    n_compared: int
    n_mismatched: int
    max_abs_diff: float | None
    max_rel_diff: float | None
    worst_metric: str | None
    worst_step: int | None
    original_status: str
    rerun_status: str
    checked_at: str
    metrics: list[dict[str, Any]]


# -- metrics.zarr/zarr.json: the commit record ----------------------------------------
class SeriesCommit(TypedDict):
    """One metric in the commit record: its array and how many rows readers may trust."""

    array: str
    length: int
    last_step: int


class MetricsCommit(TypedDict, total=False):
    """The commit record in the metrics group's attributes (``{}`` before the first
    commit, hence every key optional)."""

    format: int
    columns: list[str]
    seq: int
    updated_at: float
    series: dict[str, SeriesCommit]
