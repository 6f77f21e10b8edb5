"""The experiment DAG: which run each run derives from, and by which rule.

A run has at most one parent. The rules, strongest first:

* ``manual``: ``hpclab dag set-parent`` (kept in ``<project>/dag.yaml``, a file in the store
  so re-indexing from scratch loses nothing; a ``null`` parent there detaches a run);
* ``sweep``: the run is a point of a sweep launched with ``hpclab.parent=RUN``: the sweep's
  base run (its points are siblings under it);
* ``explicit``: ``hpclab.init(parent=...)`` or an ``hpclab.parent=RUN`` override;
* ``naming``: the project's ``naming.regex`` on the run's name (``12_from_8_lr`` has the
  parent named ``8_...``), with the group names from ``project.yaml``.

networkx holds the graph. An edge that would close a cycle is dropped (the weakest rule in
the cycle goes) and reported with the cycle; an edit that would close one is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpclab.catalog.user_regex import search_groups
from hpclab.errors import DagError, RunNotFound
from hpclab.store import Store
from hpclab.store.atomic import read_yaml, write_yaml_atomic
from hpclab.store.record import utcnow_iso

if TYPE_CHECKING:
    import networkx as nx

RULES = ("manual", "sweep", "explicit", "naming")  # strongest first
_STRENGTH = {rule: i for i, rule in enumerate(RULES)}


@dataclass(frozen=True)
class RunNode:
    """What the DAG needs to know of a run."""

    run_id: str
    name: str | None = None
    parent: str | None = None  # as recorded by the run (init(parent=) / hpclab.parent)
    sweep_id: str | None = None
    created_at: str | None = None


_NAMING = "project.yaml naming.regex"


@dataclass(frozen=True)
class Naming:
    """The project's naming rule: ``regex`` with an id group and a parent group."""

    regex: str
    id_group: str = "id"
    parent_group: str = "parent"


@dataclass(frozen=True)
class Edge:
    parent: str
    child: str
    rule: str
    detail: str | None = None


class Dag:
    """A project's experiment DAG (a forest: one parent per run). ``dropped`` says, one
    message per cycle, which edge :func:`build_dag` left out to break it (the indexer
    reports them; a library caller may log or ignore them)."""

    def __init__(
        self, run_ids: Iterable[str], edges: Iterable[Edge], dropped: Iterable[str] = ()
    ) -> None:
        self.dropped: tuple[str, ...] = tuple(dropped)
        import networkx as nx  # on use: the command line and a quiet pass skip it

        self.graph: nx.DiGraph = nx.DiGraph()
        self.graph.add_nodes_from(run_ids)
        self.edges: dict[str, Edge] = {}
        self._places: dict[str, tuple[str, int]] = {}  # run -> (root, depth), as asked
        for e in edges:
            self.graph.add_edge(e.parent, e.child, rule=e.rule)
            self.edges[e.child] = e

    def parent(self, run_id: str) -> str | None:
        edge = self.edges.get(run_id)
        return edge.parent if edge else None

    def children(self, run_id: str) -> list[str]:
        return sorted(self.graph.successors(run_id)) if run_id in self.graph else []

    def lineage(self, run_id: str) -> list[str]:
        """The run's ancestors from its root down to the run itself."""
        out = [run_id]
        while (parent := self.parent(out[-1])) is not None:
            out.append(parent)
        return out[::-1]

    def root(self, run_id: str) -> str:
        return self._place(run_id)[0]

    def depth(self, run_id: str) -> int:
        return self._place(run_id)[1]

    def _place(self, run_id: str) -> tuple[str, int]:
        """(root, depth), remembered for every run on the way up: a long chain of runs
        costs O(runs) in all, not a walk to the root per run (O(runs^2))."""
        path = []
        node: str | None = run_id
        while node is not None and node not in self._places:
            path.append(node)
            node = self.parent(node)
        root, depth = self._places[node] if node is not None else (path[-1], -1)
        for n in reversed(path):
            depth += 1
            self._places[n] = (root, depth)
        return self._places[run_id]

    def descendants(self, run_id: str) -> set[str]:
        import networkx as nx

        return set(nx.descendants(self.graph, run_id)) if run_id in self.graph else set()

    def roots(self) -> list[str]:
        return sorted(n for n in self.graph.nodes if self.graph.in_degree(n) == 0)


