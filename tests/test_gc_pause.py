"""The collector paused for a pass: what the pass made skips the young scans, and stays
collectable."""

from __future__ import annotations

import gc
import weakref

from hpclab.catalog.gc_pause import _MANY, gc_paused


class Node:
    """A tracked, weak-referenceable object that can hold a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _generation_of(obj: object) -> int | None:
    for generation in range(3):
        if any(o is obj for o in gc.get_objects(generation=generation)):
            return generation
    return None


def test_a_big_blocks_objects_go_to_the_oldest_generation_and_their_cycles_are_collected() -> None:
    with gc_paused():
        kept = [Node() for _ in range(_MANY + 10_000)]
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle that only the collector frees
        ref = weakref.ref(a)
        del a, b
    assert gc.isenabled()
    assert _generation_of(kept[0]) == 2 and _generation_of(kept[-1]) == 2  # no young scan
    assert gc.get_freeze_count() == 0  # nothing pinned
    assert ref() is not None  # not collected yet: it went to the oldest generation too
    gc.collect()
    assert ref() is None, "the pass's cycle is still collected"


def test_a_small_blocks_objects_stay_young() -> None:
    gc.collect()
    with gc_paused():
        kept = [Node() for _ in range(100)]
    assert _generation_of(kept[0]) in {0, 1}


def test_objects_another_part_of_the_process_froze_stay_frozen() -> None:
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with gc_paused():
            kept = [Node() for _ in range(_MANY + 10_000)]
        assert gc.get_freeze_count() == frozen
        assert _generation_of(kept[0]) in {0, 1}  # left to the collector as before
    finally:
        gc.unfreeze()


def test_nested_blocks_resume_once_at_the_outer_one() -> None:
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
