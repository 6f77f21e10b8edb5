"""Named errors. Every error a user can cause is a subclass of :class:`HpclabError`.

The CLI turns any :class:`HpclabError` into one line on stderr and a non-zero exit;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any


class HpclabError(Exception):
    """Base class of every error hpclab raises on purpose (bad input, missing runs)."""

    exit_code = 1


class StoreError(HpclabError):
    """The store is missing, unreadable, or a file in it is malformed."""


class UnsupportedCodec(StoreError):
    """A Zarr array's metadata asks for a codec (or data type, chunk grid, key encoding)
    that hpclab's own chunk reader does not implement; the message names it and the file.
    Readers fall back to the zarr API for such arrays."""


class RunNotFound(StoreError):
    """No run with this id (or key) exists in the store."""


class StoreNotFound(StoreError):
    """``--store`` (or ``$HPCLAB_STORE``) names no hpclab store: a missing directory, or
    one with neither a VERSION file nor a project holding ``runs/`` (a typo)."""


class ProjectNotFound(StoreError):
    """A command that reads a project was given one the store does not hold."""


class RunExists(StoreError):
    """A run id asked for explicitly is already taken."""


class LogsNotFound(StoreError):
    """A run has no captured output (``capture_output`` was off, or it has not started)."""


class MetricError(HpclabError, ValueError):
    """A metric name or value cannot be logged (non-numeric value, bad name, bad step)."""


class MediaError(HpclabError, ValueError):
    """An image, histogram or table cannot be logged (bad value, past a limit)."""


class ArtifactError(HpclabError):
    """An artifact path or glob is unusable (missing path, traversal outside the run)."""


class DatasetError(HpclabError):
    """A dataset to fingerprint is missing or unreadable."""


class SnapshotError(HpclabError):
    """The code or environment snapshot could not be taken."""


class ConfigError(HpclabError):
    """A setting or configuration value is invalid."""


class SchedulerError(HpclabError):
    """The scheduler could not be asked or told something (a Slurm command is missing,
    failed or timed out; an invalid job id); the message names the command."""


class CatalogError(HpclabError):
    """The catalog cannot be built or queried (another indexer holds it, bad SQL)."""


class SchemaMismatch(ValueError):
    """A catalog row does not fit its table: a field no column has, or a column no field
    fills (names the table and the field). A bug, not bad input: not an
    :class:`HpclabError`, so it keeps its traceback."""


class DagError(HpclabError):
    """An experiment DAG edit is impossible: a cycle (named), an unknown run."""


class HypothesisError(HpclabError):
    """A hypothesis file or definition is invalid (names the file and the field)."""


class RestoreError(HpclabError):
    """A run's code or environment cannot be restored, rerun or rebuilt as asked (no
    snapshot, a non-empty target, an unreachable commit that leaves nothing to restore)."""


class UnsafePathError(RestoreError):
    """An archive member or patch path would write outside the target directory (absolute,
    ``..``, through a symlink, a device file); the message names the path and its file."""


class SiteError(HpclabError):
    """The lab website cannot be built, served or exported (no template, MkDocs failed,
    port in use, no Chromium for a PDF)."""


class SearchError(HpclabError):
    """A hyperparameter search cannot start or go on (a bad search space or objective, an
    unknown study, a trial whose value cannot be read)."""


class ImportSourceError(HpclabError):
    """Runs cannot be imported from a source (``hpclab import``): not a directory, no event
    files, an unreadable file; the message names the path."""


class EvalError(HpclabError, ValueError):
    """Predictions cannot be evaluated (:func:`hpclab.eval.evaluate`): lengths that differ,
    an unknown task, NaN labels, a slice with too many values; the message names the
    argument."""


class ProfileError(HpclabError, ValueError):
    """A latency profile cannot be taken (:func:`hpclab.profile.latency`): no inputs, a bad
    count or name, a function that raised; the message names the argument."""


class TrialPruned(Exception):
    """Raised in a job by :func:`hpclab.search.report` when the study's pruner stops its
    trial. Not an error: the launcher's task wrapper ends the run ``completed``, marked
    pruned (``summary["search/pruned_at"]``), and the search tells Optuna it was pruned."""

    def __init__(self, step: int) -> None:
        super().__init__(f"trial pruned at step {step}")
        self.step = step


def did_you_mean(word: str, choices: Collection[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'train'?"`` for the closest of ``choices`` to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_keys(
    mapping: Mapping[Any, Any],
    valid: Collection[str],
    where: str,
    error: type[HpclabError] = ConfigError,
) -> None:
    """Raise ``error`` for the first key of ``mapping`` not in ``valid``, naming ``where``
    (the file and field), the key, the valid names and the closest one (a typo)."""
    unknown = sorted((k for k in mapping if k not in valid), key=str)
    if not unknown:
        return
    key = unknown[0]
    # 0.7, not difflib's 0.6: "aggregation" is no typo of "direction"
    close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.7)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise error(f"{where}: unknown key {key!r} (valid: {', '.join(valid)}){hint}")
