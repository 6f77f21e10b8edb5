"""The cyclic garbage collector paused while a pass builds many objects.

A cold index allocates millions of small containers (10,000 runs' rows, features and
aggregates) that all survive: each full collection the allocations trigger walks every
one of them again, 1.5 s of CPU at 10,000 runs for nothing (the rows hold no cycles;
reference counting frees them). Paused for the pass, the collector resumes after it.

The first block in a process that allocates many objects (a cold pass: millions) moves
them to the oldest generation as it resumes (``gc.freeze()`` then ``gc.unfreeze()``):
otherwise the first collection after it walks every one of them as young objects (0.25 s
at 10,000 runs). Nothing is pinned, but the few cycles among them (a cold pass leaves
~0.3 a run) wait for a full collection, which objects moved this way do not bring on:
so once a process, as mypy does, not after every big pass of a long ``hpclab watch``; a
process that froze objects of its own keeps them frozen (then this is skipped).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_MANY = 100_000
"""Net new tracked objects in a block past which they go to the oldest generation (a
small block's short-lived cycles are better left to the young collections)."""

_moved = False  # this process has moved a big block's objects once


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable cyclic collection inside the block (nested blocks: the outer one resumes)."""
    global _moved
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if not _moved and gc.get_count()[0] > _MANY and not gc.get_freeze_count():
                _moved = True
                gc.freeze()  # every tracked object to the permanent generation, then
                gc.unfreeze()  # back into the oldest one: no young scan of them
            gc.enable()
