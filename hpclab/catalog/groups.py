"""Seed groups: the runs that are repeats of one experiment, and what sets each apart.

A **seed group** is the set of runs with the same resolved config except the seed keys
(``features.seeds``) and the ignored paths (``features.ignore``), the same code identity
(``code.json``'s ``code_id``) and the same data fingerprints (``datasets.json``). Within a
group, each seed value has one **sample**: the earliest-created completed run of that
seed. Later completed runs of the same seed (``hpclab rerun``, ``hpclab repro``, the sweep
launched again) are **reproductions** of it: shown beside, never counted as extra
samples. Runs that have not completed are ``pending``. Statistics use samples only.

A group's **label** is its config diff against the project baseline (``optim.lr=0.03``),
never a hash; where two labels collide (same config, different code or data) the
shortest distinguishing part is added (``code=1a2b3c4d``). See docs/statistics.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from hpclab.catalog.diffs import kept_positions
from hpclab.catalog.project_config import ProjectConfig, is_seed_path

FeatureRow = tuple[str, str, float | None]
MAX_BASELINE_PATHS = 4  # the baseline group's own label: its values of the varied paths


@dataclass(frozen=True)
class Member:
    """What grouping needs of one run."""

    run_id: str
    status: str
    created_at: str
    features: Sequence[FeatureRow]
    code_id: str | None
    data: tuple[tuple[str, str], ...]  # (dataset name, sha256), sorted
    # the features not under features.ignore, when the caller has them (the knowledge
    # layer keeps them per run): not matched against features.ignore again
    kept: Sequence[FeatureRow] | None = None


@dataclass
class Group:
    id: str
    config: dict[str, str]  # path -> JSON value, seeds and ignored paths left out
    code_id: str | None
    data: tuple[tuple[str, str], ...]
    members: list[str] = field(default_factory=list)  # every run, by creation
    samples: dict[str, str] = field(default_factory=dict)  # seed JSON -> run
    label: str = ""


@dataclass(frozen=True)
class Role:
    group_id: str
    seed: str  # JSON of the run's seed values
    role: str  # sample, reproduction or pending
    of_run: str | None  # a reproduction's sample


@dataclass
class Grouping:
    groups: dict[str, Group]
    roles: dict[str, Role]  # run -> its place

    def samples(self, group_id: str) -> dict[str, str]:
        return self.groups[group_id].samples


def group_runs(members: Sequence[Member], config: ProjectConfig) -> Grouping:
    """Seed groups of a project's runs. A run that recorded no config is a group of its
    own: nothing says it repeats another."""
    groups: dict[str, Group] = {}
    roles: dict[str, Role] = {}
    seeds: dict[str, str] = {}
    alone: set[str] = set()
    ids: dict[tuple[Any, ...], str] = {}  # a group's runs differ only in seeds: one hash
    for m in sorted(members, key=lambda m: (m.created_at, m.run_id)):
        if m.kept is not None:
            kept, seed = split_seed(m.kept, config, filtered=True)
        else:
            kept, seed = split_seed(m.features, config)
        if m.features:
            key = (tuple(kept), m.code_id, m.data)
            gid = ids.get(key) or ids.setdefault(key, group_id(kept, m.code_id, m.data))
        else:
            gid = group_id([("run", m.run_id)], m.code_id, m.data)
            alone.add(gid)
        g = groups.get(gid)
        if g is None:
            g = groups[gid] = Group(gid, dict(kept), m.code_id, m.data)
        g.members.append(m.run_id)
        seeds[m.run_id] = seed
        if m.status != "completed":
            roles[m.run_id] = Role(gid, seed, "pending", None)
        elif seed in g.samples:
            roles[m.run_id] = Role(gid, seed, "reproduction", g.samples[seed])
        else:
            g.samples[seed] = m.run_id
            roles[m.run_id] = Role(gid, seed, "sample", None)
    label_groups({k: g for k, g in groups.items() if k not in alone}, config)
    for gid in alone:
        groups[gid].label = f"run {groups[gid].members[0]} (no config)"
    return Grouping(groups, roles)


def split_seed(
    features: Sequence[FeatureRow], config: ProjectConfig, *, filtered: bool = False
) -> tuple[list[tuple[str, str]], str]:
    """(the config without seeds and ignored paths, the seed values as JSON).
    ``filtered``: ``features`` hold no path under features.ignore already."""
    rows = features if isinstance(features, (list, tuple)) else list(features)
    kept_at, seed_at = _roles(
        tuple(map(_PATH, rows)), () if filtered else config.feature_ignore, config.seed_keys
    )
    kept = [(rows[i][0], rows[i][1]) for i in kept_at]
    return kept, _seed_json(tuple((rows[i][0], rows[i][1]) for i in seed_at))


_PATH = itemgetter(0)


@functools.lru_cache(maxsize=4096)
def _roles(
    paths: tuple[str, ...], ignore: tuple[str, ...], seed_keys: tuple[str, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The positions of the kept rows and of the seed rows among a run's feature paths:
    a sweep's runs share one sequence of paths, so it is matched once, not per run."""
    kept: list[int] = []
    seeds: list[int] = []
    for i in kept_positions(paths, ignore):
        (seeds if is_seed_path(paths[i], seed_keys) else kept).append(i)
    return tuple(kept), tuple(seeds)