def build_dag(
    nodes: Iterable[RunNode],
    *,
    manual: Mapping[str, str | None] | None = None,
    sweep_bases: Mapping[str, str | None] | None = None,
    naming: Naming | None = None,
) -> Dag:
    """Apply the rules to a project's runs. Parents outside the project are ignored."""
    nodes = list(nodes)
    known = {n.run_id for n in nodes}
    manual = manual or {}
    sweep_bases = sweep_bases or {}
    by_name_id = _naming_ids(nodes, naming) if naming else {}
    edges: dict[str, Edge] = {}
    for node in nodes:
        edge = _edge_of(node, manual, sweep_bases, naming, by_name_id)
        if edge is not None and edge.parent in known and edge.parent != node.run_id:
            edges[node.run_id] = edge
    dropped = _break_cycles(edges)
    return Dag(sorted(known), edges.values(), dropped)


def _edge_of(
    node: RunNode,
    manual: Mapping[str, str | None],
    sweep_bases: Mapping[str, str | None],
    naming: Naming | None,
    by_name_id: Mapping[str, str],
) -> Edge | None:
    if node.run_id in manual:
        parent = manual[node.run_id]
        return Edge(parent, node.run_id, "manual") if parent else None
    if node.parent:
        base = sweep_bases.get(node.sweep_id or "")
        if node.sweep_id and base == node.parent:
            return Edge(node.parent, node.run_id, "sweep", node.sweep_id)
        return Edge(node.parent, node.run_id, "explicit")
    if naming and node.name:
        m = search_groups(naming.regex, node.name, _NAMING)
        wanted = m.get(naming.parent_group) if m else None
        if wanted is not None and wanted in by_name_id:
            return Edge(by_name_id[wanted], node.run_id, "naming", node.name)
    return None


def _naming_ids(nodes: list[RunNode], naming: Naming) -> dict[str, str]:
    """Name id -> run id; the first run created with an id owns it (reruns reuse names)."""
    out: dict[str, str] = {}
    for node in sorted(nodes, key=lambda n: (n.created_at or "", n.run_id)):
        if node.name:
            m = search_groups(naming.regex, node.name, _NAMING)
            value = m.get(naming.id_group) if m else None
            if value is not None:
                out.setdefault(value, node.run_id)
    return out


def _break_cycles(edges: dict[str, Edge]) -> list[str]:
    """Drop the weakest edge of each cycle from ``edges``; one message per edge dropped."""
    dropped: list[str] = []
    on_cycle = _on_cycles({child: e.parent for child, e in edges.items()})
    if not on_cycle:
        return dropped
    import networkx as nx

    graph: nx.DiGraph = nx.DiGraph()  # only the cycles: find_cycle over a long chain of
    # 10,000 runs walked it again from every node (quadratic)
    graph.add_edges_from((e.parent, e.child) for e in edges.values() if e.child in on_cycle)
    while True:
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return dropped
        in_cycle = [edges[child] for _, child in cycle]
        weakest = max(in_cycle, key=lambda e: (_STRENGTH[e.rule], e.child))
        path = " -> ".join([cycle[0][0], *(child for _, child in cycle)])
        dropped.append(
            f"experiment DAG: cycle {path}; dropped the {weakest.rule} edge "
            f"{weakest.parent} -> {weakest.child}"
        )
        graph.remove_edge(weakest.parent, weakest.child)
        del edges[weakest.child]


