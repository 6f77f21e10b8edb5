"""A study in the store: Optuna's JournalStorage file under ``<project>/search/`` and a
description of how it was started (``<study>.json``), so ``hpclab search resume`` can go
on after the login shell that drove it is gone.

The journal is appended under a file lock (Optuna's ``JournalFileBackend``), which works
on a shared filesystem with no database server; a job on a compute node opens the same
file to report intermediate values (pruning).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hpclab.errors import SearchError, StoreError
from hpclab.store import Store
from hpclab.store.atomic import read_json, write_json_atomic
from hpclab.store.record import utcnow_iso

FORMAT = 1


@dataclass
class StudyInfo:
    """``<study>.json``: the command that started the study and what it searches."""

    name: str
    project: str
    directions: list[str]
    objectives: list[str]  # what each value is: "return" or a summary metric, "cost"
    n_trials: int
    n_jobs: int
    argv: list[str] = field(default_factory=list)  # sys.argv of the driver
    python: str = ""
    cwd: str = ""
    created_at: str = ""
    space: dict[str, str] = field(default_factory=dict)  # key -> distribution, as text
    budget: dict[str, float] = field(default_factory=dict)  # cpu_hours/gpu_hours
    pruner: dict[str, Any] | None = None  # the pruner's config (jobs build it again)
    stopped: str | None = None  # why no more trials were proposed (budget, failures)
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any, where: Path) -> StudyInfo:
        if not isinstance(doc, dict):
            raise SearchError(f"{where}: not a study description (a JSON object expected)")
        known = set(cls.__dataclass_fields__)
        try:
            info = cls(**{k: v for k, v in doc.items() if k in known})
        except TypeError as e:
            raise SearchError(f"{where}: not a study description ({e})") from None
        if not isinstance(info.n_trials, int) or not isinstance(info.argv, list):
            raise SearchError(f"{where}: n_trials and argv must be a number and a list")
        return info


def journal_storage(path: Path) -> Any:
    """Optuna's JournalStorage on ``path`` (created with its directory)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def write_info(store: Store, info: StudyInfo) -> Path:
    path = store.study_json(info.project, info.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not info.created_at:
        info.created_at = utcnow_iso()
    write_json_atomic(path, info.to_json())
    return path


def read_info(store: Store, project: str, name: str) -> StudyInfo:
    try:
        path = store.study_json(project, name)
    except StoreError as e:
        raise SearchError(str(e)) from None
    try:
        doc = read_json(path)
    except FileNotFoundError:
        known = ", ".join(store.study_names(project)) or "none"
        raise SearchError(f"no study {name!r} in project {project!r} (studies: {known})") from None
    except (OSError, ValueError) as e:
        raise SearchError(f"{path}: unreadable ({e})") from None
    return StudyInfo.from_json(doc, path)


def load_study(store: Store, project: str, name: str, **kwargs: Any) -> Any:
    """The Optuna study ``name`` of ``project`` from its journal."""
    import optuna

    path = store.study_journal(project, name)
    if not path.is_file():
        raise SearchError(f"{path}: no such study journal")
    return optuna.load_study(study_name=name, storage=journal_storage(path), **kwargs)
