"""What ``hpclab search list|show|resume`` read: the studies of a store and their trials."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hpclab.errors import SearchError
from hpclab.search.driver import NOT_RUN_ATTR, PRUNED_ATTR, RUN_ATTR
from hpclab.search.study import StudyInfo, load_study, read_info
from hpclab.store import Store


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str  # COMPLETE, FAIL, PRUNED, RUNNING, WAITING; NOT_RUN: asked, over the budget
    values: list[float] | None
    params: dict[str, Any]
    run_id: str | None
    pruned_at: int | None
    on_front: bool  # best (one objective) or on the Pareto front (several)


@dataclass(frozen=True)
class StudySummary:
    info: StudyInfo
    trials: list[TrialRow]

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out


def find_study(store: Store, name: str, project: str | None) -> str:
    """The project holding study ``name`` (the given one, else the only one that has it)."""
    if project is not None:
        store.require_project(project)
        return project
    having = [p for p in store.projects() if name in store.study_names(p)]
    if len(having) == 1:
        return having[0]
    if not having:
        known = sorted({s for p in store.projects() for s in store.study_names(p)})
        raise SearchError(
            f"no study {name!r} in {store.root} (studies: {', '.join(known) or 'none'})"
        )
    raise SearchError(f"study {name!r} is in projects {', '.join(having)}: give --project")


def summarize(store: Store, project: str, name: str) -> StudySummary:
    info = read_info(store, project, name)
    study = load_study(store, project, name)
    trials = study.get_trials(deepcopy=False)
    front = {t.number for t in _front(study)}
    rows = [
        TrialRow(
            number=t.number,
            state="NOT_RUN" if NOT_RUN_ATTR in t.user_attrs else t.state.name,
            values=list(t.values) if t.values is not None else None,
            params=dict(t.params),
            run_id=t.user_attrs.get(RUN_ATTR),
            pruned_at=t.user_attrs.get(PRUNED_ATTR),
            on_front=t.number in front,
        )
        for t in trials
    ]
    return StudySummary(info, rows)


def studies(store: Store, project: str | None = None) -> list[StudySummary]:
    projects = [project] if project else store.projects()
    out = []
    for p in projects:
        for name in store.study_names(p):
            try:
                out.append(summarize(store, p, name))
            except SearchError as e:  # one unreadable study does not hide the others
                import logging

                logging.getLogger(__name__).warning("%s", e)
    return out


def _front(study: Any) -> list[Any]:
    try:
        trials = study.best_trials  # one objective: the best; several: the Pareto front
    except (ValueError, RuntimeError):
        return []
    return [t for t in trials if t.values and all(math.isfinite(v) for v in t.values)]


@dataclass(frozen=True)
class ResumeCommand:
    argv: list[str]
    cwd: str
    env: dict[str, str]


def resume_command(store: Store, project: str, name: str) -> ResumeCommand:
    """The command that started the study, again, told to resume it: its trials left
    running are collected from their runs, then the search goes on to ``n_trials``."""
    import os
    import sys

    info = read_info(store, project, name)
    if not info.argv:
        raise SearchError(f"study {name!r}: its description has no command to run again")
    python = info.python if info.python and os.path.exists(info.python) else sys.executable
    if not os.path.isdir(info.cwd):
        raise SearchError(f"study {name!r}: its directory {info.cwd} is gone")
    args = [a for a in info.argv if not a.startswith(("hydra.sweeper.study_name=",))]
    argv = [python, *args, f"hydra.sweeper.study_name={name}", "hydra.sweeper.resume=true"]
    env = {**os.environ, "HPCLAB_STORE": str(store.root), "HPCLAB_PROJECT": project}
    return ResumeCommand(argv, info.cwd, env)


def trial_rows(store: Store, project: str) -> list[dict[str, Any]]:
    """Every trial of the project's studies as ``search_trials`` columns (the catalog's
    table); an unreadable study is skipped with a warning naming it."""
    import json
    import logging

    out: list[dict[str, Any]] = []
    for name in store.study_names(project):
        try:
            s = summarize(store, project, name)
        except Exception as e:  # noqa: BLE001  (a torn journal must not stop the indexer)
            logging.getLogger(__name__).warning("study %s/%s: not indexed (%s)", project, name, e)
            continue
        for t in s.trials:
            finite = t.values is not None and all(math.isfinite(v) for v in t.values)
            out.append(
                {
                    "project": project,
                    "study": name,
                    "number": t.number,
                    "state": t.state,
                    "run_id": t.run_id,
                    "objectives": list(s.info.objectives),
                    "directions": list(s.info.directions),
                    "value": t.values[0] if t.values and finite else None,
                    "values": list(t.values) if t.values and finite else None,
                    "params": json.dumps(t.params, sort_keys=True, default=str),
                    "pruned_at": t.pruned_at if isinstance(t.pruned_at, int) else None,
                    "on_front": t.on_front,
                }
            )
    return out
