"""The collector paused for a pass: what the first big pass made skips the young scans,
and stays collectable."""

from __future__ import annotations

import gc
import sys
import sysconfig
import weakref
from collections.abc import Iterator

import pytest

from hpclab.catalog import gc_pause
from hpclab.catalog.gc_pause import _MANY, gc_paused

# generation numbers mean what they say on the generational collector (3.10-3.13); 3.14's
# incremental one and free-threaded builds number them otherwise
GENERATIONAL = sys.version_info < (3, 14) and not sysconfig.get_config_var("Py_GIL_DISABLED")


class Node:
    """A tracked, weak-referenceable object that can hold a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def moves(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A process that has moved nothing yet; records each gc.freeze/gc.unfreeze call."""
    calls: list[str] = []
    freeze, unfreeze = gc.freeze, gc.unfreeze
    monkeypatch.setattr(gc_pause, "_moved", False)
    monkeypatch.setattr(gc, "freeze", lambda: (calls.append("freeze"), freeze())[1])
    monkeypatch.setattr(gc, "unfreeze", lambda: (calls.append("unfreeze"), unfreeze())[1])
    yield calls


def _generation_of(obj: object) -> int | None:
    for generation in range(3):
        if any(o is obj for o in gc.get_objects(generation=generation)):
            return generation
    return None


def _big_block() -> list[Node]:
    with gc_paused():
        return [Node() for _ in range(_MANY + 10_000)]


def test_a_big_blocks_objects_go_to_the_oldest_generation_and_their_cycles_are_collected(
    moves: list[str],
) -> None:
    with gc_paused():
        kept = [Node() for _ in range(_MANY + 10_000)]
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle that only the collector frees
        ref = weakref.ref(a)
        del a, b
    assert gc.isenabled()
    assert moves == ["freeze", "unfreeze"]
    if GENERATIONAL:
        assert _generation_of(kept[0]) == 2 and _generation_of(kept[-1]) == 2  # no young scan
    assert gc.get_freeze_count() == 0  # nothing pinned
    gc.collect()
    assert ref() is None, "the pass's cycle is still collected"


def test_only_the_first_big_block_of_a_process_is_moved(moves: list[str]) -> None:
    _big_block()
    _big_block()
    assert moves == ["freeze", "unfreeze"]


def test_a_small_blocks_objects_are_left_to_the_young_collections(moves: list[str]) -> None:
    gc.collect()
    with gc_paused():
        kept = [Node() for _ in range(100)]
    assert moves == []
    if GENERATIONAL:
        assert _generation_of(kept[0]) in {0, 1}


def test_objects_another_part_of_the_process_froze_stay_frozen(moves: list[str]) -> None:
    gc.collect()
    gc.freeze()
    moves.clear()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        _big_block()
        assert moves == []
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_nested_blocks_resume_once_at_the_outer_one() -> None:
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
