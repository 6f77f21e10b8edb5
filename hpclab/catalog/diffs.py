"""Structural differences between two hierarchical configs (the PRD's feature diff).

deepdiff compares the nested configs (dicts by key, lists by position); each change comes
out as one row ``(path, change, old, new)`` with ``change`` one of ``added``, ``changed``,
``removed`` and values as JSON text. A subtree that exists on one side only is one row
(the minimal diff), not one row per leaf.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

DiffRow = tuple[str, str, str | None, str | None]

_KINDS = {
    "dictionary_item_added": "added",
    "iterable_item_added": "added",
    "attribute_added": "added",
    "dictionary_item_removed": "removed",
    "iterable_item_removed": "removed",
    "attribute_removed": "removed",
    "values_changed": "changed",
    "type_changes": "changed",
}


def diff_configs(old: Any, new: Any) -> list[DiffRow]:
    """Rows of changes from ``old`` to ``new``, sorted by path."""
    from deepdiff import DeepDiff  # on use: it imports pydantic

    tree = DeepDiff(old, new, view="tree", verbose_level=2)
    rows: list[DiffRow] = []
    for kind, levels in tree.items():
        change = _KINDS.get(kind)
        if change is None:
            continue
        for level in levels:
            path = format_path(level.path(output_format="list"))
            before = None if change == "added" else _json(level.t1)
            after = None if change == "removed" else _json(level.t2)
            rows.append((path, change, before, after))
    return sorted(rows)


def format_path(keys: Sequence[Any]) -> str:
    """``['optim', 'lr']`` -> ``optim.lr``; list positions as ``[i]`` (the features
    table's notation)."""
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
    return out


_TOKEN = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")


def unflatten(features: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    """Nested config from the features table's ``(path, JSON value, _)`` rows."""
    root: dict[str, Any] = {}
    for path, value, *_ in features:
        keys: list[Any] = [
            int(m.group(1)) if m.group(1) is not None else m.group(2) for m in _TOKEN.finditer(path)
        ]
        _put(root, keys, json.loads(value))
    return _lists(root)


def without(features: Iterable[tuple[str, str, Any]], prefixes: Sequence[str]) -> list[Any]:
    """The rows whose path is not under one of ``prefixes`` (``hpclab`` drops ``hpclab.*``)."""
    rows = features if isinstance(features, (list, tuple)) else list(features)
    return [rows[i] for i in kept_positions(tuple(map(_PATH, rows)), tuple(prefixes))]


_PATH = itemgetter(0)


@functools.lru_cache(maxsize=4096)
def kept_positions(paths: tuple[str, ...], prefixes: tuple[str, ...]) -> tuple[int, ...]:
    """The positions of the paths not under ``prefixes``: the runs of a sweep share one
    sequence of paths (matched once, not per run: 10,000 runs x 19 paths a pass)."""
    ignored = ignore_matcher(prefixes)
    return tuple(i for i, path in enumerate(paths) if not ignored(path))


def ignore_matcher(prefixes: Sequence[str]) -> Callable[[str], bool]:
    """:func:`under` with ``prefixes`` bound: what a loop over 10,000 runs' features asks."""
    if not prefixes:
        return _never
    exact, starts = _prefix_forms(tuple(prefixes))
    return lambda path: path in exact or path.startswith(starts)


def _never(path: str) -> bool:
    return False


def under(path: str, prefixes: Sequence[str]) -> bool:
    """``path`` is one of ``prefixes`` or inside one (``a`` holds ``a.b`` and ``a[0]``)."""
    if not prefixes:
        return False
    exact, starts = _prefix_forms(tuple(prefixes))
    return path in exact or path.startswith(starts)


@functools.lru_cache(maxsize=256)
def _prefix_forms(prefixes: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    # asked for every feature of every run (385,000 times in a cold index of 10,000 runs)
    return frozenset(prefixes), tuple(f for p in prefixes for f in (p + ".", p + "["))


def _put(node: dict[Any, Any], keys: list[Any], value: Any) -> None:
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _lists(node: Any) -> Any:
    """Dicts keyed 0..n-1 by int (list positions) back to lists."""
    if not isinstance(node, dict):
        return node
    out = {k: _lists(v) for k, v in node.items()}
    if out and all(isinstance(k, int) for k in out) and sorted(out) == list(range(len(out))):
        return [out[i] for i in range(len(out))]
    return out


def _json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
