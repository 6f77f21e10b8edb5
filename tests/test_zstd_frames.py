"""The metric chunks' zstd frames, coded with reused per-thread contexts: the bytes
numcodecs (zarr's codec) writes and reads, in any thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numcodecs.zstd import compress as numcodecs_compress
from numcodecs.zstd import decompress as numcodecs_decompress

from hpclab.store.zstd_frames import ZstdError, compress, decompress_into


@pytest.mark.parametrize("rows", [1, 7, 1000, 4096, 65536])
@pytest.mark.parametrize("level", [1, 3, 9])
def test_frames_are_the_ones_numcodecs_and_zarr_decode(rows: int, level: int) -> None:
    """numcodecs (zarr's zstd codec) decodes every frame to the data; where both bundle
    the same libzstd release the bytes are numcodecs' own."""
    import zstandard
    from numcodecs.zstd import VERSION_NUMBER

    rng = np.random.default_rng(rows * 10 + level)
    data = np.cumsum(rng.normal(size=(rows, 3)), axis=0)
    frame = compress(data, level)
    assert numcodecs_decompress(frame) == data.tobytes()
    major, minor, patch = zstandard.ZSTD_VERSION
    if VERSION_NUMBER == major * 10000 + minor * 100 + patch:
        assert frame == bytes(numcodecs_compress(data, level))
    out = np.empty_like(data)
    decompress_into(frame, out)
    assert np.array_equal(out, data)


def test_threads_each_code_their_own_frames() -> None:
    """zstandard's contexts are not thread-safe: each thread has its own, so frames coded
    and decoded at once in 8 threads all come back whole."""
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(2000, 3)) for _ in range(64)]

    def round_trip(a: np.ndarray) -> bool:
        out = np.empty_like(a)
        for _ in range(20):
            decompress_into(compress(a, 3), out)
        return bool(np.array_equal(out, a))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(round_trip, arrays))


@pytest.mark.parametrize(
    "damage", ["truncated", "a second frame", "trailing bytes", "fewer rows", "more rows"]
)
def test_a_frame_is_decoded_only_as_exactly_its_rows(damage: str) -> None:
    data = np.arange(300.0).reshape(100, 3)
    frame = compress(data, 1)
    bad = {
        "truncated": frame[:-5],
        "a second frame": frame + frame,
        "trailing bytes": frame + b"\0\0",
        "fewer rows": compress(data[:99], 1),
        "more rows": compress(np.vstack([data, data[:1]]), 1),
    }[damage]
    if damage in ("fewer rows", "more rows"):  # a whole frame of another size
        with pytest.raises(ValueError, match="decodes to"):
            decompress_into(bad, np.empty_like(data))
        return
    with pytest.raises(ZstdError):
        decompress_into(bad, np.empty_like(data))
