"""Named errors. Every error a user can cause is a subclass of :class:`HpclabError`.

The CLI turns any :class:`HpclabError` into one line on stderr and a non-zero exit;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HpclabError(Exception):
    """Base class of every error hpclab raises on purpose (bad input, missing runs)."""

    exit_code = 1


class StoreError(HpclabError):
    """The store is missing, unreadable, or a file in it is malformed."""


class RunNotFound(StoreError):
    """No run with this id (or key) exists in the store."""


class RunExists(StoreError):
    """A run id asked for explicitly is already taken."""


class MetricError(HpclabError, ValueError):
    """A metric name or value cannot be logged (non-numeric value, bad name, bad step)."""


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
