"""The cyclic garbage collector paused while a pass builds many objects.

A cold index allocates millions of small containers (10,000 runs' rows, features and
aggregates) that all survive: each full collection the allocations trigger walks every
one of them again, 1.5 s of CPU at 10,000 runs for nothing (the rows hold no cycles;
reference counting frees them). Paused for the pass, the collector resumes after it.

When the block allocated many objects (a cold pass: millions), they are moved to the
oldest generation as it resumes (``gc.freeze()`` then ``gc.unfreeze()``): otherwise the
first collection after it walks every one of them as young objects (0.25 s at 10,000
runs). Nothing is pinned: cycles among them are collected by the next full collection
(and a process that froze objects of its own keeps them frozen: then this is skipped).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_MANY = 100_000
"""Net new tracked objects in a block past which they go straight to the oldest generation
(a small block's young scan costs less than it would to move every object there)."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable cyclic collection inside the block (nested blocks: the outer one resumes)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if gc.get_count()[0] > _MANY and not gc.get_freeze_count():  # not another's
                gc.freeze()  # every tracked object to the permanent generation, then
                gc.unfreeze()  # back into the oldest one: no young scan of them
            gc.enable()
