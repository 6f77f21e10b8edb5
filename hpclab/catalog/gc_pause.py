"""The cyclic garbage collector paused while a pass builds many objects.

A cold index allocates millions of small containers (10,000 runs' rows, features and
aggregates) that all survive: each full collection the allocations trigger walks every
one of them again, 1.5 s of CPU at 10,000 runs for nothing (the rows hold no cycles;
reference counting frees them). Paused for the pass, the collector resumes after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable cyclic collection inside the block (nested blocks: the outer one resumes)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
