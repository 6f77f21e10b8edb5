"""The shapes of the JSON documents in a run directory, for type checking their writers
and readers (``run.json`` is :class:`~hpclab.store.record.RunRecord`, a sweep file
:class:`~hpclab.store.sweep.SweepRecord`).

They describe what hpclab writes; a reader of a file from the store still validates it
(files are user-editable and may be from another version). Keys marked ``NotRequired``
are in a ``total=False`` class: some writers or versions leave them out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from hpclab.errors import StoreError
from hpclab.store.atomic import read_json, read_yaml
from hpclab.store.record import INT64_MAX, short_repr


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
class _SeriesCommitKeys(TypedDict):
    array: str
    length: int
    last_step: int


class SeriesCommit(_SeriesCommitKeys, total=False):
    """One metric in the commit record: its array and how many rows readers may trust;
    ``chunk_rows`` only for an array in the writer's own layout (hpclab.tracking.metrics)."""

    chunk_rows: int


class MetricsCommit(TypedDict, total=False):
    """The commit record in the metrics group's attributes (``{}`` before the first
    commit, hence every key optional)."""

    format: int
    columns: list[str]
    seq: int
    updated_at: float
    series: dict[str, SeriesCommit]


# -- validating readers ---------------------------------------------------------------
# For readers that show a file's fields one by one (``hpclab runs show``): a field of the
# wrong type is a StoreError naming the file and the field, never an AttributeError.
def _bad(path: Path, field: str, what: str, value: Any) -> StoreError:
    return StoreError(
        f"{path}: malformed, field {field!r}: expected {what}, got {short_repr(value)}"
    )


def _object_field(path: Path, doc: dict[str, Any], field: str) -> None:
    if doc.get(field) is not None and not isinstance(doc[field], dict):
        raise _bad(path, field, "an object", doc[field])


def read_code_info(path: Path) -> dict[str, Any]:
    """``snapshot/code.json`` as an object whose ``git`` and ``isolation`` are objects (or
    absent) and whose ``isolation.imported_outside`` is a list of strings."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise _bad(path, "(top level)", "an object", doc)
    _object_field(path, doc, "git")
    _object_field(path, doc, "isolation")
    outside = (doc.get("isolation") or {}).get("imported_outside")
    if outside is not None and not _strings(outside):
        raise _bad(path, "isolation.imported_outside", "a list of strings", outside)
    return doc


def read_notes(path: Path) -> dict[str, Any]:
    """``notes.yaml`` as an object (empty for an empty file) whose ``tags`` is a list of
    strings and whose ``text`` is a string (or absent)."""
    doc = read_yaml(path) or {}
    if not isinstance(doc, dict):
        raise _bad(path, "(top level)", "a mapping", doc)
    if doc.get("tags") is not None and not _strings(doc["tags"]):
        raise _bad(path, "tags", "a list of strings", doc["tags"])
    if doc.get("text") is not None and not isinstance(doc["text"], str):
        raise _bad(path, "text", "a string", doc["text"])
    return doc


def read_artifacts(path: Path) -> list[dict[str, Any]]:
    """``artifacts.json`` as a list of entries, each with a string ``path``, a ``size``
    in bytes and a string (or null) ``sha256`` and ``source``."""
    doc = read_json(path)
    if not isinstance(doc, list):
        raise _bad(path, "(top level)", "a list", doc)
    for i, entry in enumerate(doc):
        where = f"[{i}]"
        if not isinstance(entry, dict):
            raise _bad(path, where, "an object", entry)
        if not isinstance(entry.get("path"), str):
            raise _bad(path, f"{where}.path", "a string", entry.get("path"))
        size = entry.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= INT64_MAX:
            raise _bad(path, f"{where}.size", "a size in bytes", size)
        for key in ("sha256", "source", "kind"):
            if entry.get(key) is not None and not isinstance(entry[key], str):
                raise _bad(path, f"{where}.{key}", "a string", entry[key])
    return doc


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