@functools.lru_cache(maxsize=4096)
def _seed_json(seeds: tuple[tuple[str, str], ...]) -> str:
    """The seed values as one JSON object (the same few seeds recur in every group)."""
    seed = {}
    for path, value in seeds:
        v = json.loads(value)
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # seed 0 and seed 0.0 are one seed
        seed[path] = v
    return json.dumps(seed, sort_keys=True)


def group_id(
    config: Sequence[tuple[str, str]], code_id: str | None, data: tuple[tuple[str, str], ...]
) -> str:
    blob = json.dumps([sorted(config), code_id, [list(d) for d in data]])
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


# -- labels --------------------------------------------------------------------------
def label_groups(
    groups: Mapping[str, Group], config: ProjectConfig, baseline: Mapping[str, str] | None = None
) -> None:
    """Set every group's label: its diff against the baseline config, made unique."""
    if not groups:
        return
    base = dict(baseline) if baseline is not None else _baseline_config(groups, config)
    varied: Counter[str] = Counter()
    diffs: dict[str, list[str]] = {}
    for g in groups.values():
        paths = _diff_paths(g.config, base)
        diffs[g.id] = paths
        varied.update(paths)
    for g in groups.values():
        paths = diffs[g.id]
        if paths:
            g.label = describe(g.config, paths)
        else:  # the baseline itself: its own values of what the others vary
            own = [p for p, _ in varied.most_common(MAX_BASELINE_PATHS)]
            g.label = describe(g.config, sorted(own)) if own else "baseline"
    _disambiguate(list(groups.values()))


def _baseline_config(groups: Mapping[str, Group], config: ProjectConfig) -> dict[str, str]:
    """statistics.baseline's group config, else the most common value of each path
    (ties: the value of the earliest group holding the path)."""
    ordered = list(groups.values())  # made in creation order of their first run
    if config.baseline_run:
        for g in groups.values():
            if config.baseline_run in g.members:
                return dict(g.config)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    first: dict[tuple[str, str], int] = {}
    for i, g in enumerate(ordered):
        for path, value in g.config.items():
            counts[path][value] += 1
            first.setdefault((path, value), i)
    base = {}
    for path, c in counts.items():
        n_with = sum(c.values())
        if n_with * 2 < len(ordered):  # most groups do not have the path
            continue
        base[path] = min(c, key=lambda v: (-c[v], first[(path, v)]))
    return base


def _diff_paths(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    return sorted(p for p in a.keys() | b.keys() if a.get(p) != b.get(p))


def describe(config: Mapping[str, str], paths: Sequence[str]) -> str:
    """``optim.lr=0.03 optim.name=adamw``; a path the config lacks as ``~path``."""
    parts = []
    for p in paths:
        if p in config:
            parts.append(f"{p}={_plain(config[p])}")
        else:
            parts.append(f"~{p}")
    return " ".join(parts)


def pair_labels(a: Group, b: Group) -> tuple[str, str]:
    """What a and b set differently: each side's values of the paths where they differ
    (and the code / data when the configs match)."""
    paths = _diff_paths(a.config, b.config)
    la, lb = describe(a.config, paths), describe(b.config, paths)
    if a.code_id != b.code_id:
        la, lb = _join(la, _code(a)), _join(lb, _code(b))
    if a.data != b.data:
        la, lb = _join(la, _data(a, b)), _join(lb, _data(b, a))
    return la or a.label, lb or b.label


def _disambiguate(groups: list[Group]) -> None:
    by_label: dict[str, list[Group]] = defaultdict(list)
    for g in groups:
        by_label[g.label].append(g)
    for same in by_label.values():
        if len(same) < 2:
            continue
        codes = {g.code_id for g in same}
        data = {g.data for g in same}
        for g in same:
            extra = []
            if len(codes) > 1:
                extra.append(_code(g))
            if len(data) > 1 and (len(codes) == 1 or _clash(g, same)):
                extra.append(_data(g, *[o for o in same if o is not g]))
            g.label = _join(g.label, " ".join(extra))


def _clash(g: Group, same: list[Group]) -> bool:
    """Another group has g's code id: the code alone does not tell them apart."""
    return any(o is not g and o.code_id == g.code_id for o in same)


def _code(g: Group) -> str:
    return f"code={(g.code_id or 'unknown')[:8]}"


def _data(g: Group, *others: Group) -> str:
    """What g's data fingerprints are where they differ from the others' (those of the
    same code: code ids already tell the rest apart); a data set g lacks as ~data.name."""
    same_code = [o for o in others if o.code_id == g.code_id] or list(others)
    mine = dict(g.data)
    parts = []
    for name in sorted(mine.keys() | {n for o in same_code for n, _ in o.data}):
        theirs = {dict(o.data).get(name) for o in same_code}
        if name not in mine:
            parts.append(f"~data.{name}")
        elif theirs != {mine[name]}:
            parts.append(f"data.{name}={mine[name][:8]}")
    return " ".join(parts) or "data=same"


def _join(a: str, b: str) -> str:
    return f"{a} {b}".strip()


def _plain(value: str) -> str:
    """A JSON value as a reader writes it: strings unquoted, unless the text would read
    as another value (the string "0.03" next to the number 0.03, "null" next to null)."""
    try:
        v: Any = json.loads(value)
    except ValueError:
        return value
    if not isinstance(v, str):
        return value
    try:
        json.loads(v)
    except ValueError:
        return v if v.strip() == v and v else value
    return value