def _on_cycles(parent_of: Mapping[str, str]) -> set[str]:
    """The runs on a cycle of child -> parent links (one parent per run: each walk up
    ends at a root, at a run already seen, or back on itself), in O(runs)."""
    done: set[str] = set()
    cycles: set[str] = set()
    for start in parent_of:
        walk: dict[str, int] = {}  # run -> its place on this walk
        node: str | None = start
        while node is not None and node not in done and node not in walk:
            walk[node] = len(walk)
            node = parent_of.get(node)
        if node is not None and node in walk:  # came back onto this walk
            cycles.update(list(walk)[walk[node] :])
        done.update(walk)
    return cycles


# -- the store side: edits kept in <project>/dag.yaml ------------------------------------
def read_manual(store: Store, project: str) -> dict[str, str | None]:
    """Parents set by hand (``{}`` when none); a malformed file is a DagError naming it."""
    path = store.dag_yaml(project)
    if not path.exists():
        return {}
    data = read_yaml(path) or {}
    parents = data.get("parents") if isinstance(data, Mapping) else None
    if parents is None:
        return {}
    if not isinstance(parents, Mapping) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in parents.items()
    ):
        raise DagError(f"{path}: parents: expected a mapping of run id to run id or null")
    return dict(parents)


def store_nodes(store: Store, project: str) -> list[RunNode]:
    """Every run of a project as a DAG node, read from the store (not the catalog, which
    may lag behind)."""
    nodes = []
    for run_id in store.run_ids(project):
        paths = store.run_paths(project, run_id)
        try:
            r = store.read_record(paths)
        except Exception:  # half-written runs are not in the DAG yet
            continue
        nodes.append(RunNode(r.id, r.name, r.parent, r.sweep_id, r.created_at))
    return nodes


def sweep_bases(store: Store, project: str) -> dict[str, str | None]:
    """Sweep id -> its base run (``hpclab.parent`` given to the whole sweep); unreadable
    sweep files are left out (the indexer reports them)."""
    return {sweep.id: sweep.base for sweep in store.iter_sweeps(project)}


def store_dag(store: Store, project: str, naming: Naming | None) -> Dag:
    return build_dag(
        store_nodes(store, project),
        manual=read_manual(store, project),
        sweep_bases=sweep_bases(store, project),
        naming=naming,
    )


def set_parent(
    store: Store, project: str, run_id: str, parent: str | None, naming: Naming | None
) -> Edge | None:
    """Record ``parent`` (None: no parent) for ``run_id`` in ``dag.yaml``. Refuses unknown
    runs and an edit that would close a cycle (the error names the cycle)."""
    for rid in (run_id, parent):
        if rid is not None and not store.run_paths(project, rid).exists():
            raise RunNotFound(f"run {rid!r} not found in project {project!r} of {store.root}")
    dag = store_dag(store, project, naming)
    if parent is not None:
        if parent == run_id:
            raise DagError(f"a run cannot be its own parent: {run_id}")
        if parent in dag.descendants(run_id):
            chain = " -> ".join(dag.lineage(parent)[dag.lineage(parent).index(run_id) :])
            raise DagError(
                f"{parent} as parent of {run_id} would make a cycle: {chain} -> {run_id}"
            )
    path = store.dag_yaml(project)
    with _locked(path):  # two edits at once must not lose one
        data: dict[str, Any] = {}
        if path.exists():
            loaded = read_yaml(path) or {}
            data = dict(loaded) if isinstance(loaded, Mapping) else {}
        parents = dict(data.get("parents") or {})
        previous = parents.get(run_id, dag.parent(run_id))
        parents[run_id] = parent
        history = list(data.get("history") or [])
        history.append(
            {
                "run": run_id,
                "parent": parent,
                "previous": previous,
                "at": utcnow_iso(),
                "user": _user(),
            }
        )
        data.update(parents=parents, history=history)
        write_yaml_atomic(path, data)
    return Edge(parent, run_id, "manual") if parent else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
