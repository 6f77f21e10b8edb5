"""zstd frames of metric chunks, with one reused context per thread and level.

numcodecs' one-shot ``compress``/``decompress`` make and free a zstd context on every
call, ~20 us: as long as coding a 1,000-row chunk itself (a cold index decodes 40,000 of
them at 10,000 runs; a writer codes one per metric and flush). The frames are those
numcodecs writes (content size in the header, no checksum), decoded by numcodecs and
zarr alike; the bytes can differ where the two bundle different libzstd releases
(zstandard 0.25 has 1.5.7, numcodecs 0.16 1.5.6: measured identical at the writer's
level 1 up to its 4,096-row chunks, not always beyond).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import zstandard

ZstdError = zstandard.ZstdError

_local = threading.local()  # a thread's contexts: zstandard's are not thread-safe


def compress(data: Any, level: int) -> bytes:
    """One frame of ``data`` (a C-contiguous buffer) at ``level``, its content size in the
    header."""
    coders: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "coders", None)
    if coders is None:
        coders = _local.coders = {}
    cctx = coders.get(level)
    if cctx is None:
        cctx = coders[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return cctx.compress(data)


def decompress_into(raw: bytes, dest: np.ndarray) -> None:
    """One frame that declares ``dest.nbytes`` of content, decoded into ``dest``;
    ZstdError or ValueError for anything else (another size, a truncated frame, bytes
    after it)."""
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "decoder", None)
    if dctx is None:
        dctx = _local.decoder = zstandard.ZstdDecompressor()
    data = dctx.decompress(raw, allow_extra_data=False)
    if len(data) != dest.nbytes:
        raise ValueError(f"decodes to {len(data)} bytes, expected {dest.nbytes}")
    dest[...] = np.frombuffer(data, dtype=dest.dtype).reshape(dest.shape)
